/**
 * What every rebuild/rollback step gets: the service, its image reference, the images it moves
 * between, the run's fixed paths, and the side-effect ports. Facts a step leaves for a later one
 * (or for --resume/--rollback) are noted in the journal; the context is rebuilt from those notes
 * first and from the live engine only for what no note holds.
 */
import path from 'node:path'
import type { Output } from '../cli/output.js'
import type { HealthConfig, ServiceConfig } from '../config/index.js'
import type { ComposeTarget, composeBuild, composeUp } from '../docker/compose.js'
import type { Engine } from '../docker/engine.js'
import type { HealthResult } from '../health/check.js'
import type { RunLoggedOptions, RunLoggedResult } from '../host/run.js'
import type { BackupRecord, BuildFiles, BuildFileSource, FileDiff } from './records.js'

/** 'app', 'app:1.2', 'reg:5000/team/app:tag' → repo and tag; null for a digest or an image id. */
export function parseImageRef(ref: string): { repo: string; tag: string } | null {
  if (!ref || ref.includes('@') || /^(sha256:)?[0-9a-f]{12,64}$/.test(ref)) return null
  const slash = ref.lastIndexOf('/')
  const colon = ref.lastIndexOf(':')
  if (colon > slash) return { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) }
  return { repo: ref, tag: 'latest' }
}

export interface RebuildPaths {
  /** <backupDir>/rebuild/<service>/<stamp>/: copies of the Dockerfile and compose file */
  workDir: string
  /** <stateDir>/logs/<operation>-<service>-<stamp>.log: build and compose output */
  log: string
}

export function rebuildPaths(o: {
  operation: string
  service: string
  stamp: string
  backupDir: string
  stateDir: string
}): RebuildPaths {
  return {
    workDir: path.join(o.backupDir, 'rebuild', o.service, o.stamp),
    log: path.join(o.stateDir, 'logs', `${o.operation}-${o.service}-${o.stamp}.log`),
  }
}

export interface RebuildContext {
  operation: 'rebuild' | 'rollback' | 'update'
  service: string
  config: ServiceConfig
  kind: 'compose' | 'container'
  /** the tag the service runs, e.g. whisperx_whisperx:latest */
  imageRef: string
  repo: string
  tag: string
  /** UTC stamp of the run; names the backup tags, the work dir, the log, the aside container */
  stamp: string
  paths: RebuildPaths
  /** the image the service's containers run before the run */
  fromImageId: string
  /** what imageRef named before the run (usually fromImageId) */
  refWasId: string
  /** update: the reference pulled (the service's own tag, or the one --to names) */
  pullRef?: string
  /** the image the run puts the service on (rebuild: set by the build step) */
  toImageId: string | null
  /** the service's containers before the run */
  containers: { id: string; name: string }[]
  /** compose services: how to call compose */
  compose: ComposeTarget | null
  /** plain containers: the build (context dir, Dockerfile path, --network) */
  build: { context: string; dockerfile: string; network?: string } | null
  /** build inputs copied into workDir by the backup step (absolute sources; missing ones skipped) */
  filesToKeep: BuildFileSource[]
  /** where backup records (stateDir) and saved build files (backupDir) live */
  stateDir: string
  backupDir: string
  /**
   * compose said the files on disk make the config the running container was made from (config
   * hash): true/false; null when it could not say, or a plain container
   */
  configMatchesRunning: boolean | null
  /** rollback --restore-files: the target's build files are written back to disk */
  restoreFiles?: boolean
  health: HealthConfig
  /** the health check passed before the run: a rollback that ends unhealthy is then a failure */
  healthyBefore: boolean
  noCache: boolean
  /** environment for a `docker build` child: the engine's address, no health-check secrets */
  buildEnv: NodeJS.ProcessEnv
  dockerCli: string
  engine: Engine
  out: Output
  now(): Date
  facts: RebuildFacts
  /** aborted on the first SIGINT/SIGTERM: a build in progress is stopped (then undone) */
  signal: AbortSignal
  /** every side effect a step has besides the engine (lib/rebuild/ports.ts: the real ones) */
  ports: RebuildPorts
}

/** The side effects of the rebuild steps other than the engine: fakes in test/unit. */
export interface RebuildPorts {
  compose: RebuildComposePort
  exec: RebuildExecPort
  fs: RebuildFsPort
  clock: RebuildClock
}

/** compose as the steps call it (lib/docker/compose.ts) */
export interface RebuildComposePort {
  buildArgv(t: ComposeTarget, o: { noCache?: boolean }): string[]
  upArgv(t: ComposeTarget): string[]
  build(t: ComposeTarget, o: Parameters<typeof composeBuild>[1]): Promise<void>
  up(t: ComposeTarget, o: Parameters<typeof composeUp>[1]): Promise<void>
  /** how compose is called to run `imageId`: with the files saved with it (rebuild/files.ts) */
  targetFor(c: RebuildContext, imageId: string): Promise<ComposeTarget>
}

/** the process runner (lib/host/run.ts) */
export interface RebuildExecPort {
  show(argv: string[]): string
  runLogged(argv: string[], o: RunLoggedOptions): Promise<RunLoggedResult>
}

/** the files the steps read and write (host/durable.ts, rebuild/records.ts, rebuild/files.ts) */
export interface RebuildFsPort {
  /** creates the directory and every missing parent with `mode`, durably */
  mkdir(dir: string, mode: number): Promise<void>
  /** a file's bytes without following a link; null when there is no regular file */
  readIf(file: string): Promise<Buffer | null>
  writeFile(file: string, data: Buffer, mode: number): Promise<void>
  /** rm -rf */
  removeTree(p: string): Promise<void>
  readBuildFiles(backupDir: string, service: string, imageId: string): Promise<BuildFiles | null>
  /** the run's copies saved as the build files of `imageId` */
  saveRunFiles(
    c: RebuildContext,
    imageId: string,
    origin: BuildFiles['origin'],
  ): Promise<BuildFiles>
  writeBackupRecord(stateDir: string, r: BackupRecord): Promise<void>
  removeBackupRecord(
    stateDir: string,
    service: string,
    stamp: string,
    kind: BackupRecord['kind'],
  ): Promise<void>
  diffBuildFiles(backupDir: string, rec: BuildFiles): Promise<FileDiff[]>
  restoreBuildFiles(o: {
    backupDir: string
    rec: BuildFiles
    stamp: string
    onAside?: (dir: string) => Promise<void>
  }): Promise<{ restored: string[]; asideDir: string | null }>
  unrestoreBuildFiles(aside: string): Promise<void>
}

export interface RebuildClock {
  now(): Date
  /** milliseconds, for durations */
  ms(): number
  sleep(ms: number): Promise<void>
}

export interface RebuildFacts {
  backups: { tag: string; id: string; kind: 'image' | 'commit' }[]
  buildMs?: number
  recreateMs?: number
  health?: HealthResult
  /** containers after the run */
  containers?: string[]
  /** recreate finished → health decided (ms) */
  gateMs?: number
  /** a failed new image, left untagged for a person to look at */
  failedImageId?: string
  backupsKept?: boolean
  /** the build files a compose call of this run used instead of the files on disk */
  filesFrom?: { imageId: string; origin: string; differ: string[] }
  /** the way back ran but did not pass its health check (exit 5) */
  wayBackUnhealthy?: string
  /** rollback: the target's build files against the disk, and what --restore-files wrote */
  files?: {
    imageId: string
    origin: string | null
    diff: { path: string; role: string; state: 'same' | 'changed' | 'missing' }[]
    restored: string[]
    replacedSavedIn: string | null
  }
  /** rollback --restore-files: why the files were not written back (the rollback stands) */
  restoreFailed?: string
  /** rebuild: sizes of the image before and after */
  size?: { beforeBytes: number; afterBytes: number | null; savedBytes: number | null }
}
