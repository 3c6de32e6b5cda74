/**
 * The side-effect ports of the migrate-assets steps (and those of --revert): every file
 * operation a step does goes through `fs`, the backup through `backup`, the check that the bytes
 * reached the remote through `destination`, the health gate through `health`. Steps neither import
 * node:fs nor start a child process: the real ports (nodeAssetPorts) are built once by the command,
 * unit tests hand in fakes (test/unit/migrate-assets/steps.test.ts).
 *
 * The real `fs` is the same code the steps called before: lstat/readlink for what a path is,
 * writeFileDurable for state files (lib/host/durable.ts), trees others can write opened by
 * descriptors (lib/host/safefs.ts through manifest.ts, copy.ts).
 */
import {
  lchown,
  lstat,
  mkdir,
  readFile,
  readlink,
  rename,
  stat,
  symlink,
  unlink,
} from 'node:fs/promises'
import path from 'node:path'
import type { HealthConfig } from '../config/index.js'
import type { Engine } from '../docker/engine.js'
import { waitHealthy, type HealthResult } from '../health/check.js'
import { mkdirDurable, writeFileDurable } from '../host/durable.js'
import { ensurePrivateDir } from '../host/private.js'
import { Dir, errCode, splitRel, type Ident } from '../host/safefs.js'
import { Tree } from '../host/safefs-tree.js'
import { removeTree } from '../host/safefs-remove.js'
import {
  chooseCompression,
  sampleCompressibility,
  verifyBackup,
  writeBackup,
  zstdAvailable,
  type Compression,
} from './backup.js'
import { copyTree, type CopyOptions, type CopyResult } from './copy.js'
import { readBackTree, removeCopy, type RemoveResult } from './copy-back.js'
import { readManifest, walkTree, writeManifest, type WalkResult } from './manifest.js'
import type { Manifest, ManifestEntry, Progress } from '../shared/manifest-types.js'
import { verifyDestination, type VerifyDestinationOptions } from './verify-destination.js'

export type PathKind = 'dir' | 'symlink' | 'missing' | 'other'

/** What a path is, without following it (lstat, readlink). */
export interface PathInfo {
  kind: PathKind
  /** a symlink's target */
  target?: string
  /** a directory's device and inode */
  dev?: bigint
  ino?: bigint
}

export interface AssetFs {
  kindOf(p: string): Promise<PathInfo>
  /** the size of the file at p (followed), null when there is none */
  sizeOf(p: string): Promise<number | null>
  /** a JSON object, null when absent or not JSON */
  readJson(p: string): Promise<Record<string, unknown> | null>
  /** a state file: durable, atomic (lib/host/durable.ts) */
  writeDurable(p: string, text: string): Promise<void>
  /** a directory of ours; no error when it is one already */
  mkdir(p: string, opts: { mode: number; recursive?: boolean }): Promise<void>
  rename(from: string, to: string): Promise<void>
  symlink(target: string, p: string): Promise<void>
  /** removes a file or symlink; absent is fine */
  unlink(p: string): Promise<void>
  /** backupDir checked root's alone (created 0700), then the run's work dir in it, durably */
  makeWorkDir(workDir: string): Promise<void>
  readManifest(file: string): Promise<Manifest>
  writeManifest(file: string, manifest: Manifest): Promise<void>
  walkTree(root: string): Promise<WalkResult>
  copyTree(opts: CopyOptions): Promise<CopyResult>
  removeCopy(opts: Parameters<typeof removeCopy>[0]): Promise<RemoveResult>
  readBackTree(opts: Parameters<typeof readBackTree>[0]): Promise<ManifestEntry[]>
  /** removes the tree at `dir` by descriptors, reached from `from` (a mount's root) when given */
  removeTree(dir: string, from?: string): Promise<{ kept: { path: string; why: string }[] }>
  /** owners as the entries have them (and the root's), by descriptors; the root 0755 */
  putOwners(root: string, entries: readonly ManifestEntry[], rootOwner: Owner): Promise<void>
}

export interface Owner {
  uid: number
  gid: number
}

export interface BackupPort {
  /** the compression the content calls for (a sample of it; zstd when installed) */
  chooseCompression(
    root: string,
    entries: readonly ManifestEntry[],
    rootIdent: Ident | undefined,
  ): Promise<{ compression: Compression; ratio: number }>
  write: typeof writeBackup
  verify: typeof verifyBackup
}

export interface DestinationPort {
  /** every file reached the remote behind the mount (see verify-destination.ts); how it was checked */
  verifyDestination(o: VerifyDestinationOptions): Promise<string>
}

export type HealthGate = (
  h: HealthConfig,
  o: { engine: Engine; containers: string[] },
) => Promise<HealthResult>

/** What every migrate-assets (and --revert) step gets besides its facts. */
export interface AssetPorts {
  fs: AssetFs
  backup: BackupPort
  destination: DestinationPort
  waitHealthy: HealthGate
  progress(label: string, total: number): { tick: Progress; done(): void }
  /** the clock */
  now(): Date
}

async function kindOf(p: string): Promise<PathInfo> {
  try {
    const st = await lstat(p, { bigint: true })
    if (st.isDirectory()) return { kind: 'dir', dev: st.dev, ino: st.ino }
    if (st.isSymbolicLink()) return { kind: 'symlink', target: await readlink(p) }
    return { kind: 'other' }
  } catch (err) {
    if (errCode(err) === 'ENOENT') return { kind: 'missing' }
    throw err
  }
}

/** The real file layer. */
export const nodeAssetFs: AssetFs = {
  kindOf,
  sizeOf: (p) =>
    stat(p).then(
      (st) => st.size,
      () => null,
    ),
  readJson: (p) =>
    readFile(p, 'utf8')
      .then((t) => JSON.parse(t) as Record<string, unknown>)
      .catch(() => null),
  writeDurable: (p, text) => writeFileDurable(p, text),
  async mkdir(p, opts) {
    await mkdir(p, opts).catch(async (err: unknown) => {
      if (errCode(err) !== 'EEXIST' || (await kindOf(p)).kind !== 'dir') throw err
    })
  },
  rename,
  symlink: (target, p) => symlink(target, p),
  unlink: (p) =>
    unlink(p).catch((err: unknown) => {
      if (errCode(err) !== 'ENOENT') throw err
    }),
  async makeWorkDir(workDir) {
    // backupDir is root's alone (lib/host/private.ts): created 0700, refused when others can write
    await ensurePrivateDir(path.dirname(path.dirname(workDir)), 'backupDir')
    await mkdirDurable(workDir, 0o700)
  },
  readManifest,
  writeManifest,
  walkTree,
  copyTree,
  removeCopy,
  readBackTree,
  async removeTree(dir, from) {
    const rel = from === undefined ? '' : path.relative(from, path.dirname(dir))
    if (rel.startsWith('..') || path.isAbsolute(rel)) {
      throw new Error(`${dir} is not below the mount ${from}`)
    }
    const tree = rel === '' ? null : await Tree.below(from!, rel)
    const parent = tree ? tree.root : await Dir.open(from ?? path.dirname(dir))
    try {
      const r = await removeTree(parent, path.basename(dir))
      return { kept: r.kept.map((k) => ({ path: k.path, why: k.why })) }
    } finally {
      if (tree) await tree.close()
      else await parent.close()
    }
  },
  async putOwners(root, entries, owner) {
    const tree = await Tree.open(root)
    try {
      for (const e of entries) {
        const { dir, name } = splitRel(e.path)
        await tree.withDir(dir, (d) => lchown(d.at(name), e.uid, e.gid))
        // chown drops the mode's setuid/setgid bits on files; modes are what copyTree set
      }
      await lchown(tree.root.at(), owner.uid, owner.gid)
      await tree.root.chmod(0o755)
    } finally {
      await tree.close()
    }
  },
}

export const nodeBackupPort: BackupPort = {
  async chooseCompression(root, entries, rootIdent) {
    const sample = await sampleCompressibility(root, entries, { rootIdent })
    return {
      compression: chooseCompression(sample.ratio, await zstdAvailable()),
      ratio: sample.ratio,
    }
  },
  write: writeBackup,
  verify: verifyBackup,
}

/** The real ports, built once per command run. */
export function nodeAssetPorts(o: {
  progress: AssetPorts['progress']
  now: () => Date
}): AssetPorts {
  return {
    fs: nodeAssetFs,
    backup: nodeBackupPort,
    destination: { verifyDestination },
    waitHealthy: (h, c) => waitHealthy(h, c),
    progress: o.progress,
    now: o.now,
  }
}
