/**
 * Docker Compose as a port for `shipshape rebuild`: which compose the host has (v2 plugin,
 * v1 1.29 or a v2 standalone binary), and the three calls a rebuild makes — build one service,
 * recreate it on the image just built, and name that image.
 *
 * Differences handled here (checked against compose 1.29.2 and 2.26.1):
 * - default image name of a built service: `<project>_<service>` (v1), `<project>-<service>`
 *   (v2); neither adds a tag (the engine stores `:latest`, the container's Config.Image is the
 *   name as given). A service with `image:` and `build:` is built under its `image:`.
 * - `config`: v1 prints YAML of every service (profiles included), v2 prints JSON with
 *   `--format json` and leaves out services of disabled profiles unless they are named.
 * - a failed build exits 1 (v1) or 17 (v2): any non-zero exit is a failure.
 * - `up --no-build` still pulls in v2 when the service says `pull_policy: always`: v2 gets
 *   `--pull never` so the service runs what was just built.
 * - project names: v1 lower-cases and strips them, v2 refuses invalid ones; both take the
 *   `com.docker.compose.project` label as it is.
 * - v1 cannot recreate on an engine past API 1.44 (see composeV1Env).
 */
import path from 'node:path'
import { parse as parseYaml } from 'yaml'
import { UnavailableError, UsageError } from '../errors.js'
import { runCaptured, runLogged, showArgv } from '../host/run.js'
import { readIf } from '../host/durable.js'

export interface ComposeCli {
  argv: string[]
  version: 'v1' | 'v2'
  versionText: string
}

export interface ComposeTarget {
  cli: ComposeCli
  /** the compose file (absolute) */
  file: string
  /**
   * further files the project was started with, in order (override files, COMPOSE_FILE): the
   * `com.docker.compose.project.config_files` label of its containers. `-f` turns compose's own
   * discovery of them off, so they are passed too.
   */
  extraFiles?: string[]
  /** the engine's API version (a v1 compose is pinned to 1.44 above it); probed when absent */
  engineApiVersion?: string
  /** project name: the running containers' com.docker.compose.project label, else compose's default */
  project: string
  service: string
  /** the project directory (compose resolves .env and relative paths from it) */
  cwd: string
  /**
   * `--env-file`: the project's .env read from here instead of `<cwd>/.env` (a way back runs the
   * copy saved with the image; `/dev/null` when the image was made with no .env)
   */
  envFile?: string
  env: NodeJS.ProcessEnv
}

/** compose ran and failed: `tail` holds its last output lines, `log` the whole output. */
export class ComposeError extends Error {
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly tail: string[],
    readonly log?: string,
  ) {
    super(message)
    this.name = 'ComposeError'
  }
}

const REMEDY =
  'install compose: the CLI plugin (`docker compose`: Debian 13 `apt-get install docker-compose`, ' +
  "Docker's docker-compose-plugin, or the binary in ~/.docker/cli-plugins/docker-compose), or " +
  'compose v1 on Debian 12 (`apt-get install docker-compose`); or set the compose command in the host config'

const VERSION_TIMEOUT_MS = 20_000
const CONFIG_TIMEOUT_MS = 60_000

// --- which compose -----------------------------------------------------------------------------

/**
 * The version line of `compose version` output, e.g. `docker-compose version 1.29.2, build
 * unknown` (v1), `Docker Compose version v2.26.1` / `Docker Compose version 2.26.1-4` (v2).
 */
export function parseComposeVersion(
  output: string,
): { version: 'v1' | 'v2'; versionText: string; numbers: [number, number, number] } | null {
  for (const raw of output.split('\n')) {
    const m = /\bversion:?\s+v?(\d+)\.(\d+)\.(\d+)/i.exec(raw)
    if (!m || !/compose/i.test(raw)) continue
    const numbers: [number, number, number] = [Number(m[1]), Number(m[2]), Number(m[3])]
    if (numbers[0] < 1) return null
    return { version: numbers[0] === 1 ? 'v1' : 'v2', versionText: raw.trim(), numbers }
  }
  return null
}

const firstLine = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .find(Boolean) ?? ''

async function probe(
  argv: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ cli: ComposeCli } | { why: string }> {
  let r
  try {
    r = await runCaptured([...argv, 'version'], { env, timeoutMs: VERSION_TIMEOUT_MS })
  } catch (err) {
    if (err instanceof UnavailableError) return { why: err.message }
    throw err
  }
  if (r.timedOut) return { why: `\`${showArgv(argv)} version\` did not answer in 20 s` }
  if (r.exitCode !== 0) {
    const said = firstLine(r.stderr) || firstLine(r.stdout)
    return { why: `exit ${r.exitCode ?? r.signal}${said ? `: ${said}` : ''}` }
  }
  const v = parseComposeVersion(r.stdout) ?? parseComposeVersion(r.stderr)
  if (!v) return { why: `no compose version in its output (${firstLine(r.stdout) || 'none'})` }
  return { cli: { argv: [...argv], version: v.version, versionText: v.versionText } }
}

/**
 * Which compose to use: `configured` (argv prefix from the host config, e.g. ['docker-compose'] or
 * ['docker', 'compose']) when given — its version is still detected from its `version` output;
 * otherwise `docker compose` (the v2 plugin; the docker CLI is $SHIPSHAPE_DOCKER_CLI or `docker`),
 * then `docker-compose` on PATH (v1 1.29 on Debian 12, or a v2 standalone binary on Debian 13 —
 * tell them apart by the version output). None → UnavailableError (exit 3) with the apt/plugin remedy.
 */
export async function detectCompose(o: {
  configured?: string[]
  env: NodeJS.ProcessEnv
}): Promise<ComposeCli> {
  if (o.configured) {
    if (o.configured.length === 0 || o.configured.some((a) => a === '')) {
      throw new UsageError('the compose command in the host config is empty')
    }
    const r = await probe(o.configured, o.env)
    if ('cli' in r) return r.cli
    throw new UnavailableError(
      `the configured compose command \`${showArgv(o.configured)}\` does not work (${r.why})`,
      REMEDY,
    )
  }
  const docker = o.env.SHIPSHAPE_DOCKER_CLI || 'docker'
  const tried: string[] = []
  for (const argv of [[docker, 'compose'], ['docker-compose']]) {
    const r = await probe(argv, o.env)
    if ('cli' in r) return r.cli
    tried.push(`${showArgv(argv)}: ${r.why}`)
  }
  throw new UnavailableError(`Docker Compose is not available (${tried.join('; ')})`, REMEDY)
}

// --- argv (pure) -------------------------------------------------------------------------------

function checkTarget(t: ComposeTarget): void {
  if (!t.file.startsWith('/')) throw new Error(`compose file ${t.file} is not an absolute path`)
  if (!t.project) throw new Error(`compose project of ${t.file} is empty`)
  if (!t.service) throw new Error(`compose service of ${t.file} is empty`)
}

/** `compose -f FILE -p PROJECT --project-directory CWD`: the same project whatever the caller's cwd. */
function baseArgv(t: ComposeTarget): string[] {
  checkTarget(t)
  const files = [t.file, ...(t.extraFiles ?? []).filter((f) => f !== t.file)]
  return [
    ...t.cli.argv,
    ...files.flatMap((f) => ['-f', f]),
    '-p',
    t.project,
    '--project-directory',
    t.cwd,
    ...(t.envFile ? ['--env-file', t.envFile] : []),
  ]
}

function versionNumbers(cli: ComposeCli): [number, number, number] | null {
  return parseComposeVersion(cli.versionText)?.numbers ?? null
}

/** `… build [--no-cache] -- SERVICE` */
export function composeBuildArgv(t: ComposeTarget, o: { noCache?: boolean } = {}): string[] {
  return [...baseArgv(t), 'build', ...(o.noCache ? ['--no-cache'] : []), '--', t.service]
}

/**
 * `… up -d --no-deps --no-build --force-recreate [--pull never] -- SERVICE`. `--pull never`
 * (v2 ≥ 2.15, where `up --pull` took effect) keeps a `pull_policy: always` from replacing the
 * image just built.
 */
export function composeUpArgv(t: ComposeTarget): string[] {
  const n = versionNumbers(t.cli)
  const pullNever = t.cli.version === 'v2' && (n === null || n[0] > 2 || (n[0] === 2 && n[1] >= 15))
  return [
    ...baseArgv(t),
    'up',
    '-d',
    '--no-deps',
    '--no-build',
    '--force-recreate',
    ...(pullNever ? ['--pull', 'never'] : []),
    '--',
    t.service,
  ]
}

/** `… config` (v1: YAML of every service) or `… config --format json -- SERVICE` (v2). */
export function composeConfigArgv(t: ComposeTarget): string[] {
  return t.cli.version === 'v1'
    ? [...baseArgv(t), 'config']
    : [...baseArgv(t), 'config', '--format', 'json', '--', t.service]
}

/** `… config --hash=SERVICE`: compose's hash of the service's config (both v1 and v2). */
export function composeHashArgv(t: ComposeTarget): string[] {
  return [...baseArgv(t), 'config', `--hash=${t.service}`]
}

/** `web 5f3a…` lines → the hash of `service`, or null. */
export function parseConfigHash(output: string, service: string): string | null {
  for (const line of output.split('\n')) {
    const [name, hash] = line.trim().split(/\s+/)
    if (name === service && hash && /^[0-9a-f]{16,}$/.test(hash)) return hash
  }
  return null
}
/** The image compose gives a built service without `image:` (no tag: the engine adds :latest). */
export function defaultImageName(version: 'v1' | 'v2', project: string, service: string): string {
  if (version === 'v2') return `${project}-${service}`
  // compose 1.29: get_project_name() normalises -p, Service.image_name strips leading _ and -
  const p = project.toLowerCase().replace(/[^-_a-z0-9]/g, '')
  return `${p.replace(/^[-_]+/, '')}_${service}`
}

/**
 * The names compose may give the project of a compose file started without -p: its top-level
 * `name:` (v2), COMPOSE_PROJECT_NAME in the .env beside it, and its directory's name as v1 and v2
 * normalise it. Prune keeps the volumes of these projects. Files are read without following links.
 */
export async function composeProjectNames(file: string): Promise<string[]> {
  const names = new Set<string>()
  const base = path.basename(path.dirname(file)).toLowerCase()
  names.add(base.replace(/[^-_a-z0-9]/g, '')) // v1
  names.add(base.replace(/[^-_a-z0-9]/g, '').replace(/^[^a-z0-9]+/, '')) // v2
  try {
    const doc: unknown = parseYaml((await readIf(file).catch(() => null))?.toString('utf8') ?? '')
    const name = (doc as { name?: unknown } | null)?.name
    if (typeof name === 'string' && name) names.add(name)
  } catch {
    // not YAML: compose refuses it too
  }
  const env =
    (await readIf(path.join(path.dirname(file), '.env')).catch(() => null))?.toString('utf8') ?? ''
  const m = /^\s*COMPOSE_PROJECT_NAME\s*=\s*["']?([^"'\s#]+)/m.exec(env)
  if (m?.[1]) names.add(m[1].toLowerCase())
  names.delete('')
  return [...names].sort()
}

// --- calls -------------------------------------------------------------------------------------

/** the last API version whose image inspect still has ContainerConfig (moby#47430) */
const V1_API_CAP = '1.44'

const apiNumber = (v: string) => {
  const m = /^(\d+)\.(\d+)$/.exec(v.trim())
  return m ? Number(m[1]) * 1000 + Number(m[2]) : null
}

/**
 * The env for a compose v1 call. compose 1.29 reads the old container's image ContainerConfig
 * when it recreates, and engines leave that field out from API 1.45 on (Docker 26): `up` then
 * stops the old container, renames it and dies with KeyError 'ContainerConfig' (compose#11742),
 * leaving the service down. Pinned to API 1.44 (compose's own COMPOSE_API_VERSION) when the
 * engine speaks a newer one and the operator has not chosen (checked on 26.1, both image stores).
 */
export async function composeV1Env(t: ComposeTarget): Promise<NodeJS.ProcessEnv> {
  if (t.cli.version !== 'v1') return t.env
  const chosen = t.env.COMPOSE_API_VERSION
  if (chosen && chosen !== 'auto') return t.env
  let server = t.engineApiVersion ? apiNumber(t.engineApiVersion) : null
  if (server === null) {
    const docker = t.env.SHIPSHAPE_DOCKER_CLI || 'docker'
    const r = await runCaptured([docker, 'version', '--format', '{{.Server.APIVersion}}'], {
      env: t.env,
      timeoutMs: VERSION_TIMEOUT_MS,
    }).catch(() => null)
    server = r?.exitCode === 0 ? apiNumber(r.stdout) : null
  }
  const cap = apiNumber(V1_API_CAP) as number
  if (server === null || server <= cap) return t.env
  return { ...t.env, COMPOSE_API_VERSION: V1_API_CAP }
}

async function runCompose(
  what: string,
  argv: string[],
  t: ComposeTarget,
  o: { log: string; onLine?: (l: string) => void; timeoutMs?: number; signal?: AbortSignal },
): Promise<void> {
  const r = await runLogged(argv, {
    cwd: t.cwd,
    env: await composeV1Env(t),
    log: o.log,
    onLine: o.onLine,
    timeoutMs: o.timeoutMs,
    signal: o.signal,
  })
  if (r.exitCode === 0 && !r.timedOut) return
  const how = r.timedOut
    ? `timed out after ${Math.round((o.timeoutMs ?? 0) / 1000)} s`
    : `failed (${r.exitCode !== null ? `exit ${r.exitCode}` : `killed by ${r.signal}`})`
  const last = r.tail.filter((l) => l.trim() !== '')
  throw new ComposeError(
    `compose ${what} of ${t.service} ${how}; output in ${o.log}` +
      (last.length ? `, last lines:\n${last.map((l) => `  ${l}`).join('\n')}` : ''),
    r.exitCode,
    r.tail,
    o.log,
  )
}

/** `… -f FILE -p PROJECT build [--no-cache] SERVICE`; output to the log; rejects with an Error carrying the output tail when it fails. */
export async function composeBuild(
  t: ComposeTarget,
  o: {
    noCache?: boolean
    log: string
    onLine?: (l: string) => void
    timeoutMs?: number
    /** aborted (Ctrl-C): the build's process group is stopped */
    signal?: AbortSignal
  },
): Promise<void> {
  await runCompose('build', composeBuildArgv(t, o), t, o)
}

/** `… -f FILE -p PROJECT up -d --no-deps --no-build --force-recreate SERVICE` (never builds, never touches other services). */
export async function composeUp(
  t: ComposeTarget,
  o: { log: string; onLine?: (l: string) => void; timeoutMs?: number },
): Promise<void> {
  await runCompose('up', composeUpArgv(t), t, o)
}

/**
 * The config hash compose would give the service's container now (its
 * `com.docker.compose.config-hash` label when compose made it from these files); null when compose
 * cannot say (an old compose, a file that does not parse): nothing is concluded then.
 */
export async function composeConfigHash(t: ComposeTarget): Promise<string | null> {
  const r = await runCaptured(composeHashArgv(t), {
    cwd: t.cwd,
    env: await composeV1Env(t),
    timeoutMs: CONFIG_TIMEOUT_MS,
  }).catch(() => null)
  if (!r || r.exitCode !== 0 || r.timedOut) return null
  return parseConfigHash(r.stdout, t.service)
}

function notAService(t: ComposeTarget, names: string[]): UsageError {
  return new UsageError(
    `service ${t.service} is not in ${t.file}` +
      (names.length ? ` (services: ${names.join(', ')})` : ''),
  )
}

/**
 * The image reference compose uses for SERVICE: `image:` in the (merged, interpolated) config as
 * compose itself prints it, else compose's default name — `<project>_<service>` for v1,
 * `<project>-<service>` for v2. Run with the target's env and directory, like the build.
 */
export async function composeImageRef(t: ComposeTarget): Promise<string> {
  const argv = composeConfigArgv(t)
  const r = await runCaptured(argv, { cwd: t.cwd, env: t.env, timeoutMs: CONFIG_TIMEOUT_MS })
  if (r.exitCode !== 0 || r.timedOut) {
    const said = r.stderr.trim() || r.stdout.trim()
    if (t.cli.version === 'v2' && /no such service/i.test(said)) throw notAService(t, [])
    throw new ComposeError(
      `compose config of ${t.file} ${r.timedOut ? 'timed out' : `failed (exit ${r.exitCode ?? r.signal})`}` +
        (said ? `: ${said.split('\n').slice(-5).join('\n')}` : ''),
      r.exitCode,
      said.split('\n').slice(-20),
    )
  }
  let doc: unknown
  try {
    doc = t.cli.version === 'v1' ? parseYaml(r.stdout) : JSON.parse(r.stdout)
  } catch (err) {
    throw new Error(`compose config of ${t.file}: unreadable output (${(err as Error).message})`)
  }
  const d = doc as { name?: unknown; services?: Record<string, { image?: unknown } | null> } | null
  const services = d?.services ?? {}
  if (!Object.hasOwn(services, t.service)) throw notAService(t, Object.keys(services))
  const image = services[t.service]?.image
  if ((typeof image === 'string' && image !== '') || typeof image === 'number') return String(image)
  const project = t.cli.version === 'v2' && typeof d?.name === 'string' ? d.name : t.project
  return defaultImageName(t.cli.version, project, t.service)
}
