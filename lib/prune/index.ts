/**
 * `shipshape prune`: inventory (inventory.ts) → plan (plan.ts, pure) → shown; applied only with
 * --yes, --apply FILE or prune.apply: true (never with --dry-run or --plan-out). The applying run
 * is a runbook (steps.ts) run by lib/runbook/runner.ts: the runner decides dry-run, asks, takes
 * the host lock, and under it the plan is made again and only what both plans say goes (the saved
 * plan check, saved.ts); the record is written before the first removal. The result is one JSON
 * shape: shipshape.prune/1 (result.ts).
 * Applying refuses (exit 4) a stateDir or backupDir another user could write (lib/host/private.ts):
 * kept originals are removed as root on the word of records found in backupDir.
 */
import path from 'node:path'
import type { Output } from '../cli/output.js'
import type { Config } from '../config/index.js'
import type { Engine } from '../docker/engine.js'
import type { DiskUsage } from '../docker/types.js'
import { mkdirDurable, writeFileDurable } from '../host/durable.js'
import { unansweredMounts } from '../assets/finalize.js'
import { checkStateDirs } from '../host/private.js'
import { runRunbook } from '../runbook/index.js'
import { engineBytes, engineDisk, gatherPruneInventory } from './inventory.js'
import { planPrune, totalsOf } from './plan.js'
import { PRUNE_SCHEMA, type PruneResult } from './result.js'
import { readSavedPlan, recheckSavedPlan, type SavedPlan } from './saved.js'
import { pruneSteps, type PruneRun } from './steps.js'
import type { PruneInventory, PrunePlan } from './types.js'

export { PRUNE_SCHEMA, type PruneResult } from './result.js'
export { readSavedPlan, recheckSavedPlan, type SavedPlan } from './saved.js'

export interface PruneOptions {
  yes?: boolean
  dryRun?: boolean
  now?: () => Date
  /** a person at a terminal: prune.apply (the timer's setting) does not remove without asking */
  interactive?: boolean
  /** shows the plan and asks; true: go on (needed when a person runs --apply or prune.apply) */
  confirm?: (planned: PruneResult) => Promise<boolean>
  /** write the plan here (0600) and remove nothing */
  planOut?: string
  /** remove exactly this saved plan (--plan-out), each item checked again first */
  applyFile?: string
}

async function writeRecord(file: string, data: unknown): Promise<void> {
  await mkdirDurable(path.dirname(file), 0o700)
  await writeFileDurable(file, JSON.stringify(data, null, 2) + '\n', { mode: 0o600 })
}

/**
 * Whether this run means to remove things: --yes, --apply FILE or prune.apply; never with
 * --dry-run or --plan-out. (A person at a terminal is still asked, unless --yes.)
 */
export function pruneApplies(
  config: Config,
  opts: Pick<PruneOptions, 'yes' | 'dryRun' | 'planOut' | 'applyFile'>,
): boolean {
  if (opts.dryRun || opts.planOut) return false
  return Boolean(opts.yes || opts.applyFile || config.prune.apply)
}

type PruneCtx = { config: Config; engine: Engine; out: Output }

interface Planned {
  inventory: PruneInventory
  usage: DiskUsage
  plan: PrunePlan
}

export async function runPrune(ctx: PruneCtx, opts: PruneOptions = {}): Promise<PruneResult> {
  const { config, out } = ctx
  const now = (opts.now ?? (() => new Date()))()
  const apply = pruneApplies(config, opts)
  const warnings: string[] = []
  const warn = (w: string) => {
    warnings.push(w)
    out.warn(w)
  }
  await checkDirs(config, apply, warn)
  const saved = opts.applyFile ? await readSavedPlan(opts.applyFile) : undefined
  const plan = async (): Promise<Planned> => {
    const p = await planNow(ctx, now, apply, warn)
    if (saved) narrow(p, saved, warn)
    return p
  }
  let shown: PruneResult | undefined
  const run = await runRunbook<PruneRun, PruneResult>({
    operation: 'prune',
    stateDir: config.stateDir,
    out,
    now: () => now,
    // the one place dry-run is decided: a run that does not apply stops after the plan
    dryRun: !apply,
    // the timer's prune.apply, with no person to ask; a person at a terminal is asked
    yes: opts.yes || (!opts.interactive && !opts.applyFile && config.prune.apply),
    showPlan: false,
    takeOverUnfinished: true,
    steps: pruneSteps(),
    confirm: async () => (opts.confirm ? opts.confirm(shown!) : false),
    makeContext: async (prior) => {
      const p = await plan()
      shown = plannedResult(p, config, now, opts, warnings)
      if (opts.planOut) await writeRecord(path.resolve(opts.planOut), shown)
      // nothing to remove and no unfinished run to close: no run at all
      if (!apply || (!p.plan.candidates.length && !prior)) return { stop: shown }
      return { ctx: runContext(ctx, now, p, shown) }
    },
    // under the lock: what the person saw, planned again; only what both plans say goes
    recheck: async (run) => {
      const p = await plan()
      narrow(p, { file: 'the plan shown', generatedAt: '', candidates: run.plan.candidates }, warn)
      Object.assign(run, runContext(ctx, now, p, plannedResult(p, config, now, opts, warnings)))
    },
    interrupt: (run) => {
      run.stopping = true
    },
  })
  if ('stopped' in run) return run.stopped
  return finishRun(ctx, run.ctx, run.summary.outcome, run.failure)
}

function runContext(ctx: PruneCtx, now: Date, p: Planned, result: PruneResult): PruneRun {
  return {
    config: ctx.config,
    engine: ctx.engine,
    now,
    plan: p.plan,
    usage: p.usage,
    result,
    results: new Map(),
    stopping: false,
    writeRecord,
  }
}

/** A real run refuses private dirs another user could write; a dry run only says it would. */
async function checkDirs(config: Config, apply: boolean, warn: (w: string) => void) {
  if (apply) return checkStateDirs(config)
  // a dry run acts on nothing: it says what a real run would refuse
  await checkStateDirs(config).catch((e: Error & { remedy?: string }) =>
    warn(`a real run would be refused: ${e.message}${e.remedy ? ` (fix: ${e.remedy})` : ''}`),
  )
}

async function planNow(
  { config, engine, out }: PruneCtx,
  now: Date,
  apply: boolean,
  warn: (w: string) => void,
): Promise<Planned> {
  const spinner = out.spinner('Reading the engine’s images, containers, volumes, build cache…')
  try {
    // a hung mount under a kept original: warned of here, its originals kept (not a hang)
    await unansweredMounts(config.backupDir, Object.keys(config.assets), warn)
    const { inventory, usage } = await gatherPruneInventory(engine, config, now, warn, { apply })
    return { inventory, usage, plan: planPrune(inventory, config.prune, now) }
  } finally {
    spinner.stop()
  }
}

/** Only what the saved plan (--apply FILE, or the plan shown) and the plan made now both say goes. */
function narrow({ plan, inventory }: Planned, saved: SavedPlan, warn: (w: string) => void): void {
  const ids = new Set([
    ...inventory.images.map((i) => i.id),
    ...inventory.containers.map((c) => c.id),
    ...inventory.volumes.map((v) => v.name),
    ...inventory.originals.map((o) => o.path),
    ...inventory.archives.map((a) => a.workDir),
  ])
  const tags = new Set(inventory.images.flatMap((i) => i.tags))
  const r = recheckSavedPlan(saved, plan, (c) =>
    c.kind === 'build-cache' ? true : c.kind === 'tag' ? tags.has(c.name) : ids.has(c.id),
  )
  if (r.notSaved)
    warn(
      `${r.notSaved} more thing(s) the current policy would remove are not in ${saved.file}: not removed (plan again to see them)`,
    )
  plan.candidates = r.go
  plan.kept = [...r.stay, ...plan.kept]
  plan.totals = totalsOf(r.go)
}

function plannedResult(
  { plan, inventory }: Planned,
  config: Config,
  now: Date,
  opts: PruneOptions,
  warnings: string[],
): PruneResult {
  return {
    schema: PRUNE_SCHEMA,
    generatedAt: now.toISOString(),
    outcome: plan.candidates.length ? 'planned' : 'nothing-to-do',
    applied: false,
    candidates: plan.candidates.map((c) => ({ ...c })),
    kept: plan.kept,
    totals: plan.totals,
    reclaimedBytes: null,
    freedFilesBytes: null,
    disk: {
      before: inventory.disk?.usedBytes ?? null,
      after: null,
      totalBytes: inventory.disk?.totalBytes ?? null,
      threshold: config.prune.diskThreshold,
    },
    failures: [],
    record: null,
    planFile: opts.planOut ?? opts.applyFile ?? null,
    warnings,
  }
}

/** After the run: each removal's result, what the engine and the disk say was freed, the record. */
async function finishRun(
  { engine }: PruneCtx,
  run: PruneRun,
  outcome: string,
  failure: Error | undefined,
): Promise<PruneResult> {
  const result = run.result
  if (outcome === 'cancelled') return { ...result, outcome: 'cancelled' }
  result.applied = true
  result.candidates = run.plan.candidates.map((c) => {
    const r = run.results.get(c)
    return {
      ...c,
      status: r?.status ?? 'failed',
      ...(r ? (r.error ? { error: r.error } : {}) : { error: 'not removed: the run stopped' }),
    }
  })
  result.failures = result.candidates
    .filter((c) => c.status === 'failed')
    .map((c) => ({ kind: c.kind, name: c.name, error: c.error ?? 'failed' }))
  if (failure) result.warnings.push(failure.message)
  const after = await engine.diskUsage()
  result.reclaimedBytes = Math.max(0, engineBytes(run.usage) - engineBytes(after))
  result.freedFilesBytes = result.candidates
    .filter((c) => (c.kind === 'original' || c.kind === 'archive') && c.status === 'removed')
    .reduce((a, c) => a + c.sizeBytes, 0)
  result.disk.after = (await engineDisk(engine))?.usedBytes ?? null
  result.outcome = result.failures.length || failure ? 'partial' : 'pruned'
  if (result.record) await writeRecord(result.record, { ...result, state: 'finished' })
  return result
}
