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

/**
 * A tree's root and its open directories by relative path, each reached from its parent
 * (see Dir.openDir) and checked against the inode the walk recorded (`inodeOf`). At most
 * `max` stay open; the least recently used idle one is closed when more are needed.
 */
export class Tree {
  private readonly open = new Map<string, { dir: Promise<Dir>; users: number }>()
  /** withDir calls under way: close() waits for them (one abandoned by a caller included) */
  private readonly inflight = new Set<Promise<unknown>>()

  private constructor(
    readonly root: Dir,
    private readonly inodeOf: (rel: string) => bigint | undefined,
    private readonly max: number,
  ) {}

  static async open(
    abs: string,
    opts: { expect?: Ident; inodeOf?: (rel: string) => bigint | undefined; max?: number } = {},
  ): Promise<Tree> {
    const root = await Dir.open(abs, { expect: opts.expect })
    return new Tree(root, opts.inodeOf ?? (() => undefined), opts.max ?? 256)
  }

  /**
   * The tree at `base`/`rel`, reached from `base` by descriptors one component at a time (each
   * O_NOFOLLOW | O_DIRECTORY, on base's device), the missing ones created 0755 with `create`:
   * a link on the way is refused, never followed, and nothing is made where it points.
   */
  static async below(base: string, rel: string, opts: { create?: boolean } = {}): Promise<Tree> {
    let dir = await Dir.open(base)
    try {
      for (const name of components(rel)) {
        if (opts.create) {
          await dir.mkdir(name, 0o755).catch((err: unknown) => {
            if (errCode(err) !== 'EEXIST') throw err
          })
        }
        const next = await dir.openDir(name)
        await dir.close()
        dir = next
      }
    } catch (err) {
      await dir.close()
      throw err
    }
    return new Tree(dir, () => undefined, 256)
  }

  get path(): string {
    return this.root.path
  }

  /** Runs fn with the directory `rel` ('' = the root) open; it stays cached after. */
  withDir<T>(rel: string, fn: (dir: Dir) => Promise<T>): Promise<T> {
    const p = this.use(rel, fn)
    this.inflight.add(p)
    const done = () => this.inflight.delete(p)
    p.then(done, done)
    return p
  }

  private async use<T>(rel: string, fn: (dir: Dir) => Promise<T>): Promise<T> {
    if (rel === '') return fn(this.root)
    const slot = this.slot(rel)
    slot.users++
    try {
      return await fn(await slot.dir)
    } finally {
      slot.users--
      this.trim()
    }
  }

  private slot(rel: string): { dir: Promise<Dir>; users: number } {
    let s = this.open.get(rel)
    if (s) {
      // most recently used last
      this.open.delete(rel)
      this.open.set(rel, s)
      return s
    }
    const cut = rel.lastIndexOf('/')
    const parent = cut < 0 ? '' : rel.slice(0, cut)
    const name = cut < 0 ? rel : rel.slice(cut + 1)
    const dir = this.withDir(parent, (p) => p.openDir(name, { expect: this.inodeOf(rel) }))
    s = { dir, users: 0 }
    this.open.set(rel, s)
    // a failed open is not cached
    dir.catch(() => {
      if (this.open.get(rel) === s) this.open.delete(rel)
    })
    return s
  }

  private trim(): void {
    if (this.open.size <= this.max) return
    for (const [rel, s] of this.open) {
      if (this.open.size <= this.max) break
      if (s.users > 0) continue
      this.open.delete(rel)
      void s.dir.then((d) => d.close()).catch(() => {})
    }
  }

  /** Forget (and close) the cached directory `rel` and everything below it. */
  async forget(rel: string): Promise<void> {
    for (const [k, s] of [...this.open]) {
      if (k === rel || k.startsWith(`${rel}/`)) {
        this.open.delete(k)
        await s.dir.then((d) => d.close()).catch(() => {})
      }
    }
  }

  async close(): Promise<void> {
    // nothing is closed under a call still running: its path names the descriptor's number
    while (this.inflight.size) await Promise.allSettled([...this.inflight])
    const all = [...this.open.values()]
    this.open.clear()
    await Promise.all(all.map((s) => s.dir.then((d) => d.close()).catch(() => {})))
    await this.root.close()
  }
}

/** The directory part and the name of a relative path. */
export function splitRel(rel: string): { dir: string; name: string } {
  const i = rel.lastIndexOf('/')
  return i < 0 ? { dir: '', name: rel } : { dir: rel.slice(0, i), name: rel.slice(i + 1) }
}

export interface RemoveOptions {
  /**
   * Asked for every entry before it goes (path relative to the removed directory, its lstat):
   * a reason keeps it, and with it every directory above it. Default: everything goes.
   */
  keep?: (rel: string, st: BigIntStats) => string | null
  /** the removed directory's identity as recorded (a changed one is a TreeChangedError) */
  expect?: Ident
}

export interface RemoveResult {
  removed: number
  /** entries kept, with why */
  kept: { path: string; why: string }[]
}

/**
 * rm -r of `parent/name` by descriptors (see the file header): every directory opened
 * O_NOFOLLOW | O_DIRECTORY from its verified parent and on the same device, every unlink and
 * rmdir relative to it. A symlink is unlinked, never followed. A directory replaced by a link
 * (or moved) while this runs is a TreeChangedError; what was removed until then stays removed.
 */
export async function removeTree(
  parent: Dir,
  name: string,
  opts: RemoveOptions = {},
): Promise<RemoveResult> {
  const result: RemoveResult = { removed: 0, kept: [] }
  const top = await parent.openDir(name, { expect: opts.expect })
  const keep = opts.keep ?? (() => null)

  /** empties `dir` (relative path `rel`); true when everything in it went */
  async function empty(dir: Dir, rel: string): Promise<boolean> {
    let all = true
    for (const n of await dir.readdir()) {
      const r = rel ? `${rel}/${n}` : n
      const st = await dir.lstat(n)
      if (!st) continue // gone meanwhile
      const why = keep(r, st)
      if (why) {
        result.kept.push({ path: r, why })
        all = false
        continue
      }
      if (st.isDirectory()) {
        const child = await dir.openDir(n, { expect: st.ino })
        let gone: boolean
        try {
          gone = await empty(child, r)
        } finally {
          await child.close()
        }
        if (!gone) {
          all = false
          continue
        }
        await dir.rmdir(n)
      } else {
        await dir.unlink(n)
      }
      result.removed++
    }
    return all
  }

  try {
    if (await empty(top, '')) {
      await parent.rmdir(name)
      result.removed++
    }
  } finally {
    await top.close()
  }
  return result
}
