/**
 * The one file-system layer for trees that others can write: an asset directory bind-mounted
 * into a container, a kept original, a destination on an rclone mount. shipshape runs as root
 * over them, so a link a container planted (`ln -s / x`) must never make root read, write or
 * delete outside the tree (docker cp CVE-2018-15664, rsync CVE-2024-12087/12747).
 *
 * How: every directory is opened by descriptor, one component at a time, relative to its
 * verified parent — `/proc/self/fd/<parent>/<name>`, which the kernel resolves exactly like
 * openat(parent, name): the magic link names the parent's inode, wherever it is now, and
 * O_NOFOLLOW | O_DIRECTORY refuses a symlink in the last (only) component. After each open the
 * descriptor is fstat'ed: a directory on the root's device (one file system) and, where the walk
 * recorded it, the same inode. Files are opened the same way (O_NOFOLLOW, O_NONBLOCK: a fifo put
 * there does not hang the read) and checked with fstat before a byte is read. Removal and
 * creation (unlinkat, rmdir, mkdirat, symlinkat, renameat) are relative to a verified parent
 * too, never to a path. A link where a directory or a file was is a TreeChangedError: the
 * caller stops (and undoes), naming the path.
 *
 * Names are bytes (lib/host/names.ts): paths here are '/'-separated strings of names in the
 * surrogate-escape form, turned into their bytes only at the system call.
 *
 *   Dir.open(abs, { expect? }) → Dir      the root of a tree: O_NOFOLLOW on its last component
 *                                          (the components above it are the operator's config)
 *   dir.openDir(name, { expect? })        a child directory (same device; inode when expected)
 *   dir.openFile(name, flags, { expect? }) → { fh, stat }   a read, checked before it opens
 *   dir.createFile(name, flags, mode) → fh                  a write (trees shipshape makes)
 *   dir.lstat(name) / readdir() / readlink(name) / unlink(name) / rmdir(name) / mkdir(name, mode)
 *   dir.symlink(target, name) / rename(name, toDir, toName) / utimes / chmod of the dir itself
 *   Tree                                  a root and a cache of its open directories by path;
 *                                         Tree.below(base, rel, { create }) reaches (or makes)
 *                                         the root from `base` by descriptors
 *   removeTree(dir, name, opts)           rm -r by descriptors, one file system, with a check per
 *                                          entry (keep: the entry stays, and so do its parents)
 *   walkDirs(root, visit)                 a depth-first walk by descriptors
 */
import type { BigIntStats } from 'node:fs'
import { closeSync, constants as fsc, fstatSync, openSync } from 'node:fs'
import fs, { type FileHandle } from 'node:fs/promises'
import { bytesToName, nameToBytes, showName } from './names.js'

export type DirentType = 'dir' | 'file' | 'symlink' | 'other'

export interface Ident {
  dev: bigint
  ino: bigint
}

/** What a tree was found to be, against what it was: stop, undo, name the path. */
export class TreeChangedError extends Error {
  constructor(
    /** the absolute path as it was meant (shown escaped) */
    readonly path: string,
    readonly what: string,
    options?: { cause?: unknown },
  ) {
    super(
      `${showName(path)} changed while shipshape worked on it: ${what}; stopped without following it`,
      options,
    )
    this.name = 'TreeChangedError'
  }
}

const PROC_FD = '/proc/self/fd/'
/** no controlling terminal from a tty planted in the tree, whatever is opened */
const DIR_FLAGS = fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW | fsc.O_NOCTTY
/**
 * Linux O_PATH (not in node's constants): a descriptor that names the inode without opening it,
 * so no device driver's open() runs before the type is checked.
 */
const O_PATH = 0o10000000

/** statfs f_type of local disk file systems (see Dir.local): ext2/3/4, xfs, btrfs, tmpfs, overlay, zfs, f2fs */
const LOCAL_FS = new Set([
  0xef53, 0x58465342, 0x9123683e, 0x01021994, 0x794c7630, 0x2fc12fc1, 0xf2f52010,
])

export function errCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/** A single component: no '/', no NUL, not '.' or '..' or empty. */
function component(name: string): Buffer {
  const b = nameToBytes(name)
  if (!b.length || b.includes(0x2f) || b.includes(0) || name === '.' || name === '..') {
    throw new Error(`not a single file name: ${JSON.stringify(showName(name))}`)
  }
  return b
}

/** '/'-separated relative path → its components; refuses '', '.', '..' and absolute paths. */
export function components(rel: string): string[] {
  if (rel === '') return []
  const parts = rel.split('/')
  for (const p of parts) component(p)
  return parts
}

const join = (dir: string, name: string) => (dir.endsWith('/') ? dir + name : `${dir}/${name}`)

/** An open directory of a tree. */
export class Dir {
  private closed = false

  private constructor(
    private readonly fh: FileHandle,
    readonly ident: Ident,
    /** the absolute path it was reached by (for messages) */
    readonly path: string,
    /**
     * on a local disk file system (statfs type, see LOCAL_FS): the O_PATH check of a read runs
     * as three short synchronous calls instead of three trips through the thread pool. Never on
     * FUSE or a network file system, where a lookup may wait on a server.
     */
    readonly local: boolean,
  ) {}

  get fd(): number {
    return this.fh.fd
  }

  /** `/proc/self/fd/N` or `/proc/self/fd/N/<name bytes>`: the kernel's openat(N, name). */
  at(name?: string): Buffer {
    // a closed Dir's number may be another file's by now: never build a path from it
    if (this.closed) throw new Error(`${showName(this.path)}: used after it was closed`)
    const base = Buffer.from(PROC_FD + String(this.fh.fd))
    if (name === undefined) return base
    return Buffer.concat([base, Buffer.of(0x2f), component(name)])
  }

  /** The root of a tree: a directory, not a symlink to one (see the file header). */
  static async open(abs: string, opts: { expect?: Ident } = {}): Promise<Dir> {
    let fh: FileHandle
    try {
      fh = await fs.open(nameToBytes(abs), DIR_FLAGS)
    } catch (err) {
      throw openError(abs, err)
    }
    const local = await fs
      .statfs(nameToBytes(abs) as unknown as string)
      .then((s) => LOCAL_FS.has(s.type))
      .catch(() => false)
    return Dir.checked(fh, abs, undefined, opts.expect, local)
  }

  private static async checked(
    fh: FileHandle,
    abs: string,
    dev: bigint | undefined,
    expect: Ident | undefined,
    local: boolean,
  ): Promise<Dir> {
    try {
      const st = await fh.stat({ bigint: true })
      if (!st.isDirectory()) throw new TreeChangedError(abs, 'not a directory any more')
      if (dev !== undefined && st.dev !== dev) {
        throw new TreeChangedError(abs, 'a mount point of another file system: not crossed')
      }
      if (expect && (st.ino !== expect.ino || (dev === undefined && st.dev !== expect.dev))) {
        throw new TreeChangedError(abs, 'another directory than the one walked (inode differs)')
      }
      return new Dir(fh, { dev: st.dev, ino: st.ino }, abs, local)
    } catch (err) {
      await fh.close().catch(() => {})
      throw err
    }
  }

  /** A child directory: O_NOFOLLOW | O_DIRECTORY, same device, the expected inode. */
  async openDir(name: string, opts: { expect?: Ident | bigint } = {}): Promise<Dir> {
    const abs = join(this.path, name)
    let fh: FileHandle
    try {
      fh = await fs.open(this.at(name), DIR_FLAGS)
    } catch (err) {
      throw await this.explain(name, abs, err)
    }
    const expect =
      typeof opts.expect === 'bigint' ? { dev: this.ident.dev, ino: opts.expect } : opts.expect
    // same device as the parent: the same file system
    return Dir.checked(fh, abs, this.ident.dev, expect, this.local)
  }

  /**
   * A file of this directory opened for reading, never through a symlink. An O_PATH descriptor
   * is taken first and checked with fstat — a regular file on this device, the expected inode
   * when given — and only then that very inode is opened (through its /proc/self/fd link, no
   * lookup): a device or fifo planted where a file was is never opened, so no driver's open()
   * runs (a watchdog, a tape, a tty). O_NONBLOCK, O_NOCTTY.
   */
  async openFile(
    name: string,
    flags: number,
    opts: { expect?: bigint } = {},
  ): Promise<{ fh: FileHandle; stat: BigIntStats }> {
    const abs = join(this.path, name)
    const check = (st: BigIntStats) => {
      if (!st.isFile()) throw new TreeChangedError(abs, 'not a regular file any more')
      if (st.dev !== this.ident.dev) throw new TreeChangedError(abs, 'on another file system')
      if (opts.expect !== undefined && st.ino !== opts.expect) {
        throw new TreeChangedError(abs, 'another file than the one walked (inode differs)')
      }
    }
    if (this.local) return this.openChecked(name, abs, flags, check)
    let handle: FileHandle
    try {
      handle = await fs.open(this.at(name), O_PATH | fsc.O_NOFOLLOW)
    } catch (err) {
      throw await this.explain(name, abs, err)
    }
    try {
      const st = await handle.stat({ bigint: true })
      if (st.isSymbolicLink()) throw new TreeChangedError(abs, 'now a symlink')
      check(st)
      // the inode just checked, opened for reading (the magic link is followed to it, no lookup)
      const fh = await fs.open(
        Buffer.from(PROC_FD + String(handle.fd)),
        flags | fsc.O_NOCTTY | fsc.O_NONBLOCK,
      )
      return { fh, stat: st }
    } finally {
      await handle.close().catch(() => {})
    }
  }

  /** openFile's read on a local disk: the same O_PATH check, its three calls synchronous. */
  private async openChecked(
    name: string,
    abs: string,
    flags: number,
    check: (st: BigIntStats) => void,
  ): Promise<{ fh: FileHandle; stat: BigIntStats }> {
    let handle: number
    try {
      handle = openSync(this.at(name), O_PATH | fsc.O_NOFOLLOW)
    } catch (err) {
      throw await this.explain(name, abs, err)
    }
    let st: BigIntStats
    try {
      st = fstatSync(handle, { bigint: true })
      if (st.isSymbolicLink()) throw new TreeChangedError(abs, 'now a symlink')
      check(st)
    } catch (err) {
      closeSync(handle)
      throw err
    }
    const reopen = fs.open(
      Buffer.from(PROC_FD + String(handle)),
      flags | fsc.O_NOCTTY | fsc.O_NONBLOCK,
    )
    // closed once the reopen has resolved the magic link (its number must not be reused first)
    const fh = await reopen.finally(() => closeSync(handle))
    return { fh, stat: st }
  }

  /** An open() of a child that failed, in words: a symlink there is a TreeChangedError. */
  private async explain(name: string, abs: string, err: unknown): Promise<Error> {
    const code = errCode(err)
    // O_NOFOLLOW | O_DIRECTORY on a symlink answers ENOTDIR, not ELOOP: look
    if (code === 'ENOTDIR' || code === 'ELOOP') {
      const st = await this.lstat(name).catch(() => null)
      if (st?.isSymbolicLink()) {
        return new TreeChangedError(abs, 'now a symlink', { cause: err })
      }
    }
    return openError(abs, err)
  }

  /**
   * A file of this directory opened (created) for writing, never through a symlink
   * (O_NOFOLLOW, O_NOCTTY): for trees shipshape makes, such as the copy on the destination.
   */
  async createFile(name: string, flags: number, mode = 0o600): Promise<FileHandle> {
    try {
      return await fs.open(this.at(name), flags | fsc.O_NOFOLLOW | fsc.O_NOCTTY, mode)
    } catch (err) {
      throw await this.explain(name, join(this.path, name), err)
    }
  }

  /** fstatat(name, AT_SYMLINK_NOFOLLOW); null when it does not exist. */
  async lstat(name: string): Promise<BigIntStats | null> {
    try {
      return await fs.lstat(this.at(name), { bigint: true })
    } catch (err) {
      if (errCode(err) === 'ENOENT') return null
      throw err
    }
  }

  /** The names in this directory (surrogate-escaped strings). */
  async readdir(): Promise<string[]> {
    const names = await fs.readdir(this.at(), { encoding: 'buffer' })
    return names.map(bytesToName)
  }

  /** The names with their type from the directory entry (no stat per name). */
  async readdirTypes(): Promise<{ name: string; type: DirentType }[]> {
    const ents = await fs.readdir(this.at(), { encoding: 'buffer', withFileTypes: true })
    return ents.map((d) => ({
      name: bytesToName(d.name as unknown as Buffer),
      type: d.isDirectory()
        ? 'dir'
        : d.isFile()
          ? 'file'
          : d.isSymbolicLink()
            ? 'symlink'
            : 'other',
    }))
  }

  async readlink(name: string): Promise<string> {
    return bytesToName(await fs.readlink(this.at(name), { encoding: 'buffer' }))
  }

  unlink(name: string): Promise<void> {
    return fs.unlink(this.at(name))
  }

  rmdir(name: string): Promise<void> {
    return fs.rmdir(this.at(name))
  }

  mkdir(name: string, mode = 0o700): Promise<void> {
    return fs.mkdir(this.at(name), { mode }).then(() => undefined)
  }

  symlink(target: string, name: string): Promise<void> {
    return fs.symlink(nameToBytes(target), this.at(name))
  }

  /** renameat(this, name, to, toName) */
  rename(name: string, to: Dir, toName: string): Promise<void> {
    return fs.rename(this.at(name), to.at(toName))
  }

  /** the symlink's own times (lutimes does not follow the last component) */
  lutimes(name: string, atime: number, mtime: number): Promise<void> {
    return fs.lutimes(this.at(name), atime, mtime)
  }

  /** times and mode of this directory itself, through its descriptor */
  utimes(atime: number, mtime: number): Promise<void> {
    return this.fh.utimes(atime, mtime)
  }

  chmod(mode: number): Promise<void> {
    return this.fh.chmod(mode)
  }

  stat(): Promise<BigIntStats> {
    return this.fh.stat({ bigint: true })
  }

  sync(): Promise<void> {
    return this.fh.sync()
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.fh.close()
  }
}

/** An open() failure in words: a symlink or a non-directory where one was expected is a change. */
function openError(abs: string, err: unknown): Error {
  const code = errCode(err)
  if (code === 'ELOOP') return new TreeChangedError(abs, 'now a symlink', { cause: err })
  if (code === 'ENOTDIR') return new TreeChangedError(abs, 'not a directory', { cause: err })
  if (err instanceof Error) {
    // the error names /proc/self/fd/N/…: say which path was meant
    const e = err as NodeJS.ErrnoException
    e.message = `${code ?? 'error'}: ${showName(abs)}${e.message.includes(':') ? `: ${e.message.split(':')[1]!.trim()}` : ''}`
    e.path = abs
    return e
  }
  return new Error(String(err))
}

/** The directory part and the name of a relative path. */
export function splitRel(rel: string): { dir: string; name: string } {
  const i = rel.lastIndexOf('/')
  return i < 0 ? { dir: '', name: rel } : { dir: rel.slice(0, i), name: rel.slice(i + 1) }
}
