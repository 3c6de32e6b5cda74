/**
 * Private Docker engines for the engine tests.
 *
 * Every engine is a private containerd + dockerd pair living in one short temp directory
 * (own data root, exec root, unix sockets, pidfile, no bridge, no iptables, no host sysctls,
 * own cgroup parent). Nothing talks to the machine's own Docker engine or containerd.
 *
 *   20.10            Debian 12 docker.io 20.10 + containerd 1.6 installed on the machine
 *   26.1             Debian 13 docker.io 26.1 + containerd 1.7 from .cache/engines/26.1
 *                    (`npm run fetch-engines`), with the machine's own runc
 *   26.1-containerd  the same with the containerd image store (containerd-snapshotter)
 *
 * A watchdog (engine-watchdog.sh, own session, stdin a pipe from this process) does the
 * cleanup: on stop(), and also when this process dies without calling stop().
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import http from 'node:http'
import type { Socket } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export type EngineKind = '20.10' | '26.1' | '26.1-containerd'
export const ENGINE_KINDS: readonly EngineKind[] = ['20.10', '26.1', '26.1-containerd']
export const DEFAULT_ENGINE_KIND: EngineKind = '20.10'

/** What a running private engine is; plain data, so it can cross vitest's provide/inject. */
export interface EngineInfo {
  kind: EngineKind
  /** unix:///…/docker.sock */
  dockerHost: string
  socketPath: string
  /** the engine's temp directory (everything it writes lives here) */
  root: string
  /** daemon version, e.g. "20.10.24+dfsg1", "26.1.5+dfsg1" */
  version: string
  /** the daemon's maximum API version, e.g. "1.41", "1.45" */
  apiVersion: string
  /** `docker info` Driver: overlay2 (graph driver) or overlayfs (containerd snapshotter) */
  storageDriver: string
  /** true when images live in containerd's image store (26.1-containerd) */
  containerdImageStore: boolean
  /** private DOCKER_CONFIG (cli-plugins/docker-compose links compose v2 when fetched) */
  dockerConfig: string
  /** compose v1 (`docker-compose` 1.29, Debian 12), when installed */
  composeV1Path: string | null
  /** compose v2 binary from the trixie package, when fetched */
  composeV2Path: string | null
}

export interface PrivateEngine extends EngineInfo {
  /** process.env + DOCKER_HOST + DOCKER_CONFIG, minus DOCKER_CONTEXT/TLS variables */
  env: NodeJS.ProcessEnv
  /** stop dockerd, containerd, unmount and remove everything; idempotent */
  stop(): Promise<void>
  /**
   * SIGTERM dockerd and start it again with the same arguments (as a host's `systemctl restart
   * docker` or a reboot would, without live-restore): containers stop, and those with a restart
   * policy are started again by the new dockerd.
   */
  restartDockerd(): Promise<void>
}

export type EngineSupport = { ok: true } | { ok: false; reason: string }

export interface StartEngineOptions {
  /** directory to use (created; must be empty); default a fresh /tmp/sse-XXXXXX */
  dir?: string
  /** keep the directory (logs, data) after stop(); also env SHIPSHAPE_KEEP_ENGINE=1 */
  keep?: boolean
  /** how long to wait for /_ping; default 60 s */
  startTimeoutMs?: number
}

const here = path.dirname(fileURLToPath(import.meta.url))
/** The repository root: the nearest folder with a package.json (from source or from dist/). */
function findRepoRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir
    if (path.dirname(dir) === dir) return path.resolve(start, '..', '..')
  }
}
export const repoRoot = findRepoRoot(here)
const watchdogScript = path.join(repoRoot, 'test', 'harness', 'engine-watchdog.sh')

/** Where fetch-engines.sh extracts the newer engines. */
export function engineCacheRoot(): string {
  return process.env.SHIPSHAPE_ENGINE_CACHE ?? path.join(repoRoot, '.cache', 'engines')
}

export function parseEngineKind(value: string | undefined): EngineKind {
  if (value === undefined || value === '') return DEFAULT_ENGINE_KIND
  if ((ENGINE_KINDS as readonly string[]).includes(value)) return value as EngineKind
  throw new Error(
    `SHIPSHAPE_TEST_ENGINE=${JSON.stringify(value)} is not one of ${ENGINE_KINDS.join(', ')}`,
  )
}

/** SHIPSHAPE_REQUIRE_ENGINE=1 (CI): a missing or unstartable engine fails the run. */
export function requireEngine(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.SHIPSHAPE_REQUIRE_ENGINE === '1'
}

/** The engine kind requested through SHIPSHAPE_TEST_ENGINE (default 20.10). */
export function requestedEngineKind(env: NodeJS.ProcessEnv = process.env): EngineKind {
  return parseEngineKind(env.SHIPSHAPE_TEST_ENGINE)
}

// --- binaries ----------------------------------------------------------------------------

const systemDirs = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK)
    return fs.statSync(file).isFile()
  } catch {
    return false
  }
}

/** First executable `name` on PATH (then the usual system dirs), or null. */
export function which(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...systemDirs]
  for (const dir of dirs) {
    const file = path.join(dir, name)
    if (isExecutable(file)) return file
  }
  return null
}

interface EngineBinaries {
  dockerd: string
  containerd: string
  /** the machine's runc, linked first on the daemons' PATH */
  runc: string
  /** dirs put on the daemons' PATH before the machine's (shims, docker-proxy) */
  pathPrefix: string[]
}

function resolveBinaries(kind: EngineKind): EngineBinaries | { missing: string } {
  const runc = which('runc')
  if (!runc) return { missing: 'runc is not installed (apt-get install runc / docker.io)' }
  if (kind === '20.10') {
    const dockerd = which('dockerd')
    const containerd = which('containerd')
    if (!dockerd) return { missing: 'dockerd is not installed (apt-get install docker.io)' }
    if (!containerd) return { missing: 'containerd is not installed (apt-get install containerd)' }
    return { dockerd, containerd, runc, pathPrefix: [] }
  }
  const base = path.join(engineCacheRoot(), '26.1')
  const dockerd = path.join(base, 'usr/sbin/dockerd')
  const containerd = path.join(base, 'usr/bin/containerd')
  if (
    !fs.existsSync(path.join(base, '.complete')) ||
    !isExecutable(dockerd) ||
    !isExecutable(containerd)
  ) {
    return {
      missing: `engine 26.1 is not fetched into ${base} (run \`npm run fetch-engines\`)`,
    }
  }
  return {
    dockerd,
    containerd,
    runc,
    pathPrefix: [path.join(base, 'usr/sbin'), path.join(base, 'usr/bin')],
  }
}

/** Compose v1 (Debian 12's docker-compose 1.29), when installed. */
export function composeV1Path(): string | null {
  const file = '/usr/bin/docker-compose'
  return isExecutable(file) ? file : null
}

/** Compose v2 (2.26.1 from the trixie package, fetched by fetch-engines.sh), or null. */
export function composeV2Path(): string | null {
  const file = path.join(engineCacheRoot(), '26.1', 'usr/libexec/docker/cli-plugins/docker-compose')
  return isExecutable(file) ? file : null
}

/**
 * The compose versions the multi-version suites (rebuild, update) run against this engine:
 * both by default; SHIPSHAPE_TEST_COMPOSE=v1 | v2 narrows it (CI gives each engine of the matrix
 * one, so that together they cover both without running every gated case twice per engine).
 * v2 only where its binary was fetched.
 */
export function composeVersions(engine: { composeV2Path: string | null }): ('v1' | 'v2')[] {
  const want = process.env.SHIPSHAPE_TEST_COMPOSE ?? 'both'
  if (!['v1', 'v2', 'both'].includes(want)) {
    throw new Error(`SHIPSHAPE_TEST_COMPOSE=${want}: use v1, v2 or both`)
  }
  const all: ('v1' | 'v2')[] = ['v1', ...(engine.composeV2Path ? (['v2'] as const) : [])]
  const picked = all.filter((v) => want === 'both' || v === want)
  if (picked.length === 0)
    throw new Error(`SHIPSHAPE_TEST_COMPOSE=${want}: compose ${want} is not installed`)
  return picked
}

/** Can this machine run a private engine of this kind? (root, binaries present) */
export function engineSupport(kind: EngineKind): EngineSupport {
  if (process.platform !== 'linux') return { ok: false, reason: `not Linux (${process.platform})` }
  if (process.getuid?.() !== 0) return { ok: false, reason: 'a private dockerd needs root' }
  const bins = resolveBinaries(kind)
  if ('missing' in bins) return { ok: false, reason: bins.missing }
  if (!isExecutable(watchdogScript)) {
    return { ok: false, reason: `${watchdogScript} is missing or not executable` }
  }
  if (!which('bash')) return { ok: false, reason: 'bash is not installed' }
  return { ok: true }
}

// --- talking to the daemon ---------------------------------------------------------------

/** One GET against an engine's unix socket; resolves with status and parsed body. */
export function engineGet<T = unknown>(
  socketPath: string,
  urlPath: string,
  timeoutMs = 5000,
): Promise<{ status: number; body: T }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: urlPath, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let body: unknown = text
        if ((res.headers['content-type'] ?? '').includes('json')) {
          try {
            body = JSON.parse(text)
          } catch {
            body = text
          }
        }
        resolve({ status: res.statusCode ?? 0, body: body as T })
      })
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath}: timeout after ${timeoutMs} ms`)))
    req.on('error', reject)
  })
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** The last lines of a daemon log; with `important`, only warning/error lines if any. */
async function tail(file: string, lines = 40, important = false): Promise<string> {
  try {
    let all = (await fsp.readFile(file, 'utf8')).trimEnd().split('\n')
    if (important) {
      const bad = all.filter((l) => /level=(warning|error|fatal|panic)/.test(l))
      all = bad.length > 0 ? bad : all.slice(-3)
    }
    return all.slice(-lines).join('\n')
  } catch (err) {
    return `(no ${path.basename(file)}: ${(err as Error).message})`
  }
}

/** Environment for CLI tools (docker, compose) talking to this engine only. */
export function engineEnv(
  info: Pick<EngineInfo, 'dockerHost' | 'dockerConfig'>,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const k of [
    'DOCKER_CONTEXT',
    'DOCKER_TLS',
    'DOCKER_TLS_VERIFY',
    'DOCKER_CERT_PATH',
    'DOCKER_API_VERSION',
  ]) {
    delete env[k]
  }
  env.DOCKER_HOST = info.dockerHost
  env.DOCKER_CONFIG = info.dockerConfig
  return env
}

/** A PrivateEngine view of an engine owned by someone else (e.g. the vitest globalSetup). */
export function attachEngine(info: EngineInfo): PrivateEngine {
  return {
    ...info,
    env: engineEnv(info),
    stop: () =>
      Promise.reject(
        new Error('this engine belongs to the engine globalSetup; it stops it after the run'),
      ),
    restartDockerd: () => restartDockerdAt(info),
  }
}

/**
 * SIGTERM the engine's dockerd (its pidfile) and start it again as `dockerd.launch.json` says,
 * detached (the watchdog finds it by its command line), then wait for /_ping.
 */
export async function restartDockerdAt(
  info: EngineInfo,
  died: () => string | null = () => null,
): Promise<void> {
  const pidFile = path.join(info.root, 'docker.pid')
  const pid = Number((await fsp.readFile(pidFile, 'utf8')).trim())
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`no dockerd pid in ${pidFile}`)
  process.kill(pid, 'SIGTERM')
  const end = Date.now() + 60_000
  while (fs.existsSync(`/proc/${pid}`)) {
    const st = await fsp.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
    if (/\) Z /.test(st)) break // exited, not yet reaped by its parent
    if (Date.now() > end) throw new Error(`dockerd ${pid} did not stop in 60 s`)
    await new Promise((r) => setTimeout(r, 100))
  }
  const spec = JSON.parse(
    await fsp.readFile(path.join(info.root, 'dockerd.launch.json'), 'utf8'),
  ) as {
    bin: string
    args: string[]
    env: NodeJS.ProcessEnv
  }
  const log = fs.openSync(path.join(info.root, 'dockerd.log'), 'a')
  const child = spawn(spec.bin, spec.args, {
    detached: true,
    stdio: ['ignore', log, log],
    env: spec.env,
    cwd: info.root,
  })
  fs.closeSync(log)
  const childDied = exitWatcher(child, 'dockerd')
  unrefChild(child)
  await waitFor(
    'dockerd /_ping after a restart',
    60_000,
    async () => {
      try {
        return (await engineGet(info.socketPath, '/_ping', 2000)).status === 200
      } catch {
        return false
      }
    },
    () => childDied() ?? died(),
  )
}

// --- start / stop ------------------------------------------------------------------------

function unrefChild(child: ChildProcess): void {
  child.unref()
  for (const s of [child.stdin, child.stdout, child.stderr]) (s as Socket | null)?.unref?.()
}

function refChild(child: ChildProcess): void {
  child.ref()
  for (const s of [child.stdout, child.stderr]) (s as Socket | null)?.ref?.()
}

function containerdConfig(dir: string): string {
  const q = (s: string) => JSON.stringify(s)
  return [
    'version = 2',
    `root = ${q(path.join(dir, 'containerd', 'root'))}`,
    `state = ${q(path.join(dir, 'containerd', 'state'))}`,
    // no Kubernetes CRI (it would look at /etc/cni, /opt/cni) and no NRI (/var/run/nri)
    'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.nri.v1.nri"]',
    '',
    '[grpc]',
    `  address = ${q(path.join(dir, 'containerd.sock'))}`,
    '',
    '[ttrpc]',
    `  address = ${q(path.join(dir, 'containerd.sock.ttrpc'))}`,
    '',
    '[debug]',
    '  address = ""',
    '',
    '[metrics]',
    '  address = ""',
    '',
    // default /opt/containerd on the host
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${q(path.join(dir, 'containerd', 'opt'))}`,
    '',
  ].join('\n')
}

function daemonConfig(kind: EngineKind, dir: string): Record<string, unknown> {
  if (kind === '20.10') {
    // 20.10 writes its libtrust key to /etc/docker/key.json unless told otherwise
    return { 'deprecated-key-path': path.join(dir, 'key.json') }
  }
  return { features: { 'containerd-snapshotter': kind === '26.1-containerd' } }
}

async function waitFor(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean> | boolean,
  died: () => string | null,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const dead = died()
    if (dead) throw new Error(`${what}: ${dead}`)
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`${what}: still not ready after ${timeoutMs} ms`)
    await sleep(100)
  }
}

function exitWatcher(child: ChildProcess, name: string): () => string | null {
  let exited: string | null = null
  child.on('exit', (code, signal) => {
    exited = `${name} exited early (${signal ?? `code ${code}`})`
  })
  child.on('error', (err) => {
    exited = `${name} could not start: ${err.message}`
  })
  return () => exited
}

/**
 * Start a private containerd + dockerd of this kind and wait until /_ping answers.
 * Throws (after cleaning up, with the daemons' log tails) when it cannot start.
 */
export async function startEngine(
  kind: EngineKind,
  opts: StartEngineOptions = {},
): Promise<PrivateEngine> {
  const support = engineSupport(kind)
  if (!support.ok) throw new Error(`cannot start a private ${kind} engine: ${support.reason}`)
  const bins = resolveBinaries(kind)
  if ('missing' in bins) throw new Error(bins.missing)

  const keep = opts.keep ?? process.env.SHIPSHAPE_KEEP_ENGINE === '1'
  // unix socket paths are limited to 107 bytes; the longest one here is the ttrpc socket
  const tooLong = (d: string) => Buffer.byteLength(path.join(d, 'containerd.sock.ttrpc')) > 100
  let dir: string
  if (opts.dir) {
    dir = path.resolve(opts.dir)
    if (tooLong(dir)) throw new Error(`engine dir ${dir} is too long for unix socket paths`)
    await fsp.mkdir(dir, { recursive: true })
    if ((await fsp.readdir(dir)).length > 0) throw new Error(`engine dir ${dir} is not empty`)
  } else {
    const base = path.resolve(process.env.SHIPSHAPE_ENGINE_TMPDIR ?? '/tmp')
    if (tooLong(path.join(base, 'sse-XXXXXX'))) {
      throw new Error(`SHIPSHAPE_ENGINE_TMPDIR=${base} is too long for unix socket paths`)
    }
    dir = await fsp.mkdtemp(path.join(base, 'sse-'))
  }
  const socketPath = path.join(dir, 'docker.sock')
  let engineInfoOf = (): EngineInfo => {
    throw new Error('the engine has not started')
  }
  const id = randomBytes(4).toString('hex')
  const cgroupParent = `shipshape-test-${id}`

  // The watchdog first, so that anything started after it gets cleaned up whatever happens.
  let watchdogOutput = ''
  const watchdog = spawn('bash', [watchdogScript, dir, cgroupParent, keep ? '1' : '0'], {
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  watchdog.stdout?.on('data', (c: Buffer) => (watchdogOutput += c.toString()))
  watchdog.stderr?.on('data', (c: Buffer) => (watchdogOutput += c.toString()))
  watchdog.stdin?.on('error', () => {}) // EPIPE if it is already gone
  const watchdogExit = new Promise<number>((resolve) => {
    watchdog.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)))
    watchdog.on('error', () => resolve(127))
  })
  unrefChild(watchdog)

  let stopping: Promise<void> | null = null
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      refChild(watchdog) // keep this process alive until the cleanup is done
      watchdog.stdin?.end('stop\n')
      const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 120_000).unref())
      const code = await Promise.race([watchdogExit, timer])
      if (code === 'timeout')
        throw new Error(`private engine ${dir}: cleanup did not finish in 120 s`)
      if (code !== 0) {
        throw new Error(`private engine ${dir}: cleanup failed (exit ${code}):\n${watchdogOutput}`)
      }
    })()
    return stopping
  }

  try {
    const binDir = path.join(dir, 'bin')
    const tmpDir = path.join(dir, 'tmp')
    const dockerConfig = path.join(dir, 'docker-config')
    await Promise.all(
      [binDir, tmpDir, path.join(dir, 'containerd'), path.join(dockerConfig, 'cli-plugins')].map(
        (d) => fsp.mkdir(d, { recursive: true }),
      ),
    )
    // the machine's runc first on the daemons' PATH (the trixie packages bring none)
    await fsp.symlink(bins.runc, path.join(binDir, 'runc'))
    const tini = which('tini-static') ?? which('tini')
    if (tini) await fsp.symlink(tini, path.join(binDir, 'docker-init'))
    const v2 = composeV2Path()
    if (v2) await fsp.symlink(v2, path.join(dockerConfig, 'cli-plugins', 'docker-compose'))
    await fsp.writeFile(path.join(dockerConfig, 'config.json'), '{}\n')

    const containerdToml = path.join(dir, 'containerd.toml')
    await fsp.writeFile(containerdToml, containerdConfig(dir))
    const daemonJson = path.join(dir, 'daemon.json')
    await fsp.writeFile(daemonJson, JSON.stringify(daemonConfig(kind, dir), null, 2) + '\n')

    const daemonEnv: NodeJS.ProcessEnv = {
      PATH: [binDir, ...bins.pathPrefix, process.env.PATH ?? systemDirs.join(':')].join(':'),
      HOME: dir,
      TMPDIR: tmpDir,
      LANG: 'C.UTF-8',
    }

    const containerdLog = fs.openSync(path.join(dir, 'containerd.log'), 'a')
    const containerd = spawn(bins.containerd, ['--config', containerdToml], {
      detached: true,
      stdio: ['ignore', containerdLog, containerdLog],
      env: daemonEnv,
      cwd: dir,
    })
    fs.closeSync(containerdLog)
    const containerdDied = exitWatcher(containerd, 'containerd')
    unrefChild(containerd)
    const containerdSock = path.join(dir, 'containerd.sock')
    await waitFor('containerd', 30_000, () => fs.existsSync(containerdSock), containerdDied)

    const dockerdLog = fs.openSync(path.join(dir, 'dockerd.log'), 'a')
    // prettier-ignore
    const dockerdArgs = [
      '--config-file', daemonJson,
      '--containerd', containerdSock,
      '--data-root', path.join(dir, 'data'),
      '--exec-root', path.join(dir, 'exec'),
      '--host', `unix://${socketPath}`,
      '--pidfile', path.join(dir, 'docker.pid'),
      '--bridge=none',
      '--iptables=false',
      '--ip6tables=false',
      '--ip-forward=false', // leave the host's net.ipv4.ip_forward alone
      '--ip-masq=false',
      '--cgroup-parent', `/${cgroupParent}`,
      '--shutdown-timeout', '5',
    ]
    const dockerd = spawn(bins.dockerd, dockerdArgs, {
      detached: true,
      stdio: ['ignore', dockerdLog, dockerdLog],
      env: daemonEnv,
      cwd: dir,
    })
    fs.closeSync(dockerdLog)
    const dockerdDied = exitWatcher(dockerd, 'dockerd')
    unrefChild(dockerd)

    const pinged = (timeoutMs: number) =>
      waitFor(
        `dockerd (${kind}) /_ping`,
        timeoutMs,
        async () => {
          try {
            return (await engineGet(socketPath, '/_ping', 2000)).status === 200
          } catch {
            return false
          }
        },
        () => dockerdDied() ?? containerdDied(),
      )
    await pinged(opts.startTimeoutMs ?? 60_000)

    // how dockerd was started: restartDockerd() (here or in a test worker) starts it the same way
    await fsp.writeFile(
      path.join(dir, 'dockerd.launch.json'),
      JSON.stringify({ bin: bins.dockerd, args: dockerdArgs, env: daemonEnv }),
    )
    const restartDockerd = () => restartDockerdAt(engineInfoOf(), containerdDied)

    const version = await engineGet<{ Version?: string; ApiVersion?: string }>(
      socketPath,
      '/version',
    )
    const info = await engineGet<{ Driver?: string; DriverStatus?: [string, string][] | null }>(
      socketPath,
      '/info',
    )
    const engineVersion = version.body.Version ?? ''
    const apiVersion = version.body.ApiVersion ?? ''
    const storageDriver = info.body.Driver ?? ''
    const containerdImageStore = (info.body.DriverStatus ?? []).some(
      ([k, v]) => k === 'driver-type' && v === 'io.containerd.snapshotter.v1',
    )
    const wantPrefix = kind === '20.10' ? '20.10.' : '26.1.'
    if (!engineVersion.startsWith(wantPrefix)) {
      throw new Error(`engine ${kind}: daemon reports version ${engineVersion || '(none)'}`)
    }
    if (containerdImageStore !== (kind === '26.1-containerd')) {
      throw new Error(
        `engine ${kind}: containerd image store is ${containerdImageStore ? 'on' : 'off'} (driver ${storageDriver})`,
      )
    }

    const engineInfo: EngineInfo = {
      kind,
      dockerHost: `unix://${socketPath}`,
      socketPath,
      root: dir,
      version: engineVersion,
      apiVersion,
      storageDriver,
      containerdImageStore,
      dockerConfig,
      composeV1Path: composeV1Path(),
      composeV2Path: v2,
    }
    engineInfoOf = () => engineInfo
    return { ...engineInfo, env: engineEnv(engineInfo), stop, restartDockerd }
  } catch (err) {
    const logs =
      `--- dockerd.log (tail) ---\n${await tail(path.join(dir, 'dockerd.log'))}\n` +
      `--- containerd.log (warnings/errors) ---\n${await tail(path.join(dir, 'containerd.log'), 15, true)}`
    console.error(`[shipshape harness] private ${kind} engine in ${dir} failed to start:\n${logs}`)
    await stop().catch((e: Error) => console.error(`[shipshape harness] ${e.message}`))
    throw new Error(`private ${kind} engine failed to start: ${(err as Error).message}\n${logs}`, {
      cause: err,
    })
  }
}
