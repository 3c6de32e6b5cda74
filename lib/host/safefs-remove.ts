/**
 * Removing a tree others can write (a kept original, a copy on a mount): rm -r by directory
 * descriptors (lib/host/safefs.ts), each entry asked about before it goes, never a link
 * followed.
 */
import type { BigIntStats } from 'node:fs'
import { Dir, type Ident } from './safefs.js'

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
