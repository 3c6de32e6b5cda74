/**
 * stopped-container: a container exited, created or dead for longer than stoppedContainersAfter
 * (counted from when it stopped, else from its creation). Kept: pinned by an unfinished run,
 * protected by a label, or set aside by a rebuild (its undo puts it back).
 */
import { formatDuration } from '../../config/units.js'
import { containerName, timeOf } from '../context.js'
import type { Candidate, Keep } from '../types.js'
import type { Rule } from './types.js'

const STOPPED = new Set(['exited', 'created', 'dead'])
/** the container a recreate keeps aside (lib/docker/recreate.ts asideName) */
const ASIDE = /-shipshape-old-[A-Za-z0-9_.-]+$/

export const stoppedContainer: Rule = {
  id: 'stopped-container',
  order: 1,
  kinds: ['container'],
  select({ ctx }) {
    const { inv, policy, t, ago } = ctx
    const candidates: Candidate[] = []
    const kept: Keep[] = []
    const after = formatDuration(policy.stoppedContainersAfter)
    for (const c of inv.containers) {
      if (!STOPPED.has(c.state)) continue
      const finished = timeOf(c.finishedAt)
      const at = finished ?? timeOf(c.createdAt)
      if (at === null || t - at <= policy.stoppedContainersAfter) continue
      const name = containerName(c)
      const base = { kind: 'container' as const, name, id: c.id }
      const label = ctx.protectLabel(c.labels)
      const pinned = ctx.pinOf([c.id, name])
      if (pinned) {
        kept.push({ ...base, reason: pinned })
      } else if (label) {
        kept.push({ ...base, reason: `protected by the label ${label}` })
      } else if (ASIDE.test(name)) {
        kept.push({ ...base, reason: 'kept aside by a rebuild: its undo puts it back' })
      } else {
        const stopped =
          finished !== null
            ? `${c.state} ${ago(at)}`
            : c.state === 'created'
              ? `created ${ago(at)}, never started`
              : `${c.state} (no stop time), created ${ago(at)}`
        candidates.push({
          ...base,
          sizeBytes: c.sizeRwBytes ?? 0,
          rule: 'stopped-container',
          reason: `${stopped} (stopped containers go after ${after})`,
        })
      }
    }
    return { candidates, kept }
  },
}
