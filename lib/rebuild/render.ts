/**
 * `rebuild`, `rollback` and `update` for a person: a result's lines (a run), its tables
 * (rollback --list, update --check/--auto).
 */
import { table } from '../cli/table.js'
import { formatBytes } from '../config/index.js'
import type { RebuildResult } from './result.js'

const short = (id: string | null) => (id ? id.replace(/^sha256:/, '').slice(0, 12) : '-')

export function renderRebuild(r: RebuildResult): string {
  if (r.outcome === 'listed') {
    const parts: string[] = []
    if (!r.backups.length) parts.push(`${r.service}: no backups`)
    else {
      const t = table(['TAG', 'KIND', 'CREATED', 'SIZE', 'ID', 'BUILD FILES'], false)
      for (const b of r.backups as {
        tag: string
        id: string
        kind: string
        created?: string
        sizeBytes?: number
        files?: { origin: string } | null
      }[]) {
        t.push([
          b.tag,
          b.kind,
          b.created?.slice(0, 19).replace('T', ' ') ?? '',
          b.sizeBytes !== undefined ? formatBytes(b.sizeBytes) : '',
          short(b.id),
          b.files ? b.files.origin : '-',
        ])
      }
      parts.push(t.toString())
    }
    if (r.buildFiles?.length) {
      const t = table(['BUILD FILES OF', 'SAVED', 'HOW', 'FILES'], false)
      for (const f of r.buildFiles) {
        t.push([
          short(f.imageId),
          f.savedAt.slice(0, 19).replace('T', ' '),
          f.origin,
          f.files.map((x) => x.split('/').pop()).join(', '),
        ])
      }
      parts.push(t.toString())
    }
    return parts.join('\n')
  }
  if (r.outcome === 'checked') {
    const checks = r.checks ?? []
    if (!checks.length)
      return 'no service has update: notify or apply (name one: shipshape update --check SERVICE)'
    const t = table(['SERVICE', 'UPDATE', 'IMAGE', 'RUNS', 'REGISTRY', 'NEWER', 'DONE'], false)
    for (const c of checks) {
      t.push([
        c.service,
        c.mode,
        c.ref ?? '-',
        short(c.runs),
        c.remoteDigest ? c.remoteDigest.slice(0, 19) : c.error ? `? ${c.error.slice(0, 60)}` : '-',
        c.newer === null ? '?' : c.newer ? 'yes' : 'no',
        c.outcome ?? '',
      ])
    }
    return t.toString()
  }
  const lines = [`${r.service}: ${r.outcome}`]
  if (r.image.ref)
    lines.push(`  image      ${r.image.ref}: ${short(r.image.from)} → ${short(r.image.to)}`)
  if (r.update)
    lines.push(
      `  registry   ${r.update.ref} ${r.update.remoteDigest ? r.update.remoteDigest.slice(0, 19) : '(not asked)'}${r.update.newer === null ? '' : r.update.newer ? ' (newer)' : ' (what runs)'}`,
    )
  for (const b of r.backups) lines.push(`  backup     ${b.tag} (${b.kind}, ${short(b.id)})`)
  if (r.containers.length) lines.push(`  containers ${r.containers.join(', ')}`)
  if (r.health)
    lines.push(
      `  health     ${r.health.ok ? 'ok' : 'failed'} after ${r.health.attempts} ${r.health.attempts === 1 ? 'try' : 'tries'}${r.health.heldMs ? `, held ${(r.health.heldMs / 1000).toFixed(1)} s` : ''}${r.timings.gateMs !== null ? ` (${(r.timings.gateMs / 1000).toFixed(1)} s)` : ''}`,
    )
  if (r.size)
    lines.push(
      `  size       ${formatBytes(r.size.beforeBytes)} → ${r.size.afterBytes === null ? '?' : formatBytes(r.size.afterBytes)}${r.size.savedBytes === null ? '' : r.size.savedBytes >= 0 ? ` (${formatBytes(r.size.savedBytes)} saved)` : ` (${formatBytes(-r.size.savedBytes)} more)`}`,
    )
  if (r.files) {
    const changed = r.files.diff.filter((d) => d.state !== 'same')
    lines.push(
      `  files      ${r.files.origin === null ? 'none saved with this image' : changed.length ? `${changed.map((d) => `${d.path} (${d.state})`).join(', ')} differ from the saved ones` : 'as saved with this image'}`,
    )
    if (r.files.restored.length)
      lines.push(
        `  restored   ${r.files.restored.join(', ')} (replaced files in ${r.files.replacedSavedIn})`,
      )
  }
  if (r.failedImage)
    lines.push(`  failed     image ${short(r.failedImage)} left untagged for a look`)
  if (r.log) lines.push(`  log        ${r.log}`)
  if (r.journal) lines.push(`  journal    ${r.journal}`)
  return lines.join('\n')
}
