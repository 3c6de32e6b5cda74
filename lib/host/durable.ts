/**
 * Durable small files: the ONE way a file that a later step or command relies on is written
 * (original.json, backup.json, manifests, plans, last-used, lock, reports' state).
 *
 *   writeFileDurable(file, data, { mode }) → Promise<void>
 *     A temp file in the same directory, created exclusively (O_EXCL|O_NOFOLLOW: a leftover or a
 *     planted symlink is never written through), written, fsync'ed, closed, renamed over `file`,
 *     then the directory fsync'ed. A reader (or the next command after a crash or kill -9) sees
 *     the old file or the new one, whole, never an empty or half one. Mode 0600 unless given.
 *     On failure the temp file is removed and the error rethrown; `file` is untouched.
 *     The mode is set exactly (fchmod: the umask does not narrow it).
 *     noReplace: link(2) instead of rename(2) — an EEXIST error when something is at `file`
 *     already (a lock, a file a person may have written); on a filesystem without hard links a
 *     check then rename (a small window, no better there).
 *
 *   fsyncDir(dir)   the directory's entries reach the disk (after a create, rename or unlink)
 *
 *   renameDurable(from, to)
 *     rename(2) `from` over `to` (same directory or file system), then `to`'s directory fsync'ed:
 *     how a file written and fsync'ed under a temp name (writeFileDurable's, or a big one streamed
 *     by its writer: the backup archive's `.part`) is published.
 *
 *   mkdirDurable(dir, mode = 0o700) → the first directory created, or undefined
 *     mkdir -p with `mode` on every directory it creates, each new entry fsync'ed in its parent.
 */
import { randomBytes } from 'node:crypto'
import { constants as fsc } from 'node:fs'
import { link, lstat, mkdir, open, rename, rm } from 'node:fs/promises'
import path from 'node:path'

/** fsync a directory: the names created, renamed or removed in it are on the disk. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY)
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** Publish a file written and fsync'ed under another name (see the file header). */
export async function renameDurable(from: string, to: string): Promise<void> {
  await rename(from, to)
  await fsyncDir(path.dirname(to))
}

/** The temp name next to `file` (hidden, unique per process and call). */
export function tempPathFor(file: string): string {
  return path.join(
    path.dirname(file),
    `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  )
}

export interface DurableWriteOptions {
  /** permission bits of the new file (default 0o600), set exactly whatever the umask */
  mode?: number
  /**
   * never replace an existing `file`: fails with code EEXIST when something is there. Published
   * with link(2), so exactly one of two writers wins (the lock relies on it); a file system
   * without hard links fails (EPERM/ENOTSUP) unless `orCheckFirst`, which falls back to a
   * check then a rename — not exclusive between two writers (config init, a person's file).
   */
  noReplace?: boolean | 'orCheckFirst'
}

function exists(file: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`EEXIST: file already exists, '${file}'`), {
    code: 'EEXIST',
    path: file,
  })
}

/** link(2) the temp file to its name; EEXIST when taken (see DurableWriteOptions.noReplace). */
async function publishNew(tmp: string, file: string, checkFirst: boolean): Promise<void> {
  try {
    await link(tmp, file)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (!checkFirst || (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP')) throw err
    const taken = await lstat(file).then(
      () => true,
      (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return false
        throw e
      },
    )
    if (taken) throw exists(file)
    await rename(tmp, file)
  }
}

/** Write `file` atomically and durably (see the file header). */
export async function writeFileDurable(
  file: string,
  data: string | Uint8Array,
  opts: DurableWriteOptions = {},
): Promise<void> {
  const tmp = tempPathFor(file)
  const mode = opts.mode ?? 0o600
  // whatever is at the temp name already (a leftover, a planted link) is not ours to remove
  const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, mode)
  try {
    try {
      await fh.chmod(mode)
      await fh.writeFile(data)
      await fh.sync()
    } finally {
      await fh.close()
    }
    if (opts.noReplace) await publishNew(tmp, file, opts.noReplace === 'orCheckFirst')
    else await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {})
    throw err
  }
  // after a link the temp name is still there: gone before the directory is synced (`file` is
  // in place by now: a temp that cannot be removed is not a failure of the write)
  if (opts.noReplace) await rm(tmp, { force: true }).catch(() => {})
  await fsyncDir(path.dirname(file))
}

/** mkdir -p with `mode` on what it creates, each new entry durable in its parent. */
export async function mkdirDurable(dir: string, mode = 0o700): Promise<string | undefined> {
  const created = await mkdir(dir, { recursive: true, mode })
  if (created) {
    for (let d = path.resolve(dir); ; d = path.dirname(d)) {
      await fsyncDir(path.dirname(d))
      if (d === path.resolve(created) || path.dirname(d) === d) break
    }
  }
  return created
}

/**
 * A build file's bytes, or null when there is none to keep: missing, a symbolic link (never
 * followed: a project directory a container can write must not make root copy, or print a diff
 * of, whatever a link points to), or not a regular file (a fifo is not waited on).
 */
export async function readIf(p: string): Promise<Buffer | null> {
  let fh
  try {
    fh = await open(p, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK | fsc.O_NOCTTY)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENXIO') return null
    throw e
  }
  try {
    if (!(await fh.stat()).isFile()) return null
    return await fh.readFile()
  } finally {
    await fh.close()
  }
}
