/**
 * rclone as the judge of what reached a remote behind a FUSE mount. With `--vfs-cache-mode
 * writes` a file is readable through the mount long before it is uploaded (rclone#4293), and a
 * stopped mount drops its queued uploads, so only a listing of the remote itself counts.
 *
 * Remote specs may carry credentials (`:s3,secret_access_key=…:bucket`): anything printed,
 * logged or thrown shows `displayRemote(spec)`, and rclone's own stderr is redacted too — it
 * echoes the raw spec in its errors.
 */
import { UnavailableError } from '../errors.js'
import type { HashName } from '../shared/manifest-types.js'
import { MissingExecutableError, runCaptured } from './run.js'
import { displayRemote, redactRcloneText, URL_USERINFO } from './rclone-spec.js'

export {
  displayRemote,
  isNotConnected,
  mountRemote,
  redactRcloneText,
  remoteJoin,
  remoteOfMount,
} from './rclone-spec.js'

const HASH_PREFERENCE: readonly HashName[] = ['sha256', 'md5', 'sha1']
const INSTALL_REMEDY = 'apt-get install rclone'

// --- running rclone --------------------------------------------------------------------------

export interface RcloneEnv {
  /** the rclone binary (default: `rclone` on PATH) */
  bin?: string
  /** the config file the mount uses (`--config`); default: rclone's own lookup */
  config?: string
}

export interface RcloneCallOptions extends RcloneEnv {
  timeoutMs?: number
  signal?: AbortSignal
}

/** rclone ran and failed; the message and `stderr` are redacted. */
export class RcloneError extends Error {
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(message)
    this.name = 'RcloneError'
  }
}

interface RunOptions extends RcloneCallOptions {
  /** for messages: `lsjson`, `backend features` … */
  what: string
  remote?: string
  /** stream stdout line by line instead of collecting it */
  onLine?: (line: string) => void
}

const STDERR_CAP = 64 * 1024
const STDOUT_CAP = 16 * 1024 * 1024

function firstErrorLine(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d(\.\d+)? /, '').trim())
    .filter(Boolean)
  return lines.find((l) => /^(ERROR|CRITICAL|Failed|Fatal|Error)\b/.test(l)) ?? lines[0] ?? ''
}

/**
 * rclone through the one process runner (host/run.ts): its own process group, SIGTERM then
 * SIGKILL 2 s later at the timeout or on abort, stderr redacted, stdout collected (capped) or
 * handed on a line at a time.
 */
async function runRclone(
  args: string[],
  o: RunOptions,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const bin = o.bin ?? 'rclone'
  const timeoutMs = o.timeoutMs ?? 60_000
  const shown = `rclone ${o.what}${o.remote ? ` ${displayRemote(o.remote)}` : ''}`
  let r: Awaited<ReturnType<typeof runCaptured>>
  try {
    r = await runCaptured([bin, ...(o.config ? ['--config', o.config] : []), ...args], {
      timeoutMs,
      signal: o.signal,
      killGraceMs: 2000,
      maxBytes: STDOUT_CAP,
      maxStderrBytes: STDERR_CAP,
      onStdoutLine: o.onLine,
      show: shown,
      redact: (t) => redactRcloneText(t, o.remote),
    })
  } catch (err) {
    if (err instanceof MissingExecutableError) {
      throw new UnavailableError(`rclone is not installed (${bin}: ${err.why})`, INSTALL_REMEDY)
    }
    throw err
  }
  if (r.timedOut) throw new Error(`${shown} timed out after ${Math.round(timeoutMs / 1000)} s`)
  return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr }
}

function failed(
  o: RunOptions,
  r: { code: number | null; stderr: string },
  extra = '',
): RcloneError {
  const shown = `rclone ${o.what}${o.remote ? ` ${displayRemote(o.remote)}` : ''}`
  const line = firstErrorLine(r.stderr)
  return new RcloneError(
    `${shown} failed (exit ${r.code ?? 'signal'})${extra}${line ? `: ${line}` : ''}`,
    r.code,
    r.stderr,
  )
}

/** `rclone version`'s first line, e.g. `rclone v1.60.1-DEV`. UnavailableError without rclone. */
export async function rcloneVersion(opts: RcloneCallOptions = {}): Promise<string> {
  const o: RunOptions = { timeoutMs: 10_000, ...opts, what: 'version' }
  const r = await runRclone(['version'], o)
  if (r.code !== 0) throw failed(o, r)
  return r.stdout.split('\n')[0]?.trim() ?? ''
}

export async function rcloneAvailable(opts: RcloneCallOptions = {}): Promise<boolean> {
  try {
    await rcloneVersion(opts)
    return true
  } catch {
    return false
  }
}

export interface RemoteFeatures {
  /** the hashes shipshape can compute too, in preference order sha256, md5, sha1 */
  hashes: HashName[]
  /** false on bucket-based remotes: an empty directory does not exist there */
  canHaveEmptyDirectories: boolean
  /** modification time precision in ns (rclone's `Precision`) */
  precisionNs: number | null
}

/** `rclone backend features REMOTE` (a missing path is fine: only the backend is asked). */
export async function remoteFeatures(
  remote: string,
  opts: RcloneCallOptions = {},
): Promise<RemoteFeatures> {
  const o: RunOptions = { timeoutMs: 60_000, ...opts, what: 'backend features', remote }
  const r = await runRclone(['backend', 'features', '--', remote], o)
  if (r.code !== 0) throw failed(o, r)
  let j: { Hashes?: unknown; Precision?: unknown; Features?: Record<string, unknown> }
  try {
    j = JSON.parse(r.stdout) as typeof j
  } catch {
    throw new RcloneError(`rclone backend features ${displayRemote(remote)}: not JSON`, 0, '')
  }
  const have = new Set(Array.isArray(j.Hashes) ? j.Hashes.map((h) => String(h).toLowerCase()) : [])
  return {
    hashes: HASH_PREFERENCE.filter((h) => have.has(h)),
    canHaveEmptyDirectories: j.Features?.CanHaveEmptyDirectories !== false,
    precisionNs: typeof j.Precision === 'number' ? j.Precision : null,
  }
}

export async function remoteHashes(
  remote: string,
  opts: RcloneCallOptions = {},
): Promise<HashName[]> {
  return (await remoteFeatures(remote, opts)).hashes
}

export interface RemoteEntry {
  size: number
  isDir: boolean
  mtimeMs: number
  /** hex digest of the requested hash; absent when the backend has none for this object */
  hash?: string
}

export type RemoteListing = Map<string, RemoteEntry>

/**
 * Reads `rclone lsjson` output a line at a time: rclone writes `[`, one object per line (joined
 * by `,`), `]`. Lines are joined until they parse, so pretty-printed output works too; memory
 * stays at one entry plus the map.
 */
export class LsjsonReader {
  readonly entries: RemoteListing = new Map()
  private buf = ''

  constructor(private readonly hash?: HashName) {}

  line(raw: string): void {
    const t = raw.trim()
    if (this.buf === '' && (t === '' || t === '[' || t === ']' || t === '[]')) return
    this.buf += t
    const text = this.buf.endsWith(',') ? this.buf.slice(0, -1) : this.buf
    let obj: unknown
    try {
      obj = JSON.parse(text)
    } catch {
      if (this.buf.length > 1024 * 1024) throw new Error('rclone lsjson: unparseable output')
      return
    }
    this.buf = ''
    this.add(obj)
  }

  end(): RemoteListing {
    if (this.buf.trim() !== '' && this.buf.trim() !== ']') {
      throw new Error('rclone lsjson: output ended inside an entry')
    }
    return this.entries
  }

  private add(obj: unknown): void {
    const o = obj as {
      Path?: unknown
      Size?: unknown
      ModTime?: unknown
      IsDir?: unknown
      Hashes?: Record<string, unknown>
    }
    if (typeof o !== 'object' || o === null || typeof o.Path !== 'string') {
      throw new Error(`rclone lsjson: unexpected entry ${JSON.stringify(obj).slice(0, 200)}`)
    }
    const isDir = o.IsDir === true
    const mtime = typeof o.ModTime === 'string' ? Date.parse(o.ModTime) : NaN
    const h = this.hash ? o.Hashes?.[this.hash] : undefined
    this.entries.set(o.Path, {
      size: isDir ? 0 : typeof o.Size === 'number' ? o.Size : -1,
      isDir,
      mtimeMs: Number.isFinite(mtime) ? mtime : 0,
      ...(typeof h === 'string' && h !== '' ? { hash: h.toLowerCase() } : {}),
    })
  }
}

/**
 * Everything below `remotePath`, keyed by '/'-separated relative path. A missing directory is
 * an empty map; every other failure throws. A backend without the hash lists no hash (rclone
 * logs an error per file and still exits 0).
 */
export async function listRemote(
  remotePath: string,
  opts: RcloneCallOptions & { hash?: HashName; fastList?: boolean } = {},
): Promise<RemoteListing> {
  const reader = new LsjsonReader(opts.hash)
  const o: RunOptions = {
    timeoutMs: 600_000,
    ...opts,
    what: 'lsjson',
    remote: remotePath,
    onLine: (l) => reader.line(l),
  }
  const args = ['lsjson', '-R', '--no-mimetype']
  if (opts.hash) args.push('--hash', '--hash-type', opts.hash)
  if (opts.fastList) args.push('--fast-list')
  const r = await runRclone([...args, '--', remotePath], o)
  // exit 3 is rclone's "directory not found"
  if (r.code === 3 || (r.code !== 0 && /directory not found/i.test(r.stderr))) return new Map()
  if (r.code !== 0) throw failed(o, r)
  return reader.end()
}

// --- the mount's remote control ----------------------------------------------------------------

export interface VfsStats {
  /** false: the mount runs without a VFS cache (writes go straight to the remote) */
  cache: boolean
  uploadsInProgress: number
  uploadsQueued: number
  erroredFiles: number
}

/**
 * `vfs/stats` of a mount started with `--rc` (address `host:port` or a URL): nothing queued or
 * in progress means every closed file is uploaded. Not a substitute for listing the remote.
 */
export async function vfsStats(
  rcAddr: string,
  opts: { user?: string; pass?: string; fs?: string; timeoutMs?: number } = {},
): Promise<VfsStats> {
  const base = /^https?:\/\//.test(rcAddr) ? rcAddr.replace(/\/+$/, '') : `http://${rcAddr}`
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (opts.user !== undefined) {
    headers.authorization = `Basic ${Buffer.from(`${opts.user}:${opts.pass ?? ''}`).toString('base64')}`
  }
  const res = await fetch(`${base}/vfs/stats`, {
    method: 'POST',
    headers,
    body: JSON.stringify(opts.fs ? { fs: opts.fs } : {}),
    signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
  })
  const body = (await res.json().catch(() => null)) as {
    error?: string
    diskCache?: Record<string, unknown>
  } | null
  if (!res.ok || !body) {
    throw new Error(
      `rclone rc vfs/stats at ${base.replace(URL_USERINFO, '$1***@')}: HTTP ${res.status}${body?.error ? `: ${body.error}` : ''}`,
    )
  }
  const n = (k: string): number => {
    const v = body.diskCache?.[k]
    return typeof v === 'number' ? v : 0
  }
  return {
    cache: body.diskCache !== undefined,
    uploadsInProgress: n('uploadsInProgress'),
    uploadsQueued: n('uploadsQueued'),
    erroredFiles: n('erroredFiles'),
  }
}
