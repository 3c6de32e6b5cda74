/**
 * dangling-image: an untagged image (not a backup) dangling for longer than danglingAfter —
 * counted from when it was built or last tagged here, so a rollback's untagged newer build or a
 * failed build left for inspection stays that long. Kept when guarded (held, pinned, in use,
 * protected).
 */
import { formatDuration } from '../../config/units.js'
import { timeOf } from '../context.js'
import { freedNote, guard, imageCandidate, imageKeep } from '../facts.js'
import type { Candidate, Keep } from '../types.js'
import type { Rule } from './types.js'

export const danglingImage: Rule = {
  id: 'dangling-image',
  order: 2,
  kinds: ['image'],
  select({ ctx, images }) {
    const { policy, t, ago } = ctx
    const candidates: Candidate[] = []
    const kept: Keep[] = []
    const after = `(dangling images go after ${formatDuration(policy.danglingAfter)})`
    for (const f of images.all) {
      if (f.backup || f.img.tags.length) continue
      const why = guard(f)
      const since = Math.max(timeOf(f.img.createdAt) ?? 0, timeOf(f.img.arrivedAt) ?? 0) || null
      if (why) kept.push(imageKeep(f, why))
      else if (since === null || t - since <= policy.danglingAfter) {
        const age = since === null ? 'of unknown age' : `built or tagged here ${ago(since)}`
        kept.push(imageKeep(f, `dangling, but ${age} ${after}`))
      } else {
        candidates.push(
          imageCandidate(
            f,
            'dangling-image',
            `dangling (no tag), built or tagged here ${ago(since)} ${after}, no container uses it${freedNote(f)}`,
          ),
        )
      }
    }
    return { candidates, kept }
  },
}
