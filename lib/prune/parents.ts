/**
 * A parent image goes only with every image built on it: the engine refuses to remove one that
 * has children ("has dependent child images"); execute.ts removes children first. Pure.
 */
import { imageKeep, stayingChild, takenImages, type ImageSet } from './facts.js'
import type { Draft } from './rules/types.js'

/** The draft with every image candidate whose child stays given back (kept, with why), to a fixpoint. */
export function keepParents(images: ImageSet, draft: Draft): Draft {
  const candidates = [...draft.candidates]
  const kept = [...draft.kept]
  const taken = takenImages(candidates)
  for (let changed = true; changed;) {
    changed = false
    for (let i = candidates.length - 1; i >= 0; i--) {
      const c = candidates[i]!
      const child = c.kind === 'image' ? stayingChild(images, taken, c.id) : null
      if (!child) continue
      candidates.splice(i, 1)
      taken.delete(c.id)
      changed = true
      kept.push(
        imageKeep(
          images.byId.get(c.id)!,
          `the image ${child.name} is built on it and stays (an image with children cannot be removed)`,
        ),
      )
    }
  }
  return { candidates, kept }
}
