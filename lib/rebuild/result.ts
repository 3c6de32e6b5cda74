/**
 * The JSON shapes of rebuild, rollback and update (shipshape.rebuild/1, shipshape.rollback/1,
 * shipshape.update/1), their operations, and the options the three commands take.
 */
import type { ShipshapeError } from '../errors.js'
import type { RunFlags, RunOptions, RunSummary } from '../runbook/index.js'
import type { Refusal } from '../shared/refusal.js'
import type { RebuildFacts } from './context.js'
import type { BuildFiles } from './records.js'

export const REBUILD_OPERATION = 'rebuild'
export const ROLLBACK_OPERATION = 'rollback'
export const UPDATE_OPERATION = 'update'
export type Operation =
  typeof REBUILD_OPERATION | typeof ROLLBACK_OPERATION | typeof UPDATE_OPERATION
export const OPERATIONS: Operation[] = [REBUILD_OPERATION, ROLLBACK_OPERATION, UPDATE_OPERATION]
/** The JSON shape of each operation's result (`update --check` prints update's). */
export const SCHEMAS = {
  rebuild: 'shipshape.rebuild/1',
  rollback: 'shipshape.rollback/1',
  update: 'shipshape.update/1',
} as const satisfies Record<Operation, string>

export interface BackupImage {
  /** repo:shipshape-prev-<stamp> or repo:shipshape-backup-<stamp> */
  tag: string
  id: string
  kind: 'image' | 'commit'
  created: string
  sizeBytes: number
  /** the image the service ran when it was made (a prev tag: its own id); null: not known */
  source: string | null
  /** build files saved with this image: when, and how they were found (records.ts) */
  files?: { savedAt: string; origin: BuildFiles['origin'] } | null
}

export interface RebuildResult {
  schema: (typeof SCHEMAS)[Operation]
  service: string
  kind: 'compose' | 'container'
  outcome:
    | 'rebuilt'
    | 'switched'
    | 'updated'
    | 'up-to-date'
    | 'checked'
    | 'already-there'
    | 'listed'
    | 'dry-run'
    | 'cancelled'
    | 'refused'
    | 'rolled-back'
    | 'needs-person'
  /** ref: the service's tag; from: the image it ran; to: the image the run put it on */
  image: { ref: string | null; from: string | null; to: string | null }
  /** rebuild: the backups made; rollback --list: every backup of the service */
  backups: BackupImage[] | { tag: string; id: string; kind: 'image' | 'commit' }[]
  /** build and compose output */
  log: string | null
  containers: string[]
  health: {
    ok: boolean
    attempts: number
    checks: { kind: string; target: string; ok: boolean; detail: string }[]
    /** ms the checks held after they first passed */
    heldMs: number
    /** what broke the hold, when it broke */
    broke?: string
  } | null
  /** ms: the build, the recreate, and the health gate (recreate done → healthy or failed) */
  timings: { buildMs: number | null; recreateMs: number | null; gateMs: number | null }
  /** a new image that failed, left untagged for a person to look at (docker image prune removes it) */
  failedImage: string | null
  /** rebuild: the image's size before and after, and what the rebuild saved (negative: grew) */
  size?: { beforeBytes: number; afterBytes: number | null; savedBytes: number | null }
  /**
   * the build files of the image the run went to: which were used for compose, how they differ
   * from the files on disk, and (rollback --restore-files) which were written back
   */
  files?: RebuildFacts['files'] | null
  /** update: the reference pulled and what the registry said before the pull */
  update?: {
    ref: string
    /** the digest the registry gives the reference now (null: it could not be asked) */
    remoteDigest: string | null
    /** the digests the running image was pulled or pushed as */
    localDigests: string[]
    newer: boolean | null
  }
  /** update --check: one line per service */
  checks?: UpdateCheck[]
  /** rollback --list: every image with build files saved, newest first */
  buildFiles?: { imageId: string; savedAt: string; origin: BuildFiles['origin']; files: string[] }[]
  warnings: string[]
  journal: string | null
  steps: RunSummary['steps']
  refusals?: Refusal[]
  error?: string
}

/** update --check / --auto: what the registry says about one service's image. */
export interface UpdateCheck {
  service: string
  mode: 'off' | 'notify' | 'apply'
  /** the reference pulled by an update */
  ref: string | null
  /** the image the service runs */
  runs: string | null
  remoteDigest: string | null
  /** the registry has another image under ref; null: unknown (see error) */
  newer: boolean | null
  error?: string
  /** --auto, mode apply, newer: how its update ended */
  outcome?: RebuildResult['outcome']
  exitCode?: number
}

/** The runbook's flags and questions, and what rebuild, rollback and update add. */
export interface RebuildOptions extends RunFlags, Pick<RunOptions, 'confirm' | 'now'> {
  noCache?: boolean
  /** rollback: a backup tag (shipshape-prev-…, repo:tag) or an image id */
  to?: string
  /** rollback: write the build files saved with the target image back to disk (disk files saved aside first) */
  restoreFiles?: boolean
}

/** A command's end: the result to render, and the error that decides the exit code (none: 0). */
export interface RebuildOutcome {
  result: RebuildResult
  error?: ShipshapeError
}

/** A result that ran no runbook (listed, checked): the shape's fields, empty. */
export function resultOf(
  o: Pick<RebuildResult, 'schema' | 'service' | 'kind' | 'outcome'> & Partial<RebuildResult>,
): RebuildResult {
  const { schema, service, kind, outcome, ...rest } = o
  // schema first in the JSON, as in every other result of the shape
  return {
    schema,
    service,
    kind,
    outcome,
    image: { ref: null, from: null, to: null },
    backups: [],
    log: null,
    containers: [],
    health: null,
    timings: { buildMs: null, recreateMs: null, gateMs: null },
    failedImage: null,
    warnings: [],
    journal: null,
    steps: [],
    ...rest,
  }
}
