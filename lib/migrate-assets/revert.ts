/**
 * `shipshape migrate-assets NAME --revert [--remove-copy]`: a finished migration undone. The
 * preflight (reads only) finds the migration (source is the symlink to dest, its original.json
 * and manifest in backupDir), judges where the bytes come back from (revert-policy.ts
 * chooseRevertSource: the kept original when the destination is as the migration left it, else
 * the destination itself) and whether the local disk has room; then the runbook of
 * lib/assets/steps/revert/ runs under the host lock and its own journal (operation
 * migrate-assets-revert: --resume/--rollback finish or undo an interrupted revert).
 */
import { lstat } from 'node:fs/promises'
import path from 'node:path'
import type { Output } from '../cli/output.js'
import { formatBytes, type AssetConfig, type Config } from '../config/index.js'
import type { Engine } from '../docker/engine.js'
import { RefusedError } from '../errors.js'
import { freeBytes } from '../host/space.js'
import type { RunSummary } from '../runbook/index.js'
import { manifestOnce } from './context.js'
import { stampOf } from '../shared/stamp.js'
import { findArchives } from '../assets/archive.js'
import {
  findAsset,
  MIGRATE_OPERATION,
  startAssetRun,
  type AssetRun,
  type AssetRunOptions,
  type MigrateResult,
} from './command.js'
import {
  findKeptOriginals,
  foreignOriginal,
  hungMountOf,
  writtenSince,
  type KeptOriginal,
} from '../assets/finalize.js'
import { readManifest, walkTree } from '../assets/manifest.js'
import { notedRestart, stampFrom } from './plan.js'
import { checkSourcePath, judgeSource } from '../assets/policy.js'
import { type Refusal } from '../shared/refusal.js'
import { findBindings, restartOf, sourceState } from '../assets/preflight.js'
import { revertPaths, type RevertContext, type RevertFacts } from './revert-context.js'
import {
  chooseRevertSource,
  destChangedSince,
  judgeRevertSpace,
  revertSpaceNeed,
  type RevertFrom,
  type RevertSourceFacts,
} from './revert-policy.js'
import { revertSteps } from './steps/revert/index.js'

export const REVERT_OPERATION = 'migrate-assets-revert'

export interface RevertInfo {
  /** where the bytes came back from */
  from: RevertFrom | null
  files: number
  bytes: number
  /** files read back and matched to their sha256 before the swap */
  verified: number | null
  /** the destination differed from the migration's manifest: the app wrote there since */
  destChanged: number
  /** the kept original, when it was not used (older than the destination, or written to) */
  originalLeft: string | null
  /** the copy on the mount: left (the default) or removed (remove: --remove-copy was given) */
  copy: { path: string; files: number; bytes: number; remove: boolean; removed: boolean }
  health: string | null
}

export interface RevertOptions extends AssetRunOptions {
  removeCopy?: boolean
}

/** The migration --revert undoes: the newest finished, not reverted, for this asset's paths. */
async function findMigration(
  config: Config,
  name: string,
): Promise<{ kept: KeptOriginal | null; why: string | null }> {
  const asset = config.assets[name]!
  const all = await findKeptOriginals(config.backupDir, name)
  const mine = all.filter((k) => !k.revertedAt && foreignOriginal(k, asset, config) === null)
  const kept = mine.at(-1) ?? null
  if (kept) return { kept, why: null }
  return {
    kept: null,
    why: all.some((k) => k.revertedAt)
      ? `its last migration was reverted already`
      : `no finished migration is recorded in ${path.join(config.backupDir, name)} (original.json)`,
  }
}

interface RevertPreflight {
  refusals: Refusal[]
  migration: string | null
  from: RevertFrom | null
  destChanged: string[]
  originalLeft: string | null
  files: number
  bytes: number
}

/** Reads only: the finished migration, where the bytes come back from, the room for them. */
async function revertPreflight(config: Config, name: string): Promise<RevertPreflight> {
  const asset = findAsset(config, name)
  const none: RevertPreflight = {
    refusals: [],
    migration: null,
    from: null,
    destChanged: [],
    originalLeft: null,
    files: 0,
    bytes: 0,
  }
  const refusals = checkSourcePath(asset.source, config)
  if (refusals.length) return { ...none, refusals }
  const state = await sourceState(asset.source)
  const judged = judgeSource(asset.source, asset.dest, state)
  if (!judged.migrated) {
    return {
      ...none,
      refusals: [
        {
          check: 'migrated',
          message: `${name} is not migrated: ${asset.source} is ${state.kind === 'dir' ? 'a directory (never migrated, or reverted already)' : (judged.refusals[0]?.message ?? 'not the symlink shipshape makes')}`,
          remedy: 'nothing to revert',
        },
      ],
    }
  }
  const m = await findMigration(config, name)
  if (!m.kept) {
    return {
      ...none,
      refusals: [{ check: 'migration', message: `${name}: ${m.why}`, remedy: 'nothing to revert' }],
    }
  }
  const k = m.kept
  const manifest = await readManifest(path.join(k.workDir, 'manifest.json')).catch((e: Error) => e)
  if (manifest instanceof Error) {
    return {
      ...none,
      migration: k.workDir,
      refusals: [
        {
          check: 'manifest',
          message: `the migration's manifest cannot be read: ${manifest.message}`,
          remedy: 'without it nothing brought back can be checked',
        },
      ],
    }
  }
  // the kept original, held against the manifest (finalize.ts writtenSince)
  let original: RevertSourceFacts['original'] = null
  const ost = k.removedAt ? null : await lstat(k.original).catch(() => null)
  if (ost?.isDirectory()) {
    const walk = await walkTree(k.original)
    original = { path: k.original, changes: writtenSince(manifest.entries, walk) }
  }
  // the destination, as the app left it
  let dest: RevertSourceFacts['dest']
  let destFiles = 0
  let destBytes = 0
  let destEntries = 0
  // a mount that does not answer is never walked in-process (lib/host/mountprobe.ts)
  const hung = await hungMountOf({ dest: asset.dest, original: k.original })
  try {
    if (hung) throw new Error(hung)
    const walk = await walkTree(asset.dest)
    dest = {
      changes: [
        ...destChangedSince(manifest.entries, walk.entries),
        ...walk.problems.map((p) => `${p.path}: ${p.reason}`),
      ],
    }
    for (const e of walk.entries) {
      destEntries++
      if (e.kind !== 'file') continue
      destFiles++
      destBytes += e.size
    }
  } catch (err) {
    dest = { error: (err as Error).message }
  }
  // where the archive is now: in backupDir, moved onto the remote by prune, or gone
  const kept = (await findArchives(config, name)).find((a) => a.kept.workDir === k.workDir)
  const archive = kept?.local ?? kept?.fate.remoteArchive?.path ?? null
  const choice = chooseRevertSource({ original, dest, archive })
  const out: RevertPreflight = {
    refusals: [...choice.refusals],
    migration: k.workDir,
    from: choice.from,
    destChanged: choice.destChanged,
    originalLeft: choice.originalLeft,
    files: choice.destChanged.length ? destFiles : manifest.files,
    bytes: choice.destChanged.length ? destBytes : manifest.bytes,
  }
  if (choice.from === 'destination') {
    const space = await freeBytes(path.dirname(asset.source))
    out.refusals.push(
      ...judgeRevertSpace({
        from: choice.from,
        needBytes: revertSpaceNeed(
          Math.max(out.bytes, destBytes),
          Math.max(destEntries, manifest.entries.length),
        ),
        freeBytes: space.free,
        dir: space.dir,
      }),
    )
  }
  return out
}

/**
 * An interrupted revert goes on (or back) with what its stage step noted; a new one (or one
 * resumed that was interrupted before its first note: nothing done) looks afresh.
 */
async function revertFacts(
  config: Config,
  name: string,
  started: AssetRun,
  rollback: boolean,
): Promise<RevertPreflight> {
  const { prior } = started
  const noted = prior?.steps.get('stage')?.notes ?? {}
  if (!prior || (typeof noted.migration !== 'string' && !rollback)) {
    return revertPreflight(config, name)
  }
  started.refuseChangedPaths(noted)
  const migration = typeof noted.migration === 'string' ? noted.migration : null
  const from = noted.from === 'original' || noted.from === 'destination' ? noted.from : null
  const m = await readManifest(path.join(migration ?? '/nonexistent', 'manifest.json')).catch(
    () => null,
  )
  return {
    refusals: [],
    migration,
    from,
    destChanged: [],
    originalLeft: null,
    files: m?.files ?? 0,
    bytes: m?.bytes ?? 0,
  }
}

function revertWarnings(pre: RevertPreflight, asset: AssetConfig): string[] {
  const warnings = pre.originalLeft ? [pre.originalLeft] : []
  const n = pre.destChanged.length
  if (n) {
    warnings.push(
      `the app changed ${n} entr${n === 1 ? 'y' : 'ies'} of ${asset.dest} since the migration (${pre.destChanged.slice(0, 3).join('; ')}${n > 3 ? '; …' : ''}): the destination is the truth, its files as they are now come back`,
    )
  }
  return warnings
}

/** The result of a revert that reached the runbook. */
async function revertResult(o: {
  base: MigrateResult
  summary: RunSummary
  error?: unknown
  rollback: boolean
  pre: RevertPreflight
  ctx: RevertContext
}): Promise<MigrateResult> {
  const { summary, pre, ctx } = o
  const { facts } = ctx
  const expected = await ctx.expected.get().catch(() => null)
  const files = expected?.files ?? pre.files
  const bytes = expected?.bytes ?? pre.bytes
  const outcome: MigrateResult['outcome'] =
    summary.outcome === 'ok' ? (o.rollback ? 'rolled-back' : 'reverted') : summary.outcome
  const record = await ctx.fs.readJson(ctx.paths.record)
  const from = (record?.from as RevertFrom | undefined) ?? pre.from
  return {
    ...o.base,
    outcome,
    files,
    bytes,
    verified:
      facts.verified !== undefined
        ? {
            files: facts.verified,
            by: `sha256 of every file brought back, read before the swap`,
            uploadWaitMs: null,
          }
        : null,
    containers: ctx.restart.map((c) => c.name),
    journal: summary.journal,
    steps: summary.steps,
    revert: {
      from,
      files,
      bytes,
      verified: facts.verified ?? null,
      destChanged: pre.destChanged.length,
      originalLeft: pre.originalLeft,
      copy: {
        path: ctx.asset.dest,
        files,
        bytes,
        remove: ctx.removeCopy,
        removed: facts.copyRemoved === true,
      },
      health: facts.health ?? null,
    },
    ...(o.error ? { error: (o.error as Error).message } : {}),
  }
}

function reportReverted(out: Output, name: string, asset: AssetConfig, r: MigrateResult): void {
  if (r.outcome !== 'reverted') return
  out.info(
    `${name}: reverted. ${asset.source} is a directory again (the bytes from the ${r.revert?.from ?? '?'}, ${r.revert?.verified ?? 0} files checked)`,
  )
  if (!r.revert?.copy.removed) {
    out.info(
      `the copy on the mount was left at ${asset.dest} (${r.revert?.copy.files ?? 0} files, ${formatBytes(r.revert?.copy.bytes ?? 0)}): remove it by hand once it is no longer needed`,
    )
  }
}

export async function runMigrateRevert(
  ctx: { config: Config; engine: Engine; out: Output },
  name: string,
  opts: RevertOptions = {},
): Promise<MigrateResult> {
  const { config, engine, out } = ctx
  const started = await startAssetRun(ctx, name, opts, [
    REVERT_OPERATION,
    MIGRATE_OPERATION,
    'migrate-assets-finalize',
  ])
  const { asset, now, continuing, prior, base, ports } = started
  if (continuing && !prior) {
    throw new RefusedError(
      `no unfinished revert of ${name} to ${opts.resume ? 'resume' : 'roll back'}`,
      `shipshape migrate-assets ${name} --revert starts one`,
    )
  }
  const pre = await revertFacts(config, name, started, Boolean(opts.rollback))
  if (pre.refusals.length || (!opts.rollback && (!pre.migration || !pre.from))) {
    throw started.refused(pre.refusals, pre)
  }

  const noted = prior?.steps.get('stage')?.notes ?? {}
  const stamp = stampFrom(noted.stamp, stampOf(now()))
  // a revert interrupted before its first note did nothing: its journal only needs closing
  const migration = pre.migration ?? path.join(config.backupDir, name, 'unknown')
  const paths = revertPaths({ name, asset, stamp, migration, stateDir: config.stateDir })
  const restart =
    notedRestart(prior) ??
    (opts.rollback && prior
      ? []
      : restartOf(await findBindings(engine, asset.source, asset.mount), asset.restart))
  const facts: RevertFacts = {}
  const rctx: RevertContext = {
    ...ports,
    name,
    asset,
    stamp,
    paths,
    from: pre.from ?? 'destination',
    destChanged: pre.destChanged.length > 0,
    removeCopy: Boolean(opts.removeCopy || noted.removeCopy === true),
    restart,
    health: asset.health,
    engine,
    out,
    expected: manifestOnce(ports.fs, paths.expected),
    facts,
  }
  for (const w of revertWarnings(pre, asset)) {
    out.warn(w)
    base.warnings.push(w)
  }

  out.info(
    `${name}: revert ${asset.source} → a directory again, the bytes from ${rctx.from === 'original' ? `the kept original ${paths.original}` : `the destination ${asset.dest}`} (${pre.files} files, ${formatBytes(pre.bytes)}${restart.length ? `; restarts ${restart.map((c) => c.name).join(', ')}` : ''})`,
  )
  const result = await started.runbook(
    revertSteps,
    rctx,
    continuing
      ? undefined
      : async () => {
          const link = await ports.fs.kindOf(asset.source).catch(() => null)
          if (link?.kind !== 'symlink' || link.target !== asset.dest) {
            throw new RefusedError(
              `${asset.source} changed while the plan was shown: it is not the symlink to ${asset.dest} any more; nothing changed`,
              'run the command again: it looks afresh',
            )
          }
        },
    (summary, error) =>
      revertResult({ base, summary, error, rollback: Boolean(opts.rollback), pre, ctx: rctx }),
  )
  reportReverted(out, name, asset, result)
  return result
}
