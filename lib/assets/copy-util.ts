/**
 * What the copy onto a mount (copy.ts), its undo and its read-back (copy-back.ts) share: the
 * errors they throw, the names they write, the worker pool, the destination opened by
 * descriptors from the mount, the checks on manifest paths.
 */
import { createHash } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { nameToBytes, showName } from '../host/names.js'
import { errCode, splitRel } from '../host/safefs.js'
import { Tree } from '../host/safefs-tree.js'
import type { ManifestEntry, Progress } from '../shared/manifest-types.js'

/** The destination cannot do something the tree needs (symlinks on an rclone mount). */
export class UnsupportedOnDestError extends Error {
  constructor(
    readonly operation: 'symlink',
    readonly path: string,
    readonly code: string,
  ) {
    super(`the destination cannot create a ${operation} (${code}): ${JSON.stringify(path)}`)
    this.name = 'UnsupportedOnDestError'
  }
}

/** The source and the destination are the same files (a bind mount, a link): nothing is written. */
export class SameFilesError extends Error {
  constructor(readonly path: string) {
    super(
      `${JSON.stringify(showName(path))} is the same file on the source and the destination: the destination resolves to the source; nothing written`,
    )
    this.name = 'SameFilesError'
  }
}

/** A source file's bytes no longer match the manifest (changed since the backup). */
export class SourceChangedError extends Error {
  constructor(
    readonly path: string,
    detail: string,
  ) {
    super(`${JSON.stringify(path)} changed since the manifest was made: ${detail}`)
    this.name = 'SourceChangedError'
  }
}

/** An I/O failure on one file; `code` is the errno name (ENOSPC, EIO, ENOTCONN, …). */
export class CopyFailedError extends Error {
  constructor(
    readonly path: string,
    readonly code: string | undefined,
    cause: unknown,
  ) {
    super(`copying ${JSON.stringify(path)} failed: ${errorText(cause)}`, { cause })
    this.name = 'CopyFailedError'
  }
}

export const TEMP_SUFFIX = '.shipshape-part'
/**
 * The copy is root's (no chown): setuid/setgid bits of the tree are never put on it, or a
 * 04755 file a container made would be a setuid-root binary on a mount that keeps modes.
 */
export const SAFE_MODE = 0o1777n
export const safeMode = (mode: number): number => mode & 0o1777
export const PROBE_NAME = '.shipshape-mode-probe'
export const CHUNK = 1 << 20
export const NAME_MAX = 255
export const PROGRESS_EVERY_MS = 100
export const LOG_SYNC_MS = 500
export const LOG_SYNC_FILES = 64
/** What a FUSE mount answers for an operation it does not implement. */
export const UNSUPPORTED = new Set(['EIO', 'EPERM', 'ENOSYS', 'ENOTSUP', 'EOPNOTSUPP'])
export const NO_FSYNC = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'])

/** The temp name a file is written under in its destination directory. */
export function tempNameFor(name: string): string {
  const tmp = `.${name}${TEMP_SUFFIX}`
  if (nameToBytes(tmp).length <= NAME_MAX) return tmp
  return `.${createHash('sha256').update(nameToBytes(name)).digest('hex').slice(0, 32)}${TEMP_SUFFIX}`
}

export function tempNamesByDir(files: readonly ManifestEntry[]): Map<string, Set<string>> {
  const byDir = new Map<string, Set<string>>()
  for (const e of files) {
    const { dir, name } = splitRel(e.path)
    let set = byDir.get(dir)
    if (!set) byDir.set(dir, (set = new Set()))
    set.add(tempNameFor(name))
  }
  return byDir
}

/**
 * Runs fn over items with `concurrency` workers. The first failure aborts `stop`, which the
 * in-flight calls watch, and is the one thrown (not the aborts it caused).
 */
export async function runPool<T>(
  items: readonly T[],
  concurrency: number,
  stop: AbortController,
  fn: (item: T, worker: number) => Promise<void>,
): Promise<void> {
  let next = 0
  let failure: { error: unknown } | undefined
  const worker = async (w: number) => {
    while (failure === undefined && !stop.signal.aborted && next < items.length) {
      const item = items[next++] as T
      try {
        await fn(item, w)
      } catch (error) {
        failure ??= { error }
        stop.abort(error)
      }
    }
  }
  const n = Math.min(concurrency, items.length)
  await Promise.all(Array.from({ length: n }, (_, w) => worker(w)))
  if (failure) throw failure.error
  if (stop.signal.aborted) throw abortError(stop.signal.reason)
}

export function throttle(onProgress: Progress | undefined) {
  let last = 0
  return (bytes: number, file?: string, force = false) => {
    if (!onProgress) return
    const now = performance.now()
    if (!force && now - last < PROGRESS_EVERY_MS) return
    last = now
    onProgress(bytes, file)
  }
}

/** Depth levels of directory entries, shallowest first. */
export function byDepth(dirs: readonly ManifestEntry[]): ManifestEntry[][] {
  const levels: ManifestEntry[][] = []
  for (const e of dirs) (levels[e.path.split('/').length - 1] ??= []).push(e)
  return levels.filter((l) => l !== undefined)
}

/**
 * The destination's root. With `mount` (as the steps pass it), reached from the mount's root by
 * descriptors, component by component on the mount's own file system, and made there when
 * `create`: a symlink an app planted on the way (a mount that keeps links, rclone --links)
 * cannot send the copy, the read-back or the undo elsewhere, nor make a directory where it
 * points. Without, dest itself is opened (its last component never a link).
 */
export async function openDest(
  dest: string,
  mount: string | undefined,
  create = false,
): Promise<Tree> {
  if (mount === undefined) {
    if (create) await mkdir(dest, { recursive: true })
    return Tree.open(dest)
  }
  const rel = path.relative(mount, dest)
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new Error(`dest ${dest} is not below the mount ${mount}`)
  }
  return Tree.below(mount, rel, { create })
}

/** The manifest drives writes and deletes on a mount: refuse any path that could leave `dest`. */
export function checkEntries(entries: readonly ManifestEntry[], needHashes: boolean): void {
  for (const e of entries) {
    const parts = e.path.split('/')
    if (e.path === '' || parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\0')))
      throw new Error(`manifest path ${JSON.stringify(e.path)} is not a clean relative path`)
    if (e.kind === 'symlink' && typeof e.linkname !== 'string')
      throw new Error(`manifest symlink ${JSON.stringify(e.path)} has no target`)
    if (needHashes && e.kind === 'file' && !/^[0-9a-f]{64}$/.test(e.hashes?.sha256 ?? ''))
      throw new Error(`manifest file ${JSON.stringify(e.path)} has no sha256`)
  }
}

/**
 * utimes takes seconds as a double, and libuv truncates to microseconds: 1700000000.567 lands as
 * …566999 µs, one millisecond early. Half a microsecond more lands exactly on the millisecond.
 */
export function toSeconds(ms: number): number {
  return (ms + 0.0005) / 1000
}

/** Metadata a destination may not keep (rclone: dir mtimes, modes) is not worth failing over. */
export async function bestEffort(p: Promise<void>): Promise<void> {
  try {
    await p
  } catch (err) {
    if (!UNSUPPORTED.has(errCode(err) ?? '') && errCode(err) !== 'EINVAL') throw err
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

export function abortError(reason: unknown): Error {
  if (reason instanceof Error && reason.name === 'AbortError') return reason
  return Object.assign(new Error('copy aborted', { cause: reason }), {
    name: 'AbortError',
    code: 'ABORT_ERR',
  })
}

export function isAbortError(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError'
}
