/**
 * The engine port: everything shipshape asks of Docker goes through an Engine. connectEngine()
 * reaches the engine (connect.ts) and builds the port on the negotiated client; every answer is
 * normalized (normalize.ts) before it leaves. The client and the raw inspect JSON stay inside
 * lib/docker (internal.ts).
 */
import { PassThrough } from 'node:stream'
import type Docker from 'dockerode'
import tarStream from 'tar-stream'
import { EngineError } from '../errors.js'
import type { EngineAddress } from '../shared/address.js'
import { exportRequestOf, probeEngine, type ConnectOptions, type ProbedEngine } from './connect.js'
import type { ExportRequest } from './export.js'
import { INTERNALS, type AdapterEngine, type EngineInternals } from './internal.js'
import {
  normalizeContainer,
  normalizeContainerDetails,
  normalizeDiskUsage,
  normalizeHistory,
  normalizeImage,
  normalizeImageDetails,
} from './normalize.js'
import type {
  ContainerDetails,
  ContainerSummary,
  DiskUsage,
  EngineInfo,
  HistoryEntry,
  ImageDetails,
  ImageSummary,
} from './types.js'

export type { ConnectOptions } from './connect.js'

/** The engine port: everything shipshape asks of Docker goes through here. */
export interface Engine {
  readonly info: EngineInfo
  /** GET /_ping: rejects while the engine does not answer (a dockerd restarting). */
  ping(): Promise<void>
  diskUsage(): Promise<DiskUsage>
  imageHistory(imageId: string): Promise<HistoryEntry[]>
  /** The image archive as `docker save` streams it (GET /images/{id}/get); read it with lib/docker/archive.ts. */
  exportImage(imageId: string): Promise<NodeJS.ReadableStream>
  /**
   * The same export as a plain request another thread can open with lib/docker/export.ts
   * (openExport) without this port. Optional: an engine that only streams (a test fake) has none.
   */
  exportRequest?(imageId: string): ExportRequest
  listContainers(): Promise<ContainerSummary[]>
  /**
   * One container by id or name (the container endpoint only); null when there is none.
   * `size`: with the bytes of its own layer (sizeRwBytes), which the engine must compute.
   */
  inspectContainer(idOrName: string, opts?: { size?: boolean }): Promise<ContainerDetails | null>
  /** One image by id or reference (the image endpoint only); null when there is none. */
  inspectImage(ref: string): Promise<ImageDetails | null>
  /**
   * Runs argv in a running container and waits for its output to end (then reads the exit
   * code). On timeout the stream is closed and `timedOut` is set; the process inside may go on.
   */
  exec(containerId: string, argv: string[], opts?: ExecOptions): Promise<ExecResult>
  /** Starts a stopped container (already running: nothing to do). */
  startContainer(idOrName: string): Promise<void>
  /** Stops a running container, SIGKILL after `timeoutS` (default: the container's StopTimeout, 10 s). */
  stopContainer(idOrName: string, timeoutS?: number): Promise<void>
  /**
   * Images, optionally only those with every one of `labels` ('key' or 'key=value'); `all`: the
   * intermediate images too (GET /images/json?all=1).
   */
  listImages(opts?: { labels?: string[]; all?: boolean }): Promise<ImageSummary[]>
  /**
   * The digest the registry gives `ref` now (GET /distribution/{ref}/json: the engine asks the
   * registry, with no credentials): what a pull would fetch, without pulling.
   */
  registryDigest(ref: string): Promise<string>
  /** Points repo:tag at an image (moves the tag when it named another one). */
  tagImage(image: string, repo: string, tag: string): Promise<void>
  /**
   * DELETE /images/{ref} without force or pruning: removes a tag, and the image with its last tag when no
   * container uses it (never its untagged parents). Returns false when there was no such image or tag.
   */
  removeImage(ref: string, opts?: { pruneParents?: boolean }): Promise<boolean>
  /** DELETE /containers/{id} (not running; anonymous volumes kept). False when there was none. */
  removeContainer(idOrName: string): Promise<boolean>
  /** DELETE /volumes/{name} (not in use). False when there was none. */
  removeVolume(name: string): Promise<boolean>
  /** POST /build/prune keeping `keepBytes` of cache (least recently used goes first); bytes freed. */
  pruneBuildCache(keepBytes: number): Promise<number>
  /** `docker commit`: the container's filesystem and config as a new image; returns its id. */
  commitContainer(idOrName: string, o: CommitOptions): Promise<string>
  /**
   * A copy of an image with labels added (a build of `FROM <image>` with the labels: no new layer,
   * a new id) tagged repo:tag; returns its id.
   */
  labelImage(
    image: string,
    o: { repo: string; tag: string; labels: Record<string, string> },
  ): Promise<string>
  close(): void
}

export interface CommitOptions {
  repo: string
  tag: string
  /** pause the container while committing (docker's default: true) */
  pause: boolean
  /** Dockerfile instructions applied to the image's config, e.g. 'LABEL a="b"' */
  changes?: string[]
  comment?: string
}

export interface ExecOptions {
  timeoutMs?: number
  /** keep at most this many bytes of each of stdout and stderr (default 1 MiB) */
  maxOutputBytes?: number
  user?: string
}

export interface ExecResult {
  exitCode: number | null
  stdout: string
  stderr: string
  timedOut: boolean
}

type Raw = Record<string, unknown>

/** The engine answered with an error, or stopped answering: the component failed (exit 3). */
function failure(what: string, err: unknown): EngineError {
  const e = err as {
    statusCode?: number
    json?: { message?: string }
    message?: string
    code?: string
  }
  const msg = e?.json?.message ?? e?.message ?? String(err)
  return new EngineError(
    `${what}: ${msg}${e?.code === 'ECONNRESET' && !e?.statusCode ? ' (no answer: timed out or connection lost)' : ''}`,
    e?.statusCode,
  )
}

/**
 * The engine's answer to `call`; `or.value` when it answers `or.status` (404: none there, 304:
 * nothing to do); any other failure → EngineError naming `what`.
 */
async function ask<T, A = never>(
  what: string,
  call: () => Promise<T>,
  or?: { status: number; value: A },
): Promise<T | A> {
  try {
    return await call()
  } catch (err) {
    if (or && (err as { statusCode?: number } | null)?.statusCode === or.status) return or.value
    throw failure(what, err)
  }
}

const NONE = { status: 404, value: null }
const GONE = { status: 404, value: false }
const ALREADY = { status: 304, value: undefined }

type ReadCalls =
  | 'ping'
  | 'diskUsage'
  | 'imageHistory'
  | 'exportRequest'
  | 'exportImage'
  | 'listContainers'
  | 'inspectContainer'
  | 'inspectImage'
  | 'listImages'
  | 'registryDigest'
type WriteCalls = Exclude<keyof Engine, ReadCalls | 'info' | 'close'>

/** The reads: disk usage, lists, inspects, histories, the export, a registry digest. */
function reads(probed: ProbedEngine): Pick<Engine, ReadCalls> {
  const { api, base, info, idleTimeoutMs } = probed
  return {
    async ping() {
      await api.ping()
    },
    async diskUsage() {
      const raw = await ask('engine disk usage (/system/df)', () => api.df() as Promise<Raw>)
      return normalizeDiskUsage(raw)
    },
    async imageHistory(imageId) {
      const history = () => api.getImage(imageId).history() as Promise<Raw[]>
      return (await ask(`history of image ${imageId}`, history)).map(normalizeHistory)
    },
    exportRequest(imageId) {
      return exportRequestOf(base, info.apiVersion, imageId, idleTimeoutMs)
    },
    async exportImage(imageId) {
      return ask(`export of image ${imageId} (/images/{id}/get)`, () => api.getImage(imageId).get())
    },
    async listContainers() {
      const list = () => api.listContainers({ all: true }) as unknown as Promise<Raw[]>
      return (await ask('container list', list)).map(normalizeContainer)
    },
    async inspectContainer(idOrName, o = {}) {
      const opts = { size: Boolean(o.size) } as Docker.ContainerInspectOptions
      const inspect = () => api.getContainer(idOrName).inspect(opts) as unknown as Promise<Raw>
      const raw = await ask(`container ${idOrName}`, inspect, NONE)
      return raw && normalizeContainerDetails(raw)
    },
    async inspectImage(ref) {
      const inspect = () => api.getImage(ref).inspect() as unknown as Promise<Raw>
      const raw = await ask(`image ${ref}`, inspect, NONE)
      return raw && normalizeImageDetails(raw)
    },
    async listImages(o = {}) {
      const query: Record<string, unknown> = {}
      if (o.labels?.length) query.filters = JSON.stringify({ label: o.labels })
      if (o.all) query.all = true
      const list = () => api.listImages(query) as unknown as Promise<Raw[]>
      return (await ask('image list', list)).map(normalizeImage)
    },
    async registryDigest(ref) {
      const d = (await ask(`registry lookup of ${ref}`, () =>
        api.getImage(ref).distribution({}),
      )) as {
        Descriptor?: { digest?: string }
      }
      const digest = d?.Descriptor?.digest
      if (!digest) throw new EngineError(`the registry gave no digest for ${ref}`)
      return digest
    },
  }
}

/** The changes: containers started, stopped, run in, committed, removed; images tagged, copied, removed. */
function writes(api: Docker): Pick<Engine, WriteCalls> {
  return {
    exec: (containerId, argv, opts) => execIn(api, containerId, argv, opts),
    async startContainer(idOrName) {
      await ask(`start of container ${idOrName}`, () => api.getContainer(idOrName).start(), ALREADY)
    },
    async stopContainer(idOrName, timeoutS) {
      const stop = () =>
        api.getContainer(idOrName).stop(timeoutS === undefined ? {} : { t: timeoutS })
      await ask(`stop of container ${idOrName}`, stop, ALREADY)
    },
    async tagImage(image, repo, tag) {
      const call = () => api.getImage(image).tag({ repo, tag })
      await ask(`tag of image ${image} as ${repo}:${tag}`, call)
    },
    async removeImage(ref, o = {}) {
      const call = () => api.getImage(ref).remove({ force: false, noprune: !o.pruneParents })
      return ask(`removal of image ${ref}`, () => call().then(() => true), GONE)
    },
    async removeContainer(idOrName) {
      const call = () => api.getContainer(idOrName).remove({ force: false, v: false })
      return ask(`removal of container ${idOrName}`, () => call().then(() => true), GONE)
    },
    async removeVolume(name) {
      const call = () => api.getVolume(name).remove({ force: false })
      return ask(`removal of volume ${name}`, () => call().then(() => true), GONE)
    },
    async pruneBuildCache(keepBytes) {
      // keep-storage: API 1.39+ (renamed reserved-space in 1.48, which still takes keep-storage)
      const opts = { 'keep-storage': keepBytes } as Docker.PruneBuilderOptions
      const r = (await ask('build cache prune (/build/prune)', () => api.pruneBuilder(opts))) as {
        SpaceReclaimed?: number
      }
      return Number(r.SpaceReclaimed ?? 0)
    },
    async commitContainer(idOrName, o) {
      const { repo, tag, pause, comment, changes } = o
      const commit = () => api.getContainer(idOrName).commit({ repo, tag, pause, comment, changes })
      const r = (await ask(`commit of container ${idOrName}`, commit)) as {
        Id?: string
        ID?: string
      }
      const id = r.Id ?? r.ID
      if (!id) throw new EngineError(`commit of container ${idOrName}: the engine gave no image id`)
      return id
    },
    labelImage: (image, o) => labelledCopy(api, image, o),
  }
}

/** See Engine.exec: argv run in a running container, its output demultiplexed and capped. */
async function execIn(
  api: Docker,
  containerId: string,
  argv: string[],
  opts: ExecOptions = {},
): Promise<ExecResult> {
  const max = opts.maxOutputBytes ?? 1024 * 1024
  const what = `exec in container ${containerId}`
  const exec = await ask(what, () =>
    api
      .getContainer(containerId)
      .exec({ Cmd: argv, AttachStdout: true, AttachStderr: true, User: opts.user ?? '' }),
  )
  const stream = (await ask(what, () =>
    exec.start({ hijack: true, stdin: false }),
  )) as NodeJS.ReadWriteStream & { destroy(): void }
  const collect = () => {
    const chunks: Buffer[] = []
    let size = 0
    const sink = new PassThrough()
    sink.on('data', (c: Buffer) => {
      if (size < max) chunks.push(c.subarray(0, max - size))
      size += c.length
    })
    return { sink, text: () => Buffer.concat(chunks).toString('utf8') }
  }
  const out = collect()
  const err = collect()
  api.modem.demuxStream(stream, out.sink, err.sink)
  let timedOut = false
  await new Promise<void>((resolve, reject) => {
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true
          stream.destroy()
          resolve()
        }, opts.timeoutMs)
      : undefined
    const done = () => {
      clearTimeout(timer)
      resolve()
    }
    stream.on('end', done)
    stream.on('close', done)
    stream.on('error', (e: Error) => {
      clearTimeout(timer)
      reject(new Error(`exec in container ${containerId}: ${e.message}`))
    })
  })
  const info = timedOut ? null : await exec.inspect().catch(() => null)
  return {
    exitCode: info && typeof info.ExitCode === 'number' && !info.Running ? info.ExitCode : null,
    stdout: out.text(),
    stderr: err.text(),
    timedOut,
  }
}

/** See Engine.labelImage: a build of `FROM <image>` with one LABEL instruction, tagged repo:tag. */
async function labelledCopy(
  api: Docker,
  image: string,
  o: { repo: string; tag: string; labels: Record<string, string> },
): Promise<string> {
  const what = `labelled copy of image ${image}`
  // one LABEL instruction: the `labels` build parameter makes a step (an intermediate image)
  // per label, left behind untagged when the copy's tag is removed
  const q = (v: string) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, ' ')}"`
  const labels = Object.entries(o.labels)
    .map(([k, v]) => `${q(k)}=${q(v)}`)
    .join(' ')
  const pack = tarStream.pack()
  pack.entry({ name: 'Dockerfile', mode: 0o644 }, `FROM ${image}\nLABEL ${labels}\n`)
  pack.finalize()
  const build = () =>
    api.buildImage(pack as unknown as NodeJS.ReadableStream, {
      t: `${o.repo}:${o.tag}`,
      networkmode: 'none',
      rm: true,
      forcerm: true,
    })
  const stream = (await ask(what, build)) as NodeJS.ReadableStream
  type Event = { error?: string; aux?: { ID?: string } }
  const events = await ask(
    what,
    () =>
      new Promise<Event[]>((resolve, reject) =>
        api.modem.followProgress(stream, (err: Error | null, res: unknown[]) =>
          err ? reject(err) : resolve(res as Event[]),
        ),
      ),
  )
  const failed = events.find((e) => e.error)
  if (failed) throw new EngineError(`${what}: ${failed.error}`)
  const tagged = await ask(what, () => api.getImage(`${o.repo}:${o.tag}`).inspect())
  return tagged.Id
}

/** The adapter's own access (internal.ts): the client and the inspect JSON as the engine sends it. */
function internals(api: Docker): EngineInternals {
  return {
    api,
    inspectContainerRaw: (idOrName) =>
      ask(`container ${idOrName}`, () => api.getContainer(idOrName).inspect(), NONE),
    inspectImageRaw: (ref) => ask(`image ${ref}`, () => api.getImage(ref).inspect(), NONE),
  }
}

/**
 * Connect to the engine, negotiate the API version, read what the rest of shipshape needs
 * to know about it. An engine that does not answer within timeoutMs → UnavailableError (exit 3).
 */
export async function connectEngine(
  addr: EngineAddress,
  opts: ConnectOptions = {},
): Promise<Engine> {
  const probed = await probeEngine(addr, opts)
  const engine: AdapterEngine = {
    info: probed.info,
    ...reads(probed),
    ...writes(probed.api),
    [INTERNALS]: internals(probed.api),
    close() {},
  }
  return engine
}
