/**
 * The runbooks. rebuild: backup → build → recreate → health → keep-files → cleanup.
 * rollback: retag (a backup under the service's tag) → recreate → health → cleanup →
 * restore-files (shows the diff; writes back with --restore-files).
 * update: backup → pull → recreate → health → keep-files → cleanup.
 * One file per step; a new step goes into the list here (its id is the journal's key: never rename).
 */
import type { Step } from '../../runbook/types.js'
import type { RebuildContext } from '../context.js'
import { backupStep } from './backup.js'
import { buildStep, retagStep } from './build.js'
import { cleanupStep } from './cleanup.js'
import { healthStep } from './health.js'
import { recreateStep } from './recreate.js'
import { keepFilesStep, restoreFilesStep } from './files.js'
import { pullStep } from './pull.js'

export const rebuildSteps: Step<RebuildContext>[] = [
  backupStep,
  buildStep,
  recreateStep,
  healthStep,
  keepFilesStep,
  cleanupStep,
]

export const rollbackSteps: Step<RebuildContext>[] = [
  retagStep,
  recreateStep,
  healthStep,
  cleanupStep,
  restoreFilesStep,
]

/** update: like a rebuild, with a pull instead of a build. */
export const updateSteps: Step<RebuildContext>[] = [
  backupStep,
  pullStep,
  recreateStep,
  healthStep,
  keepFilesStep,
  cleanupStep,
]
