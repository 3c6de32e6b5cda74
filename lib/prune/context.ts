/**
 * What every prune rule reads besides the plan so far (pure): the inventory, the policy, the time,
 * and the protections — protect.labels, protect.images and the pins of unfinished runs — asked
 * once per thing by the rule that matches it.
 */
import { formatDuration } from '../config/units.js'
import { familiar, globRegExp, labelMatches } from './refs.js'
import type { PruneContainer, PruneInventory, PrunePolicy } from './types.js'

export interface PlanContext {
  inv: PruneInventory
  policy: PrunePolicy
  /** now, in ms since the epoch */
  t: number
  /** '3d 2h ago' for a time in ms */
  ago(at: number): string
  /** the first protect.labels entry these labels match, or null */
  protectLabel(labels: Record<string, string>): string | null
  /** the first protect.images pattern one of these references matches, or null */
  protectGlob(refs: readonly string[]): string | null
  /** why an unfinished run (or the last rollback) still needs one of these values, or null */
  pinOf(values: readonly string[]): string | null
}

export function planContext(inv: PruneInventory, policy: PrunePolicy, now: Date): PlanContext {
  const t = now.getTime()
  const globs = policy.protect.images.map((g) => ({ g, re: globRegExp(g) }))
  // what unfinished runs (and the last rollbacks) name: never pruned; the first pin names it
  const pinReason = new Map<string, string>()
  for (const p of inv.pins)
    for (const v of p.values) if (!pinReason.has(v)) pinReason.set(v, p.reason)
  return {
    inv,
    policy,
    t,
    ago: (at) => `${formatDuration(Math.max(0, t - at))} ago`,
    protectLabel: (labels) => policy.protect.labels.find((l) => labelMatches(labels, l)) ?? null,
    protectGlob: (refs) =>
      globs.find(({ re }) => refs.some((r) => re.test(familiar(r))))?.g ?? null,
    pinOf: (values) => {
      for (const v of values) {
        const r = pinReason.get(v)
        if (r !== undefined) return r
      }
      return null
    },
  }
}

// --- small pure helpers the rules share --------------------------------------------------------

export const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** ms since the epoch, null for a missing, unparseable or zero ('0001-01-01…') time */
export function timeOf(s: string | null | undefined): number | null {
  if (!s) return null
  const v = Date.parse(s)
  return Number.isFinite(v) && v > 0 ? v : null
}

export const pct = (x: number): string => `${Number((x * 100).toFixed(1))}%`
export const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`
export const ordinal = (n: number): string => {
  const s = n % 100 >= 11 && n % 100 <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th')
  return `${n}${s}`
}

export const containerName = (c: PruneContainer): string => c.name.replace(/^\//, '')

/** containers sorted by name (the order reasons name them in) */
export const byName = (cs: readonly PruneContainer[]): PruneContainer[] =>
  [...cs].sort((a, b) => cmp(containerName(a), containerName(b)))

/** 'a (exited), b (exited), c (exited) and 2 more' */
export function names(cs: PruneContainer[], withState: boolean): string {
  const shown = cs
    .slice(0, 3)
    .map((c) => (withState ? `${containerName(c)} (${c.state})` : containerName(c)))
  return shown.join(', ') + (cs.length > 3 ? ` and ${cs.length - 3} more` : '')
}
