/**
 * migrated-archive: the backup archive of a migration whose original is finalized, past
 * keepBackup (the inventory judged which: move onto the remote, remove, or keep with why). The
 * executor verifies the destination on the remote again before it acts. Kept when pinned.
 */
import { cmp } from '../context.js'
import type { Candidate, Keep } from '../types.js'
import type { Rule } from './types.js'

export const migratedArchive: Rule = {
  id: 'migrated-archive',
  order: 9,
  kinds: ['archive'],
  select({ ctx }) {
    const candidates: Candidate[] = []
    const kept: Keep[] = []
    for (const a of [...ctx.inv.archives].sort((x, y) => cmp(x.path, y.path))) {
      const base = { kind: 'archive' as const, name: a.path, id: a.workDir }
      const pinned = ctx.pinOf([a.asset, a.workDir, a.path])
      if (a.action === 'keep' || pinned) {
        kept.push({ ...base, reason: pinned ?? `${a.asset}: ${a.note}` })
        continue
      }
      const fate =
        a.action === 'move'
          ? 'moved onto the remote (backupTo: remote) and verified there, then removed here'
          : 'removed (backupTo: local, keepBackup passed)'
      candidates.push({
        ...base,
        sizeBytes: a.bytes,
        rule: 'migrated-archive',
        reason: `${a.asset}: the original was finalized ${a.note}; ${fate} — after the destination is verified again on the remote`,
      })
    }
    return { candidates, kept }
  },
}
