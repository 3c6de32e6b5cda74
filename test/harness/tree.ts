/**
 * Asset trees as the migrate-assets engine suites compare them: every file's sha256 by relative
 * path, and whether a path is there (never followed).
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'

/** sha256 of every file below dir, by relative path (symlinks: 'link:' + target). */
export async function treeHashes(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  async function walk(rel: string): Promise<void> {
    for (const d of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name
      const p = path.join(dir, r)
      if (d.isDirectory()) {
        out.set(r + '/', 'dir')
        await walk(r)
      } else if (d.isSymbolicLink()) out.set(r, `link:${await fs.readlink(p)}`)
      else
        out.set(
          r,
          createHash('sha256')
            .update(await fs.readFile(p))
            .digest('hex'),
        )
    }
  }
  await walk('')
  return out
}

export async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  )
}
