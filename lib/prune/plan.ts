/**
 * The prune planner: inventory + policy + now → what goes and why, and what a rule matched but
 * stays (and why). Pure and deterministic (sorted output); execute.ts carries the plan out.
 *
 * A pipeline over the rules of lib/prune/rules/ (one module each, listed in rules/index.ts): the
 * container rules, the images' facts (guards: held by a `shipshape-hold-` tag, pinned by an
 * unfinished run, in use by a container that stays, protected by protect.images or
 * protect.labels), the image rules, the parent/child pass, the later rules (disk-pressure last),
 * then the plan sorted with its totals.
 */
import { cmp, planContext, type PlanContext } from './context.js'
import { imageFacts, type ImageSet } from './facts.js'
import { keepParents } from './parents.js'
import { bytesOf } from './rules/disk-pressure.js'
import { CONTAINER_RULES, IMAGE_RULES, LATER_RULES, RULE_RANK } from './rules/index.js'
import type { Draft, Rule } from './rules/types.js'
import {
  CANDIDATE_KINDS,
  type Candidate,
  type Keep,
  type PruneInventory,
  type PrunePlan,
  type PrunePolicy,
} from './types.js'

const NO_IMAGES: ImageSet = { all: [], byId: new Map(), children: new Map() }

export function planPrune(inv: PruneInventory, policy: PrunePolicy, now: Date): PrunePlan {
  const ctx = planContext(inv, policy, now)
  let draft = runRules(CONTAINER_RULES, ctx, NO_IMAGES, { candidates: [], kept: [] })
  const images = imageFacts(ctx, draft.candidates)
  draft = runRules(IMAGE_RULES, ctx, images, draft)
  draft = keepParents(images, draft)
  draft = runRules(LATER_RULES, ctx, images, draft)
  return finish(ctx, draft)
}

/** Each rule in turn over the draft: its candidates and keeps added, what it withdraws taken out. */
function runRules(rules: readonly Rule[], ctx: PlanContext, images: ImageSet, draft: Draft): Draft {
  const candidates = [...draft.candidates]
  const kept = [...draft.kept]
  for (const rule of rules) {
    const out = rule.select({ ctx, images, draft: { candidates, kept } })
    if (out.withdrawn?.length) {
      const gone = new Set(out.withdrawn)
      for (let i = candidates.length - 1; i >= 0; i--)
        if (gone.has(candidates[i]!)) candidates.splice(i, 1)
    }
    candidates.push(...out.candidates)
    kept.push(...out.kept)
  }
  return { candidates, kept }
}

/** The plan: candidates by rule order, kept by kind, each then by name and id; totals; disk. */
function finish(ctx: PlanContext, draft: Draft): PrunePlan {
  const rank = (c: Candidate) => RULE_RANK.get(c.rule) ?? 0
  const kind = (k: Keep) => CANDIDATE_KINDS.indexOf(k.kind)
  const candidates = [...draft.candidates].sort(
    (a, b) => rank(a) - rank(b) || cmp(a.name, b.name) || cmp(a.id, b.id),
  )
  const kept = [...draft.kept].sort(
    (a, b) => kind(a) - kind(b) || cmp(a.name, b.name) || cmp(a.id, b.id),
  )
  const disk = ctx.inv.disk
  return {
    candidates,
    kept,
    totals: totalsOf(candidates),
    // the build-cache rule prunes down to the keep-storage
    buildCacheKeepBytes: candidates.some((c) => c.kind === 'build-cache')
      ? ctx.policy.buildCacheKeep
      : null,
    disk: disk && {
      usedBytes: disk.usedBytes,
      totalBytes: disk.totalBytes,
      projectedBytes: Math.max(0, disk.usedBytes - bytesOf(candidates)),
    },
  }
}

/** Count and bytes of candidates, in all and per kind. */
export function totalsOf(candidates: Candidate[]): PrunePlan['totals'] {
  const byKind: PrunePlan['totals']['byKind'] = {}
  for (const c of candidates) {
    const k = (byKind[c.kind] ??= { count: 0, bytes: 0 })
    k.count++
    k.bytes += c.sizeBytes
  }
  return {
    count: candidates.length,
    bytes: bytesOf(candidates),
    byKind,
  }
}
