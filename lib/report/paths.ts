import { lstat } from 'node:fs/promises'
import { $ } from 'zx'
import { mountsBelow, type MountEntry } from '../host/mountinfo.js'

export interface DuEntry {
  path: string
  sizeBytes: number
}

export interface PathScan {
  path: string
  exists: boolean
  device: number | null
  /** du entries down to maxDepth, the path itself included. */
  entries: DuEntry[]
  /** Filesystems mounted below the path (du -x does not enter them). */
  mounts: MountEntry[]
  warnings: string[]
}

/** Parse `du -0 -B1` output: "<bytes>\t<path>\0" records. Pure. */
export function parseDuOutput(out: string): DuEntry[] {
  const entries: DuEntry[] = []
  for (const rec of out.split('\0')) {
    if (!rec) continue
    const tab = rec.indexOf('\t')
    if (tab < 1) continue
    const size = Number(rec.slice(0, tab))
    if (!Number.isFinite(size)) continue
    entries.push({ path: rec.slice(tab + 1), sizeBytes: size })
  }
  return entries
}

function duWarnings(stderr: string, limit = 5): string[] {
  const lines = stderr.split('\n').filter(Boolean)
  const out = lines.slice(0, limit).map((l) => l.replace(/^du: /, ''))
  if (lines.length > limit) out.push(`… and ${lines.length - limit} more unreadable entries`)
  return out
}

const DU_TIMEOUT = '15m'

/**
 * Disk usage of `dir` and its entries down to `maxDepth`, like `du -x`: allocated bytes,
 * hard links counted once, symlinks not followed, other filesystems not entered.
 */
export async function scanPath(dir: string, mounts: MountEntry[], maxDepth = 2): Promise<PathScan> {
  const scan: PathScan = {
    path: dir,
    exists: false,
    device: null,
    entries: [],
    mounts: [],
    warnings: [],
  }
  let st
  try {
    st = await lstat(dir)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    scan.warnings.push(
      code === 'ENOENT'
        ? `${dir} does not exist`
        : `${dir} cannot be read (${code ?? String(err)})`,
    )
    return scan
  }
  if (st.isSymbolicLink()) {
    scan.warnings.push(`${dir} is a symlink: not followed (configure the path it points to)`)
    return scan
  }
  if (!st.isDirectory()) {
    scan.warnings.push(`${dir} is not a directory`)
    return scan
  }
  scan.exists = true
  scan.device = st.dev
  scan.mounts = mountsBelow(mounts, dir)
  const res = await $({
    nothrow: true,
    quiet: true,
    timeout: DU_TIMEOUT,
  })`du -x -B1 -0 --max-depth=${maxDepth} -- ${dir}`
  scan.entries = parseDuOutput(res.stdout)
  scan.warnings.push(...duWarnings(res.stderr))
  return scan
}

/** Total disk usage of one directory (du -sx). */
export async function measureDir(
  dir: string,
): Promise<{ sizeBytes: number | null; warnings: string[] }> {
  const res = await $({
    nothrow: true,
    quiet: true,
    timeout: DU_TIMEOUT,
  })`du -x -s -B1 -0 -- ${dir}`
  const entry = parseDuOutput(res.stdout)[0]
  return { sizeBytes: entry ? entry.sizeBytes : null, warnings: duWarnings(res.stderr) }
}
