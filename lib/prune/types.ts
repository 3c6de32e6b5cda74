/**
 * The prune planner's input and output. planPrune() (plan.ts) is pure: inventory + policy + now
 * → plan; the executor (execute.ts) carries the plan out against the engine.
 */
import type { Config } from '../config/index.js'

export type PrunePolicy = Config['prune']

export interface PruneImage {
  id: string
  /** repo:tag references ('<none>:<none>' never appears: an untagged image has tags []) */
  tags: string[]
  createdAt: string
  /** the image's full size */
  sizeBytes: number
  /** bytes shared with other images (null: not computed) — size − shared is what removal frees */
  sharedBytes: number | null
  labels: Record<string, string>
  /** the local image it was built on ('' when none): a parent goes only after its children */
  parentId: string
  /** when it was last tagged — pulled, built, tagged — on this host (Metadata.LastTagTime); null: unknown */
  arrivedAt: string | null
}

export interface PruneContainer {
  id: string
  name: string
  imageId: string
  /** 'running' | 'paused' | 'restarting' | 'exited' | 'created' | 'dead' | 'removing' */
  state: string
  createdAt: string
  /** when it stopped (State.FinishedAt); null when unknown or never ran */
  finishedAt: string | null
  sizeRwBytes: number | null
  labels: Record<string, string>
}

export interface PruneVolume {
  name: string
  sizeBytes: number | null
  /** containers (running or stopped) using it; null when the engine did not count */
  refCount: number | null
  labels: Record<string, string>
  createdAt: string | null
}

/**
 * Things a run still needs: the values an unfinished journal (or the last rollback of a service)
 * names — image ids and tags, container ids and names. What matches one is never pruned.
 */
export interface PrunePin {
  values: string[]
  /** why it stays, with the command that finishes the run when there is one */
  reason: string
}

export interface PruneBuildCache {
  id: string
  sizeBytes: number
  inUse: boolean
  shared: boolean
  createdAt: string | null
  lastUsedAt: string | null
}

/** An original directory migrate-assets kept aside (see lib/assets/finalize.ts). */
export interface PruneOriginal {
  asset: string
  path: string
  bytes: number
  keepUntil: string
  /** null when it may go; else why it stays (the migration no longer stands, …) */
  blocker: string | null
}

/** A migration's backup archive still in backupDir (lib/assets/archive.ts). */
export interface PruneArchive {
  asset: string
  /** the local archive file */
  path: string
  /** the run's work dir (names the run for the executor) */
  workDir: string
  bytes: number
  /** move: onto the remote (backupTo: remote); remove; keep: why it stays */
  action: 'move' | 'remove' | 'keep'
  /** keep: why; move/remove: since when the original is gone */
  note: string
}

export interface PruneInventory {
  images: PruneImage[]
  containers: PruneContainer[]
  volumes: PruneVolume[]
  buildCache: PruneBuildCache[]
  /** the filesystem of the engine's data root; null when unknown (remote engine) */
  disk: { usedBytes: number; totalBytes: number } | null
  /** image id → last time a container of it started (recorded by `schedule` and the report); ISO */
  lastUsed: Record<string, string>
  /** volume name → last time a container using it was seen running or stopped; ISO */
  lastUsedVolumes: Record<string, string>
  /** compose project → a configured service of it (config.services): its volumes stay */
  configuredProjects: Record<string, string>
  pins: PrunePin[]
  originals: PruneOriginal[]
  archives: PruneArchive[]
}

export type PruneRule =
  | 'stopped-container'
  | 'dangling-image'
  | 'unused-image'
  | 'old-tag'
  | 'old-backup'
  | 'build-cache'
  | 'disk-pressure'
  | 'unused-volume'
  | 'kept-original'
  | 'migrated-archive'

/** every kind of thing prune removes, in the order the plan lists what it keeps */
export const CANDIDATE_KINDS = [
  'container',
  'image',
  'tag',
  'build-cache',
  'volume',
  'original',
  'archive',
] as const

export type CandidateKind = (typeof CANDIDATE_KINDS)[number]

export interface Candidate {
  /** image: remove the image (by id); tag: remove one reference (the image stays if others name it) */
  kind: CandidateKind
  /** container name, image reference (or short id), volume name, path, 'build cache' */
  name: string
  /** container/image id, volume name, original path; build cache: '' */
  id: string
  /** bytes the removal is expected to free (an untag that leaves other tags: 0) */
  sizeBytes: number
  rule: PruneRule
  /** one line for a person: why this goes */
  reason: string
  /** image: the tags it had when planned; the removal takes these and refuses a newer one */
  tags?: string[]
}

export interface Keep {
  kind: CandidateKind
  name: string
  id: string
  /** why a thing a rule would have taken stays: in use, protected, newest backup, … */
  reason: string
}

export interface PrunePlan {
  candidates: Candidate[]
  /** things a rule matched but that stay, with why (shown with --verbose / in the JSON) */
  kept: Keep[]
  totals: {
    count: number
    bytes: number
    byKind: Partial<Record<CandidateKind, { count: number; bytes: number }>>
  }
  /** build cache: the keep-storage to prune down to (bytes), when the build-cache rule applies */
  buildCacheKeepBytes: number | null
  /** disk use before and the projected use after the plan (null when unknown) */
  disk: { usedBytes: number; totalBytes: number; projectedBytes: number } | null
}
