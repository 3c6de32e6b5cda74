/**
 * What every migrate-assets step gets: the asset, the run's fixed paths, the facts of the
 * preflight, and the side-effect ports (engine, output, clock, fs, backup, remote, health gate:
 * ports.ts). Paths are fixed by the run's stamp, so a --resume or --rollback (same stamp, read
 * from the journal) finds the same files. Facts one step leaves for the next live in files of
 * the run's workDir (backup.json, manifest.json), never only in memory; the manifest is read
 * (and validated) once per run and carried in `manifest`.
 */
import path from 'node:path'
import type { Output } from '../cli/output.js'
import type { AssetConfig, HealthConfig } from '../config/index.js'
import type { Engine } from '../docker/engine.js'
import type { Ident } from '../host/safefs.js'
import type { ContainerBinding } from '../shared/mount.js'
import type { RemoteInfo } from '../assets/preflight.js'
import type { AssetFs, AssetPorts } from '../assets/ports.js'
import type { Manifest, ManifestEntry } from '../shared/manifest-types.js'

export interface MigrateContext extends AssetPorts {
  name: string
  asset: AssetConfig
  /** UTC stamp of the run ('20261125T150405Z'): names its backup dir and the aside directory */
  stamp: string
  paths: MigratePaths
  /** the source tree as the preflight walked it; null when resuming past the swap */
  walked: ManifestEntry[] | null
  /** the source directory as the preflight walked it (device, inode); null when not walked */
  sourceIdent: Ident | null
  remote: RemoteInfo | null
  bindings: ContainerBinding[]
  /** running containers to stop and start again (on resume: the ones the stop step noted) */
  restart: { id: string; name: string }[]
  health: HealthConfig | undefined
  uploadTimeoutMs: number
  engine: Engine
  out: Output
  /** the run's manifest.json: read and validated once, set by the backup step that writes it */
  manifest: ManifestOnce
  /** facts for the result (--json), filled as steps run */
  facts: MigrateFacts
}

export interface MigrateFacts {
  compression?: 'none' | 'zstd' | 'gzip'
  archiveBytes?: number
  copied?: number
  skipped?: number
  modesKept?: boolean
  verifiedBy?: string
  uploadWaitMs?: number
  health?: string
  seenBy?: string[]
}

export interface MigratePaths {
  source: string
  dest: string
  /** <backupDir>/<name>/<stamp>/ */
  workDir: string
  manifest: string
  /** what the backup step wrote: { archive, compression, archiveBytes } */
  backupInfo: string
  /** <stateDir>/migrate-assets/<name>-<stamp>.copied: the copy's resume log */
  doneLog: string
  /** <source>.shipshape-<stamp>: the original, renamed aside on its own filesystem */
  aside: string
}

export function migratePaths(opts: {
  name: string
  asset: AssetConfig
  stamp: string
  backupDir: string
  stateDir: string
}): MigratePaths {
  const workDir = path.join(opts.backupDir, opts.name, opts.stamp)
  return {
    source: opts.asset.source,
    dest: opts.asset.dest,
    workDir,
    manifest: path.join(workDir, 'manifest.json'),
    backupInfo: path.join(workDir, 'backup.json'),
    doneLog: path.join(opts.stateDir, 'migrate-assets', `${opts.name}-${opts.stamp}.copied`),
    aside: `${opts.asset.source}.shipshape-${opts.stamp}`,
  }
}

/** A manifest file read and validated once per run (the steps after the backup all hold to it). */
export interface ManifestOnce {
  get(): Promise<Manifest>
  /** what is known without reading: null when not read (or written) yet */
  peek(): Manifest | null
  set(m: Manifest): void
}

export function manifestOnce(fs: Pick<AssetFs, 'readManifest'>, file: string): ManifestOnce {
  let known: Manifest | null = null
  return {
    async get() {
      known ??= await fs.readManifest(file)
      return known
    },
    peek: () => known,
    set(m) {
      known = m
    },
  }
}
