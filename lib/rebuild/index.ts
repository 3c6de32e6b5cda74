/**
 * `shipshape rebuild SERVICE` and `shipshape rollback SERVICE`: resolve the service (target.ts),
 * judge it (policy.ts), then the runbook of steps/ under the host lock and a journal. The results
 * are one JSON shape each: shipshape.rebuild/1, shipshape.rollback/1.
 */
import type { Output } from '../cli/output.js'
import type { Config, ServiceConfig } from '../config/index.js'
import type { Engine } from '../docker/engine.js'
import { findConfigured } from '../config/services.js'
import { RefusedError, UsageError } from '../errors.js'
import { waitHealthy } from '../health/check.js'
import { checkPrivateDir } from '../host/private.js'
import { dockerChildEnv } from '../host/run.js'
import { freeBytes } from '../host/space.js'
import { findUnfinishedJournals, runRunbook, type RunSummary } from '../runbook/index.js'
import { priorRun } from '../runbook/prior.js'
import { RunbookNeedsPersonError, RunbookRolledBackError } from '../runbook/runner.js'
import type { JournalState } from '../runbook/journal.js'
import type { Refusal } from '../assets/policy.js'
import { stampOf } from '../assets/context.js'
import {
  BACKUP_CREATED_LABEL,
  BACKUP_KIND_LABEL,
  BACKUP_LABEL,
  BACKUP_SOURCE_LABEL,
  COMMIT_PREFIX,
  parseImageRef,
  PREV_PREFIX,
  rebuildPaths,
  type RebuildContext,
  type RebuildFacts,
} from './context.js'
import { judgeBuildSpace, judgeService } from './policy.js'
import { composeConfigHash } from '../docker/compose.js'
import {
  listBuildFiles,
  readBackupRecords,
  readBuildFiles,
  type BuildFileSource,
  type BuildFiles,
} from './records.js'
import { rebuildSteps, rollbackSteps, updateSteps } from './steps/index.js'
import { resolveTarget, serviceContainers } from './target.js'

export const REBUILD_SCHEMA = 'shipshape.rebuild/1'
export const ROLLBACK_SCHEMA = 'shipshape.rollback/1'
export const UPDATE_SCHEMA = 'shipshape.update/1'
export const REBUILD_OPERATION = 'rebuild'
export const ROLLBACK_OPERATION = 'rollback'
export const UPDATE_OPERATION = 'update'
type Operation = typeof REBUILD_OPERATION | typeof ROLLBACK_OPERATION | typeof UPDATE_OPERATION
const OPERATIONS: Operation[] = [REBUILD_OPERATION, ROLLBACK_OPERATION, UPDATE_OPERATION]

export interface BackupImage {
  /** repo:shipshape-prev-<stamp> or repo:shipshape-backup-<stamp> */
  tag: string
  id: string
  kind: 'image' | 'commit'
  created: string
  sizeBytes: number
  /** the image the service ran when it was made (a prev tag: its own id); null: not known */
  source: string | null
  /** build files saved with this image: when, and how they were found (records.ts) */
  files?: { savedAt: string; origin: BuildFiles['origin'] } | null
}

/**
 * Which backup a plain `rollback` goes to (pure): the newest image backup that is not what runs
 * (by id, or a copy of it by its source), and — when what runs is itself a backup — one made
 * before it: a second rollback goes further back, never forward again. Null: none.
 */
export function chooseRollback(
  backups: BackupImage[],
  running: { id: string; source: string | null; created: string | null },
): BackupImage | null {
  const same = (b: BackupImage) =>
    b.id === running.id ||
    b.source === running.id ||
    (running.source !== null && (b.source === running.source || b.id === running.source))
  return (
    backups
      .filter((b) => b.kind === 'image' && !same(b))
      .filter((b) => running.created === null || b.created < running.created)
      .sort((a, b) => b.created.localeCompare(a.created) || b.tag.localeCompare(a.tag))[0] ?? null
  )
}

export interface RebuildResult {
  schema: typeof REBUILD_SCHEMA | typeof ROLLBACK_SCHEMA | typeof UPDATE_SCHEMA
  service: string
  kind: 'compose' | 'container'
  outcome:
    | 'rebuilt'
    | 'switched'
    | 'updated'
    | 'up-to-date'
    | 'checked'
    | 'already-there'
    | 'listed'
    | 'dry-run'
    | 'cancelled'
    | 'refused'
    | 'rolled-back'
    | 'needs-person'
  /** ref: the service's tag; from: the image it ran; to: the image the run put it on */
  image: { ref: string | null; from: string | null; to: string | null }
  /** rebuild: the backups made; rollback --list: every backup of the service */
  backups: BackupImage[] | { tag: string; id: string; kind: 'image' | 'commit' }[]
  /** build and compose output */
  log: string | null
  containers: string[]
  health: {
    ok: boolean
    attempts: number
    checks: { kind: string; target: string; ok: boolean; detail: string }[]
    /** ms the checks held after they first passed */
    heldMs: number
    /** what broke the hold, when it broke */
    broke?: string
  } | null
  /** ms: the build, the recreate, and the health gate (recreate done → healthy or failed) */
  timings: { buildMs: number | null; recreateMs: number | null; gateMs: number | null }
  /** a new image that failed, left untagged for a person to look at (docker image prune removes it) */
  failedImage: string | null
  /** rebuild: the image's size before and after, and what the rebuild saved (negative: grew) */
  size?: { beforeBytes: number; afterBytes: number | null; savedBytes: number | null }
  /**
   * the build files of the image the run went to: which were used for compose, how they differ
   * from the files on disk, and (rollback --restore-files) which were written back
   */
  files?: RebuildFacts['files'] | null
  /** update: the reference pulled and what the registry said before the pull */
  update?: {
    ref: string
    /** the digest the registry gives the reference now (null: it could not be asked) */
    remoteDigest: string | null
    /** the digests the running image was pulled or pushed as */
    localDigests: string[]
    newer: boolean | null
  }
  /** update --check: one line per service */
  checks?: UpdateCheck[]
  /** rollback --list: every image with build files saved, newest first */
  buildFiles?: { imageId: string; savedAt: string; origin: BuildFiles['origin']; files: string[] }[]
  warnings: string[]
  journal: string | null
  steps: RunSummary['steps']
  refusals?: Refusal[]
  error?: string
}

/** update --check / --auto: what the registry says about one service's image. */
export interface UpdateCheck {
  service: string
  mode: 'off' | 'notify' | 'apply'
  /** the reference pulled by an update */
  ref: string | null
  /** the image the service runs */
  runs: string | null
  remoteDigest: string | null
  /** the registry has another image under ref; null: unknown (see error) */
  newer: boolean | null
  error?: string
  /** --auto, mode apply, newer: how its update ended */
  outcome?: RebuildResult['outcome']
  exitCode?: number
}

/** The registry's digest is one the image was pulled or pushed as: nothing newer (pure). */
export function isNewer(localDigests: string[], remoteDigest: string): boolean {
  return !localDigests.some((d) => d.endsWith(`@${remoteDigest}`))
}

/**
 * What an update pulls (pure): --to TAG (a tag of the service's repository) or --to REF (with a
 * ':' or '/'), else the configured services.X.image, else the reference the service runs.
 */
export function pullRefFor(o: {
  to?: string
  configured?: string
  imageRef: string
  repo: string
}): string {
  if (o.to) return /[:/@]/.test(o.to) ? o.to : `${o.repo}:${o.to}`
  return o.configured ?? o.imageRef
}

export interface RebuildOptions {
  dryRun?: boolean
  yes?: boolean
  resume?: boolean
  rollback?: boolean
  noCache?: boolean
  /** rollback: a backup tag (shipshape-prev-…, repo:tag) or an image id */
  to?: string
  /** rollback: write the build files saved with the target image back to disk (disk files saved aside first) */
  restoreFiles?: boolean
  confirm?: (q: string) => Promise<boolean>
  now?: () => Date
}

export function findService(config: Config, name: string): ServiceConfig {
  return findConfigured(config, 'services', name)
}

/** Health-check secrets named anywhere in the config: no child but compose gets them. */
export function secretVariables(config: Config): string[] {
  const hs = [
    ...Object.values(config.services).map((s) => s.health),
    ...Object.values(config.assets).map((a) => a.health),
  ]
  return [...new Set(hs.flatMap((h) => (h?.passwordEnv ? [h.passwordEnv] : [])))]
}

const BACKUP_TAG = new RegExp(`:(${PREV_PREFIX}|${COMMIT_PREFIX})(\\d{8}T\\d{6}Z)$`)

/**
 * The service's backup images, newest first: the records in stateDir whose tag still names their
 * image, and backups of older shipshape versions (labelled copies, labels shipshape.backup.*).
 */
export async function listBackups(
  engine: Engine,
  service: string,
  dirs?: { stateDir: string; backupDir: string },
): Promise<BackupImage[]> {
  const out: BackupImage[] = []
  const seen = new Set<string>()
  if (dirs) {
    for (const r of await readBackupRecords(dirs.stateDir, service)) {
      const img = await engine.inspectImage(r.tag)
      if (img?.id !== r.id) continue
      seen.add(r.tag)
      out.push({
        tag: r.tag,
        id: r.id,
        kind: r.kind,
        created: r.created,
        sizeBytes: img.sizeBytes,
        source: r.source,
      })
    }
  }
  const images = await engine.listImages({ labels: [`${BACKUP_LABEL}=${service}`] })
  for (const img of images) {
    for (const tag of img.tags) {
      const m = BACKUP_TAG.exec(tag)
      if (!m || seen.has(tag)) continue
      out.push({
        tag,
        id: img.id,
        kind: img.labels[BACKUP_KIND_LABEL] === 'commit' ? 'commit' : 'image',
        created: img.labels[BACKUP_CREATED_LABEL] ?? img.createdAt,
        sizeBytes: img.sizeBytes,
        source: img.labels[BACKUP_SOURCE_LABEL] ?? null,
      })
    }
  }
  if (dirs) {
    for (const b of out) {
      const f = await readBuildFiles(dirs.backupDir, service, b.id)
      b.files = f ? { savedAt: f.savedAt, origin: f.origin } : null
    }
  }
  return out.sort((a, b) => b.created.localeCompare(a.created) || b.tag.localeCompare(a.tag))
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)

interface Prepared {
  stateDir: string
  abort: () => void
  ctx: RebuildContext
  base: RebuildResult
  refusals: Refusal[]
  prior: JournalState | undefined
}

async function prepare(
  c: { config: Config; engine: Engine; out: Output },
  name: string,
  operation: Operation,
  opts: RebuildOptions,
): Promise<Prepared> {
  const { config, engine, out } = c
  const service = findService(config, name)
  const interrupted = new AbortController()
  const now = opts.now ?? (() => new Date())
  const prior = await priorRun({
    stateDir: config.stateDir,
    operations: [operation, ...OPERATIONS.filter((o) => o !== operation)],
    key: 'service',
    target: name,
    dryRun: opts.dryRun,
    resume: opts.resume,
    rollback: opts.rollback,
    command: (op) => `shipshape ${op} ${name}`,
  })
  // priorRun judged stateDir (and the journals); the run's copies go into backupDir
  if (!opts.dryRun) await checkPrivateDir(config.backupDir, 'backupDir')
  if (opts.rollback && prior?.steps.get('health')?.status === 'done') {
    throw new RefusedError(
      `the ${operation} of ${name} in ${prior.file} had already passed its health check: there is nothing to undo, only to finish`,
      `finish it with --resume; to go back to the previous image afterwards: shipshape rollback ${name}`,
    )
  }
  const composeEnv = dockerChildEnv(engine.info.address, process.env)
  const dockerCli = process.env.SHIPSHAPE_DOCKER_CLI ?? 'docker'
  const target = await resolveTarget({
    name,
    service,
    engine,
    env: composeEnv,
    composeCommand: config.docker.compose,
    dockerCli,
    backupDir: config.backupDir,
    purpose:
      operation === REBUILD_OPERATION ? 'build' : operation === UPDATE_OPERATION ? 'pull' : 'any',
  })
  if (prior && target.kind === 'compose' && !target.compose) {
    // never let a compose service fall onto the plain-container path
    throw new RefusedError(
      `the compose project of ${name} cannot be found now (${target.refusals.map((r) => r.message).join('; ')})`,
      `put the compose file back as it was, then run the ${opts.rollback ? '--rollback' : '--resume'} again`,
    )
  }
  const first = prior?.steps.get(operation === ROLLBACK_OPERATION ? 'retag' : 'backup')?.notes ?? {}
  const built = prior?.steps.get(operation === UPDATE_OPERATION ? 'pull' : 'build')?.notes ?? {}
  const imageRef = str(first.imageRef) ?? target.imageRef
  const parsed = imageRef ? parseImageRef(imageRef) : null
  const noted = str(first.stamp)
  const stamp = noted && /^\d{8}T\d{6}Z$/.test(noted) ? noted : stampOf(now())
  const notedFiles = first.filesToKeep
  if (Array.isArray(notedFiles)) {
    target.files = (notedFiles as { path?: unknown; role?: unknown }[]).flatMap((f) =>
      typeof f.path === 'string' && typeof f.role === 'string'
        ? [{ path: f.path, role: f.role as BuildFileSource['role'] }]
        : [],
    )
  }
  const containers = Array.isArray(first.containers)
    ? (first.containers as { id: string; name: string }[])
    : target.containers.map((x) => ({ id: x.id, name: x.name }))
  const fromImageId =
    str(first.fromImageId) ??
    target.containers.find((x) => x.running)?.imageId ??
    target.containers[0]?.imageId ??
    ''
  const refWasId =
    str(first.refWasId) ??
    (imageRef ? (await engine.inspectImage(imageRef))?.id : undefined) ??
    fromImageId
  const refusals = [
    ...target.refusals,
    ...judgeService({
      name,
      service,
      imageRef: target.imageRef,
      containers: target.containers,
      needRunning: operation !== ROLLBACK_OPERATION,
    }),
  ]
  const health = service.health ?? {
    expectStatus: 200,
    timeout: 60_000,
    retries: 5,
    stableFor: 10_000,
    container: true,
  }
  let healthyBefore = typeof first.healthyBefore === 'boolean' ? first.healthyBefore : false
  const fresh = !prior
  if (fresh && refusals.length === 0) {
    // one quick try: a service already unhealthy is not one a rollback must bring back healthy
    const h = await waitHealthy(
      { ...health, retries: 0, stableFor: 0, timeout: Math.min(health.timeout, 10_000) },
      { engine, containers: target.containers.map((x) => x.name) },
    )
    healthyBefore = h.ok
    if (!h.ok) {
      target.warnings.push(
        `${name} is not healthy now: a failed ${operation} is rolled back to this unhealthy state`,
      )
    }
    if (operation !== ROLLBACK_OPERATION && engine.info.address.startsWith('unix:')) {
      const [img, container] = await Promise.all([
        engine.inspectImage(fromImageId),
        target.containers[0]
          ? engine.inspectContainer(target.containers[0].id, { size: true })
          : null,
      ])
      const need = (img?.sizeBytes ?? 0) + (container?.sizeRwBytes ?? 0)
      try {
        const space = await freeBytes(engine.info.dockerRootDir || '/var/lib/docker')
        refusals.push(
          ...judgeBuildSpace({ needBytes: need, freeBytes: space.free, dir: space.dir }),
        )
      } catch (err) {
        target.warnings.push(
          `free space of the engine's disk unknown (${(err as Error).message}): not checked`,
        )
      }
    }
  }
  // has the compose config changed since the running container was made? (compose's own hash)
  let configMatchesRunning: boolean | null = null
  const running0 = target.containers.find((x) => x.running) ?? target.containers[0]
  if (fresh && target.compose && running0) {
    const label = (await engine.listContainers()).find((x) => x.id === running0.id)?.labels[
      'com.docker.compose.config-hash'
    ]
    const now = label ? await composeConfigHash(target.compose) : null
    if (label && now) {
      configMatchesRunning = label === now
      if (!configMatchesRunning) {
        const saved = await readBuildFiles(config.backupDir, name, fromImageId)
        target.warnings.push(
          saved
            ? `the compose config of ${name} on disk is not the one ${running0.name} was made from (config hash): a way back to ${fromImageId.slice(7, 19)} runs the files saved with it, not the ones on disk`
            : `the compose config of ${name} on disk is not the one ${running0.name} was made from (config hash), and shipshape has no build files saved for ${fromImageId.slice(7, 19)}: a way back would run the old image under the edited files`,
        )
      }
    }
  }
  for (const w of target.warnings) out.warn(w)
  const ctx: RebuildContext = {
    operation,
    service: name,
    config: service,
    kind: target.kind,
    imageRef: imageRef ?? '',
    repo: parsed?.repo ?? '',
    tag: parsed?.tag ?? '',
    stamp,
    paths: rebuildPaths({
      operation,
      service: name,
      stamp,
      backupDir: config.backupDir,
      stateDir: config.stateDir,
    }),
    fromImageId,
    refWasId,
    toImageId: str(built.toImageId) ?? str(first.toImageId) ?? null,
    containers,
    compose: target.compose,
    build: target.build,
    filesToKeep: target.files,
    stateDir: config.stateDir,
    backupDir: config.backupDir,
    configMatchesRunning,
    health,
    healthyBefore,
    noCache: Boolean(opts.noCache),
    buildEnv: dockerChildEnv(engine.info.address, process.env, secretVariables(config)),
    dockerCli,
    engine,
    out,
    now,
    facts: { backups: [] },
    signal: interrupted.signal,
  }
  const base: RebuildResult = {
    schema:
      operation === REBUILD_OPERATION
        ? REBUILD_SCHEMA
        : operation === UPDATE_OPERATION
          ? UPDATE_SCHEMA
          : ROLLBACK_SCHEMA,
    service: name,
    kind: target.kind,
    outcome: 'dry-run',
    image: { ref: imageRef, from: fromImageId || null, to: ctx.toImageId },
    backups: [],
    log: null,
    containers: containers.map((x) => x.name),
    health: null,
    timings: { buildMs: null, recreateMs: null, gateMs: null },
    failedImage: null,
    warnings: [...target.warnings],
    journal: null,
    steps: [],
  }
  return {
    stateDir: config.stateDir,
    abort: () => interrupted.abort(new Error('interrupted')),
    ctx,
    base,
    refusals,
    prior,
  }
}

/** The image's size before and after a rebuild (inspect's Size), and the bytes saved. */
async function sizes(
  engine: Engine,
  from: string,
  to: string,
): Promise<NonNullable<RebuildFacts['size']>> {
  const [a, b] = await Promise.all([engine.inspectImage(from), engine.inspectImage(to)])
  const before = a?.sizeBytes ?? 0
  const after = b ? b.sizeBytes : null
  return {
    beforeBytes: before,
    afterBytes: after,
    savedBytes: after === null ? null : before - after,
  }
}

function refuse(name: string, operation: string, p: Prepared): never {
  const lines = p.refusals.map((r) => `${r.message}${r.remedy ? ` (fix: ${r.remedy})` : ''}`)
  const err = new RefusedError(
    p.refusals.length === 1
      ? `${operation} ${name} refused: ${lines[0]}`
      : `${operation} ${name} refused, nothing changed:\n  - ${lines.join('\n  - ')}`,
    p.refusals.length === 1 ? undefined : 'fix each of the above, then run it again',
  )
  ;(err as { result?: RebuildResult }).result = {
    ...p.base,
    outcome: 'refused',
    refusals: p.refusals,
  }
  throw err
}

function finish(
  p: Prepared,
  summary: RunSummary,
  success: 'rebuilt' | 'switched' | 'updated',
  opts: RebuildOptions,
  error?: unknown,
): RebuildResult {
  const f: RebuildFacts = p.ctx.facts
  const outcome: RebuildResult['outcome'] =
    summary.outcome === 'ok' ? (opts.rollback ? 'rolled-back' : success) : summary.outcome
  const logUsed = summary.steps.some(
    (s) => s.status !== 'pending' && (s.id === 'build' || s.id === 'recreate'),
  )
  return {
    ...p.base,
    outcome,
    image: { ...p.base.image, to: p.ctx.toImageId },
    backups: f.backups,
    log: logUsed ? p.ctx.paths.log : null,
    containers: f.containers ?? p.base.containers,
    health: f.health ?? null,
    timings: {
      buildMs: f.buildMs ?? null,
      recreateMs: f.recreateMs ?? null,
      gateMs: f.gateMs ?? null,
    },
    failedImage: f.failedImageId ?? null,
    ...(f.size ? { size: f.size } : {}),
    ...(f.files ? { files: f.files } : {}),
    warnings: [
      ...p.base.warnings,
      ...(f.filesFrom?.differ.length
        ? [
            `runs with the compose files saved with ${f.filesFrom.imageId.slice(7, 19)}; on disk ${f.filesFrom.differ.join(', ')} differ`,
          ]
        : []),
      ...(f.restoreFailed ? [`the build files were not written back: ${f.restoreFailed}`] : []),
    ],
    journal: summary.journal,
    steps: summary.steps,
    ...(error ? { error: (error as Error).message } : {}),
  }
}

/**
 * Under the lock, after the confirmation: another command may have run while a person read the
 * plan. An unfinished run of the other operation, or a service no longer on what was read, stops
 * this one before anything changes.
 */
async function recheck(p: Prepared, operation: string, opts: RebuildOptions): Promise<void> {
  const stateDir = p.stateDir
  let blocking: { file: string } | undefined
  let other = ''
  for (const op of OPERATIONS.filter((o) => o !== operation)) {
    blocking = (await findUnfinishedJournals(stateDir, op)).find(
      (j) => j.args.service === p.ctx.service,
    )
    if (blocking) {
      other = op
      break
    }
  }
  if (blocking) {
    throw new RefusedError(
      `an unfinished ${other} run of ${p.ctx.service} is in ${blocking.file}`,
      `finish it first: shipshape ${other} ${p.ctx.service} --resume (or --rollback)`,
    )
  }
  if (opts.resume || opts.rollback) return
  const now = await serviceContainers(p.ctx)
  const details = await Promise.all(now.map((x) => p.ctx.engine.inspectContainer(x.id)))
  const same =
    now.length === p.ctx.containers.length &&
    p.ctx.containers.every((o) => now.some((x) => x.id === o.id)) &&
    details.some((d) => d?.imageId === p.ctx.fromImageId)
  if (!same) {
    throw new RefusedError(
      `${p.ctx.service} changed while the plan was shown (its containers or image are not what was read)`,
      'run the command again',
    )
  }
}

async function run(
  p: Prepared,
  operation: string,
  steps: typeof rebuildSteps,
  success: 'rebuilt' | 'switched' | 'updated',
  config: Config,
  opts: RebuildOptions,
): Promise<RebuildResult> {
  // the first Ctrl-C stops a build at once (its process group), so the runner can undo now
  // rather than after a build of up to buildTimeout; the runner's own trap does the rest
  const stop = () => p.abort()
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  try {
    const summary = await runRunbook(steps, p.ctx, {
      dryRun: opts.dryRun,
      yes: opts.yes,
      resume: opts.resume,
      rollback: opts.rollback,
      stateDir: config.stateDir,
      operation,
      args: { service: p.ctx.service },
      out: p.ctx.out,
      confirm: opts.confirm,
      now: p.ctx.now,
      recheck: () => recheck(p, operation, opts),
    })
    if (summary.outcome === 'ok' && operation !== ROLLBACK_OPERATION && p.ctx.toImageId) {
      p.ctx.facts.size = await sizes(p.ctx.engine, p.ctx.fromImageId, p.ctx.toImageId)
    }
    return finish(p, summary, success, opts)
  } catch (err) {
    if (err instanceof RunbookRolledBackError && p.ctx.facts.wayBackUnhealthy) {
      // back as it was, but not healthy: for a person to look at
      const e = new RunbookNeedsPersonError(
        `${err.message}; the way back is not healthy: ${p.ctx.facts.wayBackUnhealthy}`,
        `look at ${p.ctx.service} (its logs, shipshape doctor); the run is finished, nothing to resume`,
        err.summary,
        err,
      )
      ;(e as { result?: RebuildResult }).result = finish(p, err.summary, success, opts, e)
      throw e
    }
    if (err instanceof RunbookRolledBackError || err instanceof RunbookNeedsPersonError) {
      ;(err as { result?: RebuildResult }).result = finish(p, err.summary, success, opts, err)
    }
    throw err
  } finally {
    process.off('SIGINT', stop)
    process.off('SIGTERM', stop)
  }
}

export async function runRebuild(
  c: { config: Config; engine: Engine; out: Output },
  name: string,
  opts: RebuildOptions = {},
): Promise<RebuildResult> {
  const p = await prepare(c, name, REBUILD_OPERATION, opts)
  if (p.refusals.length && !(p.prior && (opts.resume || opts.rollback))) refuse(name, 'rebuild', p)
  c.out.info(
    `${name}: rebuild ${p.ctx.imageRef} (${p.ctx.kind === 'compose' ? `compose ${p.ctx.compose?.cli.version} project ${p.ctx.compose?.project}` : 'plain container'}; runs ${p.ctx.fromImageId.slice(7, 19)}${opts.noCache ? '; --no-cache' : ''})`,
  )
  return run(p, REBUILD_OPERATION, rebuildSteps, 'rebuilt', c.config, opts)
}

export async function runRollback(
  c: { config: Config; engine: Engine; out: Output },
  name: string,
  opts: RebuildOptions = {},
): Promise<RebuildResult> {
  const p = await prepare(c, name, ROLLBACK_OPERATION, opts)
  if (p.refusals.length && !(p.prior && (opts.resume || opts.rollback))) refuse(name, 'rollback', p)
  const dirs = { stateDir: c.config.stateDir, backupDir: c.config.backupDir }
  const backups = await listBackups(c.engine, name, dirs)
  // a --resume does what the run it finishes was confirmed with
  p.ctx.restoreFiles =
    Boolean(opts.restoreFiles) || p.prior?.steps.get('retag')?.notes.restoreFiles === true
  if (!p.ctx.toImageId) {
    const runningNow = (await serviceContainers(p.ctx)).length
      ? (
          await Promise.all(
            (await serviceContainers(p.ctx)).map((x) => c.engine.inspectContainer(x.id)),
          )
        ).some((d) => d?.running)
      : false
    const cur = await c.engine.inspectImage(p.ctx.fromImageId)
    // what runs may itself be a backup: a prev tag on it (its earliest), or an older labelled copy
    const asPrev = backups
      .filter((b) => b.kind === 'image' && b.id === p.ctx.fromImageId)
      .map((b) => b.created)
      .sort()[0]
    const running = {
      id: p.ctx.fromImageId,
      source: cur?.labels[BACKUP_LABEL] ? (cur.labels[BACKUP_SOURCE_LABEL] ?? null) : null,
      created: cur?.labels[BACKUP_LABEL]
        ? (cur.labels[BACKUP_CREATED_LABEL] ?? null)
        : (asPrev ?? null),
    }
    let to: { id: string; label: string; source: string | null } | null = null
    if (opts.to) {
      const b = backups.find((x) => x.tag === opts.to || x.tag.endsWith(`:${opts.to}`))
      const img = b ? null : await c.engine.inspectImage(opts.to)
      to = b
        ? { id: b.id, label: b.tag, source: b.source }
        : img
          ? { id: img.id, label: opts.to, source: img.labels[BACKUP_SOURCE_LABEL] ?? null }
          : null
      if (!to) {
        throw new UsageError(
          `no backup or image ${opts.to} for ${name}`,
          `list the backups with: shipshape rollback ${name} --list`,
        )
      }
    } else {
      const b = chooseRollback(backups, running)
      if (!b) {
        p.refusals.push({
          check: 'backup',
          message: `${name} has no earlier shipshape-prev backup to roll back to (it runs ${p.ctx.fromImageId.slice(7, 19)})`,
          remedy: `name one with --to (shipshape rollback ${name} --list)`,
        })
        refuse(name, 'rollback', p)
      }
      to = { id: b.id, label: b.tag, source: b.source }
    }
    // only a running service is "already there": a stopped one is recreated and checked
    if (
      runningNow &&
      (to.id === p.ctx.fromImageId || to.source === p.ctx.fromImageId) &&
      !opts.resume &&
      !opts.rollback
    ) {
      c.out.info(`${name} already runs ${to.label} (${to.id.slice(7, 19)}): nothing to do`)
      return { ...p.base, outcome: 'already-there', image: { ...p.base.image, to: to.id } }
    }
    p.ctx.toImageId = to.id
    p.base.image.to = to.id
    c.out.info(
      `${name}: roll back ${p.ctx.imageRef} from ${p.ctx.fromImageId.slice(7, 19)} to ${to.label} (${to.id.slice(7, 19)})`,
    )
  }
  return run(p, ROLLBACK_OPERATION, rollbackSteps, 'switched', c.config, opts)
}

/** A result that ran no runbook (listed, checked): the shape's fields, empty. */
function resultOf(
  o: Pick<RebuildResult, 'schema' | 'service' | 'kind' | 'outcome'> & Partial<RebuildResult>,
): RebuildResult {
  const { schema, service, kind, outcome, ...rest } = o
  // schema first in the JSON, as in every other result of the shape
  return {
    schema,
    service,
    kind,
    outcome,
    image: { ref: null, from: null, to: null },
    backups: [],
    log: null,
    containers: [],
    health: null,
    timings: { buildMs: null, recreateMs: null, gateMs: null },
    failedImage: null,
    warnings: [],
    journal: null,
    steps: [],
    ...rest,
  }
}

export async function runListBackups(
  c: { config: Config; engine: Engine },
  name: string,
): Promise<RebuildResult> {
  const service = findService(c.config, name)
  const backups = await listBackups(c.engine, name, {
    stateDir: c.config.stateDir,
    backupDir: c.config.backupDir,
  })
  return resultOf({
    schema: ROLLBACK_SCHEMA,
    service: name,
    kind: service.compose ? 'compose' : 'container',
    outcome: 'listed',
    backups,
    buildFiles: (await listBuildFiles(c.config.backupDir, name)).map((r) => ({
      imageId: r.imageId,
      savedAt: r.savedAt,
      origin: r.origin,
      files: r.entries.map((e) => e.path),
    })),
  })
}

/** Asks the registry about `ref` against the image that runs: never pulls. */
async function askRegistry(
  engine: Engine,
  ref: string,
  runs: string,
): Promise<NonNullable<RebuildResult['update']> & { error?: string }> {
  const local = (await engine.inspectImage(runs))?.digests ?? []
  try {
    const remote = await engine.registryDigest(ref)
    return { ref, remoteDigest: remote, localDigests: local, newer: isNewer(local, remote) }
  } catch (err) {
    return {
      ref,
      remoteDigest: null,
      localDigests: local,
      newer: null,
      error: (err as Error).message.split('\n')[0] ?? 'unknown',
    }
  }
}

/**
 * `shipshape update SERVICE`: a service that runs a registry image gets the newer one, guarded
 * like a rebuild: backup → pull → recreate → health gate → keep-files → cleanup, undone on failure.
 * The registry is asked first: when it gives the image that runs, nothing is done (up-to-date).
 */
export async function runUpdate(
  c: { config: Config; engine: Engine; out: Output },
  name: string,
  opts: RebuildOptions = {},
): Promise<RebuildResult> {
  const p = await prepare(c, name, UPDATE_OPERATION, opts)
  if (p.refusals.length && !(p.prior && (opts.resume || opts.rollback))) refuse(name, 'update', p)
  const noted = str(p.prior?.steps.get('pull')?.notes.pullRef)
  const ref =
    noted ??
    pullRefFor({
      to: opts.to,
      configured: p.ctx.config.image,
      imageRef: p.ctx.imageRef,
      repo: p.ctx.repo,
    })
  if (!parseImageRef(ref)) throw new UsageError(`${ref} is not an image reference with a tag`)
  p.ctx.pullRef = ref
  if (!p.prior) {
    const asked = await askRegistry(c.engine, ref, p.ctx.fromImageId)
    const { error, ...update } = asked
    p.base.update = update
    if (error) {
      c.out.warn(`the registry could not be asked about ${ref} (${error}): pulling to see`)
    }
    if (asked.newer === false) {
      c.out.info(
        `${name} runs ${ref} as the registry has it (${asked.remoteDigest?.slice(0, 19)}…): up to date`,
      )
      return { ...p.base, outcome: 'up-to-date' }
    }
  }
  c.out.info(
    `${name}: update ${p.ctx.imageRef} to ${ref} (${p.ctx.kind === 'compose' ? `compose ${p.ctx.compose?.cli.version} project ${p.ctx.compose?.project}` : 'plain container'}; runs ${p.ctx.fromImageId.slice(7, 19)})`,
  )
  if (ref !== p.ctx.imageRef) {
    c.out.warn(
      `${ref} is not the tag ${name} runs: it is put under ${p.ctx.imageRef}; name ${ref} in the compose file (or the container) to make it last`,
    )
  }
  return run(p, UPDATE_OPERATION, updateSteps, 'updated', c.config, opts)
}

/**
 * `update --check` (read-only) and `update --auto` (the timer's: mode apply updates, notify only
 * says). Services: those named, else every one whose update is not off.
 */
export async function runUpdateCheck(
  c: { config: Config; engine: Engine; out: Output },
  names: string[],
  o: { auto?: boolean; yes?: boolean; confirm?: RebuildOptions['confirm'] } = {},
): Promise<RebuildResult> {
  const checks = await checkUpdates(c, names)
  if (o.auto) {
    for (const line of checks) {
      if (line.mode !== 'apply' || line.newer !== true) continue
      try {
        const r = await runUpdate(c, line.service, { yes: o.yes, confirm: o.confirm })
        line.outcome = r.outcome
        line.exitCode = 0
      } catch (err) {
        const r = (err as { result?: RebuildResult }).result
        line.outcome = r?.outcome ?? 'refused'
        line.exitCode = (err as { exitCode?: number }).exitCode ?? 1
        line.error = (err as Error).message.split('\n')[0]
      }
    }
  }
  return resultOf({
    schema: UPDATE_SCHEMA,
    service: names.join(',') || '*',
    kind: 'compose',
    outcome: 'checked',
    checks,
  })
}

/**
 * What the registry says about each service's image (read-only: never pulls). Services: those
 * named, else every one whose update is not off. The nightly report shows the same.
 */
export async function checkUpdates(
  c: { config: Config; engine: Engine },
  names: string[],
): Promise<UpdateCheck[]> {
  const chosen = names.length
    ? names
    : Object.entries(c.config.services)
        .filter(([, s]) => s.update !== 'off')
        .map(([n]) => n)
  const checks: UpdateCheck[] = []
  const dockerCli = process.env.SHIPSHAPE_DOCKER_CLI ?? 'docker'
  for (const name of chosen) {
    const service = findService(c.config, name)
    const line: UpdateCheck = {
      service: name,
      mode: service.update,
      ref: null,
      runs: null,
      remoteDigest: null,
      newer: null,
    }
    checks.push(line)
    try {
      const t = await resolveTarget({
        name,
        service,
        engine: c.engine,
        env: dockerChildEnv(c.engine.info.address, process.env),
        composeCommand: c.config.docker.compose,
        dockerCli,
        backupDir: c.config.backupDir,
        purpose: 'pull',
      })
      const runs = t.containers.find((x) => x.running)?.imageId ?? t.containers[0]?.imageId
      const parsed = t.imageRef ? parseImageRef(t.imageRef) : null
      if (!runs || !t.imageRef || !parsed) {
        line.error = t.refusals.map((r) => r.message).join('; ') || 'no image to compare'
        continue
      }
      line.runs = runs
      line.ref = pullRefFor({ configured: service.image, imageRef: t.imageRef, repo: parsed.repo })
      const asked = await askRegistry(c.engine, line.ref, runs)
      line.remoteDigest = asked.remoteDigest
      line.newer = asked.newer
      if (asked.error) line.error = asked.error
    } catch (err) {
      line.error = (err as Error).message.split('\n')[0]
    }
  }
  return checks
}
