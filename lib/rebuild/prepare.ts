/**
 * What a rebuild, rollback or update run is about, built once the runner knows the prior run
 * (the unfinished one a --resume/--rollback continues): the service resolved (target.ts), what
 * the journal noted first (a continued run goes on with the facts it started with, not today's),
 * the refusals (policy.ts), the health and space before the run, and the run's context.
 */
import type { Output } from '../cli/output.js'
import type { Config, ServiceConfig } from '../config/index.js'
import { findConfigured } from '../config/services.js'
import { composeConfigHash } from '../docker/compose.js'
import type { Engine } from '../docker/engine.js'
import { RefusedError } from '../errors.js'
import { waitHealthy } from '../health/check.js'
import { dockerChildEnv } from '../host/run.js'
import { freeBytes } from '../host/space.js'
import type { JournalState } from '../runbook/index.js'
import type { Refusal } from '../shared/refusal.js'
import { stampOf } from '../shared/stamp.js'
import { parseImageRef, rebuildPaths, type RebuildContext } from './context.js'
import { judgeBuildSpace, judgeService } from './policy.js'
import { rebuildPorts } from './ports.js'
import { readBuildFiles, type BuildFileSource } from './records.js'
import {
  REBUILD_OPERATION,
  ROLLBACK_OPERATION,
  SCHEMAS,
  UPDATE_OPERATION,
  type Operation,
  type RebuildOptions,
  type RebuildResult,
} from './result.js'
import { resolveTarget, type ServiceTarget as Target } from './target.js'

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

export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)

/** The docker CLI every child of a run calls (tests point it at their own). */
export const dockerCliOf = (env: NodeJS.ProcessEnv): string => env.SHIPSHAPE_DOCKER_CLI ?? 'docker'

export interface Prepared {
  abort: () => void
  ctx: RebuildContext
  base: RebuildResult
  refusals: Refusal[]
  prior: JournalState | undefined
}

export interface Command {
  config: Config
  engine: Engine
  out: Output
}

const DEFAULT_HEALTH = {
  expectStatus: 200,
  timeout: 60_000,
  retries: 5,
  stableFor: 10_000,
  container: true,
}

export async function prepare(
  c: Command,
  name: string,
  operation: Operation,
  opts: RebuildOptions,
  prior: JournalState | undefined,
): Promise<Prepared> {
  const { config, engine, out } = c
  const service = findService(config, name)
  const interrupted = new AbortController()
  const now = opts.now ?? (() => new Date())
  if (opts.rollback && prior?.steps.get('health')?.status === 'done') {
    throw new RefusedError(
      `the ${operation} of ${name} in ${prior.file} had already passed its health check: there is nothing to undo, only to finish`,
      `finish it with --resume; to go back to the previous image afterwards: shipshape rollback ${name}`,
    )
  }
  const dockerCli = dockerCliOf(process.env)
  const target = await resolveTarget({
    name,
    service,
    engine,
    env: dockerChildEnv(engine.info.address, process.env),
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
  const noted = await fromJournal(c.engine, operation, target, prior, now)
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
  const health = service.health ?? DEFAULT_HEALTH
  let healthyBefore = noted.healthyBefore
  let configMatchesRunning: boolean | null = null
  if (!prior && refusals.length === 0) {
    healthyBefore = await lookBefore(c, name, operation, target, noted.fromImageId, refusals)
  }
  if (!prior) configMatchesRunning = await composeDrift(c, name, target, noted.fromImageId)
  for (const w of target.warnings) out.warn(w)
  const ctx: RebuildContext = {
    operation,
    service: name,
    config: service,
    kind: target.kind,
    imageRef: noted.imageRef ?? '',
    repo: noted.parsed?.repo ?? '',
    tag: noted.parsed?.tag ?? '',
    stamp: noted.stamp,
    paths: rebuildPaths({
      operation,
      service: name,
      stamp: noted.stamp,
      backupDir: config.backupDir,
      stateDir: config.stateDir,
    }),
    fromImageId: noted.fromImageId,
    refWasId: noted.refWasId,
    toImageId: noted.toImageId,
    containers: noted.containers,
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
    ports: rebuildPorts(now),
  }
  return {
    abort: () => interrupted.abort(new Error('interrupted')),
    ctx,
    base: baseResult(operation, ctx, target, noted.imageRef),
    refusals,
    prior,
  }
}

/**
 * What the first steps of a continued run noted (the image, the stamp, the containers, the files
 * kept), else what the engine says now. Sets target.files to the noted ones.
 */
async function fromJournal(
  engine: Engine,
  operation: Operation,
  target: Target,
  prior: JournalState | undefined,
  now: () => Date,
) {
  const first = prior?.steps.get(operation === ROLLBACK_OPERATION ? 'retag' : 'backup')?.notes ?? {}
  const built = prior?.steps.get(operation === UPDATE_OPERATION ? 'pull' : 'build')?.notes ?? {}
  const imageRef = str(first.imageRef) ?? target.imageRef
  const noted = str(first.stamp)
  const notedFiles = first.filesToKeep
  if (Array.isArray(notedFiles)) {
    target.files = (notedFiles as { path?: unknown; role?: unknown }[]).flatMap((f) =>
      typeof f.path === 'string' && typeof f.role === 'string'
        ? [{ path: f.path, role: f.role as BuildFileSource['role'] }]
        : [],
    )
  }
  const fromImageId =
    str(first.fromImageId) ??
    target.containers.find((x) => x.running)?.imageId ??
    target.containers[0]?.imageId ??
    ''
  return {
    imageRef,
    parsed: imageRef ? parseImageRef(imageRef) : null,
    stamp: noted && /^\d{8}T\d{6}Z$/.test(noted) ? noted : stampOf(now()),
    containers: Array.isArray(first.containers)
      ? (first.containers as { id: string; name: string }[])
      : target.containers.map((x) => ({ id: x.id, name: x.name })),
    fromImageId,
    refWasId:
      str(first.refWasId) ??
      (imageRef ? (await engine.inspectImage(imageRef))?.id : undefined) ??
      fromImageId,
    toImageId: str(built.toImageId) ?? str(first.toImageId) ?? null,
    healthyBefore: typeof first.healthyBefore === 'boolean' ? first.healthyBefore : false,
  }
}

/**
 * A new run's look before it starts: one quick health try (a service already unhealthy is not one
 * a rollback must bring back healthy) and, for a build or pull, the engine disk's free space.
 */
async function lookBefore(
  c: Command,
  name: string,
  operation: Operation,
  target: Target,
  fromImageId: string,
  refusals: Refusal[],
): Promise<boolean> {
  const { engine } = c
  const health = findService(c.config, name).health ?? DEFAULT_HEALTH
  const h = await waitHealthy(
    { ...health, retries: 0, stableFor: 0, timeout: Math.min(health.timeout, 10_000) },
    { engine, containers: target.containers.map((x) => x.name) },
  )
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
      refusals.push(...judgeBuildSpace({ needBytes: need, freeBytes: space.free, dir: space.dir }))
    } catch (err) {
      target.warnings.push(
        `free space of the engine's disk unknown (${(err as Error).message}): not checked`,
      )
    }
  }
  return h.ok
}

/** Has the compose config changed since the running container was made? (compose's own hash) */
async function composeDrift(
  c: Command,
  name: string,
  target: Target,
  fromImageId: string,
): Promise<boolean | null> {
  const running0 = target.containers.find((x) => x.running) ?? target.containers[0]
  if (!target.compose || !running0) return null
  const label = (await c.engine.listContainers()).find((x) => x.id === running0.id)?.labels[
    'com.docker.compose.config-hash'
  ]
  const now = label ? await composeConfigHash(target.compose) : null
  if (!label || !now) return null
  if (label !== now) {
    const saved = await readBuildFiles(c.config.backupDir, name, fromImageId)
    target.warnings.push(
      saved
        ? `the compose config of ${name} on disk is not the one ${running0.name} was made from (config hash): a way back to ${fromImageId.slice(7, 19)} runs the files saved with it, not the ones on disk`
        : `the compose config of ${name} on disk is not the one ${running0.name} was made from (config hash), and shipshape has no build files saved for ${fromImageId.slice(7, 19)}: a way back would run the old image under the edited files`,
    )
  }
  return label === now
}

function baseResult(
  operation: Operation,
  ctx: RebuildContext,
  target: Target,
  ref: RebuildResult['image']['ref'],
): RebuildResult {
  return {
    schema: SCHEMAS[operation],
    service: ctx.service,
    kind: target.kind,
    outcome: 'dry-run',
    image: { ref, from: ctx.fromImageId || null, to: ctx.toImageId },
    backups: [],
    log: null,
    containers: ctx.containers.map((x) => x.name),
    health: null,
    timings: { buildMs: null, recreateMs: null, gateMs: null },
    failedImage: null,
    warnings: [...target.warnings],
    journal: null,
    steps: [],
  }
}
