/**
 * The backup archive's shapes, errors and sizes (lib/assets/backup.ts describes the API).
 */
import { showName } from '../host/names.js'
import type { HashName, Manifest, ManifestEntry, Progress } from '../shared/manifest-types.js'
import type { Ident } from '../host/safefs.js'
import type { Mismatch } from './manifest.js'

export type Compression = 'none' | 'zstd' | 'gzip'

export interface Compressibility {
  sampledBytes: number
  compressedBytes: number
  /** compressedBytes / sampledBytes; 1 when nothing was sampled */
  ratio: number
}

export interface SampleOptions {
  /** the root as walked (device, inode) */
  rootIdent?: Ident
  /** windows read at most (default 32) */
  maxSamples?: number
  /** bytes per window (default 128 KiB) */
  windowBytes?: number
}

export interface WriteBackupOptions {
  root: string
  /** the root as walked (device, inode): a source replaced since is refused, not read */
  rootIdent?: Ident
  /** what to archive, in archive order (a manifest's entries) */
  entries: ManifestEntry[]
  archive: string
  compression: Compression
  /** hashes to compute of every file; sha256 is always computed */
  hashes: HashName[]
  onProgress?: Progress
  signal?: AbortSignal
}

export interface WriteBackupResult {
  /** the entries given, files with `hashes` */
  entries: ManifestEntry[]
  /** size of the archive file */
  archiveBytes: number
}

export interface VerifyBackupOptions {
  archive: string
  compression: Compression
  manifest: Manifest
  /** running total of file content bytes read back */
  onProgress?: Progress
}

/** The archive was read back in full and differs from the manifest. */
export class BackupMismatchError extends Error {
  constructor(
    readonly archive: string,
    readonly mismatches: Mismatch[],
  ) {
    const shown = mismatches.slice(0, SHOWN_MISMATCHES).map((m) => `  ${describeMismatch(m)}`)
    const more = mismatches.length - shown.length
    super(
      `backup ${archive} does not match the manifest: ${mismatches.length} difference${mismatches.length === 1 ? '' : 's'}\n` +
        shown.join('\n') +
        (more > 0 ? `\n  … and ${more} more` : ''),
    )
    this.name = 'BackupMismatchError'
  }
}

/** The archive cannot be read back: truncated, corrupt, or not in the compression named. */
export class BackupCorruptError extends Error {
  constructor(
    readonly archive: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'BackupCorruptError'
  }
}

export const KiB = 1024
export const MiB = 1024 * KiB
/** File reads and archive reads: big enough that the per-call overhead disappears. */
export const CHUNK = 1 * MiB
/**
 * Bytes the compressor or the disk may be behind the reader: with less, reading and hashing a
 * chunk and writing the one before it take turns instead of running at the same time.
 */
export const AHEAD = 4 * MiB
const SHOWN_MISMATCHES = 10
export const SMALL_SAMPLES = 4
export const SAMPLE_CONCURRENCY = 4
export const ZSTD_ARGS = ['-q', '-T0', '-3', '-c']

export const message = (err: unknown): string => (err instanceof Error ? err.message : String(err))

/** A path on one line, its bytes that are not printable as \xNN (lib/host/names.ts). */
export const showPath = showName

function describeMismatch(m: Mismatch): string {
  const p = showPath(m.path)
  if (m.what === 'missing') return `${p}: missing from the archive`
  if (m.what === 'extra')
    return `${p}: in the archive, not in the manifest${m.actual ? ` (${m.actual})` : ''}`
  const show = (v: string | number | undefined) => (v === undefined ? '(none)' : String(v))
  return `${p}: ${m.what} differs: expected ${show(m.expected)}, archive has ${show(m.actual)}`
}
