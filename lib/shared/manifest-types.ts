/**
 * Shared shapes of the manifest (migrate-assets, the rclone adapter): the manifest of an asset
 * directory, the hashes it carries, and the progress callback. The manifest is the one truth every later
 * step checks against: the backup archive, the copy on the mount, the files on the remote.
 */

export type EntryKind = 'file' | 'dir' | 'symlink'

/** Hash algorithms the manifest can carry (node:crypto names = rclone's hash names). */
export type HashName = 'sha256' | 'md5' | 'sha1'

export interface ManifestEntry {
  /**
   * relative to the asset root, '/'-separated, no leading './'; the root itself is not listed.
   * Names are bytes: one that is not UTF-8 is kept in the surrogate-escape form
   * (lib/host/names.ts), exact through JSON, shown escaped.
   */
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
  /**
   * the inode at the walk (decimal: inode numbers may pass 2^53): every later open of the entry
   * checks it, so a file or directory put in its place is not read, copied or removed as it
   */
  ino?: string
  /**
   * files and symlinks: the ctime at the walk in nanoseconds (decimal). Any change to the inode
   * since (a write, even one that puts the mtime back, a chmod, a new link) moves it, and no
   * user can set it back: the backup, the recheck and finalize/prune hold the entry against it.
   */
  ctimeNs?: string
}

export interface Manifest {
  schema: 'shipshape.manifest/1'
  /** the asset directory it describes */
  source: string
  createdAt: string
  /** files (not dirs or symlinks) and their bytes */
  files: number
  bytes: number
  /** sorted by path (byte order of the names), parents before children */
  entries: ManifestEntry[]
}

/** Called as bytes are read or written; `bytes` is the running total of the operation. */
export type Progress = (bytes: number, file?: string) => void
