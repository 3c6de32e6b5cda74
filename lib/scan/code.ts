/**
 * CUDA calls in application Python on the host (I/O): the same grep the image scan applies to
 * an image's application code (findCudaCalls in analyze.ts), over a source directory such as a
 * service's build context (services.X.sourceDir).
 *
 *   findCudaCallsInDir(dir) → Promise<CodeMatch[]>   paths absolute; [] when dir does not exist
 *
 * Walks the directory without following symlinks; skips .git, node_modules, __pycache__ and
 * Python installations (site-/dist-packages, lib/python3.X); reads .py files up to 1 MiB.
 */
import fsp from 'node:fs/promises'
import path from 'node:path'
import { findCudaCalls } from './analyze.js'
import type { CodeMatch } from './types.js'

const MAX_FILE_BYTES = 1024 * 1024
const SKIP_DIRS = new Set(['.git', 'node_modules', '__pycache__', 'site-packages', 'dist-packages'])

export async function findCudaCallsInDir(dir: string): Promise<CodeMatch[]> {
  const root = path.resolve(dir)
  const out: CodeMatch[] = []
  const visit = async (d: string): Promise<void> => {
    let entries
    try {
      entries = await fsp.readdir(d, { withFileTypes: true })
    } catch (err) {
      if (d === root && (err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw err
    }
    for (const e of entries) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) {
        if (SKIP_DIRS.has(e.name)) continue
        if (/^python\d/.test(e.name) && /^lib(64)?$/.test(path.basename(d))) continue
        await visit(p)
      } else if (e.isFile() && e.name.endsWith('.py')) {
        const st = await fsp.stat(p)
        if (st.size > MAX_FILE_BYTES) continue
        const text = await fsp.readFile(p, 'utf8')
        if (!text.includes('cuda')) continue
        for (const m of findCudaCalls(text)) out.push({ path: p, ...m })
      }
    }
  }
  await visit(root)
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : a.line - b.line))
}
