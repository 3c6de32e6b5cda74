/**
 * The image archive's shapes and what is read from its bytes alone (lib/docker/archive.ts
 * describes the API): compression by content, entry paths, whiteouts, the reader's state.
 */
import { isTarHeader, type TarEntryType, type TarHeader } from './tarwalk.js'

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

export const MiB = 1024 * 1024
export const DEFAULT_MAX_CONTENT_BYTES = 8 * MiB
/** Non-layer blobs up to this size are read and kept when they parse as JSON. */
export const JSON_MAX_BYTES = 8 * MiB
export const HEAD_BYTES = 512
/** Compressed layer bytes are handed to the decompressor in chunks of at least this size. */
export const COMPRESSED_CHUNK = 1 * MiB

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

/**
 * What a tar header says of an entry besides its name and time (the image archive's layers and the
 * backup read-back both take it): its type, content bytes (files only), mode and owner.
 */
export function headerStat(
  h: TarHeader,
): Pick<LayerEntry, 'type' | 'size' | 'mode' | 'uid' | 'gid'> {
  const type = ENTRY_TYPES[h.type]
  // Docker 20.10 writes the file type bits too (0100644): keep permissions, setuid/gid, sticky
  return { type, size: type === 'file' ? h.size : 0, mode: h.mode & 0o7777, uid: h.uid, gid: h.gid }
}

export function toLayerEntry(h: TarHeader): LayerEntry {
  const p = normalizeEntryPath(h.name)
  const e: LayerEntry = { path: p, ...headerStat(h), mtime: h.mtime }
  if (h.linkname) e.linkname = e.type === 'hardlink' ? normalizeEntryPath(h.linkname) : h.linkname
  const wh = whiteoutOf(p)
  if (wh) e.whiteout = wh
  return e
}

export const message = (err: unknown): string => (err instanceof Error ? err.message : String(err))

/** Marks an error thrown by the visitor, so that it is rethrown as it is. */
export class VisitorFailure {
  constructor(readonly error: unknown) {}
}

/** What one read of an archive has seen so far (archive-layers.ts fills it, archive.ts reads it). */
export interface ReadState {
  visitor: LayerVisitor
  maxContentBytes: number
  jsons: Map<string, unknown>
  layersSeen: Map<string, ArchiveLayer>
  emptyBlobs: Set<string>
  /** path → its first bytes, hex */
  notLayers: Map<string, string>
  /** archive symlinks / hard links → target path */
  links: Map<string, string>
  ociLayout: boolean
  /** the archive entry being read */
  current: string | undefined
  /** the last one read in full */
  previous: string | undefined
  /** decompressors still running: stopped when the read fails */
  running: Set<() => void>
  /** content() promises still reading: rejected when the read fails */
  reads: Set<(err: unknown) => void>
  /** the read failed: nothing more reaches the visitor */
  stopped: boolean
}
