/**
 * Before a mutating command starts: who else is at it, and is there an unfinished run of the same
 * operation on the same target? One rule for every runbook command (migrate-assets, rebuild,
 * rollback): a new run is refused while another holds the host lock or while an unfinished journal
 * of the same operation and target exists; --resume/--rollback pick that journal up.
 */
import { RefusedError } from '../errors.js'
import { assertLockFree } from '../host/lock.js'
import { findUnfinishedJournals, type JournalState } from './journal.js'

export interface PriorRunOptions {
  stateDir: string
  /** the operations whose unfinished runs on this target block a new run; the first is this one */
  operations: string[]
  /** the journal's args key naming the target, e.g. 'asset' or 'service' */
  key: string
  target: string
  dryRun?: boolean
  resume?: boolean
  rollback?: boolean
  /** the command a person runs to continue, e.g. 'shipshape rebuild whisperx' */
  command: (operation: string) => string
}

/**
 * The journal --resume/--rollback continue (undefined for a new run, or when there is none).
 * Throws RefusedError (exit 4) when the lock is held or an unfinished run blocks a new one.
 */
export async function priorRun(o: PriorRunOptions): Promise<JournalState | undefined> {
  const unfinished: JournalState[] = []
  for (const op of o.operations) {
    const found = await findUnfinishedJournals(o.stateDir, op)
    unfinished.push(...found.filter((j) => j.args[o.key] === o.target))
  }
  const continuing = Boolean(o.resume || o.rollback)
  // who else is at it comes before what the host looks like: a running operation changes it
  if (!o.dryRun) await assertLockFree(o.stateDir)
  const own = unfinished.filter((j) => j.operation === o.operations[0])
  const other = unfinished.find((j) => j.operation !== o.operations[0])
  if (other && !o.dryRun) {
    throw new RefusedError(
      `an unfinished ${other.operation} run of ${o.target} (started ${other.startedAt} by pid ${other.pid}) is in ${other.file}`,
      `finish it first: ${o.command(other.operation)} --resume, or undo it with --rollback`,
    )
  }
  if (continuing) return own[0]
  if (own[0] && !o.dryRun) {
    const j = own[0]
    throw new RefusedError(
      `an unfinished ${j.operation} run of ${o.target} (started ${j.startedAt} by pid ${j.pid}) is in ${j.file}`,
      'run it again with --resume to finish it, or with --rollback to undo it',
    )
  }
  return undefined
}
