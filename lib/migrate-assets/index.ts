/**
 * `shipshape migrate-assets NAME`: preflight (refusals → exit 4, already migrated → exit 0),
 * then the runbook of lib/assets/steps/ under the host lock and a journal. The result is one
 * JSON shape, shipshape.migrate-assets/1.
 */
import type { Output } from '../cli/output.js'
import { formatBytes, type AssetConfig, type Config } from '../config/index.js'
import type { Engine } from '../docker/engine.js'
import type { Ident } from '../host/safefs.js'
import { RefusedError, RolledBackError } from '../errors.js'
import type { RunSummary } from '../runbook/index.js'
import {
  baseResult,
  findAsset,
  MIGRATE_OPERATION,
  startAssetRun,
  type AssetRunOptions,
  type MigrateResult,
} from './command.js'
import {
  manifestOnce,
  migratePaths,
  type ManifestOnce,
  type MigrateContext,
  type MigrateFacts,
  type MigratePaths,
} from './context.js'
import { stampOf } from '../shared/stamp.js'
import { isWrittenBlocker } from '../assets/finalize.js'
import { runFinalize } from './finalize.js'
import { planMigrate } from './plan.js'
import type { AssetFs, AssetPorts } from '../assets/ports.js'
import { destState, emptyPreflight, preflight } from '../assets/preflight.js'
import { migrateSteps } from './steps/index.js'
import { readBackupInfo } from '../assets/backup-info.js'
import { checkStateDirs } from '../host/private.js'
import { runMigrateRevert, type RevertOptions } from './revert.js'

export {
  findAsset,
  MIGRATE_OPERATION,
  MIGRATE_SCHEMA,
  progressOf,
  type MigrateResult,
} from './command.js'

export type MigrateOptions = AssetRunOptions

/**
 * Under the lock, after the confirmation: another run (a second terminal, a retried --yes) may
 * have migrated the asset while this one showed its plan, and this run's walk is stale. The
 * source must still be the directory walked (not a link, same device and inode) and the
 * destination still absent or empty; else nothing is touched (exit 4).
 */
async function recheckUnderLock(
  fs: AssetFs,
  asset: AssetConfig,
  pre: { sourceIdent: Ident | null },
  opts: MigrateOptions,
): Promise<void> {
  if (opts.resume || opts.rollback) return // the journal says where it stands
  const again = 'run the command again: it looks afresh'
  const st = await fs.kindOf(asset.source).catch(() => ({ kind: 'missing' as const }))
  if (st.kind !== 'dir') {
    throw new RefusedError(
      `${asset.source} changed while the plan was shown: it is ${st.kind === 'missing' ? 'gone' : st.kind === 'symlink' ? 'now a symlink (another run migrated it?)' : 'no longer a directory'}; nothing changed`,
      again,
    )
  }
  if (pre.sourceIdent && (st.dev !== pre.sourceIdent.dev || st.ino !== pre.sourceIdent.ino)) {
    throw new RefusedError(
      `${asset.source} changed while the plan was shown: another directory is there now; nothing changed`,
      again,
    )
  }
  const d = await destState(asset.dest)
  if (d !== 'absent' && d !== 'empty') {
    throw new RefusedError(
      `${asset.dest} changed while the plan was shown: it ${d === 'not-a-dir' ? 'is not a directory' : 'is not empty'} now (another run copied into it?); nothing changed`,
      again,
    )
  }
}

/** The result of a run that reached the runbook, from what it left on disk and in `facts`. */
async function migrateResult(o: {
  base: MigrateResult
  summary: RunSummary
  error?: unknown
  opts: MigrateOptions
  ctx: MigrateContext
  counted: { files: number; bytes: number }
}): Promise<MigrateResult> {
  const { summary, ctx } = o
  const { paths, facts } = ctx
  const m = await ctx.manifest.get().catch(() => null)
  const files = m?.files ?? o.counted.files
  const outcome: MigrateResult['outcome'] =
    summary.outcome === 'ok' ? (o.opts.rollback ? 'rolled-back' : 'migrated') : summary.outcome
  const backupDone = summary.steps.some(
    (s) => s.id === 'backup' && (s.status === 'done' || s.status === 'skipped'),
  )
  const aside = await ctx.fs.kindOf(paths.aside).catch(() => ({ kind: 'missing' as const }))
  return {
    ...o.base,
    outcome,
    files,
    bytes: m?.bytes ?? o.counted.bytes,
    backup:
      backupDone || m
        ? {
            dir: paths.workDir,
            archive: (await readBackupInfo(ctx.fs, paths.backupInfo))?.archive ?? null,
            compression: facts.compression ?? null,
            archiveBytes: facts.archiveBytes ?? null,
          }
        : null,
    verified: facts.verifiedBy
      ? { files, by: facts.verifiedBy, uploadWaitMs: facts.uploadWaitMs ?? null }
      : null,
    original:
      aside.kind !== 'missing'
        ? {
            path: paths.aside,
            keepUntil:
              outcome === 'migrated'
                ? new Date(ctx.now().getTime() + ctx.asset.keepOriginal).toISOString()
                : null,
          }
        : null,
    containers: ctx.restart.map((c) => c.name),
    journal: summary.journal,
    steps: summary.steps,
    ...(o.error ? { error: (o.error as Error).message } : {}),
  }
}

function migrateContext(o: {
  name: string
  asset: AssetConfig
  stamp: string
  paths: MigratePaths
  pre: Awaited<ReturnType<typeof preflight>>
  restart: { id: string; name: string }[]
  engine: Engine
  out: Output
  ports: AssetPorts
  manifest: ManifestOnce
}): MigrateContext {
  const facts: MigrateFacts = {}
  return {
    ...o.ports,
    name: o.name,
    asset: o.asset,
    stamp: o.stamp,
    paths: o.paths,
    walked: o.pre.entries,
    sourceIdent: o.pre.sourceIdent,
    remote: o.pre.remote,
    bindings: o.pre.bindings,
    restart: o.restart,
    health: o.asset.health,
    uploadTimeoutMs: o.asset.uploadTimeout,
    engine: o.engine,
    out: o.out,
    manifest: o.manifest,
    facts,
  }
}

export async function runMigrateAssets(
  ctx: { config: Config; engine: Engine; out: Output },
  name: string,
  opts: MigrateOptions = {},
): Promise<MigrateResult> {
  const { config, engine, out } = ctx
  // an unfinished revert of the asset blocks a migration too
  const started = await startAssetRun(ctx, name, opts, [MIGRATE_OPERATION, 'migrate-assets-revert'])
  const { asset, now, continuing, prior, base, ports } = started
  const freshStamp = stampOf(now())
  started.refuseChangedPaths(prior?.steps.get('backup')?.notes ?? {})

  // a rollback must work when the mount died or the remote is unreachable: no preflight
  const pre =
    opts.rollback && prior
      ? emptyPreflight()
      : await preflight({ asset, config, engine, continuing: continuing && Boolean(prior) })
  base.warnings.push(...pre.warnings)
  for (const w of pre.warnings) out.warn(w)
  const plan = planMigrate({ pre, continuing, freshStamp }, prior)
  if (plan.kind === 'already-migrated') {
    out.info(`${name}: already migrated (${asset.source} → ${asset.dest}); nothing to do`)
    return { ...base, outcome: 'already-migrated' }
  }
  if (plan.kind === 'refused') throw started.refused(plan.refusals, pre)

  const { stamp, restart } = plan
  const paths = migratePaths({ name, asset, stamp, ...config })
  // the run's manifest, read once: on a resume the one the interrupted run wrote
  const manifest = manifestOnce(ports.fs, paths.manifest)
  const known = prior ? await manifest.get().catch(() => null) : null
  const mctx = migrateContext({
    name,
    asset,
    stamp,
    paths,
    pre,
    restart,
    engine,
    out,
    ports,
    manifest,
  })
  const counted = { files: known?.files ?? pre.files, bytes: known?.bytes ?? pre.bytes }

  out.info(
    `${name}: ${asset.source} → ${asset.dest} (${counted.files} files, ${formatBytes(counted.bytes)}${restart.length ? `; restarts ${restart.map((c) => c.name).join(', ')}` : ''})`,
  )
  const result = await started.runbook(
    migrateSteps,
    mctx,
    () => recheckUnderLock(ports.fs, asset, pre, opts),
    (summary, error) => migrateResult({ base, summary, error, opts, ctx: mctx, counted }),
  )
  if (result.outcome === 'migrated') {
    out.info(
      `${name}: migrated. The original stays at ${paths.aside} until ${result.original?.keepUntil?.slice(0, 10) ?? '?'} (keepOriginal); the backup is in ${paths.workDir}`,
    )
  }
  return result
}

/** `--finalize`: the kept originals whose time is up go (see finalize.ts). */
export async function runMigrateFinalize(
  ctx: { config: Config; out: Output },
  name: string,
  opts: MigrateOptions = {},
): Promise<MigrateResult> {
  const asset = findAsset(ctx.config, name)
  const r = await runFinalize(ctx, name, opts)
  const removed = r.summary?.outcome === 'ok' ? r.due.map((k) => k.original) : ([] as string[])
  const result: MigrateResult = {
    ...baseResult(name, asset),
    outcome: !r.summary
      ? 'nothing-to-finalize'
      : r.summary.outcome === 'ok'
        ? 'finalized'
        : r.summary.outcome === 'dry-run' || r.summary.outcome === 'cancelled'
          ? r.summary.outcome
          : 'needs-person',
    journal: r.summary?.journal ?? null,
    steps: r.summary?.steps ?? [],
    finalize: { removed, kept: r.kept },
  }
  // an original written to after the migration is kept whole: the operator must look (exit 1)
  const written = r.kept.filter((k) => isWrittenBlocker(k.why))
  if (written.length) {
    const err = new RolledBackError(
      `${written.map((k) => k.original).join(', ')}: written to after the migration; kept whole, nothing of ${written.length === 1 ? 'it' : 'them'} removed`,
      'look at what was written there (the message above names it), move it to the destination, then remove the original by hand',
    )
    ;(err as { result?: MigrateResult }).result = result
    throw err
  }
  return result
}

export interface MigrateCommandOptions extends RevertOptions {
  finalize?: boolean
  revert?: boolean
}

/** A command's end: the result to render, and the error that decides the exit code (none: 0). */
export interface MigrateOutcome {
  result: MigrateResult
  error?: Error
}

/**
 * `migrate-assets NAME [--revert | --finalize]` as a command. The state directories are checked
 * first (nothing is trusted from a stateDir/backupDir others can write: a planted journal, an
 * original.json naming /etc), then the engine is opened (--finalize needs none). A run that
 * failed or was refused with a result ends as that result and its error.
 */
export async function runMigrateCommand(
  ctx: { config: Config; out: Output; engine: () => Promise<Engine> },
  name: string,
  opts: MigrateCommandOptions,
): Promise<MigrateOutcome> {
  const { config, out } = ctx
  if (!opts.dryRun) await checkStateDirs(config)
  try {
    // with --resume/--rollback: an interrupted --finalize (removals cannot be undone: --rollback
    // only closes its journal)
    if (opts.finalize) return { result: await runMigrateFinalize({ config, out }, name, opts) }
    const c = { config, engine: await ctx.engine(), out }
    const run = opts.revert ? runMigrateRevert : runMigrateAssets
    return { result: await run(c, name, opts) }
  } catch (err) {
    const result = (err as { result?: MigrateResult }).result
    if (!result) throw err
    return { result, error: err as Error }
  }
}
