/**
 * Copies an asset directory onto its destination (usually an rclone FUSE mount) file by file,
 * checking every byte read against the manifest's sha256, resumable after kill -9 through an
 * append-only log of finished files. Also the undo (removeCopy) and the read-back check through
 * the mount (readBackTree).
 *
 * Written for what rclone mounts do: symlink() fails with EIO, chmod is ignored or fails, utimes
 * works, an existing file may not be reopened for writing without truncation, a dead rclone answers
 * ENOTCONN. So every file is written fresh (O_TRUNC), closed, then given its mtime.
 */
import { createHash } from 'node:crypto'
import { constants as fsc } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { TreeChangedError, errCode, splitRel, type Dir, type Ident } from '../host/safefs.js'
import { Tree } from '../host/safefs-tree.js'
import { inodesOf } from './backup.js'
import {
  CHUNK,
  CopyFailedError,
  NO_FSYNC,
  PROBE_NAME,
  SAFE_MODE,
  SameFilesError,
  SourceChangedError,
  UNSUPPORTED,
  UnsupportedOnDestError,
  abortError,
  bestEffort,
  byDepth,
  checkEntries,
  isAbortError,
  openDest,
  runPool,
  safeMode,
  tempNameFor,
  tempNamesByDir,
  throttle,
  toSeconds,
} from './copy-util.js'
import { DoneLog, type DoneRecord } from './copy-log.js'
import type { ManifestEntry, Progress } from '../shared/manifest-types.js'

export {
  CopyFailedError,
  SameFilesError,
  SourceChangedError,
  TEMP_SUFFIX,
  UnsupportedOnDestError,
  tempNameFor,
} from './copy-util.js'
export { readBackTree, removeCopy, type RemoveResult } from './copy-back.js'

export interface CopyOptions {
  source: string
  /** the source as walked (device, inode): another directory there is refused, not read */
  sourceIdent?: Ident
  dest: string
  /** the mount dest must be on (its device): a link on the way to dest is refused */
  mount?: string
  /** The manifest's entries; every file must carry hashes.sha256. */
  entries: readonly ManifestEntry[]
  /** Append-only record of finished files (JSON lines), kept in the state dir. */
  doneLog: string
  onProgress?: Progress
  signal?: AbortSignal
  /** Files copied at once (default 4). */
  concurrency?: number
  /** fsync each file before closing it (default true; EINVAL/ENOTSUP from FUSE are tolerated). */
  fsync?: boolean
  /**
   * Write each file under its final name (default true) rather than a temp name + rename. Just as
   * safe: a file counts as copied only once it is in doneLog, and a failed one is removed. A
   * rename per file made 10k small files 40-65% slower on an rclone mount, and on an
   * object-store remote it is a server-side copy + delete.
   */
  inPlace?: boolean
  /** A finished file is skipped on resume when its mtime is within this window (default 1000). */
  mtimeToleranceMs?: number
}

export interface CopyResult {
  /** files in the manifest, and their bytes */
  files: number
  bytes: number
  copied: number
  /** files found finished by an earlier run */
  skipped: number
  bytesCopied: number
  /** whether the destination keeps permission bits (rclone mounts do not) */
  modesKept: boolean
  symlinks: number
}

export async function copyTree(opts: CopyOptions): Promise<CopyResult> {
  const { signal } = opts
  const concurrency = Math.max(1, opts.concurrency ?? 4)
  const tolerance = opts.mtimeToleranceMs ?? 1000
  const doFsync = opts.fsync ?? true
  checkEntries(opts.entries, true)
  const dirs = opts.entries.filter((e) => e.kind === 'dir')
  const files = opts.entries.filter((e) => e.kind === 'file')
  const links = opts.entries.filter((e) => e.kind === 'symlink')
  const result: CopyResult = {
    files: files.length,
    bytes: files.reduce((n, e) => n + e.size, 0),
    copied: 0,
    skipped: 0,
    bytesCopied: 0,
    modesKept: false,
    symlinks: 0,
  }

  const stop = new AbortController()
  const onAbort = () => stop.abort(signal?.reason)
  if (signal?.aborted) throw abortError(signal.reason)
  signal?.addEventListener('abort', onAbort, { once: true })
  let progressBytes = 0
  const progress = throttle(opts.onProgress)

  // both trees by descriptors (safefs.ts): the source as walked, the destination as made here
  const source = await Tree.open(opts.source, {
    expect: opts.sourceIdent,
    inodeOf: inodesOf(opts.entries),
  })
  let dest: Tree | undefined
  const { log, done } = await DoneLog.open(opts.doneLog).catch(async (err: unknown) => {
    await source.close()
    throw err
  })
  try {
    dest = await openDest(opts.dest, opts.mount, true)
    const destTree = dest
    if (
      dest.root.ident.dev === source.root.ident.dev &&
      dest.root.ident.ino === source.root.ident.ino
    ) {
      throw new SameFilesError('.')
    }
    const sameDevice = dest.root.ident.dev === source.root.ident.dev
    result.modesKept = await probeModes(dest.root, source.root)
    const tempsByDir = tempNamesByDir(files)

    // Parents exist before their children: one depth level at a time, each level in parallel.
    await makeDirs(destTree, dirs, tempsByDir, { concurrency, stop, modesKept: result.modesKept })

    // Before the files: a mount without symlinks (rclone) fails here, not after the gigabytes.
    // They are few: one at a time keeps the first failure the one reported.
    for (const e of links) {
      if (stop.signal.aborted) throw abortError(stop.signal.reason)
      const { dir, name } = splitRel(e.path)
      await destTree.withDir(dir, (d) => makeSymlink(e, d, name))
      result.symlinks++
    }

    await copyFiles(files, source, destTree, {
      done,
      log,
      stop,
      concurrency,
      tolerance,
      result,
      fileCtx: {
        fsync: doFsync,
        inPlace: opts.inPlace ?? true,
        modes: result.modesKept,
        sameDevice,
      },
      onBytes: (n, file) => {
        progressBytes += n
        progress(progressBytes, file)
      },
    })

    // Deepest first, after their contents: writing into a directory changes its mtime.
    for (const e of [...dirs].reverse()) {
      if (stop.signal.aborted) throw abortError(stop.signal.reason)
      await destTree.withDir(e.path, async (d) => {
        if (result.modesKept) await bestEffort(d.chmod(safeMode(e.mode)))
        await bestEffort(d.utimes(toSeconds(e.mtimeMs), toSeconds(e.mtimeMs)))
      })
    }
    progress(progressBytes, undefined, true)
    await log.close()
    return result
  } finally {
    signal?.removeEventListener('abort', onAbort)
    await log.close().catch(() => {})
    await source.close()
    await dest?.close()
  }
}

/** The manifest's directories, one depth level at a time (parents first), each level in parallel. */
async function makeDirs(
  destTree: Tree,
  dirs: readonly ManifestEntry[],
  tempsByDir: Map<string, Set<string>>,
  o: { concurrency: number; stop: AbortController; modesKept: boolean },
): Promise<void> {
  await clearTemps(destTree.root, '', tempsByDir)
  for (const level of byDepth(dirs)) {
    await runPool(level, o.concurrency, o.stop, async (e) => {
      const { dir, name } = splitRel(e.path)
      await destTree.withDir(dir, async (parent) => {
        try {
          await parent.mkdir(name, 0o700)
        } catch (err) {
          if (errCode(err) !== 'EEXIST') throw new CopyFailedError(e.path, errCode(err), err)
          // A directory left by an earlier run: it must still be a directory (not a link to
          // one), writable by us.
          const st = await parent.lstat(name)
          if (!st?.isDirectory()) throw new CopyFailedError(e.path, 'EEXIST', err)
          if (o.modesKept && (Number(st.mode) & 0o700) !== 0o700) {
            await destTree.withDir(e.path, (d) => d.chmod(Number(st.mode & SAFE_MODE) | 0o700))
          }
          await clearTemps(parent, e.path, tempsByDir, name)
        }
      })
    })
  }
}

/** Every file not finished by an earlier run (the done log), copied and logged. */
async function copyFiles(
  files: readonly ManifestEntry[],
  source: Tree,
  destTree: Tree,
  o: {
    done: Map<string, DoneRecord>
    log: DoneLog
    stop: AbortController
    concurrency: number
    tolerance: number
    result: CopyResult
    fileCtx: Omit<FileCopyContext, 'signal' | 'onBytes'>
    onBytes: (n: number, file: string) => void
  },
): Promise<void> {
  const { result, stop } = o
  const buffers: [Buffer, Buffer][] = []
  await runPool(files, o.concurrency, stop, async (e, worker) => {
    const want = e.hashes?.sha256 as string
    const { dir, name } = splitRel(e.path)
    const prev = o.done.get(e.path)
    if (prev && prev.sha256 === want && prev.size === e.size) {
      const st = await destTree
        .withDir(dir, (d) => d.lstat(name))
        .catch((err: unknown) => {
          throw new CopyFailedError(e.path, errCode(err), err)
        })
      if (
        st?.isFile() &&
        Number(st.size) === e.size &&
        Math.abs(Number(st.mtimeNs / 1_000_000n) - e.mtimeMs) <= o.tolerance
      ) {
        result.skipped++
        o.onBytes(e.size, e.path)
        return
      }
    }
    buffers[worker] ??= [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)]
    await copyFile(e, want, source, destTree, buffers[worker], {
      ...o.fileCtx,
      signal: stop.signal,
      onBytes: (n) => o.onBytes(n, e.path),
    })
    await o.log.append({ path: e.path, size: e.size, mtimeMs: e.mtimeMs, sha256: want })
    result.copied++
    result.bytesCopied += e.size
  })
}

interface FileCopyContext {
  signal: AbortSignal
  fsync: boolean
  inPlace: boolean
  modes: boolean
  /** source and destination on one device: a destination file may BE the source file */
  sameDevice: boolean
  onBytes: (n: number) => void
}

async function copyFile(
  e: ManifestEntry,
  want: string,
  source: Tree,
  dest: Tree,
  [bufA, bufB]: [Buffer, Buffer],
  ctx: FileCopyContext,
): Promise<void> {
  const { dir, name } = splitRel(e.path)
  const tmp = ctx.inPlace ? name : tempNameFor(name)
  let input: FileHandle | undefined
  let output: FileHandle | undefined
  let written: string | undefined
  try {
    const expect = e.ino !== undefined ? BigInt(e.ino) : undefined
    const opened = await source.withDir(dir, (d) => d.openFile(name, fsc.O_RDONLY, { expect }))
    input = opened.fh
    await dest.withDir(dir, async (d) => {
      if (ctx.sameDevice) {
        // truncating the destination must never truncate the source itself
        const there = await d.lstat(tmp)
        if (there && there.ino === opened.stat.ino && there.dev === opened.stat.dev) {
          throw new SameFilesError(e.path)
        }
      }
      // Always a fresh file: rclone without a VFS cache refuses to reopen one for writing.
      output = await d.createFile(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC, 0o600)
      written = tmp
    })
    const hash = createHash('sha256')
    let size = 0
    // The next read overlaps the current write.
    let cur = bufA
    let n = (await input.read(cur, 0, CHUNK, null)).bytesRead
    while (n > 0) {
      if (ctx.signal.aborted) throw abortError(ctx.signal.reason)
      hash.update(cur.subarray(0, n))
      size += n
      const next = cur === bufA ? bufB : bufA
      const [w, r] = await Promise.allSettled([
        writeAll(output!, cur, n),
        input.read(next, 0, CHUNK, null),
      ])
      if (w.status === 'rejected') throw w.reason
      if (r.status === 'rejected') throw r.reason
      ctx.onBytes(n)
      cur = next
      n = r.value.bytesRead
    }
    const got = hash.digest('hex')
    if (got !== want || size !== e.size)
      throw new SourceChangedError(
        e.path,
        `read ${size} bytes with sha256 ${got}, the manifest has ${e.size} bytes with ${want}`,
      )
    await input.close()
    input = undefined
    const fh = output as FileHandle | undefined as FileHandle
    if (ctx.modes) await bestEffort(fh.chmod(safeMode(e.mode)))
    if (ctx.fsync) {
      try {
        await fh.sync()
      } catch (err) {
        if (!NO_FSYNC.has(errCode(err) ?? '')) throw err
      }
    }
    // On a mount without a write cache the upload finishes (or fails) here.
    output = undefined
    await fh.close()
    await dest.withDir(dir, async (d) => {
      if (tmp !== name) await d.rename(tmp, d, name)
      written = name
      // the file's own times (AT_SYMLINK_NOFOLLOW): set after close, or the upload resets them
      await d.lutimes(name, toSeconds(e.mtimeMs), toSeconds(e.mtimeMs))
    })
  } catch (err) {
    await input?.close().catch(() => {})
    await (output as FileHandle | undefined)?.close().catch(() => {})
    // Keep nothing of what this attempt wrote (temp part or final name); best effort on a dead mount.
    if (written) {
      const name = written
      await dest.withDir(dir, (d) => d.unlink(name)).catch(() => {})
    }
    if (
      err instanceof SourceChangedError ||
      err instanceof SameFilesError ||
      err instanceof TreeChangedError ||
      isAbortError(err)
    )
      throw err
    throw new CopyFailedError(e.path, errCode(err), err)
  }
}

async function writeAll(fh: FileHandle, buf: Buffer, n: number): Promise<void> {
  let off = 0
  while (off < n) off += (await fh.write(buf, off, n - off, null)).bytesWritten
}

async function makeSymlink(e: ManifestEntry, d: Dir, name: string): Promise<void> {
  const target = e.linkname as string
  const times = (): [number, number] => [toSeconds(e.mtimeMs), toSeconds(e.mtimeMs)]
  try {
    await d.symlink(target, name)
  } catch (err) {
    const code = errCode(err)
    if (code === 'EEXIST') {
      // Left by an earlier run: keep it if it is the same link, else make it again.
      const same = await d.readlink(name).then(
        (t) => t === target,
        () => false,
      )
      if (same) return void (await bestEffort(d.lutimes(name, ...times())))
      const st = await d.lstat(name)
      if (st?.isDirectory()) throw new CopyFailedError(e.path, code, err)
      await d.unlink(name)
      return makeSymlink(e, d, name)
    }
    if (code && UNSUPPORTED.has(code)) throw new UnsupportedOnDestError('symlink', e.path, code)
    throw new CopyFailedError(e.path, code, err)
  }
  await bestEffort(d.lutimes(name, ...times()))
}

/**
 * Whether chmod sticks on the destination: one scratch DIRECTORY, removed right away. Not a file:
 * on an rclone mount an empty file is uploaded when FUSE releases it, after close() returned,
 * so an unlink right after can run first and the upload leaves the file on the remote.
 */
async function probeModes(dest: Dir, source: Dir): Promise<boolean> {
  await dest.rmdir(PROBE_NAME).catch(() => {})
  await dest.mkdir(PROBE_NAME, 0o700)
  try {
    // the destination is another view of the source (a remote on the source's own directory):
    // writing there would truncate the very files it reads
    if (await source.lstat(PROBE_NAME)) throw new SameFilesError('.')
    const probe = await dest.openDir(PROBE_NAME)
    try {
      await probe.chmod(0o750)
    } catch (err) {
      if (UNSUPPORTED.has(errCode(err) ?? '')) return false
      throw err
    } finally {
      await probe.close()
    }
    return (Number((await dest.lstat(PROBE_NAME))?.mode ?? 0) & 0o7777) === 0o750
  } finally {
    await dest.rmdir(PROBE_NAME)
  }
}

/**
 * Removes temp parts of manifest files left in one destination directory by a killed run:
 * `dir` is the relative path of the directory (temps are keyed by it); `parent` holds it under
 * `name`, or is the directory itself when `name` is absent.
 */
async function clearTemps(
  parent: Dir,
  dir: string,
  temps: Map<string, Set<string>>,
  name?: string,
) {
  const mine = temps.get(dir)
  if (!mine) return
  const d = name === undefined ? parent : await parent.openDir(name)
  try {
    for (const n of await d.readdir()) if (mine.has(n)) await d.unlink(n)
  } finally {
    if (d !== parent) await d.close()
  }
}
