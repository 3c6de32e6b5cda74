/**
 * old-backup: rebuild's backups (a prev tag on the image a service ran, a commit of its
 * container, or an older shipshape's labelled copy) older than backupsFor. Only this rule takes a
 * backup. The newest of each service and kind stays whatever its age: the image backup
 * (shipshape-prev-) is the cheap rollback target (it shares the image's layers), the commit
 * (shipshape-backup-) the only copy of a container's writable layer once compose has recreated it
 * — one run makes both with the same created time, so "the newest per service" alone would keep
 * one of the pair at random.
 */
import { formatDuration } from '../../config/units.js'
import { cmp } from '../context.js'
import { guard, imageCandidate, imageKeep, type ImageFacts } from '../facts.js'
import type { Candidate, Keep } from '../types.js'
import type { Rule } from './types.js'

/** ids of the newest backup of each service and kind */
export function newestBackups(images: readonly ImageFacts[]): Set<string> {
  const groups = new Map<string, ImageFacts[]>()
  for (const f of images) {
    if (!f.backup) continue
    const key = `${f.backup.service}\0${f.backup.kind}`
    const g = groups.get(key)
    if (g) g.push(f)
    else groups.set(key, [f])
  }
  const newest = new Set<string>()
  for (const g of groups.values()) {
    g.sort((a, b) => (b.backup?.created ?? 0) - (a.backup?.created ?? 0) || cmp(b.img.id, a.img.id))
    if (g[0]) newest.add(g[0].img.id)
  }
  return newest
}

export const oldBackup: Rule = {
  id: 'old-backup',
  order: 5,
  kinds: ['image'],
  select({ ctx, images }) {
    const { policy, t, ago } = ctx
    const candidates: Candidate[] = []
    const kept: Keep[] = []
    const newest = newestBackups(images.all)
    for (const f of images.all) {
      if (!f.backup || f.backup.created === null) continue
      if (t - f.backup.created <= policy.backupsFor) continue
      const what = `${f.backup.kind} backup of ${f.backup.service || '(no service)'}`
      const why = newest.has(f.img.id) ? `the newest ${what}: kept whatever its age` : guard(f)
      if (why) kept.push(imageKeep(f, why))
      else {
        candidates.push(
          imageCandidate(
            f,
            'old-backup',
            `${what} from ${ago(f.backup.created)} (backups go after ${formatDuration(policy.backupsFor)}; a newer one stays)`,
          ),
        )
      }
    }
    return { candidates, kept }
  },
}
