/**
 * `migrate-assets` for a person: the result's lines (a run, a revert), or what --finalize removed.
 */
import { formatBytes } from '../config/units.js'
import type { MigrateResult } from './command.js'

export function renderMigrate(r: MigrateResult): string {
  const lines = [`${r.asset}: ${r.outcome}`]
  if (r.files) lines.push(`  files      ${r.files} (${formatBytes(r.bytes)})`)
  if (r.backup)
    lines.push(
      `  backup     ${r.backup.archive ?? r.backup.dir}${r.backup.archiveBytes !== null ? ` (${formatBytes(r.backup.archiveBytes)}, ${r.backup.compression})` : ''}`,
    )
  if (r.verified) lines.push(`  verified   ${r.verified.files} files: ${r.verified.by}`)
  if (r.original) lines.push(`  original   ${r.original.path} (kept until ${r.original.keepUntil})`)
  if (r.revert) {
    if (r.revert.from) lines.push(`  from       the ${r.revert.from}`)
    const c = r.revert.copy
    lines.push(
      `  copy       ${c.path} (${c.files} files, ${formatBytes(c.bytes)}): ${c.removed ? 'removed' : c.remove && r.outcome === 'dry-run' ? 'removed last (--remove-copy)' : 'left on the mount'}`,
    )
    if (r.revert.originalLeft) lines.push(`  original   ${r.revert.originalLeft}`)
    if (r.revert.health) lines.push(`  health     ${r.revert.health}`)
  }
  if (r.containers.length) lines.push(`  containers ${r.containers.join(', ')}`)
  if (r.journal) lines.push(`  journal    ${r.journal}`)
  return lines.join('\n')
}

/** --finalize: the outcome, and the originals removed. */
export function renderFinalize(r: MigrateResult): string {
  return `${r.asset}: ${r.outcome}${r.finalize?.removed.length ? `\n  removed ${r.finalize.removed.join(', ')}` : ''}`
}
