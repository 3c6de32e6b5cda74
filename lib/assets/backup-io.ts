/**
 * The plumbing under the backup archive: writes through a FileHandle, recycled read buffers,
 * a feeder into a compressor, the first failure of the consumer side, and zstd as a child of
 * the process runner (host/run.ts).
 */
import type { FileHandle } from 'node:fs/promises'
import { Writable } from 'node:stream'
import { MissingExecutableError, spawnChild, type Child, type SpawnOptions } from '../host/run.js'
import { AHEAD, CHUNK } from './backup-types.js'

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
export function handleWriter(
  fh: FileHandle,
  release: (chunk: Buffer) => void = () => {},
): Writable {
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
export class ChunkPool {
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
export function feeder(target: Writable, release: (chunk: Buffer) => void): Writable {
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
export async function* handleChunks(fh: FileHandle): AsyncGenerator<Buffer> {
  for (;;) {
    const { bytesRead, buffer } = await fh.read(Buffer.allocUnsafe(CHUNK), 0, CHUNK, null)
    if (!bytesRead) return
    yield bytesRead === CHUNK ? buffer : buffer.subarray(0, bytesRead)
  }
}

export interface ZstdChild {
  child: Child
  /** resolves on status 0, rejects with its stderr otherwise; the child is disposed of then */
  done: Promise<void>
}

/** zstd through the process runner; an Error saying how to install it when it is missing. */
export async function startZstd(args: string[], o: SpawnOptions, what: string): Promise<ZstdChild> {
  let child: Child
  try {
    child = await spawnChild(['zstd', ...args], { ...o, stderr: 'pipe' })
  } catch (err) {
    if (err instanceof MissingExecutableError) {
      throw new Error(`${what}: the zstd command is not installed (apt-get install zstd)`, {
        cause: err,
      })
    }
    throw err
  }
  let stderr = ''
  child.stderr?.on('data', (c: Buffer) => {
    if (stderr.length < 4096) stderr += c.toString()
  })
  const done = child.closed.then(
    ({ exitCode, signal }) => {
      child.dispose()
      if (exitCode === 0) return
      const detail = stderr.trim() ? `: ${stderr.trim()}` : ''
      throw new Error(`${what} exited ${exitCode ?? signal}${detail}`)
    },
    (err: unknown) => {
      child.dispose()
      throw err
    },
  )
  return { child, done }
}

/**
 * The first failure of the consumer side (compressor, disk) or the abort signal. `guard(p)`
 * rejects as soon as there is one, so the producer stops instead of waiting for a 'drain' that
 * never comes. Not Promise.race against a pending promise: every race would stay referenced by
 * it, and with it the value it settled with (here every chunk read, 1 GB for a 1 GB backup).
 */
export class Failure {
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
