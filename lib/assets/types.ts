/**
 * Shared shapes of `shipshape migrate-assets` (lib/assets/): the manifest of an asset directory,
 * the hashes it carries, and the progress callback. The manifest is the one truth every later
 * step checks against: the backup archive, the copy on the mount, the files on the remote.
 */

export type EntryKind = 'file' | 'dir' | 'symlink'

/** Hash algorithms the manifest can carry (node:crypto names = rclone's hash names). */
export type HashName = 'sha256' | 'md5' | 'sha1'

export interface ManifestEntry {
  /** relative to the asset root, '/'-separated, no leading './'; the root itself is not listed */
  path: string
  kind: EntryKind
  /** bytes of content (files); 0 for dirs and symlinks */
  size: number
  /** permission bits & 0o7777 */
  mode: number
  /** integer milliseconds (what rclone and most remotes keep) */
  mtimeMs: number
  uid: number
  gid: number
  /** symlinks: the target as stored (never resolved) */
  linkname?: string
  /** files, once read: hex digests; always sha256, plus any other the remote can check */
  hashes?: Partial<Record<HashName, string>>
}

export interface Manifest {
  schema: 'shipshape.manifest/1'
  /** the asset directory it describes */
  source: string
  createdAt: string
  /** files (not dirs or symlinks) and their bytes */
  files: number
  bytes: number
  /** sorted by path (byte order of the UTF-8 names), parents before children */
  entries: ManifestEntry[]
}

/** Called as bytes are read or written; `bytes` is the running total of the operation. */
export type Progress = (bytes: number, file?: string) => void
