/**
 * build-cache: the unused build cache above buildCacheKeep, least recently used first (one
 * candidate: the engine prunes down to the keep-storage). Shared records count for nothing, as in
 * `docker system df`: their bytes are image layers, and removing them frees none.
 */
import { formatBytes } from '../../config/units.js'
import { cmp, plural, timeOf } from '../context.js'
import type { Rule } from './types.js'

export const buildCache: Rule = {
  id: 'build-cache',
  order: 6,
  kinds: ['build-cache'],
  select({ ctx }) {
    const keep = ctx.policy.buildCacheKeep
    const cache = ctx.inv.buildCache
      .filter((b) => !b.inUse && !b.shared)
      .map((b) => ({ b, at: timeOf(b.lastUsedAt) ?? timeOf(b.createdAt) ?? 0 }))
      .sort((x, y) => x.at - y.at || cmp(x.b.id, y.b.id))
    const cacheBytes = cache.reduce((a, x) => a + x.b.sizeBytes, 0)
    if (cacheBytes <= keep) return { candidates: [], kept: [] }
    let left = cacheBytes
    let freedBytes = 0
    let n = 0
    for (const x of cache) {
      if (left <= keep) break
      left -= x.b.sizeBytes
      freedBytes += x.b.sizeBytes
      n++
    }
    const candidate = {
      kind: 'build-cache' as const,
      name: 'build cache',
      id: '',
      sizeBytes: freedBytes,
      rule: 'build-cache' as const,
      reason: `${formatBytes(cacheBytes)} of unused build cache, over the ${formatBytes(keep)} kept: the ${plural(n, 'least recently used record')}`,
    }
    return { candidates: [candidate], kept: [] }
  },
}
