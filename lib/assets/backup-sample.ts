/**
 * How well an asset directory compresses, from a sample, and what to compress its backup with
 * (lib/assets/backup.ts describes the API).
 */
import { constants as fsc } from 'node:fs'
import { promisify } from 'node:util'
import zlib from 'node:zlib'
import { runCaptured } from '../host/run.js'
import { splitRel } from '../host/safefs.js'
import { Tree } from '../host/safefs-tree.js'
import type { ManifestEntry } from '../shared/manifest-types.js'
import {
  KiB,
  SAMPLE_CONCURRENCY,
  SMALL_SAMPLES,
  type Compressibility,
  type Compression,
  type SampleOptions,
} from './backup-types.js'

export interface SampleWindow {
  entry: ManifestEntry
  offset: number
  length: number
}

/** Which windows to read (see the file header); pure and deterministic. */
export function sampleWindows(
  entries: readonly ManifestEntry[],
  maxSamples = 32,
  windowBytes = 128 * KiB,
): SampleWindow[] {
  const files = entries.filter((e) => e.kind === 'file' && e.size > 0)
  if (!files.length || maxSamples < 1) return []
  const windows = new Map<string, SampleWindow>()
  const add = (entry: ManifestEntry, around: number) => {
    const length = Math.min(entry.size, windowBytes)
    // 4 KiB-aligned: a read of whole pages
    const offset =
      Math.floor(Math.min(Math.max(0, around - length / 2), entry.size - length) / 4096) * 4096
    windows.set(`${entry.path}\0${offset}`, { entry, offset, length })
  }
  const ends: number[] = []
  let total = 0
  for (const f of files) ends.push((total += f.size))
  const byBytes = Math.max(1, maxSamples - SMALL_SAMPLES)
  for (let i = 0; i < byBytes; i++) {
    const point = ((i + 0.5) * total) / byBytes
    let lo = 0
    let hi = files.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (ends[mid]! > point) hi = mid
      else lo = mid + 1
    }
    const f = files[lo]!
    add(f, point - (ends[lo]! - f.size))
  }
  // small files are few of the bytes but may be most of the files: a few of them, whole
  const small = [...files].sort((a, b) => a.size - b.size).slice(0, Math.ceil(files.length / 2))
  const want = Math.min(SMALL_SAMPLES, maxSamples - byBytes, small.length)
  for (let j = 0; j < want; j++) add(small[Math.floor(((j + 0.5) * small.length) / want)]!, 0)
  return [...windows.values()]
}

const deflateRaw = promisify(zlib.deflateRaw)

/** How well the content compresses, from a sample (see the file header). */
export async function sampleCompressibility(
  root: string,
  entries: readonly ManifestEntry[],
  opts: SampleOptions = {},
): Promise<Compressibility> {
  const windows = sampleWindows(entries, opts.maxSamples, opts.windowBytes)
  let sampledBytes = 0
  let compressedBytes = 0
  let next = 0
  // read like the backup: from verified parents, the walked inodes only (safefs.ts)
  const tree = await Tree.open(root, { expect: opts.rootIdent, inodeOf: inodesOf(entries) })
  const worker = async () => {
    while (next < windows.length) {
      const w = windows[next++]!
      let buf: Buffer
      try {
        const { dir, name } = splitRel(w.entry.path)
        const expect = w.entry.ino !== undefined ? BigInt(w.entry.ino) : undefined
        const { fh } = await tree.withDir(dir, (d) => d.openFile(name, fsc.O_RDONLY, { expect }))
        try {
          const { bytesRead, buffer } = await fh.read(
            Buffer.allocUnsafe(w.length),
            0,
            w.length,
            w.offset,
          )
          buf = buffer.subarray(0, bytesRead)
        } finally {
          await fh.close()
        }
      } catch {
        continue // an estimate: the preflight reports unreadable files
      }
      if (!buf.length) continue
      const z = await deflateRaw(buf, { level: 1 })
      sampledBytes += buf.length
      compressedBytes += z.length
    }
  }
  try {
    await Promise.all(Array.from({ length: SAMPLE_CONCURRENCY }, worker))
  } finally {
    await tree.close()
  }
  return { sampledBytes, compressedBytes, ratio: sampledBytes ? compressedBytes / sampledBytes : 1 }
}

/** What to compress the backup with (see the file header). */
export function chooseCompression(ratio: number, zstdAvailable: boolean): Compression {
  if (ratio > 0.9) return 'none'
  return zstdAvailable ? 'zstd' : 'gzip'
}

/** Whether the `zstd` command runs. */
export function zstdAvailable(): Promise<boolean> {
  return runCaptured(['zstd', '--version'], { timeoutMs: 10_000 }).then(
    (r) => r.exitCode === 0,
    () => false,
  )
}

/** The directories' inodes of a manifest, for Tree's checks on the way down. */
export function inodesOf(entries: readonly ManifestEntry[]): (rel: string) => bigint | undefined {
  const byPath = new Map<string, bigint>()
  for (const e of entries)
    if (e.kind === 'dir' && e.ino !== undefined) byPath.set(e.path, BigInt(e.ino))
  return (rel) => byPath.get(rel)
}
