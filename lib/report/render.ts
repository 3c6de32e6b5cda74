import { clip, displaySafe, layerLabel, table } from '../cli/table.js'
import { formatBytes } from '../config/units.js'
import { biggestLayers, imageRef } from './analyze.js'
import type { Growth, MountedBy, Report, ReportImage } from './types.js'

export { instruction, layerLabel } from '../cli/table.js'

export interface RenderOptions {
  color: boolean
  layersPerImage: number
}

const bytes = (n: number | null | undefined): string =>
  n === null || n === undefined ? '—' : formatBytes(n)
const signed = (n: number): string =>
  n > 0 ? `+${formatBytes(n)}` : n < 0 ? `−${formatBytes(-n)}` : '±0'
const shortId = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12)
const day = (iso: string): string => (iso ? iso.slice(0, 10) : '—')

function layerLines(img: ReportImage, n: number, width: number): string {
  return biggestLayers(img, n)
    .map((l) => `${formatBytes(l.sizeBytes).padStart(9)}  ${clip(layerLabel(l), width)}`)
    .join('\n')
}

function growthLines(g: Growth): string[] {
  const out = [
    `Growth since ${g.previousAt} (${g.previousFile}): total ${signed(g.disk.total)} ` +
      `(images ${signed(g.disk.images)}, containers ${signed(g.disk.containers)}, volumes ${signed(g.disk.volumes)}, build cache ${signed(g.disk.buildCache)})`,
  ]
  for (const i of g.images)
    out.push(
      `  image ${i.ref}: ${bytes(i.previousBytes)} → ${bytes(i.currentBytes)} (${signed(i.deltaBytes)})`,
    )
  for (const i of g.newImages) out.push(`  new image ${i.ref}: ${bytes(i.sizeBytes)}`)
  for (const i of g.removedImages) out.push(`  removed image ${i.ref}: ${bytes(i.sizeBytes)}`)
  for (const p of g.paths)
    out.push(
      `  ${p.path}: ${bytes(p.previousBytes)} → ${bytes(p.currentBytes)} (${signed(p.deltaBytes)})`,
    )
  return out
}

/** The report for a person at a terminal (written to stderr). */
export function renderHuman(report: Report, o: RenderOptions): string {
  const r = displaySafe(report)
  const out: string[] = []
  const e = r.engine
  out.push(
    `shipshape report — ${r.host} — Docker ${e.version} (API ${e.apiVersion}, ${e.storageDriver}, ${e.imageStore} image store) at ${e.address}`,
    `config: ${r.configSource}`,
    '',
    'Engine disk use',
  )
  const d = table(['TYPE', 'COUNT', 'ACTIVE', 'SIZE', 'RECLAIMABLE'], o.color)
  for (const [name, u] of [
    ['Images', r.disk.images],
    ['Containers', r.disk.containers],
    ['Local volumes', r.disk.volumes],
    ['Build cache', r.disk.buildCache],
  ] as const)
    d.push([name, u.count, u.active, bytes(u.sizeBytes), bytes(u.reclaimableBytes)])
  d.push(['Total', '', '', bytes(r.disk.totalBytes), bytes(r.disk.reclaimableBytes)])
  out.push(d.toString(), '')

  const top = r.images.slice(0, r.thresholds.top)
  out.push(
    `Images by size (top ${top.length} of ${r.images.length}; biggest layers with the instruction that made them)`,
  )
  if (top.length) {
    const t = table(
      ['IMAGE', 'ID', 'CREATED', 'SIZE', 'CTRS', 'BIGGEST LAYERS'],
      o.color,
      [28, 14, 12, 11, 6, 60],
    )
    for (const img of top)
      t.push([
        img.tags.join('\n') || '<none>',
        shortId(img.id),
        day(img.createdAt),
        bytes(img.sizeBytes) + (img.big ? ' !' : ''),
        img.containers,
        layerLines(img, o.layersPerImage, 240),
      ])
    out.push(t.toString())
  } else out.push('  (no images)')
  const big = r.images.filter((i) => i.big)
  out.push(
    '',
    `Images over ${bytes(r.thresholds.bigImageBytes)} (report.bigImage): ${big.length ? big.map((i) => `${imageRef(i)} ${bytes(i.sizeBytes)}`).join(', ') : 'none'}`,
  )
  const dangling = r.images.filter((i) => i.dangling)
  out.push(
    `Dangling images: ${dangling.length ? dangling.map((i) => `${shortId(i.id)} ${bytes(i.sizeBytes)}`).join(', ') : 'none'}`,
  )

  const stopped = r.containers.filter((c) => !c.running)
  out.push('', `Stopped containers: ${stopped.length || 'none'}`)
  if (stopped.length) {
    const t = table(['NAME', 'IMAGE', 'STATUS', 'SIZE'], o.color)
    for (const c of stopped) t.push([c.name, clip(c.image, 40), c.status, bytes(c.sizeRwBytes)])
    out.push(t.toString())
  }
  out.push(
    '',
    `Volumes: ${r.volumes.length || 'none'}${r.volumes.length > r.thresholds.top ? ` (the ${r.thresholds.top} biggest shown)` : ''}`,
  )
  if (r.volumes.length) {
    const t = table(['NAME', 'DRIVER', 'SIZE', 'IN USE'], o.color)
    for (const v of r.volumes.slice(0, r.thresholds.top))
      t.push([
        clip(v.name, 40),
        v.driver,
        bytes(v.sizeBytes),
        v.inUse ? `yes (${v.refCount})` : 'no',
      ])
    out.push(t.toString())
  }

  for (const p of r.paths) {
    out.push('', `${p.path}: ${pathState(p)}${mountedByText(p.path, p.mountedBy, ', ')}`)
    if (p.children.length) {
      const t = table(['PATH', 'SIZE', 'MOUNTED BY'], o.color)
      for (const c of p.children)
        t.push([c.path, bytes(c.sizeBytes), mountedByText(c.path, c.mountedBy, '\n')])
      out.push(t.toString())
    }
    for (const m of p.mounts)
      out.push(`  mount below (not measured): ${m.path} (${m.fsType} ${m.source})`)
  }

  out.push('', `Recommendations: ${r.recommendations.length || 'none'}`)
  if (r.recommendations.length) {
    const t = table(['KIND', 'TARGET', 'SAVINGS', 'RISK', 'COMMAND'], o.color)
    for (const rec of r.recommendations)
      t.push([
        rec.kind,
        clip(rec.target, 50),
        rec.estimatedSavingsBytes === null ? '?' : bytes(rec.estimatedSavingsBytes),
        rec.risk,
        rec.command,
      ])
    out.push(t.toString())
  }
  if (r.migrations?.length)
    out.push('', 'Migrated assets:', ...migrationLines(r).map((l) => `  ${l}`))
  if (r.growth) out.push('', ...growthLines(r.growth))
  if (r.warnings.length) out.push('', 'Warnings:', ...r.warnings.map((w) => `  - ${w}`))
  return out.join('\n')
}

function mountedByText(path: string, mounts: MountedBy[], sep: string): string {
  const text = mounts
    .map(
      (m) => `${m.container}${m.source === path ? '' : ` (${m.source})`}${m.readOnly ? ' ro' : ''}`,
    )
    .join(sep)
  return sep === '\n' || !text ? text : ` — mounted by ${text}`
}

/** "5.2 GB", or why there is no size ("missing", "not a directory"). */
function pathState(p: Report['paths'][number]): string {
  if (p.exists) return bytes(p.sizeBytes)
  const w = p.warnings[0] ?? ''
  return w.startsWith(p.path + ' ') ? w.slice(p.path.length + 1) : 'missing'
}

const md = (s: string | number): string =>
  String(s).replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\n/g, '<br>')
function mdTable(head: string[], rows: (string | number)[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.map(md).join(' | ')} |`),
  ].join('\n')
}

/** The same report as Markdown (for --markdown and the files --out writes). */
export function renderMarkdown(report: Report, o: Pick<RenderOptions, 'layersPerImage'>): string {
  const r = displaySafe(report)
  const e = r.engine
  const out: string[] = [
    `# shipshape report — ${r.host}`,
    '',
    `Generated ${r.generatedAt} · Docker ${e.version} (API ${e.apiVersion}, ${e.storageDriver}, ${e.imageStore} image store) at \`${e.address}\` · config: ${r.configSource}`,
    '',
    '## Engine disk use',
    '',
    mdTable(
      ['Type', 'Count', 'Active', 'Size', 'Reclaimable'],
      [
        ['Images', r.disk.images],
        ['Containers', r.disk.containers],
        ['Local volumes', r.disk.volumes],
        ['Build cache', r.disk.buildCache],
      ]
        .map(([n, u]) => {
          const x = u as Report['disk']['images']
          return [n as string, x.count, x.active, bytes(x.sizeBytes), bytes(x.reclaimableBytes)]
        })
        .concat([['**Total**', '', '', bytes(r.disk.totalBytes), bytes(r.disk.reclaimableBytes)]]),
    ),
    '',
    `## Images by size (top ${Math.min(r.thresholds.top, r.images.length)} of ${r.images.length})`,
    '',
    mdTable(
      ['Image', 'ID', 'Created', 'Size', 'Containers', 'Biggest layers'],
      r.images.slice(0, r.thresholds.top).map((i) => [
        i.tags.join('\n') || '<none>',
        `\`${shortId(i.id)}\``,
        day(i.createdAt),
        bytes(i.sizeBytes) + (i.big ? ' ⚠' : ''),
        i.containers,
        biggestLayers(i, o.layersPerImage)
          .map((l) => `${bytes(l.sizeBytes)} \`${layerLabel(l).replace(/`/g, "'")}\``)
          .join('\n'),
      ]),
    ),
  ]
  const big = r.images.filter((i) => i.big)
  const dangling = r.images.filter((i) => i.dangling)
  out.push(
    '',
    `Images over ${bytes(r.thresholds.bigImageBytes)} (report.bigImage): ${big.length ? big.map((i) => `${md(imageRef(i))} ${bytes(i.sizeBytes)}`).join(', ') : 'none'}  `,
    `Dangling images: ${dangling.length ? dangling.map((i) => `\`${shortId(i.id)}\` ${bytes(i.sizeBytes)}`).join(', ') : 'none'}`,
  )
  const stopped = r.containers.filter((c) => !c.running)
  if (stopped.length)
    out.push(
      '',
      '## Stopped containers',
      '',
      mdTable(
        ['Name', 'Image', 'Status', 'Size'],
        stopped.map((c) => [c.name, c.image, c.status, bytes(c.sizeRwBytes)]),
      ),
    )
  if (r.volumes.length)
    out.push(
      '',
      '## Volumes',
      '',
      mdTable(
        ['Name', 'Size', 'In use'],
        r.volumes.map((v) => [v.name, bytes(v.sizeBytes), v.inUse ? 'yes' : 'no']),
      ),
    )
  for (const p of r.paths) {
    out.push('', `## ${p.path} — ${pathState(p)}${mountedByText(p.path, p.mountedBy, ', ')}`, '')
    if (p.children.length)
      out.push(
        mdTable(
          ['Path', 'Size', 'Mounted by'],
          p.children.map((c) => [
            c.path,
            bytes(c.sizeBytes),
            mountedByText(c.path, c.mountedBy, '\n'),
          ]),
        ),
      )
    for (const m of p.mounts) out.push(`- mount below (not measured): \`${m.path}\` (${m.fsType})`)
  }
  out.push('', '## Recommendations', '')
  out.push(
    r.recommendations.length
      ? mdTable(
          ['Kind', 'Target', 'Savings', 'Risk', 'Command', 'Why'],
          r.recommendations.map((x) => [
            x.kind,
            x.target,
            x.estimatedSavingsBytes === null ? '?' : bytes(x.estimatedSavingsBytes),
            x.risk,
            `\`${x.command}\``,
            x.reason,
          ]),
        )
      : 'None.',
  )
  if (r.migrations?.length)
    out.push('', '## Migrated assets', '', ...migrationLines(r).map((l) => `- ${l}`))
  if (r.growth) out.push('', '## Growth', '', ...growthLines(r.growth).map((l) => `- ${l.trim()}`))
  if (r.warnings.length) out.push('', '## Warnings', '', ...r.warnings.map((w) => `- ${w}`))
  return out.join('\n') + '\n'
}

/** One line per migrated asset: where its bytes are, what the local disk gets back, what next. */
function migrationLines(r: Report): string[] {
  return (r.migrations ?? []).map((m) => {
    const where = [
      m.original
        ? `original ${m.original.bytes === null ? '?' : bytes(m.original.bytes)} at ${m.original.path}`
        : 'original finalized',
      m.archive
        ? m.archive.where === 'removed'
          ? 'archive removed'
          : `archive ${bytes(m.archive.bytes)} ${m.archive.where === 'local' ? 'in' : 'on the remote at'} ${m.archive.path}`
        : 'no archive',
      `copy at ${m.dest}`,
    ]
    return `${m.asset} (${m.run}): ${where.join('; ')} — local disk to get back: ${bytes(m.reclaimableBytes)}; next: ${m.next}`
  })
}
