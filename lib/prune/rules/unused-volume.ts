/**
 * unused-volume: only when prune.volumes is on — a volume no container uses, past volumesAfter of
 * disuse. A compose project's volumes stay while the project has a configured service or any
 * container: `compose down` keeps them for the next `up` (a database's data); Docker 23+ prunes
 * only anonymous volumes for that reason. Kept too: protected by a label, pinned, of unknown age,
 * or not counted by the engine.
 */
import { formatDuration } from '../../config/units.js'
import { COMPOSE_PROJECT_LABEL } from '../../shared/labels.js'
import { byName, cmp, containerName, plural, timeOf, type PlanContext } from '../context.js'
import type { Candidate, Keep, PruneVolume } from '../types.js'
import type { Rule } from './types.js'

/** compose project → the first of its containers, by name */
function containersOfProjects(ctx: PlanContext): Map<string, string> {
  const out = new Map<string, string>()
  for (const c of byName(ctx.inv.containers)) {
    const p = c.labels[COMPOSE_PROJECT_LABEL]
    if (p && !out.has(p)) out.set(p, containerName(c))
  }
  return out
}

/** the volume's last known use: recorded, else its creation */
function useOf(ctx: PlanContext, v: PruneVolume): { at: number; text: string } | null {
  const recorded = timeOf(ctx.inv.lastUsedVolumes[v.name])
  const created = timeOf(v.createdAt)
  return recorded !== null && (created === null || recorded >= created)
    ? { at: recorded, text: `last used ${ctx.ago(recorded)}` }
    : created !== null
      ? { at: created, text: `created ${ctx.ago(created)}, no recorded use` }
      : null
}

export const unusedVolume: Rule = {
  id: 'unused-volume',
  order: 7,
  kinds: ['volume'],
  select({ ctx }) {
    const { inv, policy, t } = ctx
    const candidates: Candidate[] = []
    const kept: Keep[] = []
    if (!policy.volumes) return { candidates, kept }
    const projectContainer = containersOfProjects(ctx)
    const volumesAfter = formatDuration(policy.volumesAfter)
    for (const v of [...inv.volumes].sort((a, b) => cmp(a.name, b.name))) {
      const base = { kind: 'volume' as const, name: v.name, id: v.name }
      const label = ctx.protectLabel(v.labels)
      const project = v.labels[COMPOSE_PROJECT_LABEL]
      const use = useOf(ctx, v)
      const pinned = ctx.pinOf([v.name])
      const why =
        v.refCount === null
          ? 'the engine did not count its containers: unknown, kept'
          : v.refCount > 0
            ? `in use by ${plural(v.refCount, 'container')}`
            : label
              ? `protected by the label ${label}`
              : pinned
                ? pinned
                : project && inv.configuredProjects[project]
                  ? `its compose project ${project} has the configured service ${inv.configuredProjects[project]} (a \`compose up\` uses it again)`
                  : project && projectContainer.has(project)
                    ? `its compose project ${project} still has the container ${projectContainer.get(project)}`
                    : use === null
                      ? 'no known time of creation or use: kept'
                      : t - use.at <= policy.volumesAfter
                        ? `no container uses it, but ${use.text} (volumes go after ${volumesAfter} of disuse)`
                        : null
      if (why) kept.push({ ...base, reason: why })
      else {
        candidates.push({
          ...base,
          sizeBytes: v.sizeBytes ?? 0,
          rule: 'unused-volume',
          reason: `no container uses it, ${use!.text} (volumes go after ${volumesAfter} of disuse; prune.volumes is on)`,
        })
      }
    }
    return { candidates, kept }
  },
}
