/**
 * The streaming half of the deep scan: reads an image archive (lib/docker/archive.ts) and keeps,
 * per layer blob, only the entries' metadata in columns (path, size, type, symlink target), the
 * text of the few small files the analysis reads, and for application Python only the lines
 * that call CUDA. scan.ts applies the layers afterwards (the archive's blob order is not the
 * layer order: manifest.json comes last).
 *
 *   collectArchive(stream, progress?) → Promise<Collected>     in this thread
 *   collectInWorker(request, progress?) → Promise<Collected>   in a worker thread that opens the
 *                                                              export itself (docker/export.ts)
 *
 * Why a worker: on a 2-core host the engine itself spends ~1.4 cores producing the export
 * (containerd store, gzip layers), so every CPU-second the scan spends is taken from the export
 * it waits for. In the main thread, which holds dockerode and the rest of the CLI, the ~1.7 GB of
 * short-lived buffers (socket reads, gunzip output) trigger a full mark-compact every ~64 MB of
 * external memory; a worker's small heap frees them in cheap scavenges: ~1 s less CPU for a 1 GB
 * image (bench/scan.bench.ts measures the scan against `docker save`).
 */
import { existsSync } from 'node:fs'
import { Transform, pipeline } from 'node:stream'
import { Worker } from 'node:worker_threads'
import {
  ImageArchiveError,
  readImageArchive,
  type ImageArchive,
  type LayerEntry,
  type LayerEntryType,
  type LayerVisitor,
} from '../docker/archive.js'
import type { ExportRequest } from '../docker/export.js'
import { EngineError } from '../errors.js'
import { findCudaCalls, isAppPython } from './analyze.js'
import type { FsEntry } from './fstree.js'

const KiB = 1024
const MiB = 1024 * KiB
/** Largest application .py file grepped for CUDA calls. */
const APP_PY_MAX = 1 * MiB
const PROGRESS_STEP = 4 * MiB
/** Largest text kept (a dpkg status of a big image is a few MB). */
export const TEXT_MAX = 32 * MiB

type Want = 'text' | 'python' | null

/** Which entries' content the scan keeps (text), or greps (application Python). */
export function contentWanted(p: string, size: number): Want {
  if (size > TEXT_MAX) return null
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

export type CudaLines = { line: number; text: string }[]

/**
 * One layer blob's entries, metadata only, in columns (an object per entry costs ~3× more).
 * Plain data: it crosses from the worker by structured clone.
 */
export interface BlobColumns {
  paths: string[]
  sizes: number[]
  kinds: number[]
  /** symlink targets, by entry index */
  links: Map<number, string>
  /** kept file texts, by path */
  texts: Map<string, string>
  /** CUDA calls of application Python files, by path */
  cuda: Map<string, CudaLines>
}

export interface Collected {
  archive: ImageArchive
  blobs: Map<string, BlobColumns>
}

const TYPE_CODES: LayerEntryType[] = ['file', 'dir', 'symlink', 'hardlink', 'other']
const WH_FILE = 5
const WH_OPAQUE = 6

export function emptyColumns(): BlobColumns {
  return { paths: [], sizes: [], kinds: [], links: new Map(), texts: new Map(), cuda: new Map() }
}

function addEntry(c: BlobColumns, e: LayerEntry): void {
  const i = c.paths.length
  if (e.whiteout) {
    const wh = e.whiteout
    c.paths.push(wh.kind === 'opaque' ? wh.dir : wh.target)
    c.kinds.push(wh.kind === 'opaque' ? WH_OPAQUE : WH_FILE)
    c.sizes.push(0)
    return
  }
  c.paths.push(e.path)
  c.sizes.push(e.size)
  c.kinds.push(TYPE_CODES.indexOf(e.type))
  if (e.type === 'symlink' && e.linkname !== undefined) c.links.set(i, e.linkname)
}

/** The blob's entries again, as FsTree.applyLayer() takes them. */
export function* columnEntries(c: BlobColumns): Generator<FsEntry> {
  for (let i = 0; i < c.paths.length; i++) {
    const k = c.kinds[i]!
    const p = c.paths[i]!
    if (k === WH_FILE)
      yield { path: '', type: 'file', size: 0, whiteout: { kind: 'file', target: p } }
    else if (k === WH_OPAQUE)
      yield { path: '', type: 'file', size: 0, whiteout: { kind: 'opaque', dir: p } }
    else {
      const e: FsEntry = { path: p, type: TYPE_CODES[k]!, size: c.sizes[i]! }
      const link = c.links.get(i)
      if (link !== undefined) e.linkname = link
      yield e
    }
  }
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

/** Read the archive in this thread (see the file header). */
export async function collectArchive(
  stream: NodeJS.ReadableStream,
  progress?: (bytes: number) => void,
): Promise<Collected> {
  const blobs = new Map<string, BlobColumns>()
  let last: { blob: string; columns: BlobColumns } | undefined
  const visitor: LayerVisitor = {
    entry(blob, e, content) {
      if (last?.blob !== blob) {
        let columns = blobs.get(blob)
        if (!columns) blobs.set(blob, (columns = emptyColumns()))
        last = { blob, columns }
      }
      const columns = last.columns
      addEntry(columns, e)
      if (e.type !== 'file' || e.whiteout) return
      const want = contentWanted(e.path, e.size)
      if (!want) return
      return content().then((buf) => {
        if (want === 'text') columns.texts.set(e.path, buf.toString('utf8'))
        // a byte search first: decoding every application .py costs more than the tar parse
        else if (buf.includes('cuda')) {
          const calls = findCudaCalls(buf.toString('utf8'))
          if (calls.length) columns.cuda.set(e.path, calls)
        }
      })
    },
  }
  const source = progress
    ? pipeline(stream, counting(progress), () => {}) // errors reach readImageArchive
    : stream
  const archive = await readImageArchive(source, visitor, { maxContentBytes: TEXT_MAX })
  return { archive, blobs }
}

// --- the worker ------------------------------------------------------------------------------

/** What the worker posts. */
export type WorkerMessage =
  | { type: 'progress'; bytes: number }
  | { type: 'done'; collected: Collected }
  | { type: 'error'; name: string; message: string; statusCode?: number; blob?: string }

/** An error as the worker posts it (a class does not survive structured clone). */
export function errorMessageOf(err: unknown): WorkerMessage {
  const e = err as { name?: unknown; message?: unknown; statusCode?: unknown; blob?: unknown }
  const msg: WorkerMessage = {
    type: 'error',
    name: String(e?.name ?? 'Error'), // EngineError, ImageArchiveError: set by their constructors
    message: typeof e?.message === 'string' ? e.message : String(err),
  }
  if (typeof e?.statusCode === 'number') msg.statusCode = e.statusCode
  if (typeof e?.blob === 'string') msg.blob = e.blob
  return msg
}

function errorFrom(m: Extract<WorkerMessage, { type: 'error' }>): Error {
  if (m.name === 'EngineError') return new EngineError(m.message, m.statusCode)
  if (m.name === 'ImageArchiveError') return new ImageArchiveError(m.message, m.blob)
  const e = new Error(m.message)
  e.name = m.name
  return e
}

/**
 * collect-worker.js beside this module; from the TypeScript sources (vitest), the built one
 * (`npm test` builds first; test/unit/scan/scan.test.ts fails on a stale build); null when
 * there is none: the scan then reads the export in this thread.
 */
export function workerFile(): URL | null {
  for (const rel of ['./collect-worker.js', '../../dist/lib/scan/collect-worker.js']) {
    const url = new URL(rel, import.meta.url)
    if (existsSync(url)) return url
  }
  return null
}

/** Open the export and read it in a worker thread (see the file header). */
export function collectInWorker(
  request: ExportRequest,
  progress?: (bytes: number) => void,
): Promise<Collected> {
  return new Promise<Collected>((resolve, reject) => {
    let settled = false
    const file = workerFile()
    if (!file) return reject(new Error('collectInWorker: no built collect-worker.js'))
    const worker = new Worker(file, {
      workerData: { request, progress: Boolean(progress) },
    })
    const settle = (fn: () => void) => {
      if (settled) return
      settled = true
      fn()
      // done, or failed: nothing it holds is needed any more (its copy of the columns included)
      void worker.terminate()
    }
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'progress') progress?.(m.bytes)
      else if (m.type === 'done') settle(() => resolve(m.collected))
      else settle(() => reject(errorFrom(m)))
    })
    worker.once('error', (err) => settle(() => reject(err)))
    worker.once('exit', (code) =>
      settle(() => reject(new Error(`the scan worker exited (${code}) before it finished`))),
    )
  })
}
