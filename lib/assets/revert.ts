/**
 * `shipshape migrate-assets NAME --revert [--remove-copy]`: a finished migration undone. The
 * preflight (reads only) finds the migration (source is the symlink to dest, its original.json
 * and manifest in backupDir), judges where the bytes come back from (revert-policy.ts
 * chooseRevertSource: the kept original when the destination is as the migration left it, else
 * the destination itself) and whether the local disk has room; then the runbook of
 * lib/assets/steps/revert/ runs under the host lock and its own journal (operation
 * migrate-assets-revert: --resume/--rollback finish or undo an interrupted revert).
 */
import { lstat, readFile, readlink } from 'node:fs/promises'
import path from 'node:path'
import type { Output } from '../cli/output.js'
import { formatBytes, type Config } from '../config/index.js'
import type { Engine } from '../docker/engine.js'
import { RefusedError } from '../errors.js'
import { freeBytes } from '../host/space.js'
import { openRun, type RunSummary } from '../runbook/index.js'
import { stampOf } from '../shared/stamp.js'
import { findArchives } from './archive.js'
import {
  findKeptOriginals,
  foreignOriginal,
  hungMountOf,
  writtenSince,
  type KeptOriginal,
} from './finalize.js'
import {
  findAsset,
  MIGRATE_OPERATION,
  MIGRATE_SCHEMA,
  progressOf,
  type MigrateResult,
} from './index.js'
import { readManifest, walkTree } from './manifest.js'
import type { Refusal } from '../shared/refusal.js'
import { checkSourcePath, judgeSource } from './policy.js'
import { findBindings, sourceState } from './preflight.js'
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

export interface RevertOptions {
  dryRun?: boolean
  yes?: boolean
  resume?: boolean
  rollback?: boolean
  removeCopy?: boolean
  confirm?: (q: string) => Promise<boolean>
  now?: () => Date
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

async function readJson(file: string): Promise<Record<string, unknown> | null> {
  return readFile(file, 'utf8')
    .then((t) => JSON.parse(t) as Record<string, unknown>)
    .catch(() => null)
}

/** Running containers that bind the source, and those the config names under restart. */
async function containersToRestart(
  engine: Engine,
  asset: { source: string; mount: string; restart: string[] },
): Promise<{ id: string; name: string }[]> {
  const found = await findBindings(engine, asset.source, asset.mount)
  const restart = new Map<string, string>()
  for (const b of found.bindings) if (b.running) restart.set(b.id, b.name)
  for (const c of found.all) {
    if (c.running && asset.restart.some((r) => r === c.name || r === c.composeService)) {
      restart.set(c.id, c.name)
    }
  }
  return [...restart].map(([id, name]) => ({ id, name }))
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

export async function runMigrateRevert(
  ctx: { config: Config; engine: Engine; out: Output },
  name: string,
  opts: RevertOptions = {},
): Promise<MigrateResult> {
  const { config, engine, out } = ctx
  const asset = findAsset(config, name)
  const now = opts.now ?? (() => new Date())
  const continuing = Boolean(opts.resume || opts.rollback)
  const command = (op: string) =>
    `shipshape migrate-assets ${name}${op === REVERT_OPERATION ? ' --revert' : op === MIGRATE_OPERATION ? '' : ' --finalize'}`
  const run = await openRun({
    ...opts,
    stateDir: config.stateDir,
    operation: REVERT_OPERATION,
    blockedBy: [MIGRATE_OPERATION, 'migrate-assets-finalize'],
    args: { asset: name },
    target: name,
    out,
    now,
    command,
  })
  const prior = run.prior
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
  if (continuing && !prior) {
    throw new RefusedError(
      `no unfinished revert of ${name} to ${opts.resume ? 'resume' : 'roll back'}`,
      `shipshape migrate-assets ${name} --revert starts one`,
    )
  }

  // an interrupted revert goes on (or back) with what it noted first; a new one looks afresh
  const noted = prior?.steps.get('stage')?.notes ?? {}
  let pre: RevertPreflight
  if (prior && (typeof noted.migration === 'string' || opts.rollback)) {
    const changed = (['source', 'dest', 'mount'] as const).filter(
      (k) => typeof noted[k] === 'string' && noted[k] !== asset[k],
    )
    if (changed.length) {
      throw new RefusedError(
        `the unfinished revert of ${name} (${prior.file}) was started with ${changed.map((k) => `${k} ${String(noted[k])}`).join(', ')}; the config now says otherwise`,
        'put the config back as it was for --resume/--rollback, then change it',
      )
    }
    const migration = typeof noted.migration === 'string' ? noted.migration : null
    const from = noted.from === 'original' || noted.from === 'destination' ? noted.from : null
    const m = await readManifest(path.join(migration ?? '/nonexistent', 'manifest.json')).catch(
      () => null,
    )
    pre = {
      refusals: [],
      migration,
      from,
      destChanged: [],
      originalLeft: null,
      files: m?.files ?? 0,
      bytes: m?.bytes ?? 0,
    }
  } else {
    // a new revert, or one resumed that was interrupted before its first note (nothing done)
    pre = await revertPreflight(config, name)
  }
  if (pre.refusals.length || (!opts.rollback && (!pre.migration || !pre.from))) {
    const lines = pre.refusals.map((r) => `${r.message}${r.remedy ? ` (fix: ${r.remedy})` : ''}`)
    const err = new RefusedError(
      lines.length === 1
        ? `migrate-assets ${name} --revert refused: ${lines[0]}`
        : `migrate-assets ${name} --revert refused, nothing changed:\n  - ${lines.join('\n  - ')}`,
      lines.length === 1 ? undefined : 'fix each of the above, then run it again',
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

  const stamp =
    typeof noted.stamp === 'string' && /^\d{8}T\d{6}Z$/.test(noted.stamp)
      ? noted.stamp
      : stampOf(now())
  // a revert interrupted before its first note did nothing: its journal only needs closing
  const migration = pre.migration ?? path.join(config.backupDir, name, 'unknown')
  const paths = revertPaths({ name, asset, stamp, migration, stateDir: config.stateDir })
  const stopped = prior?.steps.get('stop')?.notes.containers
  const restart = Array.isArray(stopped)
    ? (stopped as { id: string; name: string }[])
    : opts.rollback && prior
      ? []
      : await containersToRestart(engine, asset)
  const facts: RevertFacts = {}
  const rctx: RevertContext = {
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
    progress: progressOf(out),
    now,
    facts,
  }
  for (const w of [pre.originalLeft].filter((x): x is string => Boolean(x))) {
    out.warn(w)
    base.warnings.push(w)
  }
  if (pre.destChanged.length) {
    const w = `the app changed ${pre.destChanged.length} entr${pre.destChanged.length === 1 ? 'y' : 'ies'} of ${asset.dest} since the migration (${pre.destChanged.slice(0, 3).join('; ')}${pre.destChanged.length > 3 ? '; …' : ''}): the destination is the truth, its files as they are now come back`
    out.warn(w)
    base.warnings.push(w)
  }

  const finish = async (summary: RunSummary, error?: unknown): Promise<MigrateResult> => {
    const expected = await readManifest(paths.expected).catch(() => null)
    const files = expected?.files ?? pre.files
    const bytes = expected?.bytes ?? pre.bytes
    const outcome: MigrateResult['outcome'] =
      summary.outcome === 'ok' ? (opts.rollback ? 'rolled-back' : 'reverted') : summary.outcome
    const record = await readJson(paths.record)
    const from = (record?.from as RevertFrom | undefined) ?? pre.from
    return {
      ...base,
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
      containers: restart.map((c) => c.name),
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
          path: asset.dest,
          files,
          bytes,
          remove: rctx.removeCopy,
          removed: facts.copyRemoved === true,
        },
        health: facts.health ?? null,
      },
      ...(error ? { error: (error as Error).message } : {}),
    }
  }

  out.info(
    `${name}: revert ${asset.source} → a directory again, the bytes from ${rctx.from === 'original' ? `the kept original ${paths.original}` : `the destination ${asset.dest}`} (${pre.files} files, ${formatBytes(pre.bytes)}${restart.length ? `; restarts ${restart.map((c) => c.name).join(', ')}` : ''})`,
  )
  const { summary, failure } = await run.execute(revertSteps, rctx, {
    recheck: continuing
      ? undefined
      : async () => {
          const link = await readlink(asset.source).catch(() => null)
          if (link !== asset.dest) {
            throw new RefusedError(
              `${asset.source} changed while the plan was shown: it is not the symlink to ${asset.dest} any more; nothing changed`,
              'run the command again: it looks afresh',
            )
          }
        },
  })
  if (failure) {
    ;(failure as { result?: MigrateResult }).result = await finish(summary, failure)
    throw failure
  }
  const result = await finish(summary)
  if (result.outcome === 'reverted') {
    out.info(
      `${name}: reverted. ${asset.source} is a directory again (the bytes from the ${result.revert?.from ?? '?'}, ${result.revert?.verified ?? 0} files checked)`,
    )
    if (!result.revert?.copy.removed) {
      out.info(
        `the copy on the mount was left at ${asset.dest} (${result.revert?.copy.files ?? 0} files, ${formatBytes(result.revert?.copy.bytes ?? 0)}): remove it by hand once it is no longer needed`,
      )
    }
  }
  return result
}
