/**
 * The pure half of `migrate-assets NAME --revert`: facts in (read by revert.ts), decisions out.
 *
 *   destChangedSince(expected, walk)     what on the destination is not as the manifest has it
 *                                        (the app wrote there after the swap?)
 *   chooseRevertSource(facts)            where the bytes come back from: the kept original
 *                                        (renamed back) or the destination (copied back), or why
 *                                        neither can serve
 *   revertSpaceNeed(bytes, entries)      the local bytes a copy back needs (with the margin)
 *   rootOwnerOf(entries)                 the asset root's owner when it must be remade
 *   ownedLike(original, now, root)       the destination's entries with the original's owners and
 *                                        modes (an entry added since: its nearest directory's)
 */
import path from 'node:path'
import { formatBytes } from '../config/units.js'
import { showName } from '../host/names.js'
import type { Refusal } from '../shared/refusal.js'
import type { ManifestEntry } from '../shared/manifest-types.js'

/** rclone keeps mtimes to the second on some remotes: what the copy's own checks allow too */
export const MTIME_TOLERANCE_MS = 1000
const PER_ENTRY = 4096
const MARGIN = 64 * 1024 * 1024

/** Names at the destination's root that shipshape's own probes leave for an instant. */
const isProbe = (p: string): boolean =>
  !p.includes('/') && (p.startsWith('.shipshape-probe-') || p === '.shipshape-mode-probe')

/**
 * What on the destination differs from `expected` (pure): files and links added, gone, of
 * another kind, size or mtime (±1 s), directories added or gone. Directory mtimes, modes and
 * owners are not compared: a mount does not keep them. Shown as people read them.
 */
export function destChangedSince(
  expected: readonly ManifestEntry[],
  now: readonly Pick<ManifestEntry, 'path' | 'kind' | 'size' | 'mtimeMs' | 'linkname'>[],
): string[] {
  const byPath = new Map(now.filter((e) => !isProbe(e.path)).map((e) => [e.path, e]))
  const out: string[] = []
  for (const e of expected) {
    const a = byPath.get(e.path)
    byPath.delete(e.path)
    const name = showName(e.path)
    if (!a) out.push(`${name}: gone since the migration`)
    else if (a.kind !== e.kind) out.push(`${name}: now a ${a.kind}, was a ${e.kind}`)
    else if (e.kind === 'file' && a.size !== e.size) out.push(`${name}: size ${e.size} → ${a.size}`)
    else if (e.kind === 'file' && Math.abs(a.mtimeMs - e.mtimeMs) >= MTIME_TOLERANCE_MS)
      out.push(`${name}: written since the migration (mtime)`)
    else if (e.kind === 'symlink' && a.linkname !== undefined && a.linkname !== e.linkname)
      out.push(`${name}: the link was changed`)
  }
  for (const a of byPath.values()) out.push(`${showName(a.path)}: added since the migration`)
  return out
}

export type RevertFrom = 'original' | 'destination'

export interface RevertSourceFacts {
  /** the kept original: null when --finalize removed it (or it is not a directory any more) */
  original: { path: string; changes: string[] } | null
  /** the destination read by descriptors: null when it could not be (why) */
  dest: { changes: string[] } | { error: string }
  archive: string | null
}

export interface RevertSourceChoice {
  from: RevertFrom | null
  /** the destination differs from the manifest: the app wrote there; it is the truth */
  destChanged: string[]
  /** why the kept original is not used (it stays where it is) */
  originalLeft: string | null
  refusals: Refusal[]
}

/**
 * Where the bytes come back from (pure). The running app has used the destination since the
 * swap, so the destination is the truth: when it is exactly as the manifest has it, the kept
 * original — held against the manifest too — is renamed back (no copy); when the app wrote
 * there since (or the original is gone or changed), the destination is copied back, each file's
 * sha256 taken from what is there when the revert starts. A destination that cannot be read
 * cannot be judged: refused (the archive holds the migration-time bytes, not what the app wrote
 * since; restoring it is left to a person).
 */
export function chooseRevertSource(f: RevertSourceFacts): RevertSourceChoice {
  if ('error' in f.dest) {
    return {
      from: null,
      destChanged: [],
      originalLeft: null,
      refusals: [
        {
          check: 'dest',
          message: `cannot read the destination to know what the app wrote there since the migration: ${f.dest.error}`,
          remedy: `bring the mount back (the app runs on it)${f.archive ? `; the migration-time bytes are also in ${f.archive} (tar -x by hand, as a last resort: later writes are not in it)` : ''}`,
        },
      ],
    }
  }
  const destChanged = f.dest.changes
  if (!f.original) {
    return { from: 'destination', destChanged, originalLeft: null, refusals: [] }
  }
  if (destChanged.length) {
    return {
      from: 'destination',
      destChanged,
      originalLeft: `${f.original.path} is older than the destination (the app wrote ${destChanged.length} change(s) there since the migration): it is not used and stays where it is`,
      refusals: [],
    }
  }
  if (f.original.changes.length) {
    return {
      from: 'destination',
      destChanged,
      originalLeft: `${f.original.path} was written to after the migration (${f.original.changes.slice(0, 3).join('; ')}): it is not used and stays where it is; look at it`,
      refusals: [],
    }
  }
  return { from: 'original', destChanged, originalLeft: null, refusals: [] }
}

/** Local bytes a copy back needs: its files, a block per entry, and a margin. */
export function revertSpaceNeed(bytes: number, entries: number): number {
  return bytes + entries * PER_ENTRY + MARGIN
}

export function judgeRevertSpace(o: {
  from: RevertFrom
  needBytes: number
  freeBytes: number
  dir: string
}): Refusal[] {
  if (o.from === 'original' || o.freeBytes >= o.needBytes) return []
  return [
    {
      check: 'space',
      message: `bringing the files back needs ${formatBytes(o.needBytes)} (their bytes and a margin) and ${o.dir} has ${formatBytes(o.freeBytes)} free`,
      remedy: 'free space on the source filesystem, then run it again',
    },
  ]
}

/**
 * The owner the asset's root directory gets when it is made again (the manifest does not list
 * the root): the uid:gid most of its top-level entries have, root's on a tie or when empty.
 */
export function rootOwnerOf(entries: readonly ManifestEntry[]): { uid: number; gid: number } {
  const counts = new Map<string, number>()
  for (const e of entries) {
    if (e.path.includes('/')) continue
    const k = `${e.uid}:${e.gid}`
    counts.set(k, (counts.get(k) ?? 0) + 1)
  }
  const sorted = [...counts].sort((a, b) => b[1] - a[1])
  const [first, second] = sorted
  if (!first || (second && second[1] === first[1])) return { uid: 0, gid: 0 }
  const [uid, gid] = first[0].split(':').map(Number) as [number, number]
  return { uid, gid }
}

/**
 * The destination's entries (a mount: owners and modes are the mount's, not the app's) with
 * the owner and mode the original had; an entry added since gets its nearest directory's owner
 * (the root's at the top) and 0644/0755. setuid/setgid bits are never put back (the copy code
 * drops them). Pure.
 */
export function ownedLike(
  original: readonly ManifestEntry[],
  now: readonly ManifestEntry[],
  root: { uid: number; gid: number },
): ManifestEntry[] {
  const byPath = new Map(original.map((e) => [e.path, e]))
  const ownerOf = (rel: string): { uid: number; gid: number } => {
    for (let d = path.posix.dirname(rel); d !== '.'; d = path.posix.dirname(d)) {
      const e = byPath.get(d)
      if (e?.kind === 'dir') return { uid: e.uid, gid: e.gid }
    }
    return root
  }
  return now.map((e) => {
    const was = byPath.get(e.path)
    if (was && was.kind === e.kind) return { ...e, uid: was.uid, gid: was.gid, mode: was.mode }
    const o = ownerOf(e.path)
    return { ...e, ...o, mode: e.kind === 'dir' ? 0o755 : e.kind === 'file' ? 0o644 : 0o777 }
  })
}
