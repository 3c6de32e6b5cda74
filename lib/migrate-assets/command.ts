/**
 * What `migrate-assets NAME` and `migrate-assets NAME --revert` share around their runbooks: the
 * result shape (shipshape.migrate-assets/1), the refusal of a run whose config changed under it,
 * the refusal with every reason at once, the progress bar, and the run itself (the result of a
 * rolled-back or stopped run carried on its error).
 */
import type { Output } from '../cli/output.js'
import { formatBytes, type AssetConfig, type Config } from '../config/index.js'
import { findConfigured } from '../config/services.js'
import { RefusedError } from '../errors.js'
import type { RunSummary, Step } from '../runbook/index.js'
import { openRun, type RunSession } from '../runbook/runner.js'
import { priorPathsChanged, type PriorNotes } from './plan.js'
import type { Refusal } from '../shared/refusal.js'
import type { RevertInfo } from './revert.js'
import { nodeAssetPorts, type AssetPorts } from '../assets/ports.js'

export const MIGRATE_SCHEMA = 'shipshape.migrate-assets/1'
export const MIGRATE_OPERATION = 'migrate-assets'

export interface MigrateResult {
  schema: typeof MIGRATE_SCHEMA
  asset: string
  source: string
  dest: string
  outcome:
    | 'migrated'
    | 'already-migrated'
    | 'dry-run'
    | 'cancelled'
    | 'refused'
    | 'rolled-back'
    | 'needs-person'
    | 'finalized'
    | 'nothing-to-finalize'
    | 'reverted'
  files: number
  bytes: number
  backup: {
    dir: string
    archive: string | null
    compression: string | null
    archiveBytes: number | null
  } | null
  verified: { files: number; by: string; uploadWaitMs: number | null } | null
  /** where the original directory is when it is not at source; keepUntil: migrated runs only */
  original: { path: string; keepUntil: string | null } | null
  containers: string[]
  warnings: string[]
  journal: string | null
  steps: RunSummary['steps']
  /** --finalize: originals removed, and the ones that stay with why */
  finalize?: { removed: string[]; kept: { original: string; why: string }[] }
  /** --revert: where the bytes came back from, what was checked, and the copy on the mount */
  revert?: RevertInfo
  /** outcome 'refused': every check that said no, with its fix */
  refusals?: Refusal[]
  error?: string
}

export function findAsset(config: Config, name: string): AssetConfig {
  return findConfigured(config, 'assets', name)
}

/** The result before anything ran (outcome dry-run, nothing counted). */
export function baseResult(name: string, asset: AssetConfig): MigrateResult {
  return {
    schema: MIGRATE_SCHEMA,
    asset: name,
    source: asset.source,
    dest: asset.dest,
    outcome: 'dry-run',
    files: 0,
    bytes: 0,
    backup: null,
    verified: null,
    original: null,
    containers: [],
    warnings: [],
    journal: null,
    steps: [],
  }
}

export function progressOf(out: Output) {
  return (label: string, total: number) => {
    const spinner = out.spinner(`${label}…`)
    let last = 0
    const t0 = Date.now()
    return {
      tick(bytes: number) {
        const now = Date.now()
        if (now - last < 100) return
        last = now
        const pct = total > 0 ? ` ${Math.min(100, Math.floor((bytes / total) * 100))}%` : ''
        const rate = now > t0 ? ` ${formatBytes(Math.round((bytes / (now - t0)) * 1000))}/s` : ''
        spinner.update(`${label}${pct} ${formatBytes(bytes)} of ${formatBytes(total)}${rate}`)
      },
      done() {
        spinner.stop()
      },
    }
  }
}

/** Every refusal at once, nothing changed (exit 4); `result` rides on the error for --json. */
function refusedError(command: string, refusals: Refusal[], result: MigrateResult): Error {
  const lines = refusals.map((r) => `${r.message}${r.remedy ? ` (fix: ${r.remedy})` : ''}`)
  const err = new RefusedError(
    lines.length === 1
      ? `${command} refused: ${lines[0]}`
      : `${command} refused, nothing changed:\n  - ${lines.join('\n  - ')}`,
    lines.length === 1 ? undefined : 'fix each of the above, then run it again',
  )
  ;(err as { result?: MigrateResult }).result = result
  return err
}

export interface AssetRunOptions {
  dryRun?: boolean
  yes?: boolean
  resume?: boolean
  rollback?: boolean
  confirm?: (q: string) => Promise<boolean>
  now?: () => Date
}

/**
 * The lock and the unfinished runs of the asset, read once (lib/runbook openRun): `operations`
 * block this one (the first is its own: --resume/--rollback continue it, `run.prior`); `command`
 * names how to go on.
 */
export function openAssetRun(
  o: { stateDir: string; name: string; out: Output; now: () => Date },
  opts: AssetRunOptions,
  operations: [string, ...string[]],
  command: (operation: string) => string,
): Promise<RunSession> {
  const [operation, ...blockedBy] = operations
  return openRun({
    ...opts,
    stateDir: o.stateDir,
    operation,
    blockedBy,
    args: { asset: o.name },
    target: o.name,
    out: o.out,
    now: o.now,
    command,
  })
}

/** The command of an asset's run, by its operation: `migrate-assets NAME --revert`. */
function assetRunLabel(name: string, operation: string): string {
  const flag: Record<string, string> = {
    [MIGRATE_OPERATION]: '',
    'migrate-assets-revert': ' --revert',
    'migrate-assets-finalize': ' --finalize',
  }
  return `migrate-assets ${name}${flag[operation] ?? ''}`
}

/** How a person goes on with an unfinished run of an asset, by its operation. */
export function assetCommand(name: string): (operation: string) => string {
  return (op) => `shipshape ${assetRunLabel(name, op)}`
}

/** A run of migrate or --revert, started: what both go on with. */
export interface AssetRun {
  asset: AssetConfig
  now: () => Date
  /** --resume or --rollback */
  continuing: boolean
  /** the unfinished run --resume/--rollback continue */
  prior: PriorNotes | undefined
  /** the result before anything ran (outcome dry-run, nothing counted): filled in as it goes */
  base: MigrateResult
  /** the ports of its steps, the progress bar on the output */
  ports: AssetPorts
  /**
   * An interrupted run goes on (or back) with the paths it started with (`notes`: its first
   * step's), not today's config: refused (exit 4) when the config says otherwise.
   */
  refuseChangedPaths(notes: Record<string, unknown>): void
  /** Every refusal at once, nothing changed (exit 4); the result rides on the error for --json. */
  refused(refusals: Refusal[], counted: { files: number; bytes: number }): Error
  /**
   * The runbook under the host lock and its journal; `finish` makes the result, also of a run
   * rolled back or stopped for a person (carried on the failure it throws).
   */
  runbook<C>(
    steps: Step<C>[],
    ctx: C,
    recheck: (() => Promise<void>) | undefined,
    finish: (summary: RunSummary, error?: unknown) => Promise<MigrateResult>,
  ): Promise<MigrateResult>
}

/**
 * What migrate and --revert start with: the asset, the clock, whether a run is continued, and
 * the run opened once (`operations`: its own first, then those that block it).
 */
export async function startAssetRun(
  ctx: { config: Config; out: Output },
  name: string,
  opts: AssetRunOptions,
  operations: [string, ...string[]],
): Promise<AssetRun> {
  const asset = findAsset(ctx.config, name)
  const now = opts.now ?? (() => new Date())
  const run = await openAssetRun(
    { stateDir: ctx.config.stateDir, name, out: ctx.out, now },
    opts,
    operations,
    assetCommand(name),
  )
  const prior = run.prior
  const label = assetRunLabel(name, operations[0])
  const base = baseResult(name, asset)
  return {
    asset,
    now,
    continuing: Boolean(opts.resume || opts.rollback),
    prior,
    base,
    ports: nodeAssetPorts({ progress: progressOf(ctx.out), now }),
    refuseChangedPaths(notes) {
      const changed = prior ? priorPathsChanged(notes, asset) : []
      if (!prior || !changed.length) return
      const says =
        operations[0] === MIGRATE_OPERATION
          ? `the config now says ${changed.map((c) => `${c.key} ${c.now}`).join(', ')}`
          : 'the config now says otherwise'
      throw new RefusedError(
        `the unfinished ${operations[0] === MIGRATE_OPERATION ? 'run' : 'revert'} of ${name} (${prior.file}) was started with ${changed.map((c) => `${c.key} ${c.was}`).join(', ')}; ${says}`,
        'put the config back as it was for --resume/--rollback, then change it',
      )
    },
    refused: (refusals, counted) =>
      refusedError(label, refusals, {
        ...base,
        outcome: 'refused',
        files: counted.files,
        bytes: counted.bytes,
        refusals,
      }),
    async runbook(steps, c, recheck, finish) {
      const { summary, failure } = await run.execute(steps, c, { recheck })
      if (!failure) return finish(summary)
      ;(failure as { result?: MigrateResult }).result = await finish(summary, failure)
      throw failure
    },
  }
}
