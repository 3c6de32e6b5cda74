/**
 * The image export (GET /images/{id}/get, what `docker save` reads) as a plain HTTP request
 * that needs neither dockerode nor anything else of the engine port: lib/scan's worker thread
 * opens it itself, so the archive's bytes never cross threads (see lib/scan/collect.ts).
 *
 *   ExportRequest          a plain, structured-cloneable description (socket or host/port, TLS
 *                          material, the versioned path); Engine.exportRequest(id) makes one
 *   openExport(req)        → the response body stream; a non-2xx answer, a socket that cannot be
 *                          reached, or no byte for idleTimeoutMs → EngineError (exit 3), worded
 *                          like the engine port's own errors ("export of image X: <engine message>")
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

function failure(what: string, err: NodeJS.ErrnoException): EngineError {
  const lost = err.code === 'ECONNRESET' ? ' (no answer: timed out or connection lost)' : ''
  return new EngineError(`${what}: ${err.code ?? err.message}${lost}`)
}

/** The engine's error body ({"message": …}) or its text. */
async function errorMessage(res: http.IncomingMessage): Promise<string> {
  let body = ''
  for await (const c of res) {
    if (body.length < ERROR_BODY_MAX) body += (c as Buffer).toString('utf8')
  }
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
        (err: NodeJS.ErrnoException) => reject(failure(req.what, err)),
      )
    })
    request.setTimeout(req.idleTimeoutMs, () =>
      request.destroy(Object.assign(new Error('idle timeout'), { code: 'ECONNRESET' })),
    )
    request.on('error', (err: NodeJS.ErrnoException) => reject(failure(req.what, err)))
    request.end()
  })
}
