/**
 * `shipshape prune`: inventory (inventory.ts) → plan (plan.ts, pure) → shown; applied only with
 * --yes or prune.apply: true (and never with --dry-run), under the host lock, the plan recorded
 * before the first removal (execute.ts). The result is one JSON shape: shipshape.prune/1.
 * Applying refuses (exit 4) a stateDir or backupDir another user could write (lib/host/private.ts):
 * kept originals are removed as root on the word of records found in backupDir.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { UsageError } from '../errors.js'
import type { Output } from '../cli/output.js'
import type { Config } from '../config/index.js'
import type { Engine } from '../docker/engine.js'
import { mkdirDurable, writeFileDurable } from '../host/durable.js'
import { acquireLock } from '../host/lock.js'
import { unansweredMounts } from '../assets/finalize.js'
import { checkStateDirs } from '../host/private.js'
import { stampOf } from '../shared/stamp.js'
import { executePlan, type RemovalResult } from './execute.js'
import { engineBytes, engineDisk, gatherPruneInventory } from './inventory.js'
import { planPrune, totalsOf } from './plan.js'
import {
  CANDIDATE_KINDS,
  type Candidate,
  type Keep,
  type PruneInventory,
  type PrunePlan,
} from './types.js'
import type { DiskUsage } from '../docker/types.js'

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

/** A saved plan (prune --plan-out): what --apply may remove, at most. */
export interface SavedPlan {
  file: string
  generatedAt: string
  candidates: Candidate[]
}

const planKey = (c: Pick<Candidate, 'kind' | 'id' | 'name'>) =>
  `${c.kind}\0${c.id}\0${c.kind === 'tag' ? c.name : ''}`

/** Reads a plan `prune --plan-out` wrote; anything else is a usage error (exit 2). */
export async function readSavedPlan(file: string): Promise<SavedPlan> {
  let doc: unknown
  try {
    doc = JSON.parse(await readFile(file, 'utf8'))
  } catch (err) {
    throw new UsageError(
      `${file}: not a saved prune plan (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    )
  }
  const d = doc as Partial<PruneResult> | null
  const kinds = new Set<string>(CANDIDATE_KINDS)
  const ok =
    d?.schema === PRUNE_SCHEMA &&
    typeof d.generatedAt === 'string' &&
    Array.isArray(d.candidates) &&
    d.candidates.every(
      (c) =>
        c &&
        kinds.has(c.kind) &&
        typeof c.id === 'string' &&
        typeof c.name === 'string' &&
        typeof c.sizeBytes === 'number',
    )
  if (!ok || d.applied) {
    throw new UsageError(
      `${file}: not a saved prune plan (write one with \`shipshape prune --plan-out FILE\`)`,
    )
  }
  return { file, generatedAt: d.generatedAt!, candidates: d.candidates! }
}

/**
 * Pure: the saved plan against the plan made now. Only what both say goes; a saved item the
 * current plan does not take stays, with why (gone, now in use, newly protected, …).
 */
export function recheckSavedPlan(
  saved: SavedPlan,
  now: PrunePlan,
  present: (c: Candidate) => boolean,
): { go: Candidate[]; stay: Keep[]; notSaved: number } {
  const current = new Map(now.candidates.map((c) => [planKey(c), c]))
  const keptNow = new Map(now.kept.map((k) => [planKey(k), k]))
  const go: Candidate[] = []
  const stay: Keep[] = []
  const savedKeys = new Set<string>()
  for (const c of saved.candidates) {
    const key = planKey(c)
    savedKeys.add(key)
    const cur = current.get(key)
    const sameTags =
      c.kind !== 'image' || JSON.stringify(cur?.tags ?? []) === JSON.stringify(c.tags ?? [])
    if (cur && sameTags) {
      go.push(cur)
      continue
    }
    if (cur) {
      stay.push({
        kind: c.kind,
        name: c.name,
        id: c.id,
        reason: `in ${saved.file}, kept: its tags changed since the plan (now ${(cur.tags ?? []).join(', ') || 'none'})`,
      })
      continue
    }
    const why = !present(c)
      ? 'gone since the plan was made'
      : (keptNow.get(key)?.reason ?? 'the current policy no longer removes it')
    stay.push({ kind: c.kind, name: c.name, id: c.id, reason: `in ${saved.file}, kept: ${why}` })
  }
  const notSaved = now.candidates.filter((c) => !savedKeys.has(planKey(c))).length
  return { go, stay, notSaved }
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
  // the lock first when applying: the plan must not change under a running rebuild or migration
  const lock = apply
    ? await acquireLock({ stateDir: config.stateDir, operation: 'prune', warn, now: () => now })
    : null
  try {
    const { inventory, usage, plan } = await planNow(ctx, now, apply, warn)
    if (opts.applyFile) await narrowToSavedPlan(plan, inventory, opts.applyFile, warn)
    const result = plannedResult(plan, inventory, config, now, opts, warnings)
    if (opts.planOut) {
      await mkdirDurable(path.dirname(path.resolve(opts.planOut)), 0o700)
      await writeFileDurable(opts.planOut, JSON.stringify(result, null, 2) + '\n', { mode: 0o600 })
    }
    if (!apply || !plan.candidates.length) return result
    // a person is asked, even when prune.apply (the timer's setting) says yes
    if (!opts.yes && (opts.applyFile || opts.interactive) && opts.confirm) {
      if (!(await opts.confirm(result))) {
        result.outcome = 'cancelled'
        return result
      }
    }
    return await applyPlan(ctx, plan, usage, now, result)
  } finally {
    await lock?.release()
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
): Promise<{ inventory: PruneInventory; usage: DiskUsage; plan: PrunePlan }> {
  const spinner = out.spinner('Reading the engine’s images, containers, volumes, build cache…')
  // a hung mount under a kept original: warned of here, its originals kept (not a hang)
  await unansweredMounts(config.backupDir, Object.keys(config.assets), warn)
  const { inventory, usage } = await gatherPruneInventory(engine, config, now, warn, { apply })
  spinner.stop()
  return { inventory, usage, plan: planPrune(inventory, config.prune, now) }
}

/** --apply FILE: only what the saved plan and the plan made now both say goes. */
async function narrowToSavedPlan(
  plan: PrunePlan,
  inventory: PruneInventory,
  file: string,
  warn: (w: string) => void,
): Promise<void> {
  const saved = await readSavedPlan(file)
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
  plan: PrunePlan,
  inventory: PruneInventory,
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

/** The removals: the record written first (state started), then each removal, then the record again. */
async function applyPlan(
  { config, engine, out }: PruneCtx,
  plan: PrunePlan,
  usage: DiskUsage,
  now: Date,
  result: PruneResult,
): Promise<PruneResult> {
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
  result.freedFilesBytes = result.candidates
    .filter((c) => (c.kind === 'original' || c.kind === 'archive') && c.status === 'removed')
    .reduce((a, c) => a + c.sizeBytes, 0)
  result.disk.after = (await engineDisk(engine))?.usedBytes ?? null
  result.outcome = result.failures.length ? 'partial' : 'pruned'
  await writeRecord(record, { ...result, state: 'finished' })
  return result
}
