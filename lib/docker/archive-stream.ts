/**
 * Streams under the image archive reader: a failure of a decompressor as a promise, the Joiner
 * that feeds one in big recycled chunks, and zstd as a decompressor (lib/docker/archive.ts).
 */
import { Duplex, PassThrough, Writable } from 'node:stream'
import { MissingExecutableError, spawnChild, type Child } from '../host/run.js'
import { ImageArchiveError } from './archive-format.js'

// --- stream helpers ------------------------------------------------------------------------

/** A promise that rejects when the stream fails or closes before it ended. */
function failureOf(dst: Duplex, what: string): Promise<never> {
  const failed = new Promise<never>((_, reject) => {
    dst.once('error', reject)
    dst.once('close', () => reject(new Error(`the ${what} closed early`)))
  })
  failed.catch(() => {})
  return failed
}

/**
 * Writes what it is given into a decompressor (gunzip in the thread pool, or zstd's stdin) in
 * `chunkBytes` pieces. Two reasons: the socket delivers ~24–64 KiB reads, and each write is a
 * hand-off to another thread or process (joined to 1 MiB: 4–5× fewer, the scan of a
 * gzip-layered 1 GB image ~15% faster); and the joins are copied into a few recycled buffers
 * instead of new ones, because every new Buffer counts as external memory and drives V8's GCs.
 * A buffer is reused only once its write callback has fired: the decompressor has consumed it.
 * add() returns a promise when the decompressor wants no more for now (or has failed).
 */
export class Joiner {
  private readonly free: Buffer[] = []
  private buf: Buffer
  private n = 0
  private readonly failed: Promise<never>

  constructor(
    private readonly dst: Duplex,
    private readonly chunkBytes: number,
  ) {
    this.buf = this.take()
    this.failed = failureOf(dst, 'decompressor')
  }

  private take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.chunkBytes)
  }

  private write(data: Buffer, owner: Buffer): void | Promise<void> {
    const ok = this.dst.write(data, (err) => {
      if (!err) this.free.push(owner)
    })
    if (!ok)
      return Promise.race([
        new Promise<void>((r) => this.dst.once('drain', () => r())),
        this.failed,
      ])
  }

  add(c: Buffer): void | Promise<void> {
    let off = 0
    while (off < c.length) {
      const k = Math.min(this.chunkBytes - this.n, c.length - off)
      c.copy(this.buf, this.n, off, off + k)
      this.n += k
      off += k
      if (this.n === this.chunkBytes) {
        const full = this.buf
        this.buf = this.take()
        this.n = 0
        const wait = this.write(full, full)
        if (wait) {
          const rest = c.subarray(off)
          return wait.then(() => this.add(rest))
        }
      }
    }
  }

  /** Writes what is left and ends the decompressor's input. */
  async finish(): Promise<void> {
    if (this.n) await this.write(this.buf.subarray(0, this.n), this.buf)
    this.dst.end()
  }
}

/**
 * `zstd -dc` as a Duplex, through the process runner (host/run.ts); `done` settles once the
 * process has exited (rejects on failure). The runner starts a child asynchronously: writes wait
 * for it, then go into zstd's stdin itself, so a write's callback still means that zstd's pipe
 * has taken the bytes (the Joiner reuses the buffer then); its stdout is piped out.
 */
export function zstdDecompressor(blob: string): { stream: Duplex; done: Promise<void> } {
  const starting = spawnChild(['zstd', '-d', '-c', '-q'], { stdin: 'pipe' }).catch(
    (err: unknown) => {
      if (!(err instanceof MissingExecutableError)) throw err
      throw new ImageArchiveError(
        `layer blob ${blob} is zstd-compressed and the zstd command is not installed (apt-get install zstd)`,
        blob,
        { cause: err },
      )
    },
  )
  const input = new Writable({
    write(chunk: Buffer, _encoding, cb) {
      starting.then((c) => void c.stdin!.write(chunk, cb), cb)
    },
    final(cb) {
      starting.then((c) => {
        c.stdin!.end()
        cb()
      }, cb)
    },
  })
  const output = new PassThrough()
  const stream = Duplex.from({ writable: input, readable: output })
  let child: Child | undefined
  let stderr = ''
  const run = async (): Promise<void> => {
    const started = (child = await starting)
    if (stream.destroyed) started.stop()
    started.stderr?.on('data', (c: Buffer) => {
      if (stderr.length < 4096) stderr += c.toString()
    })
    started.stdin?.on('error', () => {}) // zstd gone: its exit says why
    started.stdout!.pipe(output)
    const { exitCode, signal } = await started.closed.finally(() => started.dispose())
    if (exitCode !== 0) throw new Error(`zstd -dc exited ${exitCode ?? signal}: ${stderr.trim()}`)
  }
  const done = run()
  done.catch((e: unknown) => stream.destroy(e instanceof Error ? e : new Error(String(e))))
  stream.on('close', () => {
    // closed before zstd's output ended: an error downstream, so stop zstd
    if (!stream.readableEnded) child?.stop()
  })
  return { stream, done }
}
