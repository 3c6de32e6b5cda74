/**
 * The backup archive of a migration, after it: kept in backupDir while the original is kept (the
 * two local ways back), then — once the original is finalized and `keepBackup` has passed — moved
 * onto the remote (`backupTo: remote`: written through the mount under
 * `<mount>/.shipshape-archives/<asset>/<stamp>/`, verified there with rclone, then removed
 * locally) or removed (`backupTo: local`). Either only after the destination was verified again
 * against the manifest on the remote: the copy there is then the one place the bytes are.
 * Prune plans and carries this out (rule migrated-archive); backup.json records where it went.
 *
 *   findArchives(config, name)       the runs' archives with what backup.json and original.json say
 *   archiveAction(a, asset, now)     (pure) move | remove | why it stays
 *   settleArchive(config, name, dir) verify the destination again, then move or remove (execute)
 */
import { createHash } from 'node:crypto'
import { constants as fsc } from 'node:fs'
import { lstat, open, readlink, unlink } from 'node:fs/promises'
import path from 'node:path'
import { createOutput } from '../cli/output.js'
import type { AssetConfig, Config } from '../config/index.js'
import { writeFileDurable } from '../host/durable.js'
import { readMountinfo } from '../host/mountinfo.js'
import { remoteJoin, remoteOfMount } from '../host/rclone.js'
import { waitForRemote } from './compare.js'
import { Tree } from '../host/safefs-tree.js'
import { findKeptOriginals, hungMountOf, type KeptOriginal } from './finalize.js'
import { readManifest } from './manifest.js'
import { remoteInfo } from './preflight.js'
import { readBackupInfo, type BackupInfo } from './backup-info.js'
import { nodeAssetFs } from './ports.js'
import { verifyDestination } from './verify-destination.js'
import type { HashName, ManifestEntry } from '../shared/manifest-types.js'

export const ARCHIVES_DIR = '.shipshape-archives'
const REVERIFY_MS = 20_000

/** What backup.json says once the archive left backupDir. */
export interface ArchiveFate {
  /** backupTo: remote — the archive on the mount, verified on the remote */
  remoteArchive?: { path: string; remote: string; bytes: number; verifiedBy: string; at: string }
  /** when the local archive was removed (after a move, or backupTo: local) */
  archiveRemovedAt?: string
}

export interface ArchiveState {
  asset: string
  kept: KeptOriginal
  /** the local archive while it is there, else null */
  local: string | null
  bytes: number
  fate: ArchiveFate
}

export async function findArchives(config: Config, name: string): Promise<ArchiveState[]> {
  const out: ArchiveState[] = []
  for (const k of await findKeptOriginals(config.backupDir, name)) {
    const info = (await readBackupInfo(nodeAssetFs, path.join(k.workDir, 'backup.json'))) as
      (BackupInfo & ArchiveFate) | null
    if (!info?.archive) continue
    // the archive as recorded, in the run's own dir of backupDir (root's alone), a plain file
    const inRun = path.dirname(info.archive) === k.workDir
    const st = inRun ? await lstat(info.archive).catch(() => null) : null
    out.push({
      asset: name,
      kept: k,
      // still there after its removal was recorded (a crash between the two): removed again
      local: st?.isFile() ? info.archive : null,
      bytes: info.archiveBytes,
      fate: {
        ...(info.remoteArchive ? { remoteArchive: info.remoteArchive } : {}),
        ...(info.archiveRemovedAt ? { archiveRemovedAt: info.archiveRemovedAt } : {}),
      },
    })
  }
  return out
}

export type ArchiveAction =
  { action: 'move' | 'remove'; since: string } | { action: 'keep'; why: string } | null

/** Pure: what becomes of a run's local archive now (null: it is not in backupDir any more). */
export function archiveAction(
  a: Pick<ArchiveState, 'local' | 'kept'> & { fate?: ArchiveFate },
  asset: Pick<AssetConfig, 'keepBackup' | 'backupTo'>,
  assetName: string,
  now: Date,
): ArchiveAction {
  if (!a.local) return null
  // recorded as moved or removed, yet still here: a run stopped between the record and the unlink
  if (a.fate?.archiveRemovedAt) return { action: 'remove', since: a.fate.archiveRemovedAt }
  if (a.kept.revertedAt) {
    return {
      action: 'keep',
      why: `the migration was reverted (${a.kept.revertedAt}): the archive stays until removed by hand`,
    }
  }
  if (!a.kept.removedAt) {
    return {
      action: 'keep',
      why: `kept while the original ${a.kept.original} is (until ${a.kept.keepUntil}; then \`migrate-assets ${assetName} --finalize\` or prune removes it, and the archive after keepBackup)`,
    }
  }
  const due = Date.parse(a.kept.removedAt) + asset.keepBackup
  if (!Number.isFinite(due) || due > now.getTime()) {
    return {
      action: 'keep',
      why: `the original went ${a.kept.removedAt}; the archive stays until ${new Date(due).toISOString()} (keepBackup)`,
    }
  }
  return { action: asset.backupTo === 'remote' ? 'move' : 'remove', since: a.kept.removedAt }
}

/** Where a run's archive goes on the mount (backupTo: remote), relative to the mount. */
export function remoteArchiveRel(assetName: string, workDir: string, archive: string): string {
  return [ARCHIVES_DIR, assetName, path.basename(workDir), path.basename(archive)].join('/')
}

/**
 * Verifies the destination against the manifest on the remote again, then moves the archive onto
 * the remote or removes it, and records it in backup.json. Throws (nothing removed) when the
 * migration does not stand any more or the destination does not hold every file.
 */
export async function settleArchive(
  config: Config,
  assetName: string,
  workDir: string,
  now: Date,
): Promise<{ action: 'moved' | 'removed'; verifiedBy: string; remotePath?: string }> {
  const asset = config.assets[assetName]
  if (!asset) throw new Error(`no asset ${assetName} in the config`)
  const a = (await findArchives(config, assetName)).find((x) => x.kept.workDir === workDir)
  if (!a) throw new Error(`no archive of ${assetName} recorded in ${workDir}`)
  const what = archiveAction(a, asset, assetName, now)
  if (!what || what.action === 'keep') {
    throw new Error(what ? what.why : 'the archive is not in backupDir any more')
  }
  if (a.fate.archiveRemovedAt) {
    // its move or removal was recorded (and verified) by an earlier run that stopped short
    await unlink(a.local!)
    return {
      action: a.fate.remoteArchive ? 'moved' : 'removed',
      verifiedBy: a.fate.remoteArchive?.verifiedBy ?? 'recorded by an earlier run',
    }
  }
  const link = await readlink(asset.source).catch(() => null)
  if (link !== asset.dest) {
    throw new Error(`${asset.source} is not the symlink to ${asset.dest}: the archive stays`)
  }
  // a mount that does not answer is never touched in-process (lib/host/mountprobe.ts)
  const hung = await hungMountOf({ dest: asset.dest, original: asset.dest })
  if (hung) throw new Error(hung)
  const manifest = await readManifest(path.join(workDir, 'manifest.json'))
  const quiet = createOutput({ json: true, quiet: true })
  const mounts = await readMountinfo()
  const entry = mounts.filter((m) => m.mountPoint === asset.mount).at(-1) ?? null
  const spec = asset.remote ?? (entry ? remoteOfMount(entry) : null)
  const remote = spec ? await remoteInfo(spec, asset.mount) : null
  const progress = () => ({ tick: () => {}, done: () => {} })
  // the copy on the remote is about to be the only one: every file, size and hash, again
  const verifiedBy = await verifyDestination({
    entries: manifest.entries,
    dest: asset.dest,
    mount: asset.mount,
    remote,
    // the migration finished long ago: nothing is still uploading, a short look is enough
    uploadTimeoutMs: Math.min(asset.uploadTimeout, REVERIFY_MS),
    out: quiet,
    progress,
  })
  const infoFile = path.join(workDir, 'backup.json')
  const info = (await readBackupInfo(nodeAssetFs, infoFile)) as BackupInfo & ArchiveFate
  const local = a.local!
  if (what.action === 'move') {
    const rel = remoteArchiveRel(assetName, workDir, local)
    const hashes = await copyOntoMount(local, asset.mount, rel)
    const size = (await lstat(local)).size
    // on the remote, not only in the mount's cache, with the same bytes
    const expected: ManifestEntry = {
      path: path.posix.basename(rel),
      kind: 'file',
      size,
      mode: 0o600,
      mtimeMs: 0,
      uid: 0,
      gid: 0,
      hashes,
    }
    let by = 'sha256 read back through the mount'
    if (remote) {
      await waitForRemote({
        remotePath: remoteJoin(remote.spec, path.posix.dirname(rel)),
        display: `${remote.display} (${path.posix.dirname(rel)})`,
        expected: [expected],
        ...(remote.hash ? { hash: remote.hash } : {}),
        timeoutMs: asset.uploadTimeout,
        intervalMs: 2000,
      })
      by = remote.hash ? `rclone ${remote.hash} on the remote` : 'rclone size on the remote'
    }
    const back = await hashFile(path.join(asset.mount, rel), ['sha256'])
    if (back.sha256 !== hashes.sha256) {
      throw new Error(`the archive read back from ${asset.mount} differs: the local one stays`)
    }
    info.remoteArchive = {
      path: path.join(asset.mount, rel),
      remote: remote?.display ?? asset.mount,
      bytes: size,
      verifiedBy: `${by}${remote ? ' + sha256 read back through the mount' : ''}`,
      at: now.toISOString(),
    }
  }
  info.archiveRemovedAt = now.toISOString()
  // recorded before the removal: a crash between leaves a record of an archive that is still
  // there (found again as gone-or-not by lstat), never a removed archive recorded as present
  await writeFileDurable(infoFile, JSON.stringify(info, null, 2) + '\n', { mode: 0o600 })
  await unlink(local)
  return {
    action: what.action === 'move' ? 'moved' : 'removed',
    verifiedBy,
    ...(info.remoteArchive ? { remotePath: info.remoteArchive.path } : {}),
  }
}

const ALGOS: HashName[] = ['sha256', 'md5', 'sha1']

async function hashFile(
  file: string,
  algos: HashName[],
): Promise<Partial<Record<HashName, string>>> {
  const fh = await open(file, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NOCTTY)
  try {
    const hs = algos.map((a) => [a, createHash(a)] as const)
    for await (const chunk of fh.createReadStream({ autoClose: false })) {
      for (const [, h] of hs) h.update(chunk as Buffer)
    }
    return Object.fromEntries(hs.map(([a, h]) => [a, h.digest('hex')]))
  } finally {
    await fh.close()
  }
}

/**
 * Copies the archive (root's, in backupDir) onto the mount at rel, through directories opened by
 * descriptor (a link planted on the mount is never followed), a new file (O_EXCL), fsync'ed.
 * Returns its hashes.
 */
async function copyOntoMount(
  local: string,
  mount: string,
  rel: string,
): Promise<Partial<Record<HashName, string>>> {
  const dir = path.posix.dirname(rel)
  const name = path.posix.basename(rel)
  const tree = await Tree.below(mount, dir, { create: true })
  try {
    return await tree.withDir('', async (d) => {
      if (await d.lstat(name)) await d.unlink(name) // a torn earlier try: ours, written again
      const out = await d.createFile(name, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600)
      const src = await open(local, fsc.O_RDONLY | fsc.O_NOFOLLOW)
      const hs = ALGOS.map((a) => [a, createHash(a)] as const)
      try {
        for await (const chunk of src.createReadStream({ autoClose: false })) {
          const b = chunk as Buffer
          for (const [, h] of hs) h.update(b)
          let off = 0
          while (off < b.length) off += (await out.write(b, off)).bytesWritten
        }
        await out.sync()
      } finally {
        await src.close()
        await out.close()
      }
      return Object.fromEntries(hs.map(([a, h]) => [a, h.digest('hex')]))
    })
  } finally {
    await tree.close()
  }
}
