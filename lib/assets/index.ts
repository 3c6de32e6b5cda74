/**
 * `shipshape migrate-assets NAME`: preflight (refusals → exit 4, already migrated → exit 0),
 * then the runbook of lib/assets/steps/ under the host lock and a journal. The result is one
 * JSON shape, shipshape.migrate-assets/1.
 */
import { lstat } from 'node:fs/promises'
import type { Output } from '../cli/output.js'
import { formatBytes, type AssetConfig, type Config } from '../config/index.js'
import type { Engine } from '../docker/engine.js'
import type { Ident } from '../host/safefs.js'
import { RefusedError, RolledBackError } from '../errors.js'
import { findConfigured } from '../config/services.js'
import { openRun, type RunSummary } from '../runbook/index.js'
import { migratePaths, type MigrateContext, type MigrateFacts } from './context.js'
import { stampOf } from '../shared/stamp.js'
import type { Refusal } from '../shared/refusal.js'
import { isWrittenBlocker, runFinalize } from './finalize.js'
import { destState, emptyPreflight, preflight } from './preflight.js'
import { migrateSteps } from './steps/index.js'
import { readManifest } from './manifest.js'
import { readBackupInfo } from './steps/backup.js'
import type { RevertInfo } from './revert.js'

export const MIGRATE_SCHEMA = 'shipshape.migrate-assets/1'
export const MIGRATE_OPERATION = 'migrate-assets'

export interface MigrateOptions {
  dryRun?: boolean
  yes?: boolean
  resume?: boolean
  rollback?: boolean
  confirm?: (q: string) => Promise<boolean>
  now?: () => Date
}

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

/**
 * Under the lock, after the confirmation: another run (a second terminal, a retried --yes) may
 * have migrated the asset while this one showed its plan, and this run's walk is stale. The
 * source must still be the directory walked (not a link, same device and inode) and the
 * destination still absent or empty; else nothing is touched (exit 4).
 */
async function recheckUnderLock(
  asset: AssetConfig,
  pre: { sourceIdent: Ident | null },
  opts: MigrateOptions,
): Promise<void> {
  if (opts.resume || opts.rollback) return // the journal says where it stands
  const again = 'run the command again: it looks afresh'
  const st = await lstat(asset.source, { bigint: true }).catch(() => null)
  if (!st?.isDirectory()) {
    throw new RefusedError(
      `${asset.source} changed while the plan was shown: it is ${!st ? 'gone' : st.isSymbolicLink() ? 'now a symlink (another run migrated it?)' : 'no longer a directory'}; nothing changed`,
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

export async function runMigrateAssets(
  ctx: { config: Config; engine: Engine; out: Output },
  name: string,
  opts: MigrateOptions = {},
): Promise<MigrateResult> {
  const { config, engine, out } = ctx
  const asset = findAsset(config, name)
  const now = opts.now ?? (() => new Date())
  const args = { asset: name }
  const continuing = Boolean(opts.resume || opts.rollback)
  const run = await openRun({
    ...opts,
    stateDir: config.stateDir,
    operation: MIGRATE_OPERATION,
    // an unfinished revert of the asset blocks a migration too
    blockedBy: ['migrate-assets-revert'],
    args,
    target: name,
    out,
    now,
    command: (op) =>
      `shipshape migrate-assets ${name}${op === MIGRATE_OPERATION ? '' : ' --revert'}`,
  })
  const prior = run.prior
  // a stamp fixed by the run: a resume finds the same backup, copy log and aside directory
  // (the backup step notes it first thing; a run that never reached it created nothing)
  const noted = prior?.steps.get('backup')?.notes.stamp
  const stamp = typeof noted === 'string' && /^\d{8}T\d{6}Z$/.test(noted) ? noted : stampOf(now())
  const paths = migratePaths({
    name,
    asset,
    stamp,
    backupDir: config.backupDir,
    stateDir: config.stateDir,
  })

  const base: MigrateResult = {
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

  // an interrupted run goes on (or back) with the paths it started with, not today's config
  if (prior) {
    const was = prior.steps.get('backup')?.notes ?? {}
    const changed = (['source', 'dest', 'mount'] as const).filter(
      (k) => typeof was[k] === 'string' && was[k] !== asset[k],
    )
    if (changed.length) {
      throw new RefusedError(
        `the unfinished run of ${name} (${prior.file}) was started with ${changed.map((k) => `${k} ${String(was[k])}`).join(', ')}; the config now says ${changed.map((k) => `${k} ${asset[k]}`).join(', ')}`,
        'put the config back as it was for --resume/--rollback, then change it',
      )
    }
  }

  // a rollback must work when the mount died or the remote is unreachable: no preflight
  const pre =
    opts.rollback && prior
      ? emptyPreflight()
      : await preflight({ asset, config, engine, continuing: continuing && Boolean(prior) })
  base.warnings.push(...pre.warnings)
  for (const w of pre.warnings) out.warn(w)
  if (pre.migrated && !prior) {
    out.info(`${name}: already migrated (${asset.source} → ${asset.dest}); nothing to do`)
    return { ...base, outcome: 'already-migrated' }
  }
  if (
    pre.refusals.length &&
    !(continuing && prior && pre.refusals.every((r) => r.check === 'source' || r.check === 'dest'))
  ) {
    const lines = pre.refusals.map((r) => `${r.message}${r.remedy ? ` (fix: ${r.remedy})` : ''}`)
    const err = new RefusedError(
      pre.refusals.length === 1
        ? `migrate-assets ${name} refused: ${lines[0]}`
        : `migrate-assets ${name} refused, nothing changed:\n  - ${lines.join('\n  - ')}`,
      pre.refusals.length === 1 ? undefined : 'fix each of the above, then run it again',
    )
    ;(err as { result?: MigrateResult }).result = {
      ...base,
      outcome: 'refused',
      files: pre.files,
      bytes: pre.bytes,
      refusals: pre.refusals,
    }
    throw err
  }

  // on resume, the containers stopped before the crash are the ones to start again
  const stopped = prior?.steps.get('stop')?.notes.containers
  const restart = Array.isArray(stopped) ? (stopped as { id: string; name: string }[]) : pre.restart
  const manifest = prior ? await readManifest(paths.manifest).catch(() => null) : null
  const facts: MigrateFacts = {}
  const mctx: MigrateContext = {
    name,
    asset,
    stamp,
    paths,
    walked: pre.entries,
    sourceIdent: pre.sourceIdent,
    remote: pre.remote,
    bindings: pre.bindings,
    restart,
    health: asset.health,
    uploadTimeoutMs: asset.uploadTimeout,
    engine,
    out,
    progress: progressOf(out),
    now,
    facts,
  }
  const files = manifest?.files ?? pre.files
  const bytes = manifest?.bytes ?? pre.bytes

  const finish = async (summary: RunSummary, error?: unknown): Promise<MigrateResult> => {
    const m = await readManifest(paths.manifest).catch(() => null)
    const outcome: MigrateResult['outcome'] =
      summary.outcome === 'ok'
        ? opts.rollback
          ? 'rolled-back'
          : 'migrated'
        : summary.outcome === 'dry-run'
          ? 'dry-run'
          : summary.outcome
    const backupDone = summary.steps.some(
      (s) => s.id === 'backup' && (s.status === 'done' || s.status === 'skipped'),
    )
    return {
      ...base,
      outcome,
      files: m?.files ?? files,
      bytes: m?.bytes ?? bytes,
      backup:
        backupDone || m
          ? {
              dir: paths.workDir,
              archive: (await readBackupInfo(paths.backupInfo))?.archive ?? null,
              compression: facts.compression ?? null,
              archiveBytes: facts.archiveBytes ?? null,
            }
          : null,
      verified: facts.verifiedBy
        ? {
            files: m?.files ?? files,
            by: facts.verifiedBy,
            uploadWaitMs: facts.uploadWaitMs ?? null,
          }
        : null,
      original: (await lstat(paths.aside).then(
        () => true,
        () => false,
      ))
        ? {
            path: paths.aside,
            keepUntil:
              outcome === 'migrated'
                ? new Date(now().getTime() + asset.keepOriginal).toISOString()
                : null,
          }
        : null,
      containers: restart.map((c) => c.name),
      journal: summary.journal,
      steps: summary.steps,
      ...(error ? { error: (error as Error).message } : {}),
    }
  }

  out.info(
    `${name}: ${asset.source} → ${asset.dest} (${files} files, ${formatBytes(bytes)}${restart.length ? `; restarts ${restart.map((c) => c.name).join(', ')}` : ''})`,
  )
  const { summary, failure } = await run.execute(migrateSteps, mctx, {
    recheck: () => recheckUnderLock(asset, pre, opts),
  })
  if (failure) {
    ;(failure as { result?: MigrateResult }).result = await finish(summary, failure)
    throw failure
  }
  const result = await finish(summary)
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
    schema: MIGRATE_SCHEMA,
    asset: name,
    source: asset.source,
    dest: asset.dest,
    outcome: !r.summary
      ? 'nothing-to-finalize'
      : r.summary.outcome === 'ok'
        ? 'finalized'
        : r.summary.outcome === 'dry-run' || r.summary.outcome === 'cancelled'
          ? r.summary.outcome
          : 'needs-person',
    files: 0,
    bytes: 0,
    backup: null,
    verified: null,
    original: null,
    containers: [],
    warnings: [],
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
