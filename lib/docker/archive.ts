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
 * Nothing is written to disk and no layer is held in memory: the archive, each layer and each
 * layer entry are streamed, and every entry nobody reads is drained (tar-stream stalls
 * otherwise). Only small JSON blobs (config, manifests; up to JSON_MAX_BYTES each) are kept.
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
import { Duplex, Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import zlib from 'node:zlib'
import tar from 'tar-stream'

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

function isTarHeader(block: Buffer): boolean {
  if (block.length < 512) return false
  if (block.toString('latin1', 257, 262) !== 'ustar') return false
  // checksum: sum of the header bytes with the checksum field (148..155) counted as spaces
  let sum = 8 * 0x20
  for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) sum += block[i]!
  const stored = parseInt(
    block
      .toString('latin1', 148, 156)
      .replace(/[\0 ]+/g, ' ')
      .trim(),
    8,
  )
  return stored === sum
}

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

function toLayerEntry(h: tar.Header): LayerEntry {
  const p = normalizeEntryPath(h.name)
  let type: LayerEntryType
  switch (h.type) {
    case 'file':
    case 'contiguous-file':
      type = 'file'
      break
    case 'directory':
      type = 'dir'
      break
    case 'symlink':
      type = 'symlink'
      break
    case 'link':
      type = 'hardlink'
      break
    default:
      type = 'other'
  }
  const e: LayerEntry = {
    path: p,
    type,
    size: type === 'file' ? (h.size ?? 0) : 0,
    // Docker 20.10 writes the file type bits too (0100644): keep permissions, setuid/gid, sticky
    mode: (h.mode ?? 0) & 0o7777,
    uid: h.uid ?? 0,
    gid: h.gid ?? 0,
  }
  if (h.linkname) e.linkname = type === 'hardlink' ? normalizeEntryPath(h.linkname) : h.linkname
  if (h.mtime) e.mtime = h.mtime
  const wh = whiteoutOf(p)
  if (wh) e.whiteout = wh
  return e
}

// --- stream helpers ------------------------------------------------------------------------

type ChunkIterator = AsyncIterator<Buffer>

async function drain(it: ChunkIterator): Promise<void> {
  for (;;) {
    const r = await it.next()
    if (r.done) return
  }
}

/** Up to `bytes` bytes from the iterator (fewer only when it ends), as chunks. */
async function readHead(it: ChunkIterator, bytes: number): Promise<Buffer[]> {
  const chunks: Buffer[] = []
  let n = 0
  while (n < bytes) {
    const r = await it.next()
    if (r.done) break
    chunks.push(r.value)
    n += r.value.length
  }
  return chunks
}

async function readRest(head: Buffer[], it: ChunkIterator): Promise<Buffer> {
  const chunks = [...head]
  for (;;) {
    const r = await it.next()
    if (r.done) return Buffer.concat(chunks)
    chunks.push(r.value)
  }
}

/** The head chunks, then the rest of the iterator. */
async function* replay(head: Buffer[], it: ChunkIterator): AsyncGenerator<Buffer> {
  try {
    yield* head
    for (;;) {
      const r = await it.next()
      if (r.done) return
      yield r.value
    }
  } finally {
    // stopped early (an error downstream): let the entry stream go
    await it.return?.()
  }
}

/**
 * Writes the head chunks, then the rest of the iterator, into a decompressor (gunzip in the
 * thread pool, or zstd's stdin) in `chunkBytes` pieces, and ends it. Two reasons: the socket
 * delivers ~24 KiB reads, and each write is a hand-off to another thread or process (joined
 * to 1 MiB: 4–5× fewer, the scan of a gzip-layered 1 GB image ~15% faster); and the joins are
 * copied into a few recycled buffers instead of new ones, because every new Buffer counts as
 * external memory and drives V8's full GCs. A buffer is reused only once its write callback
 * has fired: the decompressor has consumed it and holds no reference.
 */
async function feed(
  dst: Duplex,
  head: Buffer[],
  it: ChunkIterator,
  chunkBytes: number,
): Promise<void> {
  const free: Buffer[] = []
  const take = () => free.pop() ?? Buffer.allocUnsafeSlow(chunkBytes)
  let buf = take()
  let n = 0
  const failed = new Promise<never>((_, reject) => {
    dst.once('error', reject)
    dst.once('close', () => reject(new Error('the decompressor closed early')))
  })
  failed.catch(() => {})
  const write = async (data: Buffer, owner: Buffer): Promise<void> => {
    const ok = dst.write(data, (err) => {
      if (!err) free.push(owner)
    })
    if (!ok) await Promise.race([new Promise((r) => dst.once('drain', r)), failed])
  }
  const add = async (c: Buffer): Promise<void> => {
    let off = 0
    while (off < c.length) {
      const k = Math.min(chunkBytes - n, c.length - off)
      c.copy(buf, n, off, off + k)
      n += k
      off += k
      if (n === chunkBytes) {
        await write(buf, buf)
        buf = take()
        n = 0
      }
    }
  }
  try {
    for (const h of head) await add(h)
    for (;;) {
      const r = await it.next()
      if (r.done) break
      await add(r.value)
    }
    if (n) await write(buf.subarray(0, n), buf)
    dst.end()
  } catch (err) {
    dst.destroy(err as Error)
    await it.return?.()
    throw err
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

  const callVisitor = async (fn: () => void | Promise<void>): Promise<void> => {
    try {
      await fn()
    } catch (err) {
      throw new VisitorFailure(err)
    }
  }

  async function readLayer(
    blob: string,
    compression: LayerCompression,
    sizeBytes: number,
    head: Buffer[],
    it: ChunkIterator,
  ): Promise<void> {
    const inner = tar.extract()
    const stages: NodeJS.ReadWriteStream[] = []
    let zstdDone: Promise<void> | undefined
    // 256 KiB output chunks: the default 16 KiB makes gunzip of a 1 GB layer ~2.5× slower here
    if (compression === 'gzip') stages.push(zlib.createGunzip({ chunkSize: 256 * 1024 }))
    if (compression === 'zstd') {
      const z = zstdDecompressor(blob)
      stages.push(z.stream)
      zstdDone = z.done
    }
    let piping: Promise<void>
    let feeding: Promise<void> = Promise.resolve()
    if (stages.length) {
      const decompress = stages[0] as Duplex
      piping = pipeline(decompress, inner)
      feeding = feed(decompress, head, it, COMPRESSED_CHUNK)
      feeding.catch(() => {}) // awaited below; the decompressor is destroyed with the error
    } else {
      piping = pipeline(Readable.from(replay(head, it), { objectMode: false }), inner)
    }
    piping.catch(() => {}) // awaited below; the iterator sees the same error
    try {
      for await (const ent of inner) {
        const e = toLayerEntry(ent.header)
        const chunks = ent[Symbol.asyncIterator]() as ChunkIterator
        let reading: Promise<Buffer> | undefined
        let open = true
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
            reading = readRest([], chunks)
            reading.catch(() => {}) // the visitor may not await it; the iterator rethrows
          }
          return reading
        }
        await callVisitor(() => visitor.entry(blob, e, content))
        open = false
        if (reading) await reading
        else await drain(chunks)
      }
      await piping
      await feeding
      await zstdDone
    } catch (err) {
      inner.destroy()
      await piping.catch(() => {})
      await feeding.catch(() => {})
      if (err instanceof VisitorFailure || err instanceof ImageArchiveError) throw err
      throw new ImageArchiveError(
        `layer blob ${blob}${compression === 'none' ? '' : ` (${compression})`} is truncated or corrupt: ${message(err)}`,
        blob,
        { cause: err },
      )
    }
    const info: ArchiveLayer = { blob, compression, sizeBytes }
    layersSeen.set(blob, info)
    if (visitor.layerEnd) await callVisitor(() => visitor.layerEnd!(blob, info))
  }

  /** One entry of the archive itself: a layer blob, a small JSON blob, a link, or skipped. */
  async function readArchiveEntry(h: tar.Header, name: string, it: ChunkIterator): Promise<void> {
    if (h.type === 'symlink' || h.type === 'link') {
      if (h.linkname) {
        const target =
          h.type === 'symlink'
            ? normalizeEntryPath(path.posix.join(path.posix.dirname(name), h.linkname))
            : normalizeEntryPath(h.linkname)
        links.set(name, target)
      }
      return drain(it)
    }
    if (h.type !== 'file' && h.type !== 'contiguous-file') return drain(it)
    if (name === 'oci-layout') ociLayout = true
    const size = h.size ?? 0
    if (size === 0) {
      emptyBlobs.add(name)
      return drain(it)
    }
    const head = await readHead(it, HEAD_BYTES)
    const headBuf = Buffer.concat(head)
    const kind = detectCompression(headBuf)
    if (kind !== 'unknown') return readLayer(name, kind, size, head, it)
    notLayers.set(name, headBuf.subarray(0, 8).toString('hex'))
    if (size > JSON_MAX_BYTES) return drain(it)
    const text = (await readRest(head, it)).toString('utf8')
    try {
      jsons.set(name, JSON.parse(text))
    } catch {
      // not JSON (VERSION, …): not needed
    }
  }

  const outer = tar.extract()
  const piping = pipeline(stream, outer)
  piping.catch(() => {}) // awaited below; the iterator sees the same error
  try {
    for await (const entry of outer) {
      const name = normalizeEntryPath(entry.header.name)
      current = name
      await readArchiveEntry(entry.header, name, entry[Symbol.asyncIterator]() as ChunkIterator)
      previous = name
      current = undefined
    }
    await piping
  } catch (err) {
    outer.destroy()
    await piping.catch(() => {})
    if (err instanceof VisitorFailure) throw err.error
    if (err instanceof ImageArchiveError) throw err
    const where = current ? ` in blob ${current}` : previous ? ` after blob ${previous}` : ''
    throw new ImageArchiveError(
      `image archive is truncated or corrupt${where}: ${message(err)}`,
      current,
      { cause: err },
    )
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
