/**
 * Which containers, image and build a configured service has, read from the host config, the
 * compose file and the engine. Pure judgements are in policy.ts; this file only reads.
 */
import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { parse as parseYaml } from 'yaml'
import type { ServiceConfig } from '../config/index.js'
import { composeImageRef, detectCompose, type ComposeTarget } from '../docker/compose.js'
import type { Engine } from '../docker/engine.js'
import type { ContainerSummary } from '../docker/types.js'
import type { Refusal } from '../shared/refusal.js'
import {
  COMPOSE_ONEOFF_LABEL as ONEOFF,
  COMPOSE_PROJECT_LABEL as PROJECT,
  COMPOSE_SERVICE_LABEL as SERVICE,
  COMPOSE_WORKING_DIR_LABEL as WORKING_DIR,
  labelFiles,
} from '../shared/labels.js'
import { dependentsOn, planRecreateOn } from '../docker/recreate.js'
import { RefusedError } from '../errors.js'
import { runCaptured } from '../host/run.js'
import type { RebuildContext } from './context.js'
import type { BuildFileSource } from './records.js'

export interface ServiceTarget {
  kind: 'compose' | 'container'
  /** the service's containers, running ones first */
  containers: { id: string; name: string; running: boolean; imageId: string }[]
  imageRef: string | null
  compose: ComposeTarget | null
  build: { context: string; dockerfile: string; network?: string } | null
  /** the build inputs (compose files, .env, Dockerfile, .dockerignore): kept by the backup step */
  files: BuildFileSource[]
  refusals: Refusal[]
  warnings: string[]
}

const exists = (p: string) =>
  stat(p).then(
    (s) => s,
    () => null,
  )

/** Compose containers of project/service (one-off `run` containers left out), by name. */
export function composeContainersOf(
  all: ContainerSummary[],
  project: string,
  service: string,
): ContainerSummary[] {
  return all
    .filter(
      (c) =>
        c.labels[PROJECT] === project &&
        c.labels[SERVICE] === service &&
        !/^true$/i.test(c.labels[ONEOFF] ?? ''),
    )
    .sort((a, b) => a.name.localeCompare(b.name))
}

/** The service's containers now (after a recreate their ids change). */
export async function serviceContainers(
  c: Pick<RebuildContext, 'engine' | 'compose' | 'containers'>,
): Promise<{ id: string; name: string }[]> {
  if (c.compose) {
    const all = await c.engine.listContainers()
    return composeContainersOf(all, c.compose.project, c.compose.service).map((x) => ({
      id: x.id,
      name: x.name,
    }))
  }
  const name = c.containers[0]?.name
  if (!name) return []
  const d = await c.engine.inspectContainer(name)
  return d ? [{ id: d.id, name }] : []
}

/** The build a compose service has, read from the file itself (for the backup copy). */
function composeBuildOf(
  file: string,
  doc: unknown,
  service: string,
): { context: string; dockerfile: string } | null {
  const svc = (doc as { services?: Record<string, { build?: unknown }> })?.services?.[service]
  const b = svc?.build
  if (b === undefined || b === null) return null
  const dir = path.dirname(file)
  if (typeof b === 'string') {
    const context = path.resolve(dir, b)
    return { context, dockerfile: path.join(context, 'Dockerfile') }
  }
  const o = b as { context?: string; dockerfile?: string }
  const context = path.resolve(dir, o.context ?? '.')
  return { context, dockerfile: path.resolve(context, o.dockerfile ?? 'Dockerfile') }
}

/**
 * A compose file a container was made from, as the operator's path: a way back runs compose with
 * the copies saved in `<backupDir>/build-files/…`, and its containers then name those copies.
 */
export async function originalComposeFile(file: string, backupDir?: string): Promise<string> {
  if (!backupDir) return file
  const root = path.join(backupDir, 'build-files') + path.sep
  if (!file.startsWith(root)) return file
  try {
    // <record>/files/<kept name>: the record's files.json is beside files/
    const rec = JSON.parse(
      await readFile(path.join(path.dirname(path.dirname(file)), 'files.json'), 'utf8'),
    ) as {
      entries?: { path: string; kept: string }[]
    }
    return rec.entries?.find((e) => e.kept === path.basename(file))?.path ?? file
  } catch {
    return file
  }
}

type TargetQuery = {
  name: string
  service: ServiceConfig
  engine: Engine
  env: NodeJS.ProcessEnv
  composeCommand?: string[]
  dockerCli: string
  /** where saved build files live: a container made from them names them, mapped back here */
  backupDir?: string
  /**
   * build (rebuild): a Dockerfile is needed; pull (update): an image from a registry, so no
   * build: section; any (rollback): either
   */
  purpose?: 'build' | 'pull' | 'any'
}

const byState = (xs: ContainerSummary[]) =>
  [...xs]
    .sort((a, b) => Number(b.state === 'running') - Number(a.state === 'running'))
    .map((x) => ({ id: x.id, name: x.name, running: x.state === 'running', imageId: x.imageId }))

export async function resolveTarget(o: TargetQuery): Promise<ServiceTarget> {
  const purpose = o.purpose ?? 'build'
  const s = o.service
  const t: ServiceTarget = {
    kind: s.compose ? 'compose' : 'container',
    containers: [],
    imageRef: null,
    compose: null,
    build: null,
    files: [],
    refusals: [],
    warnings: [],
  }
  const all = await o.engine.listContainers()
  return s.compose
    ? resolveCompose(o, t, all, s.compose, purpose)
    : resolveContainer(o, t, all, purpose)
}

/** A compose service: its project (from the running containers), files, build, compose CLI. */
async function resolveCompose(
  o: TargetQuery,
  t: ServiceTarget,
  all: ContainerSummary[],
  file: string,
  purpose: NonNullable<TargetQuery['purpose']>,
): Promise<ServiceTarget> {
  const s = o.service
  const serviceName = s.service ?? o.name
  const st = await exists(file)
  if (!st?.isFile()) {
    t.refusals.push({
      check: 'compose-file',
      message: `compose file ${file} of ${o.name} is missing`,
      remedy: 'fix services.' + o.name + '.compose in the host config',
    })
    return t
  }
  // the project the running containers belong to (compose names it after the directory otherwise)
  const filesOf = async (c: ContainerSummary) =>
    Promise.all(labelFiles(c).map((f) => originalComposeFile(f, o.backupDir)))
  const candidates: ContainerSummary[] = []
  for (const c of all) {
    if (c.labels[SERVICE] !== serviceName) continue
    if ((await filesOf(c)).includes(file) || c.labels[WORKING_DIR] === path.dirname(file)) {
      candidates.push(c)
    }
  }
  const projects = [...new Set(candidates.map((c) => c.labels[PROJECT] ?? ''))]
  if (projects.length > 1) {
    t.refusals.push({
      check: 'containers',
      message: `containers of ${serviceName} from ${file} belong to several projects (${projects.join(', ')})`,
      remedy:
        'remove the stale project’s containers (docker compose -p NAME down), then run it again',
    })
    return t
  }
  const project = projects[0]
  if (!project) {
    t.refusals.push({
      check: 'containers',
      message: `no container of compose service ${serviceName} (${file}) exists`,
      remedy: `start it first: docker compose -f ${file} up -d ${serviceName}`,
    })
    return t
  }
  const first = candidates[0]!
  // every file the project was started with (override files too): -f turns compose's own
  // discovery off, so a rebuild with the configured file alone would drop the others
  const files = await filesOf(first)
  const extraFiles = files.filter((f) => f !== file)
  for (const f of extraFiles) {
    if (!(await exists(f))?.isFile()) {
      t.refusals.push({
        check: 'compose-file',
        message: `${serviceName} was started with ${f} too, and it is missing`,
        remedy: 'put it back, or start the service again from the files that exist',
      })
    }
  }
  const { build, dockerfile } = await composeBuild(
    o,
    t,
    [file, ...extraFiles],
    serviceName,
    purpose,
  )
  const cwd = first.labels[WORKING_DIR] || path.dirname(file)
  t.files = [
    ...[file, ...extraFiles].map((p) => ({ path: p, role: 'compose' as const })),
    { path: path.join(cwd, '.env'), role: 'env' },
    ...(dockerfile && build
      ? [
          { path: dockerfile, role: 'dockerfile' as const },
          { path: path.join(build.context, '.dockerignore'), role: 'dockerignore' as const },
        ]
      : []),
  ]
  // compose missing is a component unavailable (exit 3), not a refusal
  const cli = await detectCompose({ configured: o.composeCommand, env: o.env })
  t.compose = {
    cli,
    file,
    extraFiles,
    project,
    service: serviceName,
    cwd,
    env: o.env,
    engineApiVersion: o.engine.info.engineApiVersion,
  }
  t.containers = byState(composeContainersOf(all, project, serviceName))
  try {
    t.imageRef = await composeImageRef(t.compose)
  } catch (err) {
    t.refusals.push({
      check: 'compose',
      message: `compose cannot read ${file}: ${(err as Error).message.split('\n')[0]}`,
    })
  }
  return t
}

/** The build: section of the service across its compose files, and the Dockerfile it names. */
async function composeBuild(
  o: TargetQuery,
  t: ServiceTarget,
  files: string[],
  serviceName: string,
  purpose: NonNullable<TargetQuery['purpose']>,
): Promise<{ build: { context: string; dockerfile: string } | null; dockerfile: string | null }> {
  const [file, ...extraFiles] = files as [string, ...string[]]
  let build: { context: string; dockerfile: string } | null = null
  for (const f of [file, ...extraFiles]) {
    let doc: unknown
    try {
      doc = parseYaml(await readFile(f, 'utf8'))
    } catch (err) {
      if ((await exists(f))?.isFile()) {
        t.refusals.push({
          check: 'compose-file',
          message: `compose file ${f} does not parse: ${(err as Error).message.split('\n')[0]}`,
        })
      }
      continue
    }
    build = composeBuildOf(f, doc, serviceName) ?? build
  }
  let dockerfile = build?.dockerfile ?? null
  if (purpose === 'pull' && dockerfile) {
    t.refusals.push({
      check: 'build',
      message: `compose service ${serviceName} has a build: section: its image is built here, not pulled`,
      remedy: `shipshape rebuild ${o.name}`,
    })
  } else if (!dockerfile && purpose === 'build') {
    t.refusals.push({
      check: 'build',
      message: `compose service ${serviceName} in ${[file, ...extraFiles].join(', ')} has no build: section (nothing to rebuild)`,
      remedy:
        'rebuild builds from a Dockerfile: add build: to the service, or pull a new image instead',
    })
  } else if (dockerfile && !(await exists(dockerfile))?.isFile()) {
    if (purpose === 'build') {
      t.refusals.push({
        check: 'build',
        message: `the Dockerfile of ${serviceName} (${dockerfile}) is missing`,
      })
    }
    dockerfile = null
  }
  return { build, dockerfile }
}

/** A plain container with a build directory: what a recreate would refuse, refused now. */
async function resolveContainer(
  o: TargetQuery,
  t: ServiceTarget,
  all: ContainerSummary[],
  purpose: NonNullable<TargetQuery['purpose']>,
): Promise<ServiceTarget> {
  const s = o.service
  const name = s.container ?? o.name
  const c = await o.engine.inspectContainer(name)
  if (!c) {
    t.refusals.push({
      check: 'containers',
      message: `no container named ${name}`,
      remedy: 'create it first, or fix services.' + o.name + '.container',
    })
    return t
  }
  t.containers = [
    { id: c.id, name: c.name.replace(/^\//, ''), running: c.running, imageId: c.imageId },
  ]
  t.imageRef = c.image
  if (purpose === 'pull' && s.build) {
    t.refusals.push({
      check: 'build',
      message: `${o.name} has a build directory (services.${o.name}.build): its image is built here, not pulled`,
      remedy: `shipshape rebuild ${o.name}`,
    })
  }
  if (!s.build && purpose === 'build') {
    t.refusals.push({
      check: 'build',
      message: `${o.name} has no build directory`,
      remedy: `add services.${o.name}.build (and dockerfile if not ${'Dockerfile'}) to the host config`,
    })
    return t
  }
  if (s.build) {
    const dockerfile = path.resolve(s.build, s.dockerfile ?? 'Dockerfile')
    if (!(await exists(s.build))?.isDirectory()) {
      if (purpose === 'build') {
        t.refusals.push({ check: 'build', message: `build directory ${s.build} is missing` })
      }
    } else if (!(await exists(dockerfile))?.isFile()) {
      if (purpose === 'build') {
        t.refusals.push({ check: 'build', message: `Dockerfile ${dockerfile} is missing` })
      }
    } else {
      t.files = [
        { path: dockerfile, role: 'dockerfile' },
        { path: path.join(s.build, '.dockerignore'), role: 'dockerignore' },
      ]
    }
    t.build = { context: s.build, dockerfile, network: s.buildNetwork }
  }
  // what the recreate step would refuse (a --rm container, a namespace shared with itself) is
  // refused now, before the backup and the build
  try {
    await planRecreateOn(o.engine, { containerId: c.id, imageId: c.imageId, newImage: c.image })
  } catch (err) {
    if (!(err instanceof RefusedError)) throw err
    t.refusals.push({ check: 'recreate', message: err.message, remedy: err.remedy })
  }
  // containers that hold on to this one by its id would be left on the old one, which goes
  const others = all.filter((x) => x.id !== c.id).map((x) => x.id)
  const deps = await dependentsOn(o.engine, { id: c.id, name: t.containers[0]!.name }, others)
  if (deps.length) {
    t.refusals.push({
      check: 'dependents',
      message: `${t.containers[0]!.name} is held by its id by ${deps.map((d) => `${d.name} (${d.how})`).join(', ')}: a new container would leave ${deps.length === 1 ? 'it' : 'them'} on the old one, which the rebuild removes`,
      remedy:
        'recreate those containers together with it by hand, or join them by something that survives a recreate (a user-defined network, a named volume)',
    })
  }
  // the build and the pull run the docker CLI: missing → a component unavailable (exit 3), now
  await runCaptured([o.dockerCli, '--version'], { env: o.env, timeoutMs: 10_000 })
  return t
}
