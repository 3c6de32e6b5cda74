/**
 * rclone as the judge of what reached a remote behind a FUSE mount. With `--vfs-cache-mode
 * writes` a file is readable through the mount long before it is uploaded (rclone#4293), and a
 * stopped mount drops its queued uploads, so only a listing of the remote itself counts.
 *
 * Remote specs may carry credentials (`:s3,secret_access_key=…:bucket`): anything printed,
 * logged or thrown shows `displayRemote(spec)`, and rclone's own stderr is redacted too — it
 * echoes the raw spec in its errors.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { UnavailableError } from '../errors.js'
import type { HashName, ManifestEntry } from '../shared/manifest-types.js'
import type { MountEntry } from './mountinfo.js'

const HASH_PREFERENCE: readonly HashName[] = ['sha256', 'md5', 'sha1']
const INSTALL_REMEDY = 'apt-get install rclone'

// --- remote specs (pure) ---------------------------------------------------------------------

interface ParsedSpec {
  /** `name` or `:backend`, without parameters */
  name: string
  params: { key: string; value?: string }[]
  /** the spec up to and including that colon, as written */
  head: string
  /** everything after the colon that ends name and parameters */
  path: string
}

/**
 * Splits `name[,k=v…]:path` / `:backend[,k=v…]:path` the way rclone does (values with `,` or `:`
 * are quoted with ' or ", a doubled quote escapes it). null: a local path, not a remote.
 */
function parseSpec(spec: string): ParsedSpec | null {
  let i = spec.startsWith(':') ? 1 : 0
  while (i < spec.length && !',:/\\'.includes(spec[i] as string)) i++
  const name = spec.slice(0, i)
  if (name === '' || name === ':') return null
  const params: ParsedSpec['params'] = []
  while (spec[i] === ',') {
    const start = ++i
    while (i < spec.length && !'=,:'.includes(spec[i] as string)) i++
    const key = spec.slice(start, i)
    if (spec[i] !== '=') {
      params.push({ key })
      continue
    }
    i++
    const q = spec[i]
    if (q === "'" || q === '"') {
      let value = ''
      i++
      for (;;) {
        if (i >= spec.length) return null
        if (spec[i] === q) {
          if (spec[i + 1] === q) {
            value += q
            i += 2
            continue
          }
          i++
          break
        }
        value += spec[i]
        i++
      }
      params.push({ key, value })
    } else {
      const start2 = i
      while (i < spec.length && !',:'.includes(spec[i] as string)) i++
      params.push({ key, value: spec.slice(start2, i) })
    }
  }
  if (spec[i] !== ':') return null
  return { name, params, head: spec.slice(0, i + 1), path: spec.slice(i + 1) }
}

function redactedHead(p: ParsedSpec): string {
  const params = p.params.map((x) => (x.value === undefined ? `,${x.key}` : `,${x.key}=***`))
  return `${p.name}${params.join('')}:`
}

const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@'"]+@/gi

/**
 * A remote spec safe to print, log or journal: connection-string parameter values and URL
 * userinfo become `***` (parameter names stay, they say what was set).
 */
export function displayRemote(remote: string): string {
  const p = parseSpec(remote)
  if (p) return (redactedHead(p) + p.path).replace(URL_USERINFO, '$1***@')
  // unparseable parameters (an unterminated quote): show none of them
  const params = /^(:?[^,:/\\]+),/.exec(remote)
  if (params) return `${params[1]},***`
  return remote.replace(URL_USERINFO, '$1***@')
}

// `,key=value` inside any connection string rclone quotes back at us (nested ones included)
const PARAM_VALUE = /(,[\w-]+=)('(?:[^']|'')*'|"(?:[^"]|"")*"|[^,:\s'"]*)/g

/** Redacts rclone output that may quote the spec (or a nested one) back. */
export function redactRcloneText(text: string, remote?: string): string {
  let out = text
  if (remote) {
    const shown = displayRemote(remote)
    if (shown !== remote) out = out.split(remote).join(shown)
  }
  return out.replace(PARAM_VALUE, '$1***').replace(URL_USERINFO, '$1***@')
}

/** `remote:` + `a/b` → `remote:a/b`, `remote:base/` → `remote:base/a/b`, `:local:/x` → `:local:/x/a/b`. */
export function remoteJoin(remote: string, rel: string): string {
  const parts: string[] = []
  for (const part of rel.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') throw new Error(`remoteJoin: '..' in ${JSON.stringify(rel)}`)
    parts.push(part)
  }
  if (parts.length === 0) return remote
  const joined = parts.join('/')
  const p = parseSpec(remote)
  const head = p ? p.head : ''
  const base = p ? p.path : remote
  if (base === '') return head + joined
  const trimmed = base.replace(/\/+$/, '')
  return `${head}${trimmed}/${joined}`
}

/**
 * The remote behind a fuse.rclone mount, from its mountinfo source — or why there is none.
 * rclone names the FUSE device `name:root`; an on-the-fly remote with connection-string
 * parameters shows as `:s3{AbCdE}:bucket` (the parameters are not in mountinfo, so the spec
 * cannot be rebuilt), and `--devname` can put anything there.
 */
export function mountRemote(m: MountEntry): { remote: string } | { remote: null; reason: string } {
  if (m.fsType !== 'fuse.rclone') {
    return { remote: null, reason: `${m.mountPoint} is ${m.fsType}, not fuse.rclone` }
  }
  const p = parseSpec(m.source)
  if (!p) {
    return {
      remote: null,
      reason: `the mount's device name ${JSON.stringify(m.source)} is not a remote spec (--devname?)`,
    }
  }
  if (p.name.includes('{')) {
    return {
      remote: null,
      reason: `the mount's remote ${p.name}: was given connection-string parameters, which mountinfo does not show`,
    }
  }
  return { remote: m.source }
}

/** The remote spec of a fuse.rclone mount; null for other mounts and unusable device names. */
export function remoteOfMount(m: MountEntry): string | null {
  return mountRemote(m).remote
}

/** A dead rclone leaves its mountpoint answering ENOTCONN until `fusermount3 -uz`. */
export function isNotConnected(err: unknown): boolean {
  return (
    typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === 'ENOTCONN'
  )
}

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

async function runRclone(
  args: string[],
  o: RunOptions,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const bin = o.bin ?? 'rclone'
  const timeoutMs = o.timeoutMs ?? 60_000
  const shown = `rclone ${o.what}${o.remote ? ` ${displayRemote(o.remote)}` : ''}`
  o.signal?.throwIfAborted()
  const child = spawn(bin, [...(o.config ? ['--config', o.config] : []), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  let failure: unknown
  let killTimer: NodeJS.Timeout | undefined
  const stop = (why: unknown): void => {
    failure ??= why
    child.kill('SIGTERM')
    killTimer ??= setTimeout(() => child.kill('SIGKILL'), 2000)
  }
  const timer = setTimeout(
    () => stop(new Error(`${shown} timed out after ${Math.round(timeoutMs / 1000)} s`)),
    timeoutMs,
  )
  const onAbort = (): void => stop(o.signal?.reason)
  o.signal?.addEventListener('abort', onAbort, { once: true })
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (d: string) => {
    if (stderr.length < STDERR_CAP) stderr += d
  })
  const lines = o.onLine
  let rlClosed: Promise<unknown> = Promise.resolve()
  if (lines) {
    const rl = createInterface({ input: child.stdout, crlfDelay: Infinity })
    rlClosed = once(rl, 'close')
    rl.on('line', (line) => {
      if (failure) return
      try {
        lines(line)
      } catch (err) {
        stop(err)
      }
    })
  } else {
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (d: string) => {
      stdout += d
      if (stdout.length > STDOUT_CAP) stop(new Error(`${shown}: more output than expected`))
    })
  }
  try {
    const [code] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', reject)
      child.once('close', (c, s) => resolve([c, s]))
    }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'EACCES') {
        throw new UnavailableError(
          `rclone is not installed (${bin}: ${err.code === 'ENOENT' ? 'not found' : 'not executable'})`,
          INSTALL_REMEDY,
        )
      }
      throw err
    })
    await rlClosed
    if (failure) throw failure
    return { code, stdout, stderr: redactRcloneText(stderr, o.remote) }
  } finally {
    clearTimeout(timer)
    if (killTimer) clearTimeout(killTimer)
    o.signal?.removeEventListener('abort', onAbort)
  }
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

// --- comparing ----------------------------------------------------------------------------

export interface RemoteComparison {
  /** expected files compared */
  files: number
  /** files with the right size (and hash, when one was compared) */
  ok: number
  missing: string[]
  /** any size but the expected one */
  wrongSize: string[]
  /** the part of wrongSize that is smaller: possibly still uploading */
  partial: string[]
  /** the expected size, another hash */
  wrongHash: string[]
  /** the expected size, but no hash to compare on one side: counted ok, not verified */
  noHash: string[]
  /** only with `checkDirs` */
  missingDirs: string[]
  /** not (yet) confirmed: missing + wrongSize + wrongHash + missingDirs */
  pending: number
}

function lookup(listing: RemoteListing, p: string, nfc: () => Map<string, RemoteEntry>) {
  return listing.get(p) ?? nfc().get(p.normalize('NFC'))
}

/**
 * Pure. Compares the manifest's files with a listing: size always, `hash` when given. Symlinks
 * are not compared (an rclone mount cannot hold them). Directories only with `checkDirs`: a
 * backend without empty directories (S3 & co, `canHaveEmptyDirectories: false`) lists a
 * directory only through the files in it. Names are matched exactly, then NFC-normalised
 * (some remotes normalise Unicode).
 */
export function compareRemote(
  expected: ManifestEntry[],
  listing: RemoteListing,
  hash?: HashName,
  opts: { checkDirs?: boolean } = {},
): RemoteComparison {
  let nfcMap: Map<string, RemoteEntry> | undefined
  const nfc = (): Map<string, RemoteEntry> => {
    nfcMap ??= new Map([...listing].map(([k, v]) => [k.normalize('NFC'), v]))
    return nfcMap
  }
  const c: RemoteComparison = {
    files: 0,
    ok: 0,
    missing: [],
    wrongSize: [],
    partial: [],
    wrongHash: [],
    noHash: [],
    missingDirs: [],
    pending: 0,
  }
  for (const e of expected) {
    if (e.kind === 'dir') {
      if (!opts.checkDirs) continue
      const r = lookup(listing, e.path, nfc)
      if (!r?.isDir) c.missingDirs.push(e.path)
      continue
    }
    if (e.kind !== 'file') continue
    c.files++
    const r = lookup(listing, e.path, nfc)
    if (!r || r.isDir) {
      c.missing.push(e.path)
      continue
    }
    if (r.size !== e.size) {
      c.wrongSize.push(e.path)
      if (r.size >= 0 && r.size < e.size) c.partial.push(e.path)
      continue
    }
    if (hash) {
      const want = e.hashes?.[hash]?.toLowerCase()
      if (!want || !r.hash) c.noHash.push(e.path)
      else if (want !== r.hash) {
        c.wrongHash.push(e.path)
        continue
      }
    }
    c.ok++
  }
  c.pending = c.missing.length + c.wrongSize.length + c.wrongHash.length + c.missingDirs.length
  return c
}

// --- waiting for the upload -------------------------------------------------------------------

/** waitForRemote gave up: `reason` says whether it ran out of time or found corrupt files. */
export class RemoteVerifyError extends Error {
  constructor(
    message: string,
    readonly reason: 'timeout' | 'mismatch',
    readonly comparison: RemoteComparison | null,
  ) {
    super(message)
    this.name = 'RemoteVerifyError'
  }
}

function listNames(paths: string[], max = 5): string {
  const shown = paths.slice(0, max).map((p) => JSON.stringify(p))
  return shown.join(', ') + (paths.length > max ? ` (+${paths.length - max} more)` : '')
}

export interface WaitForRemoteOptions extends RcloneEnv {
  remotePath: string
  /** how messages name the remote (default displayRemote(remotePath)) */
  display?: string
  /** manifest entries; only files are waited for (dirs with checkDirs) */
  expected: ManifestEntry[]
  hash?: HashName
  timeoutMs: number
  intervalMs: number
  checkDirs?: boolean
  /**
   * Consecutive polls a file must show its full size with a wrong hash (or a bigger size)
   * before it counts as corrupt rather than mid-upload (default 2).
   */
  confirmPolls?: number
  /** timeout of one listing (default: the time left, at least 30 s) */
  listTimeoutMs?: number
  /** called after every listing with the number of files not (yet) confirmed */
  onPoll?: (pending: number, comparison: RemoteComparison) => void
  signal?: AbortSignal
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(done, ms)
    function done(): void {
      signal?.removeEventListener('abort', abort)
      resolve()
    }
    function abort(): void {
      clearTimeout(t)
      reject(signal?.reason)
    }
    signal?.addEventListener('abort', abort, { once: true })
  })
}

/**
 * Lists the remote every `intervalMs` until every expected file is there with its size (and
 * hash). Rejects (RemoteVerifyError) at the deadline naming what is missing, or as soon as a
 * file is confirmed corrupt; a smaller size counts as an upload in progress. A file that
 * already existed on the remote with other content looks corrupt until its upload replaces it:
 * the destination should be new. Three failed listings in a row end the wait with rclone's
 * error; a missing directory is just "everything missing".
 */
export async function waitForRemote(opts: WaitForRemoteOptions): Promise<RemoteComparison> {
  const { remotePath, expected, hash, signal } = opts
  const shown = opts.display ?? displayRemote(remotePath)
  const confirmPolls = opts.confirmPolls ?? 2
  if (hash) {
    const unhashed = expected.find((e) => e.kind === 'file' && !e.hashes?.[hash])
    if (unhashed) throw new Error(`waitForRemote: ${unhashed.path} has no ${hash} in the manifest`)
  }
  const started = Date.now()
  const deadline = started + opts.timeoutMs
  const strikes = new Map<string, number>()
  let last: RemoteComparison | null = null
  let lastError: unknown
  let failures = 0
  for (;;) {
    signal?.throwIfAborted()
    let listing: RemoteListing | undefined
    try {
      listing = await listRemote(remotePath, {
        bin: opts.bin,
        config: opts.config,
        hash,
        signal,
        timeoutMs: opts.listTimeoutMs ?? Math.max(30_000, deadline - Date.now()),
      })
      failures = 0
    } catch (err) {
      if (err instanceof UnavailableError || signal?.aborted || ++failures >= 3) throw err
      lastError = err
    }
    if (listing) {
      const c = compareRemote(expected, listing, hash, { checkDirs: opts.checkDirs })
      last = c
      opts.onPoll?.(c.pending, c)
      if (c.pending === 0) return c
      const partial = new Set(c.partial)
      const wrong = new Set([...c.wrongHash, ...c.wrongSize.filter((p) => !partial.has(p))])
      for (const p of strikes.keys()) if (!wrong.has(p)) strikes.delete(p)
      for (const p of wrong) strikes.set(p, (strikes.get(p) ?? 0) + 1)
      const corrupt = [...strikes].filter(([, n]) => n >= confirmPolls).map(([p]) => p)
      if (corrupt.length) {
        const bad = new Set(corrupt)
        const parts = [
          ...(c.wrongHash.some((p) => bad.has(p))
            ? [`wrong ${hash}: ${listNames(c.wrongHash.filter((p) => bad.has(p)))}`]
            : []),
          ...(c.wrongSize.some((p) => bad.has(p))
            ? [`wrong size: ${listNames(c.wrongSize.filter((p) => bad.has(p)))}`]
            : []),
        ]
        throw new RemoteVerifyError(
          `${corrupt.length} file(s) on ${shown} differ from the source after their upload (${parts.join('; ')})`,
          'mismatch',
          c,
        )
      }
    }
    const left = deadline - Date.now()
    if (left <= 0) {
      const secs = Math.round((Date.now() - started) / 1000)
      if (!last) {
        const why = lastError instanceof Error ? `: ${lastError.message}` : ''
        throw new RemoteVerifyError(
          `could not list ${shown} within ${secs} s${why}`,
          'timeout',
          null,
        )
      }
      const notThere = [...last.missing, ...last.wrongSize, ...last.wrongHash]
      throw new RemoteVerifyError(
        `${last.pending} of ${last.files} file(s) not on ${shown} after ${secs} s` +
          (last.partial.length ? ` (${last.partial.length} partly uploaded)` : '') +
          `: ${listNames([...notThere, ...last.missingDirs.map((d) => `${d}/`)])}`,
        'timeout',
        last,
      )
    }
    await sleep(Math.min(opts.intervalMs, left), signal)
  }
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
