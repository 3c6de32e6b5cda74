/**
 * The undo of a copy onto a mount (removeCopy: what copyTree made, and only that) and the
 * read-back through it (readBackTree: what is really there, hashed). Both by descriptors.
 */
import { createHash, type Hash } from 'node:crypto'
import { constants as fsc } from 'node:fs'
import { rmdir, type FileHandle } from 'node:fs/promises'
import { TreeChangedError, errCode, splitRel, type DirentType } from '../host/safefs.js'
import { Tree } from '../host/safefs-tree.js'
import type { HashName, ManifestEntry, Progress } from '../shared/manifest-types.js'
import {
  CHUNK,
  CopyFailedError,
  PROBE_NAME,
  abortError,
  checkEntries,
  isAbortError,
  openDest,
  runPool,
  tempNamesByDir,
  throttle,
} from './copy-util.js'

export interface RemoveResult {
  /** files, symlinks, temp parts and directories removed */
  removed: number
  /** paths (relative to dest) not named by the manifest, left in place */
  leftovers: string[]
}

/**
 * Removes what copyTree made, and only that: the manifest's files, symlinks and temp parts, then
 * its directories deepest first when empty, then `dest` when empty. Anything else is reported.
 */
export async function removeCopy(opts: {
  dest: string
  mount?: string
  entries: readonly ManifestEntry[]
  concurrency?: number
  /** dest existed (empty) before the copy: empty it, never remove it */
  keepDest?: boolean
}): Promise<RemoveResult> {
  checkEntries(opts.entries, false)
  const concurrency = Math.max(1, opts.concurrency ?? 8)
  const kinds = new Map(opts.entries.map((e) => [e.path, e.kind]))
  const byPath = new Map(opts.entries.map((e) => [e.path, e]))
  const temps = tempNamesByDir(opts.entries.filter((e) => e.kind === 'file'))
  const result: RemoveResult = { removed: 0, leftovers: [] }
  const dirs = ['', ...opts.entries.filter((e) => e.kind === 'dir').map((e) => e.path)]
  // directories that will not be empty: rmdir on them only makes rclone log an ERROR
  const kept = new Set<string>()
  const keep = (rel: string) => {
    const { dir } = splitRel(rel)
    kept.add(dir)
    result.leftovers.push(rel)
  }
  let tree: Tree
  try {
    tree = await openDest(opts.dest, opts.mount)
  } catch (err) {
    if (errCode(err) === 'ENOENT') return result
    throw err
  }

  try {
    // Reading each directory once costs far fewer mount round trips than an unlink per name.
    // Every directory is reached from its parent by descriptor: one replaced by a link (an app
    // wrote into the destination after the swap) is left as it is, with what it points at.
    for (const dir of dirs.reverse()) {
      let names: { name: string; type: DirentType }[]
      try {
        names = await tree.withDir(dir, (d) => d.readdirTypes())
      } catch (err) {
        if (errCode(err) === 'ENOENT') continue
        if (err instanceof TreeChangedError) {
          keep(dir)
          continue
        }
        throw err
      }
      const doomed: string[] = []
      for (const d of names) {
        const rel = dir === '' ? d.name : `${dir}/${d.name}`
        const kind = kinds.get(rel)
        if (d.type === 'dir' && dir === '' && d.name === PROBE_NAME) {
          await tree.root.rmdir(d.name).catch(() => kept.add(dir))
        } else if (d.type === 'dir') {
          kept.add(dir)
          // a manifest directory still here kept leftovers, already reported from inside it
          if (kind !== 'dir') result.leftovers.push(rel)
        } else if (kind === 'file' || kind === 'symlink') doomed.push(d.name)
        else if (temps.get(dir)?.has(d.name) || (dir === '' && d.name === PROBE_NAME))
          doomed.push(d.name) // (a probe FILE: left by an older shipshape)
        else keep(rel)
      }
      await runPool(doomed, concurrency, new AbortController(), async (name) => {
        const rel = dir === '' ? name : `${dir}/${name}`
        const e = byPath.get(rel)
        await tree.withDir(dir, async (d) => {
          const st = await d.lstat(name)
          if (!st) return
          if (e?.kind === 'file') {
            // a file changed since the copy (an app wrote it after the swap) is not ours to
            // delete; nor is anything that is no longer a file
            if (
              !st.isFile() ||
              Number(st.size) !== e.size ||
              Math.abs(Number(st.mtimeNs / 1_000_000n) - e.mtimeMs) >= 1000
            ) {
              return keep(rel)
            }
          } else if (e?.kind === 'symlink' && !st.isSymbolicLink()) return keep(rel)
          if (st.isDirectory()) return keep(rel)
          await d.unlink(name)
          result.removed++
        })
      })
      if (kept.has(dir) || (dir === '' && opts.keepDest)) continue
      if (dir === '') continue // dest itself: after the tree is closed
      try {
        const { dir: up, name } = splitRel(dir)
        await tree.forget(dir)
        await tree.withDir(up, (d) => d.rmdir(name))
        result.removed++
      } catch (err) {
        const code = errCode(err)
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT') throw err
      }
    }
  } finally {
    await tree.close()
  }
  if (!kept.has('') && !opts.keepDest) {
    try {
      await rmdir(opts.dest)
    } catch (err) {
      const code = errCode(err)
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT') throw err
    }
  }
  result.leftovers.sort()
  return result
}

// ---------------------------------------------------------------------------------------------
// Read-back

/**
 * Stats every manifest path through the destination and hashes its files, returning what is
 * actually there shaped like the manifest (paths missing on the destination are left out).
 * Every directory is reached by descriptor from its parent; nothing is followed.
 */
export async function readBackTree(opts: {
  dest: string
  mount?: string
  entries: readonly ManifestEntry[]
  onProgress?: Progress
  signal?: AbortSignal
  concurrency?: number
  /** Digests to compute (default sha256 only). */
  hashes?: readonly HashName[]
}): Promise<ManifestEntry[]> {
  checkEntries(opts.entries, false)
  const algos = opts.hashes ?? ['sha256']
  const concurrency = Math.max(1, opts.concurrency ?? 4)
  const progress = throttle(opts.onProgress)
  const stop = new AbortController()
  const onAbort = () => stop.abort(opts.signal?.reason)
  if (opts.signal?.aborted) throw abortError(opts.signal.reason)
  opts.signal?.addEventListener('abort', onAbort, { once: true })
  const out: (ManifestEntry | undefined)[] = new Array(opts.entries.length)
  const buffers: Buffer[] = []
  let bytes = 0
  const tree = await openDest(opts.dest, opts.mount)
  try {
    await runPool(
      opts.entries.map((e, i) => ({ e, i })),
      concurrency,
      stop,
      async ({ e, i }, worker) => {
        const { dir, name } = splitRel(e.path)
        let st: import('node:fs').BigIntStats | null
        try {
          st = await tree.withDir(dir, (d) => d.lstat(name))
        } catch (err) {
          if (errCode(err) === 'ENOENT') return
          if (err instanceof TreeChangedError) throw err
          throw new CopyFailedError(e.path, errCode(err), err)
        }
        if (!st) return
        const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file'
        const actual: ManifestEntry = {
          path: e.path,
          kind,
          size: kind === 'file' ? Number(st.size) : 0,
          mode: Number(st.mode) & 0o7777,
          mtimeMs: Number(st.mtimeNs / 1_000_000n),
          uid: Number(st.uid),
          gid: Number(st.gid),
        }
        if (kind === 'symlink') actual.linkname = await tree.withDir(dir, (d) => d.readlink(name))
        if (kind === 'file') {
          if (!st.isFile()) throw new CopyFailedError(e.path, undefined, 'not a regular file')
          buffers[worker] ??= Buffer.allocUnsafe(CHUNK)
          actual.hashes = await hashFile(e.path, tree, algos, buffers[worker], stop.signal, (n) => {
            bytes += n
            progress(bytes, e.path)
          })
        }
        out[i] = actual
      },
    )
    progress(bytes, undefined, true)
    return out.filter((e): e is ManifestEntry => e !== undefined)
  } finally {
    opts.signal?.removeEventListener('abort', onAbort)
    await tree.close()
  }
}

async function hashFile(
  rel: string,
  tree: Tree,
  algos: readonly HashName[],
  buf: Buffer,
  signal: AbortSignal,
  onBytes: (n: number) => void,
): Promise<Partial<Record<HashName, string>>> {
  const hashes: [HashName, Hash][] = algos.map((a) => [a, createHash(a)])
  const { dir, name } = splitRel(rel)
  let fh: FileHandle | undefined
  try {
    fh = (await tree.withDir(dir, (d) => d.openFile(name, fsc.O_RDONLY))).fh
    for (;;) {
      if (signal.aborted) throw abortError(signal.reason)
      const { bytesRead } = await fh.read(buf, 0, buf.length, null)
      if (bytesRead === 0) break
      for (const [, h] of hashes) h.update(buf.subarray(0, bytesRead))
      onBytes(bytesRead)
    }
  } catch (err) {
    if (isAbortError(err) || err instanceof TreeChangedError) throw err
    throw new CopyFailedError(rel, errCode(err), err)
  } finally {
    await fh?.close().catch(() => {})
  }
  return Object.fromEntries(hashes.map(([a, h]) => [a, h.digest('hex')]))
}
