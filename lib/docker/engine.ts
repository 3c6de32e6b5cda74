import { readFileSync } from 'node:fs'
import path from 'node:path'
import Docker from 'dockerode'
import { EngineError, UnavailableError } from '../errors.js'
import type { EngineAddress } from '../shared/address.js'
import { describeCause, type ExportRequest } from './export.js'
import {
  CLIENT_MIN_API,
  compareApiVersions,
  detectImageStore,
  negotiateApiVersion,
  normalizeContainer,
  normalizeContainerDetails,
  normalizeImageDetails,
  normalizeDiskUsage,
  normalizeHistory,
  normalizeImage,
} from './normalize.js'
import { PassThrough } from 'node:stream'
import tarStream from 'tar-stream'
import type {
  ContainerDetails,
  ContainerSummary,
  DiskUsage,
  EngineInfo,
  HistoryEntry,
  ImageDetails,
  ImageSummary,
} from './types.js'

/** The engine port: everything shipshape asks of Docker goes through here. */
export interface Engine {
  readonly info: EngineInfo
  /** Raw dockerode client, for lib/docker only. */
  readonly api: Docker
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
  /** One container by id or name (the container endpoint only); null when there is none. */
  inspectContainer(idOrName: string): Promise<ContainerDetails | null>
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
  /** GET /containers/{id}/json as the engine gives it (`size`: with SizeRw); null when there is none. */
  inspectContainerRaw(
    idOrName: string,
    opts?: { size?: boolean },
  ): Promise<Docker.ContainerInspectInfo | null>
  /** GET /images/{name}/json as the engine gives it; null when there is none. */
  inspectImageRaw(ref: string): Promise<Docker.ImageInspectInfo | null>
  /** Images, optionally only those with every one of `labels` ('key' or 'key=value'). */
  listImages(opts?: { labels?: string[] }): Promise<ImageSummary[]>
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

export interface ConnectOptions {
  /** How long the engine may take to answer the first call (ms). */
  timeoutMs?: number
  /** A later call whose socket stays silent this long is abandoned (ms). */
  callTimeoutMs?: number
  env?: NodeJS.ProcessEnv
  /** Warnings (e.g. an engine older than supported). */
  warn?: (line: string) => void
}

// No custom http.Agent: docker-modem util.inspect()s each request's options (an agent and its
// sockets included, depth: null) even with debug off — ~10 ms of CPU a call, which made 160
// histories cost 1.5 s. Node's global agent keeps connections alive by itself (Node >= 19).
/**
 * dockerode's options for the chosen address. docker-modem merges its own defaults from
 * $DOCKER_HOST under these, and a host from there would win over socketPath: `host: undefined`
 * keeps --docker-host / the config in charge.
 */
export function modemOptions(addr: EngineAddress, env: NodeJS.ProcessEnv): Docker.DockerOptions {
  if (addr.kind === 'unix') return { socketPath: addr.socketPath, host: undefined }
  const opts: Docker.DockerOptions = { host: addr.host, port: addr.port, protocol: addr.protocol }
  if (addr.protocol === 'https') {
    const dir = env.DOCKER_CERT_PATH
    if (dir) {
      opts.ca = readFileSync(path.join(dir, 'ca.pem'))
      opts.cert = readFileSync(path.join(dir, 'cert.pem'))
      opts.key = readFileSync(path.join(dir, 'key.pem'))
    }
  }
  return opts
}

/** The export of one image as a plain request (see Engine.exportRequest), from dockerode's options. */
export function exportRequestOf(
  base: Docker.DockerOptions,
  apiVersion: string,
  imageId: string,
  idleTimeoutMs: number,
): ExportRequest {
  const tls = (v: unknown) => (Buffer.isBuffer(v) ? v : undefined)
  const req: ExportRequest = {
    protocol: base.protocol === 'https' ? 'https' : 'http',
    path: `/v${apiVersion}/images/${encodeURIComponent(imageId)}/get`,
    idleTimeoutMs,
    what: `export of image ${imageId} (/images/{id}/get)`,
  }
  if (base.socketPath) req.socketPath = base.socketPath
  else {
    // an IPv6 literal comes bracketed from the URL ('[::1]'): node's http wants it bare
    req.host = base.host?.replace(/^\[(.*)\]$/, '$1')
    req.port = Number(base.port)
  }
  const [ca, cert, key] = [tls(base.ca), tls(base.cert), tls(base.key)]
  if (ca) req.ca = ca
  if (cert) req.cert = cert
  if (key) req.key = key
  return req
}

/** No byte from the engine for this long on an open request → the request is abandoned. */
export const IDLE_TIMEOUT_MS = 120_000

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms)
  })
  return Promise.race([p, t]).finally(() => clearTimeout(timer))
}

/**
 * Connect to the engine, negotiate the API version, read what the rest of shipshape needs
 * to know about it. An engine that does not answer within timeoutMs → UnavailableError (exit 3).
 */
export async function connectEngine(
  addr: EngineAddress,
  opts: ConnectOptions = {},
): Promise<Engine> {
  const env = opts.env ?? process.env
  const timeoutMs = opts.timeoutMs ?? 4000
  const unreachable = (cause: string) =>
    new UnavailableError(
      `Docker engine unreachable at ${addr.url}: ${cause}`,
      'start the engine, or point shipshape at it with --docker-host / DOCKER_HOST / docker.host in the config',
    )
  const base = modemOptions(addr, env)
  let version: Docker.DockerVersion
  try {
    const probe = new Docker({ ...base, timeout: timeoutMs })
    version = await withTimeout(probe.version(), timeoutMs, () =>
      unreachable(`no answer within ${timeoutMs / 1000} s`),
    )
  } catch (err) {
    if (err instanceof UnavailableError) throw err
    throw unreachable(describeCause(err))
  }
  const engineApi = version.ApiVersion
  if (compareApiVersions(engineApi, CLIENT_MIN_API) < 0) {
    opts.warn?.(
      `engine API ${engineApi} (Docker ${version.Version}) is older than the oldest supported (${CLIENT_MIN_API}, Docker 20.10); results may be incomplete`,
    )
  }
  const apiVersion = negotiateApiVersion(engineApi)
  // Every later call: a socket idle this long is a hung engine (a request in flight would
  // otherwise keep the process alive forever). Streams that make progress are not affected.
  const api = new Docker({
    ...base,
    version: `v${apiVersion}`,
    timeout: opts.callTimeoutMs ?? IDLE_TIMEOUT_MS,
  })
  let rawInfo: Record<string, unknown>
  try {
    // /info is heavier than /version on a loaded engine: give it more time once the engine has answered.
    rawInfo = await withTimeout(
      api.info() as Promise<Record<string, unknown>>,
      Math.max(30_000, timeoutMs),
      () => unreachable('no answer to /info within 30 s'),
    )
  } catch (err) {
    if (err instanceof UnavailableError) throw err
    throw unreachable(describeCause(err))
  }
  const info: EngineInfo = {
    address: addr.url,
    version: version.Version,
    apiVersion,
    engineApiVersion: engineApi,
    os: `${version.Os}`,
    arch: `${version.Arch}`,
    storageDriver: String(rawInfo.Driver ?? ''),
    dockerRootDir: String(rawInfo.DockerRootDir ?? ''),
    imageStore: detectImageStore(rawInfo),
  }
  // The engine answered with an error, or stopped answering: the component failed (exit 3).
  const named = (what: string) => (err: unknown) => {
    const e = err as {
      statusCode?: number
      json?: { message?: string }
      message?: string
      code?: string
    }
    const msg = e?.json?.message ?? e?.message ?? String(err)
    throw new EngineError(
      `${what}: ${msg}${e?.code === 'ECONNRESET' && !e?.statusCode ? ' (no answer: timed out or connection lost)' : ''}`,
      e?.statusCode,
    )
  }
  return {
    info,
    api,
    async diskUsage() {
      const raw = (await api.df().catch(named('engine disk usage (/system/df)'))) as Record<
        string,
        unknown
      >
      return normalizeDiskUsage(raw)
    },
    async imageHistory(imageId) {
      const raw = (await api
        .getImage(imageId)
        .history()
        .catch(named(`history of image ${imageId}`))) as Record<string, unknown>[]
      return raw.map(normalizeHistory)
    },
    exportRequest(imageId) {
      return exportRequestOf(base, apiVersion, imageId, opts.callTimeoutMs ?? IDLE_TIMEOUT_MS)
    },
    async exportImage(imageId) {
      return api
        .getImage(imageId)
        .get()
        .catch(named(`export of image ${imageId} (/images/{id}/get)`))
    },
    async listContainers() {
      const raw = (await api
        .listContainers({ all: true })
        .catch(named('container list'))) as unknown as Record<string, unknown>[]
      return raw.map(normalizeContainer)
    },
    async inspectContainer(idOrName) {
      try {
        return normalizeContainerDetails(
          (await api.getContainer(idOrName).inspect()) as unknown as Record<string, unknown>,
        )
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return null
        return named(`container ${idOrName}`)(err)
      }
    },
    async inspectImage(ref) {
      try {
        return normalizeImageDetails(
          (await api.getImage(ref).inspect()) as unknown as Record<string, unknown>,
        )
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return null
        return named(`image ${ref}`)(err)
      }
    },
    async exec(containerId, argv, opts = {}) {
      const max = opts.maxOutputBytes ?? 1024 * 1024
      const container = api.getContainer(containerId)
      const exec = await container
        .exec({ Cmd: argv, AttachStdout: true, AttachStderr: true, User: opts.user ?? '' })
        .catch(named(`exec in container ${containerId}`))
      const stream = (await exec
        .start({ hijack: true, stdin: false })
        .catch(named(`exec in container ${containerId}`))) as NodeJS.ReadWriteStream & {
        destroy(): void
      }
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
    },
    async startContainer(idOrName) {
      await api
        .getContainer(idOrName)
        .start()
        .catch((err: { statusCode?: number }) => {
          if (err?.statusCode === 304) return // already started
          return named(`start of container ${idOrName}`)(err)
        })
    },
    async stopContainer(idOrName, timeoutS) {
      await api
        .getContainer(idOrName)
        .stop(timeoutS === undefined ? {} : { t: timeoutS })
        .catch((err: { statusCode?: number }) => {
          if (err?.statusCode === 304) return // already stopped
          return named(`stop of container ${idOrName}`)(err)
        })
    },
    async inspectContainerRaw(idOrName, o = {}) {
      try {
        const opts = { size: Boolean(o.size) } as Docker.ContainerInspectOptions
        return await api.getContainer(idOrName).inspect(opts)
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return null
        return named(`container ${idOrName}`)(err)
      }
    },
    async inspectImageRaw(ref) {
      try {
        return await api.getImage(ref).inspect()
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return null
        return named(`image ${ref}`)(err)
      }
    },
    async listImages(o = {}) {
      const filters = o.labels?.length ? { label: o.labels } : undefined
      const raw = (await api
        .listImages(filters ? { filters: JSON.stringify(filters) } : {})
        .catch(named('image list'))) as unknown as Record<string, unknown>[]
      return raw.map(normalizeImage)
    },
    async registryDigest(ref) {
      const d = (await api
        .getImage(ref)
        .distribution({})
        .catch(named(`registry lookup of ${ref}`))) as { Descriptor?: { digest?: string } }
      const digest = d?.Descriptor?.digest
      if (!digest) throw new EngineError(`the registry gave no digest for ${ref}`)
      return digest
    },
    async tagImage(image, repo, tag) {
      await api
        .getImage(image)
        .tag({ repo, tag })
        .catch(named(`tag of image ${image} as ${repo}:${tag}`))
    },
    async removeImage(ref, o = {}) {
      try {
        await api.getImage(ref).remove({ force: false, noprune: !o.pruneParents })
        return true
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return false
        return named(`removal of image ${ref}`)(err)
      }
    },
    async removeContainer(idOrName) {
      try {
        await api.getContainer(idOrName).remove({ force: false, v: false })
        return true
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return false
        return named(`removal of container ${idOrName}`)(err)
      }
    },
    async removeVolume(name) {
      try {
        await api.getVolume(name).remove({ force: false })
        return true
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return false
        return named(`removal of volume ${name}`)(err)
      }
    },
    async pruneBuildCache(keepBytes) {
      // keep-storage: API 1.39+ (renamed reserved-space in 1.48, which still takes keep-storage)
      const r = (await api
        .pruneBuilder({ 'keep-storage': keepBytes } as Docker.PruneBuilderOptions)
        .catch(named('build cache prune (/build/prune)'))) as { SpaceReclaimed?: number }
      return Number(r.SpaceReclaimed ?? 0)
    },
    async commitContainer(idOrName, o) {
      const r = (await api
        .getContainer(idOrName)
        .commit({
          repo: o.repo,
          tag: o.tag,
          pause: o.pause,
          comment: o.comment,
          changes: o.changes,
        })
        .catch(named(`commit of container ${idOrName}`))) as { Id?: string; ID?: string }
      const id = r.Id ?? r.ID
      if (!id) throw new EngineError(`commit of container ${idOrName}: the engine gave no image id`)
      return id
    },
    async labelImage(image, o) {
      // one LABEL instruction: the `labels` build parameter makes a step (an intermediate image)
      // per label, left behind untagged when the copy's tag is removed
      const q = (v: string) =>
        `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, ' ')}"`
      const labels = Object.entries(o.labels)
        .map(([k, v]) => `${q(k)}=${q(v)}`)
        .join(' ')
      const pack = tarStream.pack()
      pack.entry({ name: 'Dockerfile', mode: 0o644 }, `FROM ${image}\nLABEL ${labels}\n`)
      pack.finalize()
      const stream = (await api
        .buildImage(pack as unknown as NodeJS.ReadableStream, {
          t: `${o.repo}:${o.tag}`,
          networkmode: 'none',
          rm: true,
          forcerm: true,
        })
        .catch(named(`labelled copy of image ${image}`))) as NodeJS.ReadableStream
      const events = await new Promise<{ error?: string; aux?: { ID?: string } }[]>(
        (resolve, reject) =>
          api.modem.followProgress(stream, (err: Error | null, res: unknown[]) =>
            err ? reject(err) : resolve(res as { error?: string; aux?: { ID?: string } }[]),
          ),
      ).catch(named(`labelled copy of image ${image}`))
      const failed = events.find((e) => e.error)
      if (failed) throw new EngineError(`labelled copy of image ${image}: ${failed.error}`)
      const tagged = await api
        .getImage(`${o.repo}:${o.tag}`)
        .inspect()
        .catch(named(`labelled copy of image ${image}`))
      return tagged.Id
    },
    close() {},
  }
}
