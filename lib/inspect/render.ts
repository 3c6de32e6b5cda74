import { clip, layerLabel, table } from '../cli/table.js'
import { formatBytes } from '../config/units.js'
import type { InspectReport } from '../scan/inspect.js'

/** The `top` biggest of some sized things, biggest first. */
const biggest = <T extends { sizeBytes: number }>(items: readonly T[], top: number): T[] =>
  [...items].sort((a, b) => b.sizeBytes - a.sizeBytes).slice(0, top)

export function renderInspectHuman(r: InspectReport, color: boolean, top: number): string {
  const out: string[] = []
  const name = r.image.tags[0] ?? r.image.id
  out.push(
    `shipshape inspect — ${name} (${r.image.id.replace(/^sha256:/, '').slice(0, 12)}) — Docker ${r.engine.version}, ${r.engine.imageStore} image store`,
    `engine size ${formatBytes(r.image.engineSizeBytes)} · in layers ${formatBytes(r.totalBytes)} · final filesystem ${formatBytes(r.finalBytes)} in ${r.files} files · wasted ${formatBytes(r.wastedBytes)}`,
    '',
    'Layers (base first)',
  )
  const lt = table(['#', 'SIZE', 'WASTED', 'INSTRUCTION'], color)
  for (const l of r.layers)
    lt.push([
      l.index,
      formatBytes(l.addedBytes),
      l.wastedBytes ? formatBytes(l.wastedBytes) : '',
      clip(layerLabel(l), 90),
    ])
  out.push(lt.toString())
  const section = (title: string, head: string[], rows: (string | number)[][]) => {
    if (!rows.length) return
    const t = table(head, color)
    for (const row of rows) t.push(row)
    out.push('', title, t.toString())
  }
  section(
    'Biggest directories',
    ['PATH', 'SIZE', 'FILES'],
    r.directories.slice(0, top).map((d) => ['/' + d.path, formatBytes(d.sizeBytes), d.files]),
  )
  section(
    'Python distributions',
    ['NAME', 'VERSION', 'SIZE'],
    biggest(r.python.distributions, top).map((d) => [d.name, d.version, formatBytes(d.sizeBytes)]),
  )
  section(
    'node_modules packages',
    ['NAME', 'PATH', 'SIZE'],
    biggest(r.node.packages, top).map((p) => [p.name, '/' + p.path, formatBytes(p.sizeBytes)]),
  )
  section(
    'Debian packages',
    ['NAME', 'VERSION', 'SIZE'],
    biggest(r.dpkg?.packages ?? [], top).map((p) => [p.name, p.version, formatBytes(p.sizeBytes)]),
  )
  out.push('', `Findings: ${r.findings.length || 'none'}`)
  if (r.findings.length) {
    const ft = table(['RULE', 'SAVINGS', 'WHAT'], color)
    for (const f of r.findings)
      ft.push([
        f.rule,
        f.estimatedSavingsBytes ? formatBytes(f.estimatedSavingsBytes) : '—',
        clip(f.message, 110),
      ])
    out.push(ft.toString())
    out.push('', 'Fixes (Dockerfile):')
    for (const f of r.findings) out.push('', `# ${f.rule}`, f.fix)
  }
  return out.join('\n')
}
