import { statfs } from 'node:fs/promises'
import path from 'node:path'

/** Free bytes (for an unprivileged user) of the filesystem holding dir, or its nearest existing parent. */
export async function freeBytes(dir: string): Promise<{ dir: string; free: number }> {
  let cur = dir
  for (;;) {
    try {
      const s = await statfs(cur)
      return { dir: cur, free: Number(s.bavail) * Number(s.bsize) }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || cur === '/') throw err
      cur = path.dirname(cur)
    }
  }
}
