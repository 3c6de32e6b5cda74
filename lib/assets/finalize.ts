/**
 * What a migration keeps aside and how it goes (the `--finalize` command is
 * lib/migrate-assets/finalize.ts; prune uses the same functions): the originals a migration kept aside once
 * their `keepOriginal` has passed — and only while the migration still stands (source is the
 * symlink to dest), dest still holds every file of the manifest with its size, and the original
 * holds nothing the manifest does not: a writer the preflight did not see (a host process, a
 * second bind mount) may have written into it after the swap, and those writes are kept and
 * reported, never deleted. Each removal is a runbook step (lock, journal); it cannot be undone,
 * the backup archive stays. Prune removes originals through the same functions.
 *
 *   findKeptOriginals(backupDir, name)   the runs' original.json records
 *   foreignOriginal(k, asset, policy)    (pure) an original.json naming something else: refused
 *   writtenSince(manifest, walk)         (pure) what in the original is not as the manifest has it
 *   finalizeBlocker(k, now)              why it may not go yet (reads: walks the original)
 *   unansweredMounts(config, warn)       warns of each mount a kept original's check would
 *                                        touch that does not answer (lib/host/mountprobe.ts)
 *   removeOriginal(k)                    rm -r by descriptors (lib/host/safefs.ts), each entry
 *                                        checked against the manifest again as it goes
 */
import { lstat, readdir, readFile, readlink } from 'node:fs/promises'
import path from 'node:path'
import { writeFileDurable } from '../host/durable.js'
import { guardPath, mountWarning } from '../host/mountprobe.js'
import { showName } from '../host/names.js'
import { Dir, splitRel } from '../host/safefs.js'
import { Tree } from '../host/safefs-tree.js'
import { removeTree, type RemoveResult } from '../host/safefs-remove.js'
import { mtimeMsOf, readManifest, walkTree, type WalkProblem } from './manifest.js'
import { checkSourcePath } from './policy.js'
import type { Manifest, ManifestEntry } from '../shared/manifest-types.js'

export interface KeptOriginal {
  /** the run's work dir in backupDir (holds original.json, manifest.json, the archive) */
  workDir: string
  original: string
  source: string
  dest: string
  keepUntil: string
  removedAt?: string
  /** the migration was reverted (migrate-assets --revert): nothing of it is finalized */
  revertedAt?: string
}

export async function findKeptOriginals(backupDir: string, name: string): Promise<KeptOriginal[]> {
  const dir = path.join(backupDir, name)
  const stamps = await readdir(dir).catch(() => [] as string[])
  const out: KeptOriginal[] = []
  for (const s of stamps.sort()) {
    const workDir = path.join(dir, s)
    try {
      const j = JSON.parse(
        await readFile(path.join(workDir, 'original.json'), 'utf8'),
      ) as Partial<KeptOriginal>
      if (typeof j.original === 'string' && typeof j.keepUntil === 'string') {
        out.push({
          workDir,
          original: j.original,
          source: String(j.source),
          dest: String(j.dest),
          keepUntil: j.keepUntil,
          ...(j.removedAt ? { removedAt: j.removedAt } : {}),
          ...(j.revertedAt ? { revertedAt: j.revertedAt } : {}),
        })
      }
    } catch {
      // a run that did not finish has no original.json: nothing kept to finalize
    }
  }
  return out
}

/**
 * original.json is a plain file in backupDir: before anything is removed as root, what it names
 * must be exactly what this asset's migration makes — `<source>.shipshape-<stamp of its run
 * dir>` for the configured source and dest, a source the allowed-roots policy accepts.
 * Pure; null when it is.
 */
export function foreignOriginal(
  k: KeptOriginal,
  asset: { source: string; dest: string },
  policy: { allowedRoots: string[]; stateDir: string; backupDir: string },
): string | null {
  const expected = `${asset.source}.shipshape-${path.basename(k.workDir)}`
  if (k.source !== asset.source || k.dest !== asset.dest || k.original !== expected) {
    return `${path.join(k.workDir, 'original.json')} names ${k.original}, not this asset's kept original ${expected}: not touching it`
  }
  const refused = checkSourcePath(asset.source, policy)
  return refused.length ? refused[0]!.message : null
}

/** One entry of the original as it is now, against the manifest's (pure): why it must stay. */
export function entryWrittenSince(
  expected: ManifestEntry | undefined,
  now: Pick<ManifestEntry, 'kind' | 'size' | 'mtimeMs'> & {
    ino?: string
    linkname?: string
    ctimeNs?: string
  },
): string | null {
  if (!expected) return 'added after the migration'
  if (expected.kind !== now.kind) return `now a ${now.kind}, was a ${expected.kind}`
  if (expected.ino !== undefined && now.ino !== undefined && expected.ino !== now.ino) {
    return 'replaced after the migration (another inode)'
  }
  if (now.kind === 'file') {
    if (now.size !== expected.size) return `size ${expected.size} → ${now.size}`
    if (now.mtimeMs > expected.mtimeMs) return 'written after the migration (newer mtime)'
  }
  if (now.kind === 'symlink' && now.linkname !== undefined && now.linkname !== expected.linkname) {
    return 'the link was changed'
  }
  // no user can set a ctime back: a same-size write with the mtime put back (touch -d) shows
  if (
    now.kind !== 'dir' &&
    expected.ctimeNs !== undefined &&
    now.ctimeNs !== undefined &&
    expected.ctimeNs !== now.ctimeNs
  ) {
    return 'changed after the migration (ctime)'
  }
  return null
}

/**
 * What in the original is not as the manifest has it (pure): entries added, grown, newer,
 * replaced, changed kind; and what the walk could not list (a fifo, a mount point). Entries
 * gone since are not listed: nothing of theirs would be lost.
 */
export function writtenSince(
  manifest: readonly ManifestEntry[],
  walk: { entries: readonly ManifestEntry[]; problems: readonly WalkProblem[] },
): string[] {
  const byPath = new Map(manifest.map((e) => [e.path, e]))
  const out: string[] = []
  for (const e of walk.entries) {
    const why = entryWrittenSince(byPath.get(e.path), e)
    if (why) out.push(`${showName(e.path)}: ${why}`)
  }
  for (const p of walk.problems) out.push(`${p.path}: ${p.reason}`)
  return out
}

const CHANGED = 'was written to after the migration'

/** Whether a blocker is the original's content (not time, links or records). */
export const isWrittenBlocker = (why: string | null): boolean => why?.includes(CHANGED) ?? false

/** Why this original may not go yet (null: it may). Reads only. */
export async function finalizeBlocker(k: KeptOriginal, now: Date): Promise<string | null> {
  if (k.removedAt) return `removed already (${k.removedAt})`
  if (k.revertedAt) return `the migration was reverted (${k.revertedAt})`
  if (new Date(k.keepUntil) > now) return `kept until ${k.keepUntil}`
  // a hung FUSE mount would hang this process for good (a stat through it never returns): the
  // mounts are asked from a child first, and one that does not answer keeps the original
  const hung = await hungMountOf(k)
  if (hung) return hung
  if (
    !(await lstat(k.original).then(
      (s) => s.isDirectory(),
      () => false,
    ))
  ) {
    return `${k.original} is not there any more`
  }
  const link = await readlink(k.source).catch(() => null)
  if (link !== k.dest) return `${k.source} is not the symlink to ${k.dest} any more`
  const manifest = await readManifest(path.join(k.workDir, 'manifest.json')).catch(() => null)
  if (!manifest) return `the run's manifest is unreadable`
  // through the destination by descriptors too: a link planted there cannot fake a file
  const dest = await Tree.open(k.dest).catch(() => null)
  if (!dest) return `${k.dest} cannot be opened as a directory`
  let missing = 0
  try {
    for (const e of manifest.entries) {
      if (e.kind !== 'file') continue
      const { dir, name } = splitRel(e.path)
      const st = await dest.withDir(dir, (d) => d.lstat(name)).catch(() => null)
      if (!st?.isFile() || Number(st.size) !== e.size) missing++
    }
  } finally {
    await dest.close()
  }
  if (missing) return `${missing} file(s) of the manifest are missing or changed in ${k.dest}`
  const changes = await originalChanges(k, manifest)
  if (changes.length) {
    return `${k.original} ${CHANGED} (${changes.length} entr${changes.length === 1 ? 'y' : 'ies'}: ${changes.slice(0, 3).join('; ')}${changes.length > 3 ? '; …' : ''}): it stays; move what is needed to ${k.dest}, then remove it by hand`
  }
  return null
}

/** Why k cannot be checked now: a mount under its original or dest does not answer; else null. */
export async function hungMountOf(
  k: Pick<KeptOriginal, 'dest' | 'original'>,
): Promise<string | null> {
  for (const p of [k.dest, k.original]) {
    const probe = (await guardPath(p))[0]
    if (probe) {
      const how = probe.state === 'gone' ? 'is gone' : 'does not answer'
      return `the mount ${probe.mountPoint} ${how} (${probe.detail}): not checked this run (fix: fusermount3 -uz ${probe.mountPoint}, then mount it again)`
    }
  }
  return null
}

/**
 * Warns (once per mount point) of every mount that the check of a kept, not yet removed
 * original of these assets would touch and that does not answer: those originals stay this run.
 * The answers are cached (lib/host/mountprobe.ts), so finalizeBlocker does not ask again.
 */
export async function unansweredMounts(
  backupDir: string,
  assets: readonly string[],
  warn: (line: string) => void,
): Promise<void> {
  const told = new Set<string>()
  for (const name of assets) {
    for (const k of await findKeptOriginals(backupDir, name)) {
      if (k.removedAt) continue
      for (const p of [k.dest, k.original]) {
        for (const probe of await guardPath(p)) {
          if (told.has(probe.mountPoint)) continue
          told.add(probe.mountPoint)
          warn(mountWarning(probe, `the kept originals of asset ${name} (they stay)`))
        }
      }
    }
  }
}

/** The original walked by descriptors and held against the manifest (see writtenSince). */
async function originalChanges(k: KeptOriginal, manifest: Manifest): Promise<string[]> {
  const walk = await walkTree(k.original)
  return writtenSince(manifest.entries, walk)
}

/**
 * Removes the kept original by descriptors (lib/host/safefs.ts): nothing is followed, nothing
 * outside it on another file system is crossed into, and every entry is held against the
 * manifest once more right before it goes — one written since the check stays, and so do the
 * directories above it. Throws when anything stayed, naming it.
 */
export async function removeOriginal(k: KeptOriginal): Promise<RemoveResult> {
  const manifest = await readManifest(path.join(k.workDir, 'manifest.json'))
  const byPath = new Map(manifest.entries.map((e) => [e.path, e]))
  const parent = await Dir.open(path.dirname(k.original))
  let r: RemoveResult
  try {
    r = await removeTree(parent, path.basename(k.original), {
      keep: (rel, st) => {
        const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file'
        if (!st.isDirectory() && !st.isFile() && !st.isSymbolicLink())
          return 'a special file added after the migration'
        return entryWrittenSince(byPath.get(rel), {
          kind,
          size: kind === 'file' ? Number(st.size) : 0,
          mtimeMs: mtimeMsOf(st),
          ino: String(st.ino),
          ctimeNs: String(st.ctimeNs),
        })
      },
    })
  } finally {
    await parent.close()
  }
  if (r.kept.length) {
    throw new Error(
      `${k.original} ${CHANGED} while it was being removed: kept ${r.kept
        .slice(0, 3)
        .map((x) => `${showName(x.path)} (${x.why})`)
        .join(
          ', ',
        )}${r.kept.length > 3 ? ', …' : ''} and the directories above them; ${r.removed} other entries removed`,
    )
  }
  return r
}

/** original.json, marked removed: atomically and durably, as every record a later run reads. */
export async function markRemoved(k: KeptOriginal, at: Date): Promise<void> {
  const { workDir: _omit, ...rest } = k
  void _omit
  await writeFileDurable(
    path.join(k.workDir, 'original.json'),
    JSON.stringify({ ...rest, removedAt: at.toISOString() }, null, 2) + '\n',
  )
}
