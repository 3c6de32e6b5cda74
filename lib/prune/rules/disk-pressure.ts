/**
 * disk-pressure: after every other rule (it looks at what they free), when the engine's disk
 * would still be fuller than diskThreshold, the least recently used tagged images that no guard
 * holds, until it would not be; an image with no known time goes last. An image built on by one
 * that stays is passed over. The originals count too: on the usual one-disk host they share the
 * engine's filesystem; where they do not, counting them only makes this rule take fewer images.
 */
import { cmp, pct } from '../context.js'
import { guard, stayingChild, takenImages } from '../facts.js'
import type { Candidate } from '../types.js'
import type { Rule } from './types.js'

export const bytesOf = (cs: readonly Candidate[]): number => cs.reduce((a, c) => a + c.sizeBytes, 0)

export const diskPressure: Rule = {
  id: 'disk-pressure',
  order: 10,
  kinds: ['image'],
  select({ ctx, images, draft }) {
    const { inv, policy } = ctx
    const candidates: Candidate[] = []
    if (!inv.disk) return { candidates, kept: [] }
    const { usedBytes, totalBytes } = inv.disk
    let projected = usedBytes - bytesOf(draft.candidates)
    if (!(totalBytes > 0 && projected / totalBytes > policy.diskThreshold)) {
      return { candidates, kept: [] }
    }
    const taken = takenImages(draft.candidates)
    const lru = images.all
      .filter((f) => !f.backup && !taken.has(f.img.id) && !guard(f) && f.img.tags.length)
      .sort(
        (a, b) =>
          (a.lastUse?.at ?? Infinity) - (b.lastUse?.at ?? Infinity) || cmp(a.img.id, b.img.id),
      )
    for (const f of lru) {
      if (projected / totalBytes <= policy.diskThreshold) break
      if (stayingChild(images, taken, f.img.id)) continue
      taken.add(f.img.id)
      // tags before reason: the key order shipshape.prune/1 has always had for this rule
      candidates.push({
        kind: 'image',
        name: f.name,
        id: f.img.id,
        sizeBytes: f.unique,
        rule: 'disk-pressure',
        tags: [...f.img.tags].sort(),
        reason: `engine disk at ${pct(projected / totalBytes)} after the rest of the plan, over ${pct(policy.diskThreshold)}: least recently used first — ${f.lastUse?.text ?? 'no known time'}`,
      })
      projected -= f.unique
    }
    // an image taken whole: its untag candidates give way
    const whole = new Set(candidates.map((c) => c.id))
    const withdrawn = draft.candidates.filter((c) => c.kind === 'tag' && whole.has(c.id))
    return { candidates, kept: [], withdrawn }
  },
}
