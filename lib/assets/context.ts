/**
 * What every migrate-assets step gets: the asset, the run's fixed paths, the facts of the
 * preflight, and the side-effect ports (engine, output, clock). Paths are fixed by the run's
 * stamp, so a --resume or --rollback (same stamp, read from the journal) finds the same files.
 * Facts one step leaves for the next live in files of the run's workDir (backup.json,
 * manifest.json), never only in memory.
 */
import path from 'node:path'
import type { Output } from '../cli/output.js'
import type { AssetConfig, HealthConfig } from '../config/index.js'
import type { Engine } from '../docker/engine.js'
import type { Ident } from '../host/safefs.js'
import type { ContainerBinding } from '../shared/mount.js'
import type { RemoteInfo } from './preflight.js'
import type { ManifestEntry, Progress } from '../shared/manifest-types.js'

export interface MigrateContext {
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
  /** a progress reporter for a phase of `total` bytes (a bar on a TTY, nothing otherwise) */
  progress(label: string, total: number): { tick: Progress; done(): void }
  now(): Date
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
