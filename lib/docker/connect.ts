/**
 * Reaching the engine: dockerode's options for the chosen address, the first calls (/version
 * with a deadline, then /info), the API version both sides speak, and the export as a plain
 * request for another thread. engine.ts builds the port on what probeEngine() returns.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import Docker from 'dockerode'
import { UnavailableError } from '../errors.js'
import type { EngineAddress } from '../shared/address.js'
import { describeCause, type ExportRequest } from './export.js'
import {
  CLIENT_MIN_API,
  compareApiVersions,
  normalizeEngineInfo,
  normalizeVersion,
} from './normalize.js'
import type { EngineInfo } from './types.js'

export interface ConnectOptions {
  /** How long the engine may take to answer the first call (ms). */
  timeoutMs?: number
  /** A later call whose socket stays silent this long is abandoned (ms). */
  callTimeoutMs?: number
  env?: NodeJS.ProcessEnv
  /** Warnings (e.g. an engine older than supported). */
  warn?: (line: string) => void
}

/** No byte from the engine for this long on an open request → the request is abandoned. */
export const IDLE_TIMEOUT_MS = 120_000

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

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms)
  })
  return Promise.race([p, t]).finally(() => clearTimeout(timer))
}

/** A call that must answer by a deadline: no answer or a failed connection → UnavailableError (exit 3). */
async function firstAnswer<T>(
  addr: EngineAddress,
  call: () => Promise<T>,
  ms: number,
  silence: string,
): Promise<T> {
  const unreachable = (cause: string) =>
    new UnavailableError(
      `Docker engine unreachable at ${addr.url}: ${cause}`,
      'start the engine, or point shipshape at it with --docker-host / DOCKER_HOST / docker.host in the config',
    )
  try {
    return await withTimeout(call(), ms, () => unreachable(silence))
  } catch (err) {
    if (err instanceof UnavailableError) throw err
    throw unreachable(describeCause(err))
  }
}

/** What connectEngine() builds the port on. */
export interface ProbedEngine {
  /** dockerode's options for the address (also the export's, see exportRequestOf) */
  base: Docker.DockerOptions
  /** the client for every later call, on the negotiated API version */
  api: Docker
  info: EngineInfo
  idleTimeoutMs: number
}

/**
 * Ask /version within timeoutMs, warn about an engine older than supported, negotiate the API
 * version, then read /info. An engine that does not answer → UnavailableError (exit 3).
 */
export async function probeEngine(
  addr: EngineAddress,
  opts: ConnectOptions = {},
): Promise<ProbedEngine> {
  const timeoutMs = opts.timeoutMs ?? 4000
  const base = modemOptions(addr, opts.env ?? process.env)
  const probe = new Docker({ ...base, timeout: timeoutMs })
  const version = normalizeVersion(
    await firstAnswer(
      addr,
      () => probe.version() as unknown as Promise<Record<string, unknown>>,
      timeoutMs,
      `no answer within ${timeoutMs / 1000} s`,
    ),
  )
  if (compareApiVersions(version.engineApiVersion, CLIENT_MIN_API) < 0) {
    opts.warn?.(
      `engine API ${version.engineApiVersion} (Docker ${version.version}) is older than the oldest supported (${CLIENT_MIN_API}, Docker 20.10); results may be incomplete`,
    )
  }
  // Every later call: a socket idle this long is a hung engine (a request in flight would
  // otherwise keep the process alive forever). Streams that make progress are not affected.
  const idleTimeoutMs = opts.callTimeoutMs ?? IDLE_TIMEOUT_MS
  const api = new Docker({ ...base, version: `v${version.apiVersion}`, timeout: idleTimeoutMs })
  // /info is heavier than /version on a loaded engine: give it more time once the engine has answered.
  const rawInfo = await firstAnswer(
    addr,
    () => api.info() as Promise<Record<string, unknown>>,
    Math.max(30_000, timeoutMs),
    'no answer to /info within 30 s',
  )
  const info = normalizeEngineInfo(addr.url, version, rawInfo)
  return { base, api, info, idleTimeoutMs }
}
