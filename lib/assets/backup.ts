/**
 * The backup archive of an asset directory, made before anything moves, and its read-back.
 *
 * API
 *
 *   sampleCompressibility(root, entries, opts?) → Promise<{ sampledBytes, compressedBytes, ratio }>
 *     Reads up to `maxSamples` (32) windows of up to 128 KiB and deflates each at level 1.
 *     Most windows are placed at evenly spaced points of the concatenated bytes of all files
 *     (systematic sampling by bytes): the biggest files, which dominate the bytes, get the most
 *     windows, spread through them; the rest are a few small files, whole. ratio = compressed /
 *     sampled (1 when there is nothing to sample). Deterministic; unreadable files are skipped.
 *
 *   chooseCompression(ratio, zstdAvailable) → 'none' | 'zstd' | 'gzip'                    (pure)
 *     ratio > 0.9 → 'none' (MP3, JPEG, video: compressing only burns CPU); else zstd when the
 *     command exists, else gzip.
 *   zstdAvailable() → Promise<boolean>    `zstd --version` runs
 *
 *   writeBackup({ root, entries, archive, compression, hashes, onProgress?, signal? })
 *     → Promise<{ entries, archiveBytes }>
 *     Streams a tar of every entry (in the order given: a manifest's) through the compressor
 *     (`zstd -q -T0 -3 -c` writing straight into the file, or zlib gzip level 1) into
 *     `<archive>.part` (mode 0600; an old one is replaced), fsyncs it, renames it to `archive`,
 *     fsyncs the directory. Each file is read once, in 1 MiB chunks (the next read in flight
 *     while the current chunk is hashed and packed): the bytes go to the tar and through every
 *     requested hash (sha256 always). Returns the entries with `hashes`. A file whose size or
 *     mtime differs from its entry, that is no longer a regular file, that vanished or that
 *     grows while it is read fails the backup with an Error naming it ("changed while backing
 *     up"). On any failure (and on abort) the .part file is removed.
 *
 *   verifyBackup({ archive, compression, manifest, onProgress? }) → Promise<void>
 *     Reads the archive back (decompress, untar, sha256 of every file's content) and compares it
 *     with the manifest: every entry, kind, size, sha256, symlink target, mode, mtime and owner.
 *     Throws BackupMismatchError (mismatches, the first 10 in the message) when anything differs,
 *     BackupCorruptError when the archive cannot be read (truncated, corrupt, bad compression).
 *
 * The tar: ustar headers, pax records (as tar-stream writes them) for names and link targets
 * that are long or not ASCII, plus a pax 'mtime' record with milliseconds whenever the mtime
 * has a fraction of a second, and pax 'uid'/'gid' records for ids beyond ustar's 7 octal
 * digits. So the archive keeps mtimes to the millisecond, like the manifest, and GNU tar or
 * bsdtar restore them so; the read-back compares mtimes exactly (a plain ustar header keeps
 * whole seconds only, and is enough when the mtime has no fraction). Entry paths are relative,
 * with no './' and no trailing '/'. Hard links are stored as separate files.
 */
export * from './backup-types.js'
export {
  chooseCompression,
  inodesOf,
  sampleCompressibility,
  sampleWindows,
  zstdAvailable,
} from './backup-sample.js'
export type { SampleWindow } from './backup-sample.js'
export { writeBackup } from './backup-write.js'
export { parsePaxTime, verifyBackup } from './backup-verify.js'
export { paxTime } from './tarheader.js'
