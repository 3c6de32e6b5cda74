/**
 * migrate-assets decides in two pure steps, from the facts the preflight gathered (preflight.ts)
 * and the unfinished run's journal notes (`prior`):
 *
 *   priorPathsChanged(prior, asset, step) — before anything is read: an interrupted run goes on
 *     (or back) with the paths it started with, not today's config;
 *   planMigrate(facts, prior) — already migrated, refused (every refusal at once), or run: with
 *     which stamp (the noted one on a resume: the same backup, copy log and aside directory)
 *     and which containers to restart (on a resume: the ones the stop step noted).
 */
import type { AssetConfig } from '../config/index.js'
import type { Refusal } from '../shared/refusal.js'
import type { PreflightResult } from '../assets/preflight.js'

/** What a plan reads of an unfinished run's journal. */
export interface PriorNotes {
  file: string
  steps: ReadonlyMap<string, { notes: Record<string, unknown> }>
}

export type Restart = { id: string; name: string }[]

const STAMP = /^\d{8}T\d{6}Z$/

/** The stamp a step noted (a resume finds the same paths), else a new one. */
export function stampFrom(noted: unknown, fresh: string): string {
  return typeof noted === 'string' && STAMP.test(noted) ? noted : fresh
}

/** The containers the stop step noted (a resume starts those again), null when none was. */
export function notedRestart(prior: PriorNotes | undefined): Restart | null {
  const stopped = prior?.steps.get('stop')?.notes.containers
  return Array.isArray(stopped) ? (stopped as Restart) : null
}

/** The paths an unfinished run noted (at its step `step`) that the config now sets otherwise. */
export function priorPathsChanged(
  notes: Record<string, unknown>,
  asset: Pick<AssetConfig, 'source' | 'dest' | 'mount'>,
): { key: 'source' | 'dest' | 'mount'; was: string; now: string }[] {
  return (['source', 'dest', 'mount'] as const)
    .filter((k) => typeof notes[k] === 'string' && notes[k] !== asset[k])
    .map((k) => ({ key: k, was: String(notes[k]), now: asset[k] }))
}

export type MigratePlan =
  | { kind: 'already-migrated' }
  | { kind: 'refused'; refusals: Refusal[] }
  | { kind: 'run'; stamp: string; restart: Restart }

export interface MigratePlanFacts {
  pre: Pick<PreflightResult, 'migrated' | 'refusals' | 'restart'>
  /** --resume or --rollback was given */
  continuing: boolean
  /** the stamp a new run gets (from the clock) */
  freshStamp: string
}

/**
 * Pure. A resumed run may find the source or dest mid-way (their refusals do not hold it back);
 * any other refusal stops it.
 */
export function planMigrate(facts: MigratePlanFacts, prior: PriorNotes | undefined): MigratePlan {
  const { pre } = facts
  if (pre.migrated && !prior) return { kind: 'already-migrated' }
  const midway =
    facts.continuing &&
    prior !== undefined &&
    pre.refusals.every((r) => r.check === 'source' || r.check === 'dest')
  if (pre.refusals.length && !midway) return { kind: 'refused', refusals: pre.refusals }
  return {
    kind: 'run',
    // the backup step notes the stamp first thing; a run that never reached it created nothing
    stamp: stampFrom(prior?.steps.get('backup')?.notes.stamp, facts.freshStamp),
    restart: notedRestart(prior) ?? pre.restart,
  }
}
