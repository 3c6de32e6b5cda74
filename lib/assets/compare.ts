/**
 * What reached the remote, judged against the manifest: compareRemote() (pure) over a listing
 * of the remote (lib/host/rclone.ts listRemote), and waitForRemote(), which lists until every
 * file of the manifest is there or the deadline passes.
 */
import { UnavailableError } from '../errors.js'
import {
  displayRemote,
  listRemote,
  type RcloneEnv,
  type RemoteEntry,
  type RemoteListing,
} from '../host/rclone.js'
import type { HashName, ManifestEntry } from '../shared/manifest-types.js'

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
