/**
 * The image export (GET /images/{id}/get, what `docker save` reads) as a plain HTTP request
 * that needs neither dockerode nor anything else of the engine port: lib/scan's worker thread
 * opens it itself, so the archive's bytes never cross threads (see lib/scan/collect.ts).
 *
 *   ExportRequest          a plain, structured-cloneable description (socket or host/port, TLS
 *                          material, the versioned path); Engine.exportRequest(id) makes one
 *   openExport(req)        → the response body stream; a non-2xx answer, a socket that cannot be
 *                          reached, or no answer for idleTimeoutMs → EngineError (exit 3), worded
 *                          like the engine port's own errors ("export of image X: <engine message>");
 *                          the body stream errors when the engine stops sending (idle timeout, lost
 *                          connection): collect-worker.ts turns that into an EngineError too
 *   describeCause(err)     the words for a failed connection, shared with the engine port
 */
import http from 'node:http'
import https from 'node:https'
import { EngineError } from '../errors.js'

export interface ExportRequest {
  /** unix socket, or host + port */
  socketPath?: string
  host?: string
  port?: number
  protocol: 'http' | 'https'
  /** TLS material read from DOCKER_CERT_PATH (https only) */
  ca?: Uint8Array
  cert?: Uint8Array
  key?: Uint8Array
  /** '/v1.45/images/<id>/get' */
  path: string
  /** no byte from the engine for this long → abandoned */
  idleTimeoutMs: number
  /** how messages name it: 'export of image sha256:…' */
  what: string
}

const ERROR_BODY_MAX = 64 * 1024

/** Why a connection to the engine failed, in a few words an operator can act on. */
export function describeCause(err: unknown): string {
  const e = err as NodeJS.ErrnoException
  if (e?.code === 'ENOENT') return 'no such socket'
  if (e?.code === 'EACCES') return 'permission denied (run as root or join the docker group)'
  if (e?.code === 'ECONNREFUSED') return 'connection refused'
  if (e?.code === 'ECONNRESET') return 'no answer: timed out or connection lost'
  return e?.code ?? e?.message ?? String(err)
}

const failure = (what: string, err: unknown) => new EngineError(`${what}: ${describeCause(err)}`)

/** The engine's error body ({"message": …}) or its text. */
async function errorMessage(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  let n = 0
  for await (const c of res) {
    if (n < ERROR_BODY_MAX) chunks.push(c as Buffer)
    n += (c as Buffer).length
  }
  const body = Buffer.concat(chunks).toString('utf8')
  try {
    const msg = (JSON.parse(body) as { message?: unknown }).message
    if (typeof msg === 'string') return msg
  } catch {
    // not JSON
  }
  return body.trim() || `HTTP ${res.statusCode}`
}

/** Open the export (see the file header). */
export function openExport(req: ExportRequest): Promise<http.IncomingMessage> {
  const buf = (u: Uint8Array | undefined) => (u ? Buffer.from(u) : undefined)
  const options: https.RequestOptions = {
    method: 'GET',
    path: req.path,
    headers: { Accept: 'application/x-tar' },
  }
  if (req.socketPath) options.socketPath = req.socketPath
  else {
    options.host = req.host
    options.port = req.port
  }
  if (req.protocol === 'https') {
    const ca = buf(req.ca)
    const cert = buf(req.cert)
    const key = buf(req.key)
    if (ca) options.ca = ca
    if (cert) options.cert = cert
    if (key) options.key = key
  }
  return new Promise((resolve, reject) => {
    const request = (req.protocol === 'https' ? https : http).request(options, (res) => {
      const status = res.statusCode ?? 0
      if (status >= 200 && status < 300) return resolve(res)
      errorMessage(res).then(
        (msg) => reject(new EngineError(`${req.what}: ${msg}`, status)),
        (err: unknown) => reject(failure(req.what, err)),
      )
    })
    request.setTimeout(req.idleTimeoutMs, () =>
      request.destroy(Object.assign(new Error('idle timeout'), { code: 'ECONNRESET' })),
    )
    request.on('error', (err) => reject(failure(req.what, err)))
    request.end()
  })
}
