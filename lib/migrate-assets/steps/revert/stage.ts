import path from 'node:path'
import { formatBytes } from '../../../config/index.js'
import { showName } from '../../../host/names.js'
import type { Step } from '../../../runbook/index.js'
import { manifestOf } from '../../../assets/manifest.js'
import type { RevertContext } from '../../revert-context.js'
import { destChangedSince, ownedLike, rootOwnerOf } from '../../revert-policy.js'
import type { ManifestEntry } from '../../../shared/manifest-types.js'

/** The inode facts of the source's tree do not hold on another copy of it. */
const unpinned = (e: ManifestEntry): ManifestEntry => {
  const { ino: _i, ctimeNs: _c, ...rest } = e
  void _i
  void _c
  return rest
}

/**
 * The manifest the bytes brought back are held to. The destination as the migration left it:
 * the migration's manifest (its sha256 are what the copy back checks every byte against). The
 * destination changed since (the app wrote there): what is there now, hashed now, with the
 * original's owners and modes — the app's latest data is what comes back.
 */
async function expectedEntries(ctx: RevertContext): Promise<ManifestEntry[]> {
  const migration = await ctx.fs.readManifest(ctx.paths.migrationManifest)
  if (ctx.from === 'original') return migration.entries
  const walk = await ctx.fs.walkTree(ctx.paths.dest)
  if (walk.problems.length) {
    throw new Error(
      `${ctx.paths.dest} holds what cannot be brought back: ${walk.problems
        .slice(0, 3)
        .map((p) => `${p.path} (${p.reason})`)
        .join(', ')}`,
    )
  }
  const now = walk.entries.map(unpinned)
  if (!destChangedSince(migration.entries, now).length) return migration.entries.map(unpinned)
  const bar = ctx.progress(
    'hash destination',
    now.reduce((n, e) => n + e.size, 0),
  )
  let hashed: ManifestEntry[]
  try {
    hashed = await ctx.fs.readBackTree({
      dest: ctx.paths.dest,
      mount: ctx.paths.mount,
      entries: now.filter((e) => e.kind === 'file'),
      onProgress: bar.tick,
    })
  } finally {
    bar.done()
  }
  const hashes = new Map(hashed.map((e) => [e.path, e.hashes]))
  const withHashes = now.map((e) =>
    e.kind === 'file' ? { ...e, hashes: hashes.get(e.path) ?? {} } : e,
  )
  return ownedLike(migration.entries, withHashes, rootOwnerOf(migration.entries))
}

/** The swap (a later step) moved the staging directory to the source already. */
async function swappedIn(ctx: RevertContext): Promise<boolean> {
  if ((await ctx.fs.kindOf(ctx.paths.source)).kind !== 'dir') return false
  const side = await ctx.fs.kindOf(ctx.paths.linkAside)
  if (side.kind === 'symlink' && side.target === ctx.paths.dest) return true
  return (await ctx.fs.kindOf(ctx.paths.record)).kind === 'other' // finish wrote reverted.json
}

/**
 * The bytes, back beside the source on its own filesystem: the kept original renamed (no copy),
 * or the destination copied back by descriptors (each file checked against the manifest's
 * sha256 as it is read), owners put back. The staging directory is root's 0700 until it is whole.
 */
export const stageStep: Step<RevertContext> = {
  id: 'stage',
  title: 'Bring the files back beside the source',
  preview: (ctx) =>
    ctx.from === 'original'
      ? [`rename the kept original ${ctx.paths.original} → ${ctx.paths.staging}`]
      : [
          ...(ctx.destChanged
            ? [`hash every file of ${ctx.paths.dest} (the app changed it since the migration)`]
            : []),
          `copy ${ctx.paths.dest} → ${ctx.paths.staging} by descriptors, every byte checked against sha256`,
          `log copied files in ${ctx.paths.doneLog} (a rerun skips them)`,
        ],
  async run(ctx, journal) {
    const { original, staging, expected } = ctx.paths
    await journal.note({
      stamp: ctx.stamp,
      migration: ctx.paths.migration,
      from: ctx.from,
      removeCopy: ctx.removeCopy,
      source: ctx.asset.source,
      dest: ctx.asset.dest,
      mount: ctx.asset.mount,
    })
    if (await swappedIn(ctx)) return // a --resume past the swap: the staging dir is the source
    // written before a crash: read (and validated) from disk once, then carried
    const there = await ctx.expected.get().catch(() => null)
    const entries = there?.entries ?? (await expectedEntries(ctx))
    if (!there) {
      const m = manifestOf(ctx.paths.source, entries, ctx.now())
      await ctx.fs.writeManifest(expected, m)
      ctx.expected.set(m)
    }
    if (ctx.from === 'original') {
      const o = await ctx.fs.kindOf(original)
      const s = await ctx.fs.kindOf(staging)
      if (o.kind === 'missing' && s.kind === 'dir') return // renamed before a crash
      if (o.kind !== 'dir') throw new Error(`the kept original ${original} is not there any more`)
      if (s.kind !== 'missing') throw new Error(`${staging} already exists: not overwriting it`)
      await ctx.fs.rename(original, staging)
      ctx.out.info(`the kept original is back beside the source: ${staging}`)
      return
    }
    await ctx.fs.mkdir(staging, { mode: 0o700 })
    await ctx.fs.mkdir(path.dirname(ctx.paths.doneLog), { recursive: true, mode: 0o700 })
    const total = entries.reduce((n, e) => n + (e.kind === 'file' ? e.size : 0), 0)
    const bar = ctx.progress('copy back', total)
    let r
    try {
      r = await ctx.fs.copyTree({
        source: ctx.paths.dest,
        dest: staging,
        entries,
        doneLog: ctx.paths.doneLog,
        onProgress: bar.tick,
      })
    } finally {
      bar.done()
    }
    // owners as the manifest has them, by descriptors (the copy is root's until here)
    await ctx.fs.putOwners(staging, entries, rootOwnerOf(entries))
    ctx.facts.copied = r.copied
    ctx.out.info(
      `copied back ${r.copied} files (${formatBytes(r.bytesCopied)}) from ${ctx.paths.dest}${r.skipped ? `, ${r.skipped} already there from an earlier run` : ''}`,
    )
  },
  async verify(ctx) {
    return (await ctx.fs.kindOf(ctx.paths.staging)).kind === 'dir' || (await swappedIn(ctx))
  },
  async undo(ctx, journal) {
    const { original, staging } = ctx.paths
    const s = await ctx.fs.kindOf(staging)
    if (s.kind === 'missing') return // never made, or already put back
    if (s.kind !== 'dir') throw new Error(`${staging} is not the directory the revert made`)
    if (journal.data().from === 'original') {
      if ((await ctx.fs.kindOf(original)).kind !== 'missing') {
        throw new Error(`${original} exists again: not moving ${staging} over it`)
      }
      await ctx.fs.rename(staging, original)
      return
    }
    // a copy of what is on the destination: ours, removed by descriptors
    const r = await ctx.fs.removeTree(staging)
    if (r.kept.length) throw new Error(`left in ${staging}: ${showName(r.kept[0]!.path)}`)
    await ctx.fs.unlink(ctx.paths.doneLog).catch(() => {})
  },
}
