/**
 * The deep image scan (I/O): streams the image from the engine's export endpoint
 * (GET /images/{id}/get, what `docker save` reads) through lib/docker/archive.ts and measures
 * its final filesystem. Nothing is written to disk and no layer or big file is held: per layer
 * blob only the entries' metadata (path, type, size, symlink target) is kept, plus the text of
 * the few small files the analysis reads (CONTENT_RULES), and for application Python only the
 * lines that call CUDA. The layers are applied once the archive is complete, because the
 * archive's order of blobs is not the layer order (manifest.json comes last).
 *
 *   scanImage(engine, imageRef, { top?, depth?, codeDirs?, progress? }) → Promise<ScanResult>
 *
 * An image the engine does not have → UsageError (exit 2).
 */
import { redactSecrets } from '../docker/normalize.js'
import { pipeline, Transform } from 'node:stream'
import {
  readImageArchive,
  type LayerEntry,
  type LayerEntryType,
  type LayerVisitor,
} from '../docker/archive.js'
import type { Engine } from '../docker/engine.js'
import { normalizeImage } from '../docker/normalize.js'
import { UsageError } from '../errors.js'
import {
  dpkgPackages,
  findCudaCalls,
  findOsRelease,
  findTorch,
  isAppPython,
  nodePackages,
  pythonDistributions,
  selectCudaCalls,
  topDirectories,
  type ReadText,
} from './analyze.js'
import { bucketize } from './buckets.js'
import { FsTree, type FsEntry, type FsNode } from './fstree.js'
import type { ScanResult, ScannedLayer } from './types.js'

export interface ScanOptions {
  /** how many directories / node packages to list (default 20) */
  top?: number
  /** directory depth for the directory list (default 3) */
  depth?: number
  /** directories holding application code besides the image's WorkingDir (for CUDA calls) */
  codeDirs?: string[]
  /** bytes of the export read so far, called as the archive streams in */
  progress?: (bytes: number) => void
}

const KiB = 1024
const MiB = 1024 * KiB
/** Largest application .py file grepped for CUDA calls. */
const APP_PY_MAX = 1 * MiB
const PROGRESS_STEP = 4 * MiB

type Want = 'text' | 'python' | null

/** Which entries' content the scan keeps (text), or greps (application Python). */
export function contentWanted(p: string, size: number): Want {
  if (p.endsWith('.py')) {
    if (p.endsWith('/torch/version.py')) return size <= 64 * KiB ? 'text' : null
    return size <= APP_PY_MAX && isAppPython(p) ? 'python' : null
  }
  if (p === 'var/lib/dpkg/status' || p === 'etc/os-release' || p === 'usr/lib/os-release')
    return 'text'
  if (p.startsWith('var/lib/dpkg/info/') && p.endsWith('.list')) return 'text'
  if (p.endsWith('/RECORD') || p.endsWith('/METADATA')) {
    const segs = p.split('/')
    const n = segs.length
    if (
      n >= 3 &&
      segs[n - 2]!.endsWith('.dist-info') &&
      (segs[n - 3] === 'site-packages' || segs[n - 3] === 'dist-packages')
    )
      return 'text'
  }
  return null
}

const TYPE_CODES: LayerEntryType[] = ['file', 'dir', 'symlink', 'hardlink', 'other']
const WH_FILE = 5
const WH_OPAQUE = 6

/** One layer blob's entries, metadata only, in columns (an object per entry costs ~3× more). */
class BlobEntries {
  readonly paths: string[] = []
  readonly sizes: number[] = []
  readonly kinds: number[] = []
  readonly links = new Map<number, string>()
  /** kept file texts, by path */
  readonly texts = new Map<string, string>()
  /** CUDA calls of application Python files, by path */
  readonly cuda = new Map<string, { line: number; text: string }[]>()

  add(e: LayerEntry): void {
    const i = this.paths.length
    if (e.whiteout) {
      const wh = e.whiteout
      this.paths.push(wh.kind === 'opaque' ? wh.dir : wh.target)
      this.kinds.push(wh.kind === 'opaque' ? WH_OPAQUE : WH_FILE)
      this.sizes.push(0)
      return
    }
    this.paths.push(e.path)
    this.sizes.push(e.size)
    this.kinds.push(TYPE_CODES.indexOf(e.type))
    if (e.type === 'symlink' && e.linkname !== undefined) this.links.set(i, e.linkname)
  }

  *entries(): Generator<FsEntry> {
    for (let i = 0; i < this.paths.length; i++) {
      const k = this.kinds[i]!
      const p = this.paths[i]!
      if (k === WH_FILE)
        yield { path: '', type: 'file', size: 0, whiteout: { kind: 'file', target: p } }
      else if (k === WH_OPAQUE)
        yield { path: '', type: 'file', size: 0, whiteout: { kind: 'opaque', dir: p } }
      else {
        const e: FsEntry = { path: p, type: TYPE_CODES[k]!, size: this.sizes[i]! }
        const link = this.links.get(i)
        if (link !== undefined) e.linkname = link
        yield e
      }
    }
  }
}

interface HistoryItem {
  created_by?: unknown
  comment?: unknown
  empty_layer?: unknown
}

/** The history entries that made layers (those without empty_layer), in order. */
function layerHistory(config: Record<string, unknown>): { createdBy: string; comment: string }[] {
  const history = Array.isArray(config.history) ? (config.history as HistoryItem[]) : []
  return history
    .filter((h) => h && h.empty_layer !== true)
    .map((h) => ({
      createdBy: typeof h.created_by === 'string' ? redactSecrets(h.created_by) : '',
      comment: typeof h.comment === 'string' ? h.comment : '',
    }))
}

/** The Size `GET /images/json` lists for the image (containerd store: content + snapshots). */
async function listedSize(engine: Engine, id: string): Promise<number | null> {
  const raw = (await engine.api.listImages({ all: true }).catch((err: Error) => {
    throw new Error(`image list (/images/json): ${err.message}`, { cause: err })
  })) as unknown as Record<string, unknown>[]
  const found = raw.map(normalizeImage).find((i) => i.id === id)
  return found ? found.sizeBytes : null
}

/** Counts the bytes going through; reports every PROGRESS_STEP bytes and at the end. */
function counting(progress: (bytes: number) => void): Transform {
  let bytes = 0
  let reported = 0
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length
      if (bytes - reported >= PROGRESS_STEP) {
        reported = bytes
        progress(bytes)
      }
      cb(null, chunk)
    },
    flush(cb) {
      if (reported !== bytes) progress(bytes)
      cb()
    },
  })
}

/** Scan an image (see the file header). */
export async function scanImage(
  engine: Engine,
  imageRef: string,
  opts: ScanOptions = {},
): Promise<ScanResult> {
  const top = opts.top ?? 20
  const depth = opts.depth ?? 3
  const details = await engine.inspectImage(imageRef)
  if (!details) {
    throw new UsageError(
      `image ${imageRef} not found on the engine ${engine.info.address}`,
      '`docker images` lists the images this engine has',
    )
  }
  // the list (slow-ish on the containerd store) runs while the export streams
  const listing = listedSize(engine, details.id)
  listing.catch(() => {}) // awaited after the export
  const exported = await engine.exportImage(details.id)

  const blobs = new Map<string, BlobEntries>()
  let last: { blob: string; entries: BlobEntries } | undefined
  const visitor: LayerVisitor = {
    entry(blob, e, content) {
      if (last?.blob !== blob) {
        let entries = blobs.get(blob)
        if (!entries) blobs.set(blob, (entries = new BlobEntries()))
        last = { blob, entries }
      }
      const entries = last.entries
      entries.add(e)
      if (e.type !== 'file' || e.whiteout) return
      const want = contentWanted(e.path, e.size)
      if (!want) return
      return content().then((buf) => {
        if (want === 'text') entries.texts.set(e.path, buf.toString('utf8'))
        // a byte search first: decoding every application .py costs more than the tar parse
        else if (buf.includes('cuda')) {
          const calls = findCudaCalls(buf.toString('utf8'))
          if (calls.length) entries.cuda.set(e.path, calls)
        }
      })
    },
  }
  const source = opts.progress
    ? pipeline(exported, counting(opts.progress), () => {}) // errors reach readImageArchive
    : exported
  const archive = await readImageArchive(source, visitor)
  const engineSize = await listing

  // --- the final filesystem ---
  const layerBlobs = archive.layers.map((l) => l.blob)
  const tree = new FsTree()
  const lastUse = new Map(layerBlobs.map((b, i) => [b, i]))
  // pythonDistributions() and friends read the kept texts later: keep those, drop the columns
  const texts = new Map<string, Map<string, string>>()
  const cuda = new Map<string, Map<string, { line: number; text: string }[]>>()
  for (const [i, blob] of layerBlobs.entries()) {
    const entries = blobs.get(blob) ?? new BlobEntries()
    tree.applyLayer({ [Symbol.iterator]: () => entries.entries() })
    texts.set(blob, entries.texts)
    cuda.set(blob, entries.cuda)
    if (lastUse.get(blob) === i) blobs.delete(blob)
  }
  blobs.clear()
  tree.summarize()
  const read: ReadText = (node: FsNode, p: string) =>
    texts.get(layerBlobs[node.layer] ?? '')?.get(p)

  const history = layerHistory(archive.config)
  const layers: ScannedLayer[] = archive.layers.map((l, i) => {
    const s = tree.layers[i]!
    const h = history.length === archive.layers.length ? history[i] : undefined
    return {
      index: i,
      blob: l.blob,
      compression: l.compression,
      blobBytes: l.sizeBytes,
      createdBy: h?.createdBy ?? '',
      comment: h?.comment ?? '',
      addedBytes: s.addedBytes,
      files: s.files,
      wastedBytes: s.wastedBytes,
    }
  })

  const python = pythonDistributions(tree, read)
  const candidates: string[] = []
  for (const m of cuda.values()) candidates.push(...m.keys())
  const cudaCalls = selectCudaCalls(
    tree,
    (node, p) => cuda.get(layerBlobs[node.layer] ?? '')?.get(p),
    candidates,
    details.workingDir,
    opts.codeDirs,
  )
  const dpkg = dpkgPackages(tree, read)

  return {
    image: {
      id: details.id,
      tags: details.tags,
      engineSizeBytes: engineSize ?? details.sizeBytes,
      layout: archive.layout,
      user: details.user,
      workingDir: details.workingDir,
      env: details.env,
      entrypoint: details.entrypoint,
      cmd: details.cmd,
      labels: details.labels,
      healthcheck: details.healthcheck,
      osRelease: findOsRelease(tree, read),
    },
    layers,
    totalBytes: layers.reduce((a, l) => a + l.addedBytes, 0),
    finalBytes: tree.root.bytes,
    wastedBytes: layers.reduce((a, l) => a + l.wastedBytes, 0),
    files: tree.root.files,
    directories: topDirectories(tree.root, depth, top),
    python,
    node: { packages: nodePackages(tree.root, top) },
    dpkg: dpkg ? { packages: dpkg } : null,
    buckets: bucketize(tree.root),
    torch: findTorch(tree, python.sitePackages, read),
    cudaCalls,
  }
}
