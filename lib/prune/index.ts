/**
 * `shipshape prune`: inventory (inventory.ts) → plan (plan.ts, pure) → shown; applied only with
 * --yes or prune.apply: true (and never with --dry-run), under the host lock, the plan recorded
 * before the first removal (execute.ts). The result is one JSON shape: shipshape.prune/1.
 * Applying refuses (exit 4) a stateDir or backupDir another user could write (lib/host/private.ts):
 * kept originals are removed as root on the word of records found in backupDir.
 */
import path from 'node:path'
import type { Output } from '../cli/output.js'
import type { Config } from '../config/index.js'
import type { Engine } from '../docker/engine.js'
import { mkdirDurable, writeFileDurable } from '../host/durable.js'
import { acquireLock } from '../host/lock.js'
import { unansweredMounts } from '../assets/finalize.js'
import { checkStateDirs } from '../host/private.js'
import { stampOf } from '../assets/context.js'
import { executePlan, type RemovalResult } from './execute.js'
import { engineBytes, engineDisk, gatherPruneInventory } from './inventory.js'
import { planPrune } from './plan.js'
import type { Candidate, Keep, PrunePlan } from './types.js'

export const PRUNE_SCHEMA = 'shipshape.prune/1'

export interface PruneResult {
  schema: typeof PRUNE_SCHEMA
  generatedAt: string
  /** planned: a dry run · pruned: every removal done · partial: some failed · nothing-to-do */
  outcome: 'planned' | 'pruned' | 'partial' | 'nothing-to-do'
  applied: boolean
  candidates: (Candidate & { status?: RemovalResult['status']; error?: string })[]
  kept: Keep[]
  totals: PrunePlan['totals']
  /** the engine's own accounting (layers + writable layers + volumes + build cache), before − after */
  reclaimedBytes: number | null
  /** the engine disk's used bytes, before and after (statfs; other writers move it too) */
  disk: {
    before: number | null
    after: number | null
    totalBytes: number | null
    threshold: number
  }
  failures: { kind: string; name: string; error: string }[]
  record: string | null
  warnings: string[]
}

export interface PruneOptions {
  yes?: boolean
  dryRun?: boolean
  now?: () => Date
}

async function writeRecord(file: string, data: unknown): Promise<void> {
  await mkdirDurable(path.dirname(file), 0o700)
  await writeFileDurable(file, JSON.stringify(data, null, 2) + '\n', { mode: 0o600 })
}

/** Whether this run removes things: --yes or prune.apply, never with --dry-run. */
export function pruneApplies(config: Config, opts: Pick<PruneOptions, 'yes' | 'dryRun'>): boolean {
  return !opts.dryRun && Boolean(opts.yes || config.prune.apply)
}

export async function runPrune(
  ctx: { config: Config; engine: Engine; out: Output },
  opts: PruneOptions = {},
): Promise<PruneResult> {
  const { config, engine, out } = ctx
  const now = (opts.now ?? (() => new Date()))()
  const apply = pruneApplies(config, opts)
  const warnings: string[] = []
  const warn = (w: string) => {
    warnings.push(w)
    out.warn(w)
  }
  if (apply) {
    await checkStateDirs(config)
  } else {
    // a dry run acts on nothing: it says what a real run would refuse
    await checkStateDirs(config).catch((e: Error & { remedy?: string }) =>
      warn(`a real run would be refused: ${e.message}${e.remedy ? ` (fix: ${e.remedy})` : ''}`),
    )
  }
  // the lock first when applying: the plan must not change under a running rebuild or migration
  const lock = apply
    ? await acquireLock({ stateDir: config.stateDir, operation: 'prune', warn, now: () => now })
    : null
  try {
    const spinner = out.spinner('Reading the engine’s images, containers, volumes, build cache…')
    // a hung mount under a kept original: warned of here, its originals kept (not a hang)
    await unansweredMounts(config.backupDir, Object.keys(config.assets), warn)
    const { inventory, usage } = await gatherPruneInventory(engine, config, now, warn)
    spinner.stop()
    const plan = planPrune(inventory, config.prune, now)
    const result: PruneResult = {
      schema: PRUNE_SCHEMA,
      generatedAt: now.toISOString(),
      outcome: plan.candidates.length ? 'planned' : 'nothing-to-do',
      applied: false,
      candidates: plan.candidates.map((c) => ({ ...c })),
      kept: plan.kept,
      totals: plan.totals,
      reclaimedBytes: null,
      disk: {
        before: inventory.disk?.usedBytes ?? null,
        after: null,
        totalBytes: inventory.disk?.totalBytes ?? null,
        threshold: config.prune.diskThreshold,
      },
      failures: [],
      record: null,
      warnings,
    }
    if (!apply || !plan.candidates.length) return result

    const record = path.join(config.stateDir, 'prune', `prune-${stampOf(now)}.json`)
    result.record = record
    await writeRecord(record, { ...result, state: 'started' })
    const bar = out.spinner(`Removing ${plan.candidates.length} things…`)
    let done = 0
    const results = await executePlan(engine, plan.candidates, {
      config,
      now,
      buildCacheKeepBytes: plan.buildCacheKeepBytes,
      onResult: (c, r) => {
        done++
        bar.update(`Removing: ${done}/${plan.candidates.length} (${c.kind} ${c.name}: ${r.status})`)
      },
    })
    bar.stop()
    result.applied = true
    result.candidates = plan.candidates.map((c) => {
      const r = results.get(c)
      return { ...c, status: r?.status ?? 'failed', ...(r?.error ? { error: r.error } : {}) }
    })
    result.failures = result.candidates
      .filter((c) => c.status === 'failed')
      .map((c) => ({ kind: c.kind, name: c.name, error: c.error ?? 'failed' }))
    const after = await engine.diskUsage()
    result.reclaimedBytes = Math.max(0, engineBytes(usage) - engineBytes(after))
    result.disk.after = (await engineDisk(engine))?.usedBytes ?? null
    result.outcome = result.failures.length ? 'partial' : 'pruned'
    await writeRecord(record, { ...result, state: 'finished' })
    return result
  } finally {
    await lock?.release()
  }
}
