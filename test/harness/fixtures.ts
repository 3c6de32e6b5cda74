/**
 * Test fixtures for a private engine: images built from scratch (no registry here), and the
 * docker / compose CLIs pointed at the private engine. Every process gets an argv array;
 * nothing goes through a shell.
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Readable } from 'node:stream'
import Docker from 'dockerode'
import { engineEnv, type EngineInfo, type PrivateEngine } from './engine.js'

/** A private engine, its plain description, or just its address (unix:///… or a socket path). */
export type EngineRef = PrivateEngine | EngineInfo | string

export const BUSYBOX_TAG = 'shipshape-test/busybox:1'
export const BUSYBOX_BINARY = process.env.SHIPSHAPE_BUSYBOX ?? '/bin/busybox'

function socketPathOf(ref: EngineRef): string {
  if (typeof ref !== 'string') return ref.socketPath
  if (ref.startsWith('unix://')) return ref.slice('unix://'.length)
  if (ref.startsWith('/')) return ref
  throw new Error(`not a private engine address: ${ref}`)
}

function envOf(ref: EngineRef): NodeJS.ProcessEnv {
  if (typeof ref === 'string') {
    const env = engineEnv({ dockerHost: `unix://${socketPathOf(ref)}`, dockerConfig: '' })
    delete env.DOCKER_CONFIG
    return env
  }
  return 'env' in ref ? ref.env : engineEnv(ref)
}

const clients = new Map<string, Docker>()

/** A dockerode client for the engine (one per socket, reused). */
export function engineClient(ref: EngineRef): Docker {
  const socketPath = socketPathOf(ref)
  let client = clients.get(socketPath)
  if (!client) {
    client = new Docker({ socketPath })
    clients.set(socketPath, client)
  }
  return client
}

// --- progress streams ----------------------------------------------------------------------

interface ProgressEvent {
  stream?: string
  status?: string
  error?: string
  errorDetail?: { message?: string; code?: number }
  aux?: { ID?: string }
}

/**
 * Follow a build/import progress stream. dockerode reports a failed build with err === null
 * and the failure inside an event, so any event with error/errorDetail rejects.
 */
export function followProgress(
  docker: Docker,
  stream: Readable,
  what: string,
): Promise<ProgressEvent[]> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, events: ProgressEvent[]) => {
      if (err) return reject(new Error(`${what}: ${err.message}`, { cause: err }))
      const failed = events.find((e) => e.error !== undefined || e.errorDetail !== undefined)
      if (failed) {
        const log = events
          .map((e) => e.stream ?? e.status ?? '')
          .join('')
          .trimEnd()
          .split('\n')
          .slice(-20)
          .join('\n')
        return reject(new Error(`${what}: ${failed.errorDetail?.message ?? failed.error}\n${log}`))
      }
      resolve(events)
    })
  })
}

// --- tar -----------------------------------------------------------------------------------

/**
 * A tar stream of a directory (GNU tar, argv array), owned by root, with stable order and
 * mtimes. The returned promise settles when tar has finished (rejects on a non-zero exit).
 */
function tarDirectory(dir: string): { stream: Readable; done: Promise<void> } {
  const tar = spawn(
    'tar',
    [
      '-c',
      '--numeric-owner',
      '--owner=0',
      '--group=0',
      '--sort=name',
      '--mtime=@0',
      '-C',
      dir,
      '.',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stderr = ''
  tar.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  const done = new Promise<void>((resolve, reject) => {
    tar.on('error', reject)
    tar.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`tar -c ${dir} exited ${code}: ${stderr}`)),
    )
  })
  return { stream: tar.stdout, done }
}

async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix))
  try {
    return await fn(dir)
  } finally {
    await fsp.rm(dir, { recursive: true, force: true })
  }
}

/** Content of a fixture file: text, bytes, or `{ size }` = that many zero bytes (sparse). */
export type FixtureFile = string | Buffer | { size: number }

/**
 * Write files (relative paths, / separated) under dir; refuses paths that leave dir.
 * `{ size: n }` becomes a sparse file of n zero bytes (ftruncate: no memory, no disk).
 */
async function writeFiles(dir: string, files: Record<string, FixtureFile>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    const target = path.resolve(dir, name)
    if (path.isAbsolute(name) || !target.startsWith(dir + path.sep)) {
      throw new Error(
        `fixture file ${JSON.stringify(name)} must be a relative path inside the context`,
      )
    }
    await fsp.mkdir(path.dirname(target), { recursive: true })
    if (typeof content === 'string' || Buffer.isBuffer(content)) {
      await fsp.writeFile(target, content)
    } else {
      if (!Number.isSafeInteger(content.size) || content.size < 0) {
        throw new Error(`fixture file ${JSON.stringify(name)}: bad size ${content.size}`)
      }
      await fsp.writeFile(target, '')
      await fsp.truncate(target, content.size)
    }
  }
}

function splitTag(tag: string): { repo: string; tag: string } {
  const slash = tag.lastIndexOf('/')
  const colon = tag.lastIndexOf(':')
  if (colon > slash) return { repo: tag.slice(0, colon), tag: tag.slice(colon + 1) }
  return { repo: tag, tag: 'latest' }
}

async function imageId(docker: Docker, name: string): Promise<string | null> {
  try {
    return (await docker.getImage(name).inspect()).Id
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return null
    throw err
  }
}

// --- busybox base image ----------------------------------------------------------------------

/** True when the ELF file has no PT_INTERP program header (i.e. is statically linked). */
function isStaticElf(file: string): boolean {
  const fd = fs.openSync(file, 'r')
  try {
    const header = Buffer.alloc(64)
    fs.readSync(fd, header, 0, 64, 0)
    if (header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2) return false // ELF64 only
    const phoff = Number(header.readBigUInt64LE(0x20))
    const phentsize = header.readUInt16LE(0x36)
    const phnum = header.readUInt16LE(0x38)
    const ph = Buffer.alloc(phentsize * phnum)
    fs.readSync(fd, ph, 0, ph.length, phoff)
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3) return false
    return true
  } finally {
    fs.closeSync(fd)
  }
}

/** Why the busybox fixture cannot be made here, or null when it can. */
export function busyboxProblem(): string | null {
  if (!fs.existsSync(BUSYBOX_BINARY))
    return `${BUSYBOX_BINARY} is missing (apt-get install busybox-static)`
  if (!isStaticElf(BUSYBOX_BINARY)) {
    return `${BUSYBOX_BINARY} is dynamically linked (apt-get install busybox-static)`
  }
  return null
}

async function busyboxApplets(): Promise<string[]> {
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn(BUSYBOX_BINARY, ['--list'], { stdio: ['ignore', 'pipe', 'inherit'] })
    let text = ''
    p.stdout.on('data', (c: Buffer) => (text += c.toString()))
    p.on('error', reject)
    p.on('close', (code) =>
      code === 0 ? resolve(text) : reject(new Error(`busybox --list exited ${code}`)),
    )
  })
  return out
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => /^[a-z0-9_.[-]+$/i.test(s) && s !== 'busybox')
}

const busyboxImports = new Map<string, Promise<string>>()

/**
 * The busybox base image (tag shipshape-test/busybox:1 by default): a root filesystem with
 * the machine's static busybox and a link per applet (sh, ls, cat, echo, dd, sleep, wget,
 * httpd, …), imported with `POST /images/create?fromSrc=-`. Imported once per engine
 * (the engine globalSetup does it before any test runs); returns the image id.
 */
export async function busyboxImage(ref: EngineRef, tag: string = BUSYBOX_TAG): Promise<string> {
  const docker = engineClient(ref)
  const existing = await imageId(docker, tag)
  if (existing) return existing
  const key = `${socketPathOf(ref)}\0${tag}`
  let pending = busyboxImports.get(key)
  if (!pending) {
    pending = importBusybox(docker, tag).finally(() => busyboxImports.delete(key))
    busyboxImports.set(key, pending)
  }
  return pending
}

async function importBusybox(docker: Docker, tag: string): Promise<string> {
  const problem = busyboxProblem()
  if (problem) throw new Error(`cannot make the busybox fixture: ${problem}`)
  const applets = await busyboxApplets()
  return withTempDir('ss-bb-', async (root) => {
    for (const d of ['bin', 'etc', 'root', 'proc', 'sys', 'dev', 'var/www', 'usr/bin']) {
      await fsp.mkdir(path.join(root, d), { recursive: true })
    }
    await fsp.mkdir(path.join(root, 'tmp'))
    await fsp.chmod(path.join(root, 'tmp'), 0o1777)
    await fsp.copyFile(BUSYBOX_BINARY, path.join(root, 'bin', 'busybox'))
    await fsp.chmod(path.join(root, 'bin', 'busybox'), 0o755)
    for (const applet of applets) await fsp.symlink('busybox', path.join(root, 'bin', applet))
    await fsp.writeFile(
      path.join(root, 'etc', 'passwd'),
      'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
    )
    await fsp.writeFile(path.join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n')

    const { repo, tag: t } = splitTag(tag)
    const tar = tarDirectory(root)
    const stream = (await docker.importImage(tar.stream, {
      repo,
      tag: t,
      changes: [
        'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        'CMD ["sh"]',
      ],
    })) as Readable
    await followProgress(docker, stream, `import ${tag}`)
    await tar.done
    const id = await imageId(docker, tag)
    if (!id) throw new Error(`import ${tag}: the image is not there afterwards`)
    return id
  })
}

// --- building images -------------------------------------------------------------------------

export interface BuildImageOptions {
  tag: string
  dockerfile: string
  /** extra files in the build context (relative paths); `{ size }`: n zero bytes */
  files?: Record<string, FixtureFile>
  labels?: Record<string, string>
  buildArgs?: Record<string, string>
  /** network for RUN steps: 'none' (default) or 'host'; a private engine has no bridge */
  network?: 'none' | 'host'
  noCache?: boolean
}

/**
 * Build an image with the engine's classic builder (`POST /build`) from a Dockerfile and
 * files; makes sure the busybox base exists first. Rejects when any progress event holds
 * an error. Returns the image id.
 */
export async function buildImage(engine: EngineRef, opts: BuildImageOptions): Promise<string> {
  const docker = engineClient(engine)
  await busyboxImage(engine)
  return withTempDir('ss-ctx-', async (dir) => {
    await writeFiles(dir, { ...opts.files, Dockerfile: opts.dockerfile })
    const tar = tarDirectory(dir)
    const query: Docker.ImageBuildOptions = {
      t: opts.tag,
      dockerfile: 'Dockerfile',
      networkmode: opts.network ?? 'none',
      nocache: opts.noCache ?? false,
      rm: true,
      forcerm: true,
    }
    if (opts.labels) query.labels = opts.labels
    if (opts.buildArgs) query.buildargs = opts.buildArgs
    const stream = (await docker.buildImage(tar.stream, query)) as Readable
    const events = await followProgress(docker, stream, `build ${opts.tag}`)
    await tar.done
    const id = (await imageId(docker, opts.tag)) ?? events.find((e) => e.aux?.ID)?.aux?.ID
    if (!id) throw new Error(`build ${opts.tag}: no image afterwards`)
    return id
  })
}

// --- CLIs -------------------------------------------------------------------------------------

export interface RunResult {
  stdout: string
  stderr: string
  exitCode: number
}

export interface RunOptions {
  input?: string | Buffer
  cwd?: string
  /** extra environment on top of the engine's */
  env?: NodeJS.ProcessEnv
  /** kill after this many ms (default 120 s) */
  timeoutMs?: number
}

function run(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  opts: RunOptions,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: { ...env, ...opts.env },
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (c: Buffer) => out.push(c))
    child.stderr.on('data', (c: Buffer) => err.push(c))
    child.stdin.on('error', () => {}) // the command may not read its input
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000)
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(new Error(`${file}: ${e.message}`, { cause: e }))
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        exitCode: code ?? (signal ? 128 : 1),
      })
    })
    child.stdin.end(opts.input ?? '')
  })
}

/** The docker CLI used by the fixtures: $SHIPSHAPE_DOCKER_CLI or `docker` on PATH. */
export const dockerCli = process.env.SHIPSHAPE_DOCKER_CLI ?? 'docker'

/** Run the docker CLI against the private engine (argv array, never a shell). */
export function docker(
  engine: EngineRef,
  args: string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  return run(dockerCli, args, envOf(engine), opts)
}

/** Like docker(), but throws on a non-zero exit; returns stdout. */
export async function dockerOk(
  engine: EngineRef,
  args: string[],
  opts: RunOptions = {},
): Promise<string> {
  const r = await docker(engine, args, opts)
  if (r.exitCode !== 0) {
    throw new Error(`docker ${args.join(' ')} exited ${r.exitCode}:\n${r.stderr}${r.stdout}`)
  }
  return r.stdout
}

/**
 * Run docker compose against the private engine: 'v1' = Debian's docker-compose 1.29,
 * 'v2' = compose 2.26 from the trixie package (needs `npm run fetch-engines`).
 */
export function compose(
  engine: PrivateEngine,
  version: 'v1' | 'v2',
  args: string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  const file = version === 'v1' ? engine.composeV1Path : engine.composeV2Path
  if (!file) {
    return Promise.reject(
      new Error(
        version === 'v1'
          ? 'compose v1 is not installed (apt-get install docker-compose)'
          : 'compose v2 is not fetched (npm run fetch-engines)',
      ),
    )
  }
  return run(file, args, engine.env, opts)
}
