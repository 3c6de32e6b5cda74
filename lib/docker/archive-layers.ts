/**
 * The sinks of one read of an image archive (lib/docker/archive.ts describes the API): an entry
 * of the archive (a layer blob, recognised by its first bytes, a small JSON blob, or anything
 * else), a layer blob (its tar, through a decompressor when compressed) and an entry of a layer
 * (the visitor called, its content read when asked for). What they see goes into a ReadState.
 */
import path from 'node:path'
import type { Duplex } from 'node:stream'
import zlib from 'node:zlib'
import {
  COMPRESSED_CHUNK,
  HEAD_BYTES,
  ImageArchiveError,
  JSON_MAX_BYTES,
  VisitorFailure,
  detectCompression,
  message,
  normalizeEntryPath,
  toLayerEntry,
  type ArchiveLayer,
  type LayerCompression,
  type ReadState,
} from './archive-format.js'
import { Joiner, zstdDecompressor } from './archive-stream.js'
import { TarWalker, type Sink, type TarHeader } from './tarwalk.js'

/** The sink of one entry of a layer: the visitor is called, content() read when asked for. */
export function layerEntry(
  st: ReadState,
  blob: string,
  h: TarHeader,
): Sink | null | Promise<Sink | null> {
  if (st.stopped) return null
  const e = toLayerEntry(h)
  let open = true
  let capture: Buffer[] | null = null
  let reading: Promise<Buffer> | undefined
  let resolveContent: (b: Buffer) => void = () => {}
  let rejectContent: (err: unknown) => void = () => {}
  let wake: (() => void) | undefined
  const content = (): Promise<Buffer> => {
    if (!open) {
      return Promise.reject(
        new Error(`content() of ${e.path} in ${blob} called after its entry() callback`),
      )
    }
    if (e.type !== 'file') return Promise.resolve(Buffer.alloc(0))
    if (e.size > st.maxContentBytes) {
      return Promise.reject(
        new RangeError(
          `${e.path} in ${blob} is ${e.size} bytes, more than maxContentBytes (${st.maxContentBytes})`,
        ),
      )
    }
    if (!reading) {
      capture = []
      reading = new Promise<Buffer>((resolve, reject) => {
        resolveContent = resolve
        rejectContent = reject
      })
      reading.catch(() => {}) // the visitor may not await it
      st.reads.add(rejectContent)
      wake?.()
    }
    return reading
  }
  let r: void | Promise<void>
  try {
    r = st.visitor.entry(blob, e, content)
  } catch (err) {
    throw new VisitorFailure(err)
  }
  const capturing = (then?: Promise<void>): Sink => ({
    write: (c) => void capture!.push(Buffer.from(c)),
    end: () => {
      st.reads.delete(rejectContent)
      resolveContent(Buffer.concat(capture!))
      return then
    },
  })
  if (!(r instanceof Promise)) {
    open = false
    return reading ? capturing() : null
  }
  // the visitor is async: the body is read once it asks for it, or skipped once it is done
  const settled = r.then(
    () => {
      open = false
    },
    (err: unknown) => {
      throw new VisitorFailure(err)
    },
  )
  settled.catch(() => {}) // observed by the walk, unless the read fails first
  if (reading) return capturing(settled)
  return new Promise<Sink | null>((resolve, reject) => {
    wake = () => resolve(capturing(settled))
    settled.then(() => resolve(null), reject)
  })
}

/** The sink of a layer blob: its tar, through a decompressor when it is compressed. */
export function layerSink(
  st: ReadState,
  blob: string,
  compression: LayerCompression,
  sizeBytes: number,
): Sink {
  const corrupt = (err: unknown): never => {
    if (err instanceof VisitorFailure || err instanceof ImageArchiveError) throw err
    throw new ImageArchiveError(
      `layer blob ${blob}${compression === 'none' ? '' : ` (${compression})`} is truncated or corrupt: ${message(err)}`,
      blob,
      { cause: err },
    )
  }
  const walker = new TarWalker((h) => layerEntry(st, blob, h))
  const finished = async (): Promise<void> => {
    const info: ArchiveLayer = { blob, compression, sizeBytes }
    st.layersSeen.set(blob, info)
    if (!st.visitor.layerEnd) return
    try {
      await st.visitor.layerEnd(blob, info)
    } catch (err) {
      throw new VisitorFailure(err)
    }
  }
  if (compression === 'none') {
    return {
      write(c) {
        try {
          const wait = walker.push(c)
          if (wait) return wait.catch(corrupt)
        } catch (err) {
          corrupt(err)
        }
      },
      end() {
        try {
          walker.end()
        } catch (err) {
          corrupt(err)
        }
        return finished()
      },
    }
  }
  // 256 KiB output chunks: the default 16 KiB makes gunzip of a 1 GB layer ~2.5× slower here
  let dec: Duplex
  let exited: Promise<void> = Promise.resolve()
  if (compression === 'gzip') dec = zlib.createGunzip({ chunkSize: 256 * 1024 })
  else {
    const z = zstdDecompressor(blob)
    dec = z.stream
    exited = z.done
  }
  dec.on('error', () => {}) // observed through `done` and the joiner; a second one must not throw
  const stop = () => dec.destroy()
  st.running.add(stop)
  const joiner = new Joiner(dec, COMPRESSED_CHUNK)
  // the decompressed tar, walked as it comes; done once the walk has ended
  const done = new Promise<void>((resolve, reject) => {
    const fail = (err: unknown) => {
      dec.destroy()
      reject(err)
    }
    dec.on('data', (c: Buffer) => {
      try {
        const wait = walker.push(c)
        if (wait) {
          dec.pause()
          wait.then(() => dec.resume(), fail)
        }
      } catch (err) {
        fail(err)
      }
    })
    dec.once('end', () => {
      try {
        walker.end()
        resolve()
      } catch (err) {
        reject(err)
      }
    })
    dec.once('error', reject)
  })
  let failure: unknown
  done.catch((err: unknown) => (failure = err)) // observed in write() and end()
  const failedEarly = done.then(
    () => new Promise<never>(() => {}),
    (err: unknown) => corrupt(err),
  )
  failedEarly.catch(() => {})
  return {
    write(c) {
      if (failure !== undefined) corrupt(failure) // no more writes into a failed decompressor
      const wait = joiner.add(c)
      if (wait) return Promise.race([wait, failedEarly]).catch(corrupt)
    },
    async end() {
      try {
        await Promise.race([joiner.finish(), failedEarly])
        await done
        await exited
      } catch (err) {
        corrupt(err)
      } finally {
        st.running.delete(stop)
      }
      return finished()
    },
  }
}

/**
 * The sink of one entry of the archive: a layer blob (recognised by its first bytes), a small
 * JSON blob (kept), or anything else (skipped).
 */
export function archiveEntry(st: ReadState, h: TarHeader): Sink | null {
  const name = normalizeEntryPath(h.name)
  st.current = name
  const done = () => {
    st.previous = name
    st.current = undefined
  }
  if (h.type === 'symlink' || h.type === 'link') {
    if (h.linkname) {
      const target =
        h.type === 'symlink'
          ? normalizeEntryPath(path.posix.join(path.posix.dirname(name), h.linkname))
          : normalizeEntryPath(h.linkname)
      st.links.set(name, target)
    }
  }
  if (h.type !== 'file') return { write() {}, end: done }
  if (name === 'oci-layout') st.ociLayout = true
  const size = h.size
  if (size === 0) st.emptyBlobs.add(name)
  const head: Buffer[] = []
  let headBytes = 0
  let target: Sink | undefined
  const decide = (): Sink => {
    const headBuf = Buffer.concat(head)
    const kind = detectCompression(headBuf)
    if (kind !== 'unknown') return layerSink(st, name, kind, size)
    st.notLayers.set(name, headBuf.subarray(0, 8).toString('hex'))
    if (size > JSON_MAX_BYTES) return { write() {}, end() {} }
    const chunks: Buffer[] = []
    return {
      write: (c) => void chunks.push(Buffer.from(c)),
      end() {
        try {
          st.jsons.set(name, JSON.parse(Buffer.concat(chunks).toString('utf8')))
        } catch {
          // not JSON (VERSION, …): not needed
        }
      },
    }
  }
  const writeAll = (sink: Sink, chunks: Buffer[], i = 0): void | Promise<void> => {
    for (; i < chunks.length; i++) {
      const wait = sink.write(chunks[i]!)
      if (wait) return wait.then(() => writeAll(sink, chunks, i + 1))
    }
  }
  if (size === 0) return { write() {}, end: done }
  return {
    write(c) {
      if (target) return target.write(c)
      head.push(Buffer.from(c))
      headBytes += c.length
      if (headBytes < HEAD_BYTES && headBytes < size) return
      target = decide()
      return writeAll(target, head.splice(0))
    },
    end() {
      const t = target ?? decide()
      const wait = target ? undefined : writeAll(t, head.splice(0))
      const ended = wait ? wait.then(() => t.end()) : t.end()
      if (ended) return ended.then(done)
      done()
    },
  }
}
