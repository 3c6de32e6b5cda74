import { lstat } from 'node:fs/promises'
import { mountsBelow, readMountinfo, type MountEntry } from './mountinfo.js'
import { isUnder } from '../shared/paths.js'
import { guardPath, mountWarning, type MountProbe } from './mountprobe.js'
import { runCaptured } from './run.js'

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
const DU_TIMEOUT_MS = 15 * 60_000

/** du through the runner; one that cannot start is a failed du (exit 127), as from a shell. */
async function du(
  args: string[],
): Promise<{ exitCode: number | null; signal: string | null; stdout: string; stderr: string }> {
  try {
    return await runCaptured(['du', ...args], {
      timeoutMs: DU_TIMEOUT_MS,
      maxBytes: 256 * 1024 * 1024,
    })
  } catch (err) {
    return { exitCode: 127, signal: null, stdout: '', stderr: (err as Error).message }
  }
}

/** du killed (timeout) or unable to run: the sizes are incomplete, and the report says so. */
function duFailure(
  dir: string,
  res: { exitCode: number | null; signal: string | null; stdout: string },
): string[] {
  if (res.signal)
    return [
      `du of ${dir} was stopped (${res.signal}, limit ${DU_TIMEOUT}): its sizes are incomplete`,
    ]
  if (res.exitCode !== 0 && res.exitCode !== 1)
    return [`du of ${dir} failed (exit ${res.exitCode}): its sizes are missing or incomplete`]
  if (res.exitCode === 1 && !res.stdout) return [`du of ${dir} printed nothing: sizes unknown`]
  return []
}

/**
 * The FUSE/network mounts holding `dir` or below it that do not answer (lib/host/mountprobe.ts):
 * du -x stats the mount points it does not enter, and a stat through a hung mount never returns.
 * A gone mount (ENOTCONN) below dir is left to du, which says it cannot read it; one holding dir
 * is not.
 */
async function unanswered(dir: string, mounts: readonly MountEntry[]): Promise<MountProbe[]> {
  const probes = await guardPath(dir, { mounts, below: true })
  return probes.filter((p) => p.state === 'hung' || isUnder(dir, p.mountPoint))
}

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
  const hung = await unanswered(dir, mounts)
  if (hung.length) {
    scan.warnings.push(...hung.map((p) => mountWarning(p, `du of ${dir}`)))
    return scan
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
  // what du -x does not enter: mounts of another device (a bind mount of the same filesystem
  // is measured); network namespaces are no filesystems
  const home = mounts
    .filter((m) => isUnder(dir, m.mountPoint))
    .sort((a, b) => b.mountPoint.length - a.mountPoint.length)[0]
  scan.mounts = mountsBelow(mounts, dir).filter(
    (m) => m.fsType !== 'nsfs' && (!home || m.device !== home.device),
  )
  // -a: big files are children too
  const res = await du(['-a', '-x', '-B1', '-0', `--max-depth=${maxDepth}`, '--', dir])
  scan.entries = parseDuOutput(res.stdout)
  scan.warnings.push(...duWarnings(res.stderr), ...duFailure(dir, res))
  return scan
}

/** Total disk usage of one directory (du -sx). */
export async function measureDir(
  dir: string,
  mounts?: readonly MountEntry[],
): Promise<{ sizeBytes: number | null; warnings: string[] }> {
  const hung = await unanswered(dir, mounts ?? (await readMountinfo().catch(() => [])))
  if (hung.length) {
    return { sizeBytes: null, warnings: hung.map((p) => mountWarning(p, `du of ${dir}`)) }
  }
  const res = await du(['-x', '-s', '-B1', '-0', '--', dir])
  const entry = parseDuOutput(res.stdout)[0]
  return {
    sizeBytes: entry && !res.signal ? entry.sizeBytes : null,
    warnings: [...duWarnings(res.stderr), ...duFailure(dir, res)],
  }
}
