/**
 * A prune rule: a pure function from the inventory, the policy and the plan so far to what it
 * takes (candidates) and what it matched but leaves (kept, with why). lib/prune/rules/index.ts
 * lists them in the order they run; plan.ts runs them.
 */
import type { PlanContext } from '../context.js'
import type { ImageSet } from '../facts.js'
import type { Candidate, CandidateKind, Keep, PruneRule } from '../types.js'

/** The plan so far: what the rules before this one took and kept. */
export interface Draft {
  candidates: readonly Candidate[]
  kept: readonly Keep[]
}

export interface RuleInput {
  ctx: PlanContext
  /** the images' facts (empty for the container rules, which run before they are gathered) */
  images: ImageSet
  draft: Draft
}

export interface RuleOutput {
  candidates: Candidate[]
  kept: Keep[]
  /** candidates of earlier rules this one replaces (disk-pressure: the untags of an image it takes) */
  withdrawn?: Candidate[]
}

export interface Rule {
  id: PruneRule
  /** where its candidates are listed in the plan: by this order, then name, then id */
  order: number
  /** what its candidates are */
  kinds: readonly CandidateKind[]
  select(input: RuleInput): RuleOutput
}
