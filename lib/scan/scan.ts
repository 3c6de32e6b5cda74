/**
 * The deep image scan (I/O): streams the image from the engine's export endpoint
 * (GET /images/{id}/get, what `docker save` reads) through collect.ts (in a worker thread) and
 * measures its final filesystem. Nothing is written to disk and no layer or big file is held:
 * per layer blob only the entries' metadata is kept, plus the few small texts the analysis
 * reads (see collect.ts). The layers are applied once the archive is complete, because the
 * archive's order of blobs is not the layer order (manifest.json comes last).
 *
 *   scanImage(engine, imageRef, { top?, depth?, codeDirs?, progress? }) → Promise<ScanResult>
 *
 * An image the engine does not have → UsageError (exit 2).
 */
import { redactSecrets } from '../docker/normalize.js'
import type { Engine } from '../docker/engine.js'
import { UsageError } from '../errors.js'
import {
  dpkgPackages,
  findOsRelease,
  findTorch,
  nodePackages,
  pythonDistributions,
  selectCudaCalls,
  topDirectories,
  type ReadText,
} from './analyze.js'
import { bucketize } from './buckets.js'
import {
  collectArchive,
  collectInWorker,
  columnEntries,
  workerFile,
  emptyColumns,
  type CudaLines,
} from './collect.js'
import { FsTree, type FsNode } from './fstree.js'
import type { ScanResult, ScannedLayer } from './types.js'

export { contentWanted } from './collect.js'

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
  const found = (await engine.listImages({ all: true })).find((i) => i.id === id)
  return found ? found.sizeBytes : null
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
  // in a worker thread that opens the export itself, when the engine can describe it
  const request = workerFile() ? engine.exportRequest?.(details.id) : undefined
  const { archive, blobs } = request
    ? await collectInWorker(request, opts.progress)
    : await collectArchive(await engine.exportImage(details.id), opts.progress)
  const engineSize = await listing

  // --- the final filesystem ---
  const layerBlobs = archive.layers.map((l) => l.blob)
  const tree = new FsTree()
  const lastUse = new Map(layerBlobs.map((b, i) => [b, i]))
  // pythonDistributions() and friends read the kept texts later: keep those, drop the columns
  const texts = new Map<string, Map<string, string>>()
  const cuda = new Map<string, Map<string, CudaLines>>()
  for (const [i, blob] of layerBlobs.entries()) {
    const columns = blobs.get(blob) ?? emptyColumns()
    tree.applyLayer({ [Symbol.iterator]: () => columnEntries(columns) })
    texts.set(blob, columns.texts)
    cuda.set(blob, columns.cuda)
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
