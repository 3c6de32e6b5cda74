/**
 * The one adapter that reads an image archive as the engine's export endpoint streams it
 * (`docker save`, GET /images/{id}/get), whatever the engine and image store:
 *
 * - legacy layout (Docker 20.10): `<id>/layer.tar`, `<id>/json`, `<id>/VERSION`, `<config>.json`,
 *   `manifest.json`, `repositories`;
 * - OCI layout (Docker 25+, moby#47065): `blobs/sha256/<hex>` for layers, config and manifests
 *   (in digest order, so layer and JSON blobs interleave; 26.1's graph-driver store adds the
 *   legacy `<id>/json` documents as blobs too), then `index.json`, `manifest.json`,
 *   `oci-layout`: the blobs come FIRST and manifest.json LAST, so the layer order and which
 *   blob is the config are only known at the end;
 * - layer blobs may be plain tars (graph-driver store), gzip (containerd image store,
 *   moby#49473) or zstd.
 *
 * Nothing is written to disk and no layer is held in memory: the archive and each layer are
 * walked as the bytes arrive by tarwalk.ts (synchronous: no stream or promise per entry or
 * chunk, see there why), a compressed layer through its decompressor; the body of an entry
 * nobody reads is skipped. Only small JSON blobs (config, manifests; up to JSON_MAX_BYTES
 * each) and the contents the visitor asks for are kept.
 *
 * API
 *
 *   readImageArchive(stream, visitor, { maxContentBytes? }) → Promise<ImageArchive>
 *     Reads the whole archive once. For every entry of every layer blob, in archive order
 *     (NOT layer order), awaits visitor.entry(blob, entry, content); content() reads the
 *     entry's bytes (files up to maxContentBytes, default 8 MiB; empty for non-files) and must
 *     be called inside the callback. After each layer blob, awaits visitor.layerEnd?(blob, info).
 *     Resolves with the layout, repo tags, parsed image config and the layers in manifest.json
 *     order (base first). Rejects with an ImageArchiveError naming the blob on a truncated or
 *     corrupt archive or layer, on a stream 'error', or when manifest.json is missing or names
 *     what is not there; an error thrown by the visitor rejects as it is.
 *
 *   detectCompression(head) → 'none' | 'gzip' | 'zstd' | 'unknown'
 *     What a blob is, from its first bytes (at least 512 for a plain tar): gzip 1f 8b,
 *     zstd 28 b5 2f fd, a tar header ('ustar' at offset 257 with a valid checksum) or an
 *     end-of-archive block (512 zero bytes: an empty tar) → 'none'.
 *
 * Layer blobs are recognised by their CONTENT, never by their file name (dive#507, #718).
 * Entry paths are normalised: no leading './' or '/', no trailing '/', no '.' or empty
 * segments ('..' is kept, never resolved); a layer's own root entry ('./') has path ''.
 * Modes are normalised to `& 0o7777` (Docker 20.10 writes the file type bits too: 0100644).
 * Whiteouts: '.wh..wh..opq' → { kind: 'opaque', dir }, '.wh.<name>' → { kind: 'file', target };
 * other '.wh..wh.*' names (AUFS metadata: .wh..wh.plnk, .wh..wh.aufs) are not whiteouts and
 * are reported as plain entries.
 *
 * Edge cases: a zero-length blob named as a layer by manifest.json is an empty layer (its
 * layerEnd comes once manifest.json has been read); a blob named twice in manifest.json is one
 * entry in the archive and is visited once; a tar blob that manifest.json does not name is
 * visited all the same (whether it is a layer is only known at the end); the archive must hold
 * exactly one image (manifest.json with one element). zstd needs the `zstd` command (Node 20's
 * zlib has no zstd): it is spawned with an argument array only when a zstd blob shows up.
 */
import { spawn } from 'node:child_process'
import path from 'node:path'
import { Duplex } from 'node:stream'
import zlib from 'node:zlib'
import { isTarHeader, TarWalker, type Sink, type TarEntryType, type TarHeader } from './tarwalk.js'

export type LayerEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'other'

export type Whiteout = { kind: 'file'; target: string } | { kind: 'opaque'; dir: string }

export interface LayerEntry {
  /** normalised: no leading './' or '/', no trailing '/' ('usr/lib/python3.11/os.py'); '' is the layer root */
  path: string
  type: LayerEntryType
  /** bytes of content (0 for non-files) */
  size: number
  /** permission bits with setuid/setgid/sticky (& 0o7777), without the file type bits */
  mode: number
  uid: number
  gid: number
  /** symlink: the target as stored; hardlink: the linked path, normalised like `path` */
  linkname?: string
  mtime?: Date
  /** '.wh.<name>' → the path it deletes; '.wh..wh..opq' → the directory it makes opaque */
  whiteout?: Whiteout
}

export type LayerCompression = 'none' | 'gzip' | 'zstd'

export interface ArchiveLayer {
  /** path of the blob inside the archive, as passed to the visitor */
  blob: string
  compression: LayerCompression
  /** blob bytes as stored in the archive (compressed size for gzip/zstd) */
  sizeBytes: number
}

export interface ImageArchive {
  layout: 'legacy' | 'oci'
  repoTags: string[]
  /** the image config JSON (history, rootfs.diff_ids, config.User, config.Healthcheck, …) */
  config: Record<string, unknown>
  /** path of the config blob inside the archive */
  configBlob: string
  /** in order, base first, from manifest.json (Layers) */
  layers: ArchiveLayer[]
}

export interface LayerVisitor {
  /**
   * Called for every entry of every layer, in archive order (NOT layer order: the order is only
   * known once manifest.json arrives at the end). `content()` may be called (and awaited) inside
   * the callback for entries up to `maxContentBytes`; entries whose content was not read are
   * drained.
   */
  entry(blob: string, e: LayerEntry, content: () => Promise<Buffer>): void | Promise<void>
  /** Optional: a layer blob is complete. */
  layerEnd?(blob: string, info: ArchiveLayer): void | Promise<void>
}

export interface ReadArchiveOptions {
  /** largest entry content() will read into memory (default 8 MiB) */
  maxContentBytes?: number
}

/** A truncated, corrupt or incomplete image archive; `blob` names the blob when there is one. */
export class ImageArchiveError extends Error {
  constructor(
    message: string,
    readonly blob?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'ImageArchiveError'
  }
}

const MiB = 1024 * 1024
const DEFAULT_MAX_CONTENT_BYTES = 8 * MiB
/** Non-layer blobs up to this size are read and kept when they parse as JSON. */
const JSON_MAX_BYTES = 8 * MiB
const HEAD_BYTES = 512
/** Compressed layer bytes are handed to the decompressor in chunks of at least this size. */
const COMPRESSED_CHUNK = 1 * MiB

// --- detection -------------------------------------------------------------------------------

/** What a blob is, from its first bytes (see the file header). */
export function detectCompression(head: Buffer): LayerCompression | 'unknown' {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip'
  if (head.length >= 4 && head.readUInt32BE(0) === 0x28b52ffd) return 'zstd'
  if (head.length >= 512) {
    const block = head.subarray(0, 512)
    if (isTarHeader(block)) return 'none'
    if (block.every((b) => b === 0)) return 'none' // end-of-archive block: an empty tar
  }
  return 'unknown'
}

// --- paths and entries ---------------------------------------------------------------------

/** 'a/./b/' → 'a/b', './x' → 'x', '/x' → 'x', './' → ''. */
export function normalizeEntryPath(name: string): string {
  return name
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .join('/')
}

function whiteoutOf(p: string): Whiteout | undefined {
  const slash = p.lastIndexOf('/')
  const dir = slash < 0 ? '' : p.slice(0, slash)
  const base = p.slice(slash + 1)
  if (base === '.wh..wh..opq') return { kind: 'opaque', dir }
  if (base.startsWith('.wh..wh.')) return undefined // AUFS metadata, not a whiteout
  if (base.startsWith('.wh.') && base.length > 4) {
    const name = base.slice(4)
    return { kind: 'file', target: dir ? `${dir}/${name}` : name }
  }
  return undefined
}

const ENTRY_TYPES: Record<TarEntryType, LayerEntryType> = {
  file: 'file',
  directory: 'dir',
  symlink: 'symlink',
  link: 'hardlink',
  other: 'other',
}

function toLayerEntry(h: TarHeader): LayerEntry {
  const p = normalizeEntryPath(h.name)
  const type = ENTRY_TYPES[h.type]
  const e: LayerEntry = {
    path: p,
    type,
    size: type === 'file' ? h.size : 0,
    // Docker 20.10 writes the file type bits too (0100644): keep permissions, setuid/gid, sticky
    mode: h.mode & 0o7777,
    uid: h.uid,
    gid: h.gid,
    mtime: h.mtime,
  }
  if (h.linkname) e.linkname = type === 'hardlink' ? normalizeEntryPath(h.linkname) : h.linkname
  const wh = whiteoutOf(p)
  if (wh) e.whiteout = wh
  return e
}

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
class Joiner {
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

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err))

/** `zstd -dc` as a Duplex; `done` settles once the process has exited (rejects on failure). */
function zstdDecompressor(blob: string): { stream: Duplex; done: Promise<void> } {
  const child = spawn('zstd', ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] })
  const stream = Duplex.from({ writable: child.stdin, readable: child.stdout })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => {
    if (stderr.length < 4096) stderr += c.toString()
  })
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (err: NodeJS.ErrnoException) => {
      const e =
        err.code === 'ENOENT'
          ? new ImageArchiveError(
              `layer blob ${blob} is zstd-compressed and the zstd command is not installed (apt-get install zstd)`,
              blob,
              { cause: err },
            )
          : err
      stream.destroy(e)
      reject(e)
    })
    child.on('close', (code, signal) => {
      if (code === 0) return resolve()
      const e = new Error(`zstd -dc exited ${code ?? signal}: ${stderr.trim()}`)
      stream.destroy(e)
      reject(e)
    })
  })
  done.catch(() => {}) // observed by the caller; the stream carries the error too
  stream.on('close', () => {
    // closed before zstd's output ended: an error downstream, so stop zstd
    if (!stream.readableEnded && child.exitCode === null && child.signalCode === null) child.kill()
  })
  return { stream, done }
}

// --- the reader ----------------------------------------------------------------------------

/** Marks an error thrown by the visitor, so that it is rethrown as it is. */
class VisitorFailure {
  constructor(readonly error: unknown) {}
}

interface ManifestItem {
  Config?: unknown
  RepoTags?: unknown
  Layers?: unknown
}

/** Read an image archive (see the file header). */
export async function readImageArchive(
  stream: NodeJS.ReadableStream,
  visitor: LayerVisitor,
  opts: ReadArchiveOptions = {},
): Promise<ImageArchive> {
  const maxContentBytes = opts.maxContentBytes ?? DEFAULT_MAX_CONTENT_BYTES
  const jsons = new Map<string, unknown>()
  const layersSeen = new Map<string, ArchiveLayer>()
  const emptyBlobs = new Set<string>()
  const notLayers = new Map<string, string>() // path → its first bytes, hex
  const links = new Map<string, string>() // archive symlinks / hard links → target path
  let ociLayout = false
  let current: string | undefined // the archive entry being read
  let previous: string | undefined // the last one read in full

  const visitorFailure = (err: unknown) => {
    throw new VisitorFailure(err)
  }
  /** Decompressors still running: stopped when the read fails. */
  const running = new Set<() => void>()
  /** content() promises still reading: rejected when the read fails */
  const reads = new Set<(err: unknown) => void>()
  /** the read failed: nothing more reaches the visitor */
  let stopped = false

  /** The sink of one entry of a layer: the visitor is called, content() read when asked for. */
  function layerEntry(blob: string, h: TarHeader): Sink | null | Promise<Sink | null> {
    if (stopped) return null
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
      if (e.size > maxContentBytes) {
        return Promise.reject(
          new RangeError(
            `${e.path} in ${blob} is ${e.size} bytes, more than maxContentBytes (${maxContentBytes})`,
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
        reads.add(rejectContent)
        wake?.()
      }
      return reading
    }
    let r: void | Promise<void>
    try {
      r = visitor.entry(blob, e, content)
    } catch (err) {
      throw new VisitorFailure(err)
    }
    const capturing = (then?: Promise<void>): Sink => ({
      write: (c) => void capture!.push(Buffer.from(c)),
      end: () => {
        reads.delete(rejectContent)
        resolveContent(Buffer.concat(capture!))
        return then
      },
    })
    if (!(r instanceof Promise)) {
      open = false
      return reading ? capturing() : null
    }
    // the visitor is async: the body is read once it asks for it, or skipped once it is done
    const settled = r.then(() => {
      open = false
    }, visitorFailure)
    settled.catch(() => {}) // observed by the walk, unless the read fails first
    if (reading) return capturing(settled)
    return new Promise<Sink | null>((resolve, reject) => {
      wake = () => resolve(capturing(settled))
      settled.then(() => resolve(null), reject)
    })
  }

  /** The sink of a layer blob: its tar, through a decompressor when it is compressed. */
  function layerSink(blob: string, compression: LayerCompression, sizeBytes: number): Sink {
    const corrupt = (err: unknown): never => {
      if (err instanceof VisitorFailure || err instanceof ImageArchiveError) throw err
      throw new ImageArchiveError(
        `layer blob ${blob}${compression === 'none' ? '' : ` (${compression})`} is truncated or corrupt: ${message(err)}`,
        blob,
        { cause: err },
      )
    }
    const walker = new TarWalker((h) => layerEntry(blob, h))
    const finished = async (): Promise<void> => {
      const info: ArchiveLayer = { blob, compression, sizeBytes }
      layersSeen.set(blob, info)
      if (!visitor.layerEnd) return
      try {
        await visitor.layerEnd(blob, info)
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
    running.add(stop)
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
          running.delete(stop)
        }
        return finished()
      },
    }
  }

  /**
   * The sink of one entry of the archive: a layer blob (recognised by its first bytes), a small
   * JSON blob (kept), or anything else (skipped).
   */
  function archiveEntry(h: TarHeader): Sink | null {
    const name = normalizeEntryPath(h.name)
    current = name
    const done = () => {
      previous = name
      current = undefined
    }
    if (h.type === 'symlink' || h.type === 'link') {
      if (h.linkname) {
        const target =
          h.type === 'symlink'
            ? normalizeEntryPath(path.posix.join(path.posix.dirname(name), h.linkname))
            : normalizeEntryPath(h.linkname)
        links.set(name, target)
      }
    }
    if (h.type !== 'file') return { write() {}, end: done }
    if (name === 'oci-layout') ociLayout = true
    const size = h.size
    if (size === 0) emptyBlobs.add(name)
    const head: Buffer[] = []
    let headBytes = 0
    let target: Sink | undefined
    const decide = (): Sink => {
      const headBuf = Buffer.concat(head)
      const kind = detectCompression(headBuf)
      if (kind !== 'unknown') return layerSink(name, kind, size)
      notLayers.set(name, headBuf.subarray(0, 8).toString('hex'))
      if (size > JSON_MAX_BYTES) return { write() {}, end() {} }
      const chunks: Buffer[] = []
      return {
        write: (c) => void chunks.push(Buffer.from(c)),
        end() {
          try {
            jsons.set(name, JSON.parse(Buffer.concat(chunks).toString('utf8')))
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

  const outer = new TarWalker(archiveEntry)
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const wait = outer.push(chunk)
      if (wait) await wait
    }
    outer.end()
  } catch (err) {
    stopped = true
    for (const stop of running) stop()
    const where = current ? ` in blob ${current}` : previous ? ` after blob ${previous}` : ''
    const failure =
      err instanceof VisitorFailure
        ? err.error
        : err instanceof ImageArchiveError
          ? err
          : new ImageArchiveError(
              `image archive is truncated or corrupt${where}: ${message(err)}`,
              current,
              { cause: err },
            )
    for (const reject of reads) reject(failure) // a content() the visitor still awaits
    throw failure
  }

  // --- manifest.json: the layer order, the config, the tags ---
  const resolve = (p: string): string => {
    let r = normalizeEntryPath(p)
    for (let hops = 0; hops < 16 && links.has(r); hops++) r = links.get(r)!
    return r
  }
  const manifest = jsons.get('manifest.json')
  if (!Array.isArray(manifest) || manifest.length === 0) {
    throw new ImageArchiveError(
      'image archive has no manifest.json (truncated, or not a docker save archive)',
    )
  }
  if (manifest.length > 1) {
    throw new ImageArchiveError(
      `image archive holds ${manifest.length} images; readImageArchive reads an archive of one image`,
    )
  }
  const item = manifest[0] as ManifestItem
  if (typeof item.Config !== 'string' || !Array.isArray(item.Layers)) {
    throw new ImageArchiveError('manifest.json has no Config or no Layers', 'manifest.json')
  }
  const configBlob = resolve(item.Config)
  const config = jsons.get(configBlob)
  if (!config || typeof config !== 'object' || Array.isArray(config)) {
    throw new ImageArchiveError(
      `config blob ${configBlob} named by manifest.json is not in the archive (or not a JSON object)`,
      configBlob,
    )
  }
  const layers: ArchiveLayer[] = []
  for (const named of item.Layers as unknown[]) {
    if (typeof named !== 'string') {
      throw new ImageArchiveError('manifest.json Layers holds a non-string', 'manifest.json')
    }
    const blob = resolve(named)
    let info = layersSeen.get(blob)
    if (!info && emptyBlobs.has(blob)) {
      info = { blob, compression: 'none', sizeBytes: 0 }
      layersSeen.set(blob, info)
      if (visitor.layerEnd) await visitor.layerEnd(blob, info)
    }
    if (!info) {
      const head = notLayers.get(blob)
      throw new ImageArchiveError(
        head !== undefined
          ? `layer blob ${blob} named by manifest.json is neither a tar nor gzip/zstd (starts with ${head})`
          : `layer blob ${blob} named by manifest.json is not in the archive`,
        blob,
      )
    }
    layers.push(info)
  }
  return {
    layout: ociLayout || jsons.has('index.json') ? 'oci' : 'legacy',
    repoTags: Array.isArray(item.RepoTags)
      ? item.RepoTags.filter((t): t is string => typeof t === 'string')
      : [],
    config: config as Record<string, unknown>,
    configBlob,
    layers,
  }
}
