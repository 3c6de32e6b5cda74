/**
 * The one JSON shape of `shipshape prune` (shipshape.prune/1): the plan, and once applied what
 * each removal did and what the engine and the disk say was freed.
 */
import type { RemovalResult } from './execute.js'
import type { Candidate, Keep, PrunePlan } from './types.js'

export const PRUNE_SCHEMA = 'shipshape.prune/1'

export interface PruneResult {
  schema: typeof PRUNE_SCHEMA
  generatedAt: string
  /**
   * planned: a dry run (or --plan-out) · pruned: every removal done · partial: some failed ·
   * nothing-to-do · cancelled: the person said no
   */
  outcome: 'planned' | 'pruned' | 'partial' | 'nothing-to-do' | 'cancelled'
  applied: boolean
  candidates: (Candidate & { status?: RemovalResult['status']; error?: string })[]
  kept: Keep[]
  totals: PrunePlan['totals']
  /** the engine's own accounting (layers + writable layers + volumes + build cache), before − after */
  reclaimedBytes: number | null
  /** files outside the engine removed from this host: kept originals, local backup archives */
  freedFilesBytes: number | null
  /** the engine disk's used bytes, before and after (statfs; other writers move it too) */
  disk: {
    before: number | null
    after: number | null
    totalBytes: number | null
    threshold: number
  }
  failures: { kind: string; name: string; error: string }[]
  record: string | null
  /** --plan-out: where the plan was written; --apply: the saved plan carried out */
  planFile: string | null
  warnings: string[]
}
