/**
 * What every `migrate-assets NAME --revert` step gets: the asset, the finished migration it
 * undoes (its work dir in backupDir: manifest.json, original.json), the revert run's fixed paths
 * (named by the revert's own stamp, noted by its first step: a --resume/--rollback finds the
 * same staging directory), where the bytes come back from, and the side-effect ports (ports.ts).
 */
import path from 'node:path'
import type { Output } from '../cli/output.js'
import type { AssetConfig, HealthConfig } from '../config/index.js'
import type { Engine } from '../docker/engine.js'
import type { RevertFrom } from './revert-policy.js'
import type { ManifestOnce } from './context.js'
import type { AssetPorts } from '../assets/ports.js'

export interface RevertPaths {
  source: string
  dest: string
  mount: string
  /** the finished migration's work dir: <backupDir>/<name>/<its stamp>/ */
  migration: string
  /** its manifest (sha256 of every file at the migration) */
  migrationManifest: string
  /** where that migration kept the original: <source>.shipshape-<its stamp> */
  original: string
  /** the manifest the bytes brought back are held to (written by the stage step) */
  expected: string
  /** <source>.shipshape-revert-<stamp>: the bytes brought back, beside the source */
  staging: string
  /** <source>.shipshape-link-<stamp>: the symlink moved aside by the swap (kept for undo) */
  linkAside: string
  /** <stateDir>/migrate-assets/<name>-revert-<stamp>.copied: the copy back's resume log */
  doneLog: string
  /** <migration>/reverted.json: the migration is reverted (finalize and prune leave it) */
  record: string
}

export function revertPaths(o: {
  name: string
  asset: AssetConfig
  stamp: string
  migration: string
  stateDir: string
}): RevertPaths {
  const { source, dest, mount } = o.asset
  return {
    source,
    dest,
    mount,
    migration: o.migration,
    migrationManifest: path.join(o.migration, 'manifest.json'),
    original: `${source}.shipshape-${path.basename(o.migration)}`,
    expected: path.join(o.migration, `revert-${o.stamp}.manifest.json`),
    staging: `${source}.shipshape-revert-${o.stamp}`,
    linkAside: `${source}.shipshape-link-${o.stamp}`,
    doneLog: path.join(o.stateDir, 'migrate-assets', `${o.name}-revert-${o.stamp}.copied`),
    record: path.join(o.migration, 'reverted.json'),
  }
}

export interface RevertContext extends AssetPorts {
  name: string
  asset: AssetConfig
  /** the revert run's UTC stamp */
  stamp: string
  paths: RevertPaths
  /** where the bytes come back from (decided by the preflight, noted by the stage step) */
  from: RevertFrom
  /** the destination changed since the migration: the stage step hashes it as it is now */
  destChanged: boolean
  /** remove the copy on the mount once everything is healthy (the last step) */
  removeCopy: boolean
  /** running containers to stop and start again (on resume: the ones the stop step noted) */
  restart: { id: string; name: string }[]
  health: HealthConfig | undefined
  engine: Engine
  out: Output
  /** the manifest the bytes brought back are held to (paths.expected): written by the stage step */
  expected: ManifestOnce
  facts: RevertFacts
}

export interface RevertFacts {
  verified?: number
  copied?: number
  health?: string
  copyRemoved?: boolean
  copyLeftovers?: string[]
}
