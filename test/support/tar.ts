// Synthetic tars for the archive and scan unit tests (tar-stream pack(), in memory).
import { Readable } from 'node:stream'
import tar from 'tar-stream'

export interface Spec {
  name: string
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'fifo'
  linkname?: string
  content?: string | Buffer
  mode?: number
  uid?: number
}

export async function collect(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(Buffer.from(c as Uint8Array))
  return Buffer.concat(chunks)
}

/** A tar of the specs, in that order. */
export async function tarOf(specs: Spec[]): Promise<Buffer> {
  const p = tar.pack()
  const out = collect(p)
  for (const s of specs) {
    const type = s.type ?? 'file'
    const header = {
      name: s.name,
      type,
      mode: s.mode ?? (type === 'directory' ? 0o755 : 0o644),
      uid: s.uid ?? 0,
      gid: 0,
      mtime: new Date(1_700_000_000_000),
      ...(s.linkname ? { linkname: s.linkname } : {}),
    }
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve())
      if (type === 'file') p.entry(header, Buffer.from(s.content ?? ''), done)
      else p.entry(header, done)
    })
  }
  p.finalize()
  return out
}

/** A stream that delivers the buffer in small chunks (as a socket would). */
export function chunked(buf: Buffer, size = 1000): Readable {
  const parts: Buffer[] = []
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size))
  return Readable.from(parts, { objectMode: false })
}
