/**
 * The backup archive of an asset directory, made before anything moves, and its read-back.
 *
 * API
 *
 *   sampleCompressibility(root, entries, opts?) → Promise<{ sampledBytes, compressedBytes, ratio }>
 *     Reads up to `maxSamples` (32) windows of up to 128 KiB and deflates each at level 1.
 *     Most windows are placed at evenly spaced points of the concatenated bytes of all files
 *     (systematic sampling by bytes): the biggest files, which dominate the bytes, get the most
 *     windows, spread through them; the rest are a few small files, whole. ratio = compressed /
 *     sampled (1 when there is nothing to sample). Deterministic; unreadable files are skipped.
 *
 *   chooseCompression(ratio, zstdAvailable) → 'none' | 'zstd' | 'gzip'                    (pure)
 *     ratio > 0.9 → 'none' (MP3, JPEG, video: compressing only burns CPU); else zstd when the
 *     command exists, else gzip.
 *   zstdAvailable() → Promise<boolean>    `zstd --version` runs
 *
 *   writeBackup({ root, entries, archive, compression, hashes, onProgress?, signal? })
 *     → Promise<{ entries, archiveBytes }>
 *     Streams a tar of every entry (in the order given: a manifest's) through the compressor
 *     (`zstd -q -T0 -3 -c` writing straight into the file, or zlib gzip level 1) into
 *     `<archive>.part` (mode 0600; an old one is replaced), fsyncs it, renames it to `archive`,
 *     fsyncs the directory. Each file is read once, in 1 MiB chunks (the next read in flight
 *     while the current chunk is hashed and packed): the bytes go to the tar and through every
 *     requested hash (sha256 always). Returns the entries with `hashes`. A file whose size or
 *     mtime differs from its entry, that is no longer a regular file, that vanished or that
 *     grows while it is read fails the backup with an Error naming it ("changed while backing
 *     up"). On any failure (and on abort) the .part file is removed.
 *
 *   verifyBackup({ archive, compression, manifest, onProgress? }) → Promise<void>
 *     Reads the archive back (decompress, untar, sha256 of every file's content) and compares it
 *     with the manifest: every entry, kind, size, sha256, symlink target, mode, mtime and owner.
 *     Throws BackupMismatchError (mismatches, the first 10 in the message) when anything differs,
 *     BackupCorruptError when the archive cannot be read (truncated, corrupt, bad compression).
 *
 * The tar: ustar headers, pax records (as tar-stream writes them) for names and link targets
 * that are long or not ASCII, plus a pax 'mtime' record with milliseconds whenever the mtime
 * has a fraction of a second, and pax 'uid'/'gid' records for ids beyond ustar's 7 octal
 * digits. So the archive keeps mtimes to the millisecond, like the manifest, and GNU tar or
 * bsdtar restore them so; the read-back compares mtimes exactly (a plain ustar header keeps
 * whole seconds only, and is enough when the mtime has no fraction). Entry paths are relative,
 * with no './' and no trailing '/'. Hard links are stored as separate files.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash, type Hash } from 'node:crypto'
import { type BigIntStats, constants as fsc } from 'node:fs'
import fs, { type FileHandle, type FileReadResult } from 'node:fs/promises'
import path from 'node:path'
import { PassThrough, Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import zlib from 'node:zlib'
import { TarWalker, paxTimeMs, type TarHeader } from '../docker/tarwalk.js'
import { fsyncDir } from '../host/durable.js'
import { bytesToName, showName } from '../host/names.js'
import { Tree, errCode, splitRel, type Ident } from '../host/safefs.js'
import { compareEntries, mtimeMsOf, type Mismatch } from './manifest.js'
import { TAR_END, paxTime, tarHeader, tarPadding } from './tarheader.js'
import type { HashName, Manifest, ManifestEntry, Progress } from '../shared/manifest-types.js'

export type Compression = 'none' | 'zstd' | 'gzip'

export interface Compressibility {
  sampledBytes: number
  compressedBytes: number
  /** compressedBytes / sampledBytes; 1 when nothing was sampled */
  ratio: number
}

export interface SampleOptions {
  /** the root as walked (device, inode) */
  rootIdent?: Ident
  /** windows read at most (default 32) */
  maxSamples?: number
  /** bytes per window (default 128 KiB) */
  windowBytes?: number
}

export interface WriteBackupOptions {
  root: string
  /** the root as walked (device, inode): a source replaced since is refused, not read */
  rootIdent?: Ident
  /** what to archive, in archive order (a manifest's entries) */
  entries: ManifestEntry[]
  archive: string
  compression: Compression
  /** hashes to compute of every file; sha256 is always computed */
  hashes: HashName[]
  onProgress?: Progress
  signal?: AbortSignal
}

export interface WriteBackupResult {
  /** the entries given, files with `hashes` */
  entries: ManifestEntry[]
  /** size of the archive file */
  archiveBytes: number
}

export interface VerifyBackupOptions {
  archive: string
  compression: Compression
  manifest: Manifest
  /** running total of file content bytes read back */
  onProgress?: Progress
}

/** The archive was read back in full and differs from the manifest. */
export class BackupMismatchError extends Error {
  constructor(
    readonly archive: string,
    readonly mismatches: Mismatch[],
  ) {
    const shown = mismatches.slice(0, SHOWN_MISMATCHES).map((m) => `  ${describeMismatch(m)}`)
    const more = mismatches.length - shown.length
    super(
      `backup ${archive} does not match the manifest: ${mismatches.length} difference${mismatches.length === 1 ? '' : 's'}\n` +
        shown.join('\n') +
        (more > 0 ? `\n  … and ${more} more` : ''),
    )
    this.name = 'BackupMismatchError'
  }
}

/** The archive cannot be read back: truncated, corrupt, or not in the compression named. */
export class BackupCorruptError extends Error {
  constructor(
    readonly archive: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'BackupCorruptError'
  }
}

const KiB = 1024
const MiB = 1024 * KiB
/** File reads and archive reads: big enough that the per-call overhead disappears. */
const CHUNK = 1 * MiB
/**
 * Bytes the compressor or the disk may be behind the reader: with less, reading and hashing a
 * chunk and writing the one before it take turns instead of running at the same time.
 */
const AHEAD = 4 * MiB
const SHOWN_MISMATCHES = 10
const SMALL_SAMPLES = 4
const SAMPLE_CONCURRENCY = 4
const ZSTD_ARGS = ['-q', '-T0', '-3', '-c']

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err))

/** A path on one line, its bytes that are not printable as \xNN (lib/host/names.ts). */
const showPath = showName

function describeMismatch(m: Mismatch): string {
  const p = showPath(m.path)
  if (m.what === 'missing') return `${p}: missing from the archive`
  if (m.what === 'extra')
    return `${p}: in the archive, not in the manifest${m.actual ? ` (${m.actual})` : ''}`
  const show = (v: string | number | undefined) => (v === undefined ? '(none)' : String(v))
  return `${p}: ${m.what} differs: expected ${show(m.expected)}, archive has ${show(m.actual)}`
}

// --- compressibility -------------------------------------------------------------------------

export interface SampleWindow {
  entry: ManifestEntry
  offset: number
  length: number
}

/** Which windows to read (see the file header); pure and deterministic. */
export function sampleWindows(
  entries: readonly ManifestEntry[],
  maxSamples = 32,
  windowBytes = 128 * KiB,
): SampleWindow[] {
  const files = entries.filter((e) => e.kind === 'file' && e.size > 0)
  if (!files.length || maxSamples < 1) return []
  const windows = new Map<string, SampleWindow>()
  const add = (entry: ManifestEntry, around: number) => {
    const length = Math.min(entry.size, windowBytes)
    // 4 KiB-aligned: a read of whole pages
    const offset =
      Math.floor(Math.min(Math.max(0, around - length / 2), entry.size - length) / 4096) * 4096
    windows.set(`${entry.path}\0${offset}`, { entry, offset, length })
  }
  const ends: number[] = []
  let total = 0
  for (const f of files) ends.push((total += f.size))
  const byBytes = Math.max(1, maxSamples - SMALL_SAMPLES)
  for (let i = 0; i < byBytes; i++) {
    const point = ((i + 0.5) * total) / byBytes
    let lo = 0
    let hi = files.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (ends[mid]! > point) hi = mid
      else lo = mid + 1
    }
    const f = files[lo]!
    add(f, point - (ends[lo]! - f.size))
  }
  // small files are few of the bytes but may be most of the files: a few of them, whole
  const small = [...files].sort((a, b) => a.size - b.size).slice(0, Math.ceil(files.length / 2))
  const want = Math.min(SMALL_SAMPLES, maxSamples - byBytes, small.length)
  for (let j = 0; j < want; j++) add(small[Math.floor(((j + 0.5) * small.length) / want)]!, 0)
  return [...windows.values()]
}

const deflateRaw = promisify(zlib.deflateRaw)

/** How well the content compresses, from a sample (see the file header). */
export async function sampleCompressibility(
  root: string,
  entries: readonly ManifestEntry[],
  opts: SampleOptions = {},
): Promise<Compressibility> {
  const windows = sampleWindows(entries, opts.maxSamples, opts.windowBytes)
  let sampledBytes = 0
  let compressedBytes = 0
  let next = 0
  // read like the backup: from verified parents, the walked inodes only (safefs.ts)
  const tree = await Tree.open(root, { expect: opts.rootIdent, inodeOf: inodesOf(entries) })
  const worker = async () => {
    while (next < windows.length) {
      const w = windows[next++]!
      let buf: Buffer
      try {
        const { dir, name } = splitRel(w.entry.path)
        const expect = w.entry.ino !== undefined ? BigInt(w.entry.ino) : undefined
        const { fh } = await tree.withDir(dir, (d) => d.openFile(name, fsc.O_RDONLY, { expect }))
        try {
          const { bytesRead, buffer } = await fh.read(
            Buffer.allocUnsafe(w.length),
            0,
            w.length,
            w.offset,
          )
          buf = buffer.subarray(0, bytesRead)
        } finally {
          await fh.close()
        }
      } catch {
        continue // an estimate: the preflight reports unreadable files
      }
      if (!buf.length) continue
      const z = await deflateRaw(buf, { level: 1 })
      sampledBytes += buf.length
      compressedBytes += z.length
    }
  }
  try {
    await Promise.all(Array.from({ length: SAMPLE_CONCURRENCY }, worker))
  } finally {
    await tree.close()
  }
  return { sampledBytes, compressedBytes, ratio: sampledBytes ? compressedBytes / sampledBytes : 1 }
}

/** What to compress the backup with (see the file header). */
export function chooseCompression(ratio: number, zstdAvailable: boolean): Compression {
  if (ratio > 0.9) return 'none'
  return zstdAvailable ? 'zstd' : 'gzip'
}

/** Whether the `zstd` command runs. */
export function zstdAvailable(): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('zstd', ['--version'], { stdio: 'ignore' })
    child.on('error', () => resolve(false))
    child.on('close', (code) => resolve(code === 0))
  })
}

// --- tar headers (tarheader.ts) ------------------------------------------------------------

export { paxTime }

/** A pax time as whole milliseconds, rounded down; undefined when it is not one. */
export function parsePaxTime(text: string): number | undefined {
  const ms = paxTimeMs(text)
  return Number.isFinite(ms) ? ms : undefined
}

// --- writing ---------------------------------------------------------------------------------

class ChangedError extends Error {
  constructor(file: string, what: string, options?: { cause?: unknown }) {
    super(`${showPath(file)} changed while backing up (${what}); run the migration again`, options)
    this.name = 'ChangedError'
  }
}

/*
 * The archive file is written and read through its FileHandle, not fs streams: an fs stream
 * closes its fd when destroyed (on any error), autoClose or not, and the handle's own close()
 * then closes that number again, by then maybe another file's.
 */

/** Writes everything, even after a short writev. */
async function writeAll(fh: FileHandle, bufs: Buffer[]): Promise<void> {
  let { bytesWritten } = await fh.writev(bufs)
  for (const b of bufs) {
    if (bytesWritten >= b.length) {
      bytesWritten -= b.length
      continue
    }
    let off = bytesWritten
    bytesWritten = 0
    while (off < b.length) off += (await fh.write(b, off, b.length - off)).bytesWritten
  }
}

/** A Writable appending to the file handle (it never closes it); releases what it wrote. */
function handleWriter(fh: FileHandle, release: (chunk: Buffer) => void = () => {}): Writable {
  return new Writable({
    highWaterMark: AHEAD,
    writev(chunks, cb) {
      const bufs = chunks.map((c) => c.chunk as Buffer)
      writeAll(fh, bufs).then(() => {
        bufs.forEach(release)
        cb()
      }, cb)
    },
  })
}

/**
 * Read buffers of CHUNK bytes, reused once the consumer is done with them. Allocated fresh for
 * every read, they pile up as garbage (external memory is collected about every 64 MB) and
 * malloc keeps what was freed: writing a 9 GB backup (zstd) peaked at ~130 MB RSS, with the
 * pool at ~65 MB. (The read-back still allocates: its chunks end up inside tar-stream.)
 */
class ChunkPool {
  private readonly free: Buffer[] = []
  private readonly owned = new Map<ArrayBufferLike, Buffer>()

  take(): Buffer {
    const b = this.free.pop()
    if (b) return b
    const fresh = Buffer.allocUnsafeSlow(CHUNK)
    this.owned.set(fresh.buffer, fresh)
    return fresh
  }

  /** Any chunk the consumer is done with; chunks not from the pool (tar headers) are ignored. */
  release = (chunk: Buffer): void => {
    const b = this.owned.get(chunk.buffer)
    if (b && !this.free.includes(b)) this.free.push(b)
  }
}

/**
 * Writes into `target` (zlib, zstd's stdin) one chunk at a time and releases each once `target`
 * has called back: consumed by zlib, or handed to the kernel's pipe.
 */
function feeder(target: Writable, release: (chunk: Buffer) => void): Writable {
  const w: Writable = new Writable({
    highWaterMark: AHEAD,
    write(chunk: Buffer, _encoding, cb) {
      target.write(chunk, (err) => {
        if (!err) release(chunk)
        cb(err)
      })
    },
    final(cb) {
      target.end()
      cb()
    },
    destroy(err, cb) {
      if (err) target.destroy(err)
      cb(err)
    },
  })
  target.on('error', (err) => w.destroy(err))
  return w
}

/** The file handle's content from its current offset, in chunks of CHUNK bytes. */
async function* handleChunks(fh: FileHandle): AsyncGenerator<Buffer> {
  for (;;) {
    const { bytesRead, buffer } = await fh.read(Buffer.allocUnsafe(CHUNK), 0, CHUNK, null)
    if (!bytesRead) return
    yield bytesRead === CHUNK ? buffer : buffer.subarray(0, bytesRead)
  }
}

/** A child process's exit: resolves on status 0, rejects with its stderr otherwise. */
function exited(child: ChildProcess, what: string): Promise<void> {
  let stderr = ''
  child.stderr?.on('data', (c: Buffer) => {
    if (stderr.length < 4096) stderr += c.toString()
  })
  return new Promise((resolve, reject) => {
    child.on('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'ENOENT'
          ? new Error(`${what}: the zstd command is not installed (apt-get install zstd)`, {
              cause: err,
            })
          : err,
      ),
    )
    child.on('close', (code, signal) => {
      if (code === 0) return resolve()
      const detail = stderr.trim() ? `: ${stderr.trim()}` : ''
      reject(new Error(`${what} exited ${code ?? signal}${detail}`))
    })
  })
}

/**
 * The first failure of the consumer side (compressor, disk) or the abort signal. `guard(p)`
 * rejects as soon as there is one, so the producer stops instead of waiting for a 'drain' that
 * never comes. Not Promise.race against a pending promise: every race would stay referenced by
 * it, and with it the value it settled with (here every chunk read, 1 GB for a 1 GB backup).
 */
class Failure {
  private error: { reason: unknown } | undefined
  private readonly waiting = new Set<(reason: unknown) => void>()

  fail = (reason: unknown): void => {
    if (this.error) return
    this.error = { reason }
    for (const reject of this.waiting) reject(reason)
    this.waiting.clear()
  }

  guard<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.error) return reject(this.error.reason)
      this.waiting.add(reject)
      p.then(
        (v) => {
          this.waiting.delete(reject)
          resolve(v)
        },
        (err: unknown) => {
          this.waiting.delete(reject)
          reject(err)
        },
      )
    })
  }
}

type ChunkRead = FileReadResult<Buffer> & { wanted: number }

/**
 * The tar stream: header blocks, content and padding written into `tar` (a PassThrough the
 * compressor or the file reads); `put` waits while it is AHEAD bytes ahead. Every await is
 * guarded by `failure`. Files are opened from their verified parent directory (safefs.ts):
 * never through a link, and only the inode the walk recorded.
 */
async function packEntries(
  tar: PassThrough,
  tree: Tree,
  opts: WriteBackupOptions,
  hashNames: HashName[],
  failure: Failure,
  pool: ChunkPool,
): Promise<ManifestEntry[]> {
  const guard = <T>(p: Promise<T>): Promise<T> => failure.guard(p)
  const put = async (buf: Buffer): Promise<void> => {
    if (!tar.write(buf)) await guard(new Promise<void>((resolve) => tar.once('drain', resolve)))
  }
  const out: ManifestEntry[] = []
  let total = 0
  for (const e of opts.entries) {
    await put(tarHeader(e))
    if (e.kind !== 'file') {
      out.push({ ...e })
      continue
    }
    const { dir, name } = splitRel(e.path)
    const expect = e.ino !== undefined ? BigInt(e.ino) : undefined
    let fh: FileHandle
    let opened: BigIntStats
    try {
      ;({ fh, stat: opened } = await guard(
        tree.withDir(dir, (d) => d.openFile(name, fsc.O_RDONLY, { expect })),
      ))
    } catch (err) {
      if (errCode(err) === 'ENOENT') throw new ChangedError(e.path, 'vanished', { cause: err })
      throw err
    }
    let pending: Promise<unknown> | undefined
    try {
      const check = async (when: string, known?: BigIntStats) => {
        const st = known ?? (await guard(fh.stat({ bigint: true })))
        if (!st.isFile()) throw new ChangedError(e.path, `no longer a regular file ${when}`)
        if (Number(st.size) !== e.size) {
          throw new ChangedError(e.path, `size ${e.size} → ${st.size} ${when}`)
        }
        if (mtimeMsOf(st) !== e.mtimeMs) throw new ChangedError(e.path, `mtime changed ${when}`)
        // a write that kept the size and put the mtime back still moves the ctime
        if (e.ctimeNs !== undefined && String(st.ctimeNs) !== e.ctimeNs) {
          throw new ChangedError(e.path, `changed ${when} (ctime)`)
        }
      }
      const hashes: Hash[] = hashNames.map((n) => createHash(n))
      // one byte more than is left: a file that grew shows without a read of its own
      const read = (pos: number): Promise<ChunkRead> => {
        const n = Math.min(CHUNK, e.size - pos + 1)
        return fh.read(pool.take(), 0, n, pos).then((r) => ({ ...r, wanted: n }))
      }
      let pos = 0
      let next: Promise<ChunkRead> | undefined = read(0)
      pending = next // the first read runs with the fstat
      // the inode openFile checked is the one opened: its fstat serves
      await check('since the walk', opened)
      while (next) {
        pending = next
        const { bytesRead, buffer, wanted }: ChunkRead = await guard(next)
        pending = undefined
        if (pos + bytesRead > e.size) {
          throw new ChangedError(e.path, `grew past ${e.size} bytes while read`)
        }
        if (bytesRead === 0 && pos < e.size) {
          throw new ChangedError(e.path, `shrank to ${pos} bytes while read`)
        }
        pos += bytesRead
        // done at the end of the file where expected; a short read elsewhere is read on from
        const done: boolean = bytesRead === 0 || (pos === e.size && bytesRead < wanted)
        // the next read runs while this chunk is hashed and handed to the tar
        next = done ? undefined : read(pos)
        if (!bytesRead) {
          pool.release(buffer)
          continue
        }
        const chunk = bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead)
        for (const h of hashes) h.update(chunk)
        total += bytesRead
        opts.onProgress?.(total, e.path)
        if (!tar.write(chunk)) {
          pending = next
          await guard(new Promise<void>((resolve) => tar.once('drain', resolve)))
        }
      }
      await check('while read')
      const pad = tarPadding(e.size)
      if (pad.length) await put(pad)
      const digests: Partial<Record<HashName, string>> = {}
      hashNames.forEach((n, i) => (digests[n] = hashes[i]!.digest('hex')))
      out.push({ ...e, hashes: digests })
    } catch (err) {
      pending?.catch(() => {})
      throw err
    } finally {
      // not awaited: close() waits for a read still in flight, and a read-only fd has nothing
      // to report on close; the next file need not wait for it
      fh.close().catch(() => {})
    }
  }
  await put(TAR_END)
  return out
}

/** The directories' inodes of a manifest, for Tree's checks on the way down. */
export function inodesOf(entries: readonly ManifestEntry[]): (rel: string) => bigint | undefined {
  const byPath = new Map<string, bigint>()
  for (const e of entries)
    if (e.kind === 'dir' && e.ino !== undefined) byPath.set(e.path, BigInt(e.ino))
  return (rel) => byPath.get(rel)
}

/** Write the backup archive (see the file header). */
export async function writeBackup(opts: WriteBackupOptions): Promise<WriteBackupResult> {
  const hashNames: HashName[] = ['sha256', ...opts.hashes.filter((h) => h !== 'sha256')]
  const dir = path.dirname(opts.archive)
  const part = `${opts.archive}.part`
  opts.signal?.throwIfAborted()
  // the source first: a source that is a link (or another directory) is refused before anything
  const tree = await Tree.open(opts.root, {
    expect: opts.rootIdent,
    inodeOf: inodesOf(opts.entries),
  })
  // removed first, then created exclusively: a leftover (or a symlink planted there) is never written through
  let out: FileHandle
  try {
    await fs.rm(part, { force: true })
    out = await fs.open(part, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600)
  } catch (err) {
    await tree.close()
    throw err
  }
  let closed = false
  const failure = new Failure()
  const onAbort = () => failure.fail(opts.signal!.reason)
  opts.signal?.addEventListener('abort', onAbort, { once: true })
  const tar = new PassThrough({ highWaterMark: AHEAD })
  const pool = new ChunkPool()
  let child: ChildProcess | undefined
  let consumer: Promise<unknown>
  if (opts.compression === 'zstd') {
    // zstd writes the file itself: the compressed bytes never pass through this process
    child = spawn('zstd', ZSTD_ARGS, { stdio: ['pipe', out.fd, 'pipe'] })
    consumer = Promise.all([
      pipeline(tar, feeder(child.stdin!, pool.release)),
      exited(child, 'zstd'),
    ])
  } else if (opts.compression === 'gzip') {
    const gzip = zlib.createGzip({ level: 1, chunkSize: 256 * KiB })
    consumer = Promise.all([
      pipeline(tar, feeder(gzip, pool.release)),
      pipeline(gzip, handleWriter(out)),
    ])
  } else {
    consumer = pipeline(tar, handleWriter(out, pool.release))
  }
  consumer.catch(failure.fail)
  try {
    const entries = await packEntries(tar, tree, opts, hashNames, failure, pool)
    tar.end()
    await failure.guard(consumer)
    await out.sync()
    const { size } = await out.stat()
    closed = true
    await out.close()
    await fs.rename(part, opts.archive)
    await fsyncDir(dir)
    return { entries, archiveBytes: size }
  } catch (err) {
    tar.destroy(err instanceof Error ? err : new Error(String(err)))
    child?.kill()
    await consumer.catch(() => {})
    if (!closed) await out.close().catch(() => {})
    await fs.rm(part, { force: true })
    throw err
  } finally {
    opts.signal?.removeEventListener('abort', onAbort)
    await tree.close()
  }
}

// --- reading back ----------------------------------------------------------------------------

function entryOf(h: TarHeader): ManifestEntry | string {
  const p = h.name.replace(/^(\.\/)+/, '').replace(/\/+$/, '')
  const kind =
    h.type === 'file'
      ? 'file'
      : h.type === 'directory'
        ? 'dir'
        : h.type === 'symlink'
          ? 'symlink'
          : undefined
  if (!kind) return p
  const e: ManifestEntry = {
    path: p,
    kind,
    size: kind === 'file' ? h.size : 0,
    mode: h.mode & 0o7777,
    mtimeMs: h.mtimeMs,
    uid: h.uid,
    gid: h.gid,
  }
  if (kind === 'symlink') e.linkname = h.linkname
  return e
}

/** The archive's tar stream, decompressed, chunk by chunk. */
async function* tarStream(
  fh: FileHandle,
  compression: Compression,
  started: (child: ChildProcess) => void,
): AsyncGenerator<Buffer> {
  if (compression === 'zstd') {
    const child = spawn('zstd', ['-d', '-c', '-q'], { stdio: [fh.fd, 'pipe', 'pipe'] })
    started(child)
    const done = exited(child, 'zstd -d')
    done.catch(() => {}) // awaited below
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) yield chunk
    await done
  } else if (compression === 'gzip') {
    const gunzip = zlib.createGunzip({ chunkSize: 256 * KiB })
    const feeding = pipeline(Readable.from(handleChunks(fh), { objectMode: false }), gunzip)
    feeding.catch(() => {}) // the iteration below sees the same error
    for await (const chunk of gunzip as AsyncIterable<Buffer>) yield chunk
    await feeding
  } else {
    yield* handleChunks(fh)
  }
}

/** Read the archive back and compare it with the manifest (see the file header). */
export async function verifyBackup(opts: VerifyBackupOptions): Promise<void> {
  const { archive, compression } = opts
  const fh = await fs.open(archive, fsc.O_RDONLY | fsc.O_NOFOLLOW)
  const actual: ManifestEntry[] = []
  const foreign: Mismatch[] = []
  let child: ChildProcess | undefined
  let current: string | undefined
  let total = 0
  // names byte for byte (surrogate-escaped), as the manifest has them
  const walker = new TarWalker((h) => {
    const e = entryOf(h)
    if (typeof e === 'string') {
      foreign.push({ path: e, what: 'kind', actual: h.type })
      return null
    }
    actual.push(e)
    if (e.kind !== 'file') return null
    current = e.path
    const hash = createHash('sha256')
    return {
      write(chunk: Buffer) {
        hash.update(chunk)
        total += chunk.length
        opts.onProgress?.(total, e.path)
      },
      end() {
        e.hashes = { sha256: hash.digest('hex') }
        current = undefined
      },
    }
  }, bytesToName)
  try {
    try {
      for await (const chunk of tarStream(fh, compression, (c) => (child = c))) {
        const wait = walker.push(chunk)
        if (wait) await wait
      }
      walker.end()
    } catch (err) {
      child?.kill()
      const where = current !== undefined ? ` (in ${showName(current)})` : ''
      throw new BackupCorruptError(
        archive,
        `backup ${archive} cannot be read back${where}: truncated or corrupt${compression === 'none' ? '' : ` (${compression})`}: ${message(err)}`,
        { cause: err },
      )
    }
  } finally {
    await fh.close()
  }
  const expectedKinds = new Map(opts.manifest.entries.map((e) => [e.path, e.kind]))
  const foreignPaths = new Set(foreign.map((m) => m.path))
  const mismatches = [
    ...compareEntries(opts.manifest.entries, actual, {
      modes: true,
      mtimes: true,
      owners: true,
      hash: 'sha256',
    }).filter((m) => !(m.what === 'missing' && foreignPaths.has(m.path))),
    ...foreign.map((m) => ({ ...m, expected: expectedKinds.get(m.path) })),
  ]
  if (mismatches.length) throw new BackupMismatchError(archive, mismatches)
}
