/**
 * unused-image: a tagged image (not a backup) whose last use — a recorded container start, its
 * arrival here, its creation, or a container of it this plan removes — is older than
 * unusedImagesAfter. Kept when guarded (held, pinned, in use, protected).
 */
import { formatDuration } from '../../config/units.js'
import { freedNote, guard, imageCandidate, imageKeep } from '../facts.js'
import type { Candidate, Keep } from '../types.js'
import type { Rule } from './types.js'

export const unusedImage: Rule = {
  id: 'unused-image',
  order: 3,
  kinds: ['image'],
  select({ ctx, images }) {
    const { policy, t } = ctx
    const candidates: Candidate[] = []
    const kept: Keep[] = []
    const unusedFor = formatDuration(policy.unusedImagesAfter)
    for (const f of images.all) {
      if (f.backup || !f.img.tags.length) continue
      if (!f.lastUse || t - f.lastUse.at <= policy.unusedImagesAfter) continue
      const why = guard(f)
      if (why) kept.push(imageKeep(f, why))
      else {
        const reason = `${f.lastUse.text} (unused images go after ${unusedFor})${freedNote(f)}`
        candidates.push(imageCandidate(f, 'unused-image', reason))
      }
    }
    return { candidates, kept }
  },
}
