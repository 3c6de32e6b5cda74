import type { ContainerSummary, EngineInfo, ImageSummary } from '../docker/types.js'
import type { Finding } from '../scan/rules.js'

export const REPORT_SCHEMA = 'shipshape.report/1'

export type Risk = 'low' | 'medium' | 'high'

export interface Recommendation {
  kind: string
  target: string
  /** null when the saving cannot be known without a deeper look (e.g. before `inspect`). */
  estimatedSavingsBytes: number | null
  risk: Risk
  command: string
  reason: string
}

export interface DiskUsageByType {
  count: number
  active: number
  sizeBytes: number
  reclaimableBytes: number
}

export interface ReportLayer {
  id: string
  createdAt: string
  createdBy: string
  sizeBytes: number
  comment: string
}

export interface ReportImage extends Pick<
  ImageSummary,
  'id' | 'tags' | 'digests' | 'createdAt' | 'sizeBytes' | 'sharedBytes'
> {
  uniqueBytes: number | null
  containers: number
  dangling: boolean
  big: boolean
  /** Every history entry, newest first, as `docker history` lists them. */
  layers: ReportLayer[]
}

export type ReportContainer = Omit<ContainerSummary, 'mounts' | 'labels'> & { running: boolean }

export interface ReportVolume {
  name: string
  driver: string
  sizeBytes: number | null
  refCount: number | null
  inUse: boolean
}

export interface MountedBy {
  container: string
  source: string
  destination: string
  readOnly: boolean
}

export interface PathChild {
  path: string
  depth: number
  sizeBytes: number
  mountedBy: MountedBy[]
}

export interface ReportPath {
  path: string
  exists: boolean
  sizeBytes: number | null
  /** containers whose bind mounts are this path, inside it or above it */
  mountedBy: MountedBy[]
  /** Largest entries one and two levels down, biggest first (config report.top). */
  children: PathChild[]
  /** Filesystems mounted below the path: listed, not measured. */
  mounts: { path: string; fsType: string; source: string }[]
  warnings: string[]
}

export interface Report {
  schema: typeof REPORT_SCHEMA
  generatedAt: string
  host: string
  configSource: string
  engine: EngineInfo
  thresholds: { bigImageBytes: number; bigAssetsBytes: number; top: number }
  disk: {
    images: DiskUsageByType
    containers: DiskUsageByType
    volumes: DiskUsageByType
    buildCache: DiskUsageByType
    totalBytes: number
    reclaimableBytes: number
  }
  images: ReportImage[]
  containers: ReportContainer[]
  volumes: ReportVolume[]
  paths: ReportPath[]
  recommendations: Recommendation[]
  warnings: string[]
  growth?: Growth
  /**
   * services with update: notify | apply: whether the registry has a newer image than the one
   * that runs (asked through the engine, never pulled); absent when no service asks
   */
  updates?: {
    service: string
    mode: string
    ref: string | null
    runs: string | null
    remoteDigest: string | null
    newer: boolean | null
    error?: string
  }[]
  /**
   * every finished migrate-assets run of a configured asset: where its bytes are (the original
   * kept on the local disk, the backup archive local or on the remote, the copy on the mount) and
   * what the local disk gets back; absent when no asset was migrated
   */
  migrations?: MigratedAsset[]
  /** only with --deep: each image over report.bigImage, scanned (see shipshape.inspect/1) */
  deep?: { image: string; id: string; wastedBytes: number; findings: Finding[] }[]
}

export interface Growth {
  previousFile: string
  previousAt: string
  disk: { images: number; containers: number; volumes: number; buildCache: number; total: number }
  images: { ref: string; previousBytes: number; currentBytes: number; deltaBytes: number }[]
  newImages: { ref: string; sizeBytes: number }[]
  removedImages: { ref: string; sizeBytes: number }[]
  paths: { path: string; previousBytes: number; currentBytes: number; deltaBytes: number }[]
}

export interface MigratedAsset {
  asset: string
  /** the run's stamp */
  run: string
  source: string
  dest: string
  /** the original kept aside on the local disk; null once finalized */
  original: { path: string; bytes: number | null; keepUntil: string } | null
  /** where the backup archive is: local (backupDir), remote (moved onto the mount), removed */
  archive: { where: 'local' | 'remote' | 'removed'; path: string | null; bytes: number } | null
  /** local bytes the lifecycle still frees (original + local archive) */
  reclaimableBytes: number
  /** one line: what happens next */
  next: string
}
