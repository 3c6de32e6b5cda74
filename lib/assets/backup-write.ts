/**
 * Writing the backup archive: a tar of the manifest's entries, every file read once and hashed
 * on the way, through the compressor into `<archive>.part`, published durably (lib/assets/backup.ts
 * describes the API).
 */
import { createHash, type Hash } from 'node:crypto'
import { type BigIntStats, constants as fsc } from 'node:fs'
import fs, { type FileHandle, type FileReadResult } from 'node:fs/promises'
import { PassThrough } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import zlib from 'node:zlib'
import { renameDurable } from '../host/durable.js'
import { errCode, splitRel } from '../host/safefs.js'
import { Tree } from '../host/safefs-tree.js'
import type { HashName, ManifestEntry } from '../shared/manifest-types.js'
import { inodesOf } from './backup-sample.js'
import { ChunkPool, Failure, feeder, handleWriter, startZstd, type ZstdChild } from './backup-io.js'
import {
  AHEAD,
  CHUNK,
  KiB,
  ZSTD_ARGS,
  showPath,
  type WriteBackupOptions,
  type WriteBackupResult,
} from './backup-types.js'
import { mtimeMsOf } from './manifest.js'
import { TAR_END, tarHeader, tarPadding } from './tarheader.js'

class ChangedError extends Error {
  constructor(file: string, what: string, options?: { cause?: unknown }) {
    super(`${showPath(file)} changed while backing up (${what}); run the migration again`, options)
    this.name = 'ChangedError'
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

/** Write the backup archive (see the file header). */
export async function writeBackup(opts: WriteBackupOptions): Promise<WriteBackupResult> {
  const hashNames: HashName[] = ['sha256', ...opts.hashes.filter((h) => h !== 'sha256')]
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
  let zstd: Promise<ZstdChild> | undefined
  let consumer: Promise<unknown>
  if (opts.compression === 'zstd') {
    // zstd writes the file itself: the compressed bytes never pass through this process
    zstd = startZstd(ZSTD_ARGS, { stdin: 'pipe', stdout: out.fd }, 'zstd')
    consumer = zstd.then(({ child, done }) =>
      Promise.all([pipeline(tar, feeder(child.stdin!, pool.release)), done]),
    )
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
    await renameDurable(part, opts.archive)
    return { entries, archiveBytes: size }
  } catch (err) {
    tar.destroy(err instanceof Error ? err : new Error(String(err)))
    zstd?.then(
      ({ child }) => child.stop(),
      () => {},
    )
    await consumer.catch(() => {})
    if (!closed) await out.close().catch(() => {})
    await fs.rm(part, { force: true })
    throw err
  } finally {
    opts.signal?.removeEventListener('abort', onAbort)
    await tree.close()
  }
}
