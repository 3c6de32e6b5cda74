/**
 * prune's runbook: one step, the removals. The runner (lib/runbook/runner.ts) decides the rest:
 * dry-run, the confirmation, the host lock, the journal, the signals. A removal cannot be undone,
 * so the step has no undo; one that fails is recorded and the rest go on (execute.ts). The record
 * (<stateDir>/prune/prune-<stamp>.json) is written before the first removal; its path is noted in
 * the journal first.
 *
 * An unfinished prune journal (a crash mid-way) is finished by the next applying prune: it plans
 * again from what is there, so the step runs again with the new plan (verify: every candidate of
 * this plan has a result).
 */
import path from 'node:path'
import type { Config } from '../config/index.js'
import type { Engine } from '../docker/engine.js'
import type { DiskUsage } from '../docker/types.js'
import type { Step } from '../runbook/index.js'
import { stampOf } from '../shared/stamp.js'
import { executePlan, type RemovalResult } from './execute.js'
import type { PruneResult } from './result.js'
import type { Candidate, PrunePlan } from './types.js'

export interface PruneRun {
  config: Config
  engine: Engine
  now: Date
  /** the plan the step carries out (after the recheck under the lock) */
  plan: PrunePlan
  /** the engine's accounting when the plan was made (for reclaimed bytes) */
  usage: DiskUsage
  /** the result as planned; the step adds the record path */
  result: PruneResult
  results: Map<Candidate, RemovalResult>
  /** set at the first SIGINT/SIGTERM: the removals not begun are left (not removed: interrupted) */
  stopping: boolean
  /** writes a record file (0600, durable) */
  writeRecord(file: string, data: unknown): Promise<void>
  /** each removal's result as it comes (progress) */
  onResult?: (c: Candidate, r: RemovalResult, done: number) => void
}

export const removeStep: Step<PruneRun> = {
  id: 'remove',
  title: 'Remove what the plan names',
  preview: (ctx) => ctx.plan.candidates.map((c) => `${c.kind} ${c.name}`),
  async run(ctx, journal) {
    // a new record for this plan (a run taken over keeps the record of what it had begun)
    const record = path.join(ctx.config.stateDir, 'prune', `prune-${stampOf(ctx.now)}.json`)
    await journal.note({ record })
    ctx.result.record = record
    await ctx.writeRecord(record, { ...ctx.result, state: 'started' })
    let done = 0
    const results = await executePlan(ctx.engine, ctx.plan.candidates, {
      config: ctx.config,
      now: ctx.now,
      buildCacheKeepBytes: ctx.plan.buildCacheKeepBytes,
      stop: () => ctx.stopping,
      onResult: (c, r) => ctx.onResult?.(c, r, ++done),
    })
    for (const [c, r] of results) ctx.results.set(c, r)
  },
  // read-only: the removals of this plan all have a result (failures included: they are final)
  verify: async (ctx) => ctx.plan.candidates.every((c) => ctx.results.has(c)),
}

export const pruneSteps = (): Step<PruneRun>[] => [removeStep]
