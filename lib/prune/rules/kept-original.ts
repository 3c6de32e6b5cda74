/**
 * kept-original: an original directory migrate-assets kept aside, past its keepUntil (as
 * lib/assets/finalize.ts judges it: due at keepUntil). Kept when pinned by an unfinished run or
 * blocked (the migration no longer stands, …); the backup archive stays either way.
 */
import { cmp, timeOf } from '../context.js'
import type { Candidate, Keep } from '../types.js'
import type { Rule } from './types.js'

export const keptOriginal: Rule = {
  id: 'kept-original',
  order: 8,
  kinds: ['original'],
  select({ ctx }) {
    const candidates: Candidate[] = []
    const kept: Keep[] = []
    for (const o of [...ctx.inv.originals].sort((a, b) => cmp(a.path, b.path))) {
      const until = timeOf(o.keepUntil)
      if (until === null || until > ctx.t) continue
      const base = { kind: 'original' as const, name: o.path, id: o.path }
      const pinned = ctx.pinOf([o.asset, o.path])
      if (pinned) kept.push({ ...base, reason: pinned })
      else if (o.blocker) kept.push({ ...base, reason: `${o.asset}: ${o.blocker}` })
      else {
        candidates.push({
          ...base,
          sizeBytes: o.bytes,
          rule: 'kept-original',
          reason: `${o.asset}: the original was kept until ${o.keepUntil} (${ctx.ago(until)}); the backup archive stays`,
        })
      }
    }
    return { candidates, kept }
  },
}
