/**
 * The runbooks. rebuild: backup → build → recreate → health → cleanup.
 * rollback: retag (a backup under the service's tag) → recreate → health → cleanup.
 * One file per step; a new step goes into the list here (its id is the journal's key: never rename).
 */
import type { Step } from '../../runbook/types.js'
import type { RebuildContext } from '../context.js'
import { backupStep } from './backup.js'
import { buildStep, retagStep } from './build.js'
import { cleanupStep } from './cleanup.js'
import { healthStep } from './health.js'
import { recreateStep } from './recreate.js'

export const rebuildSteps: Step<RebuildContext>[] = [
  backupStep,
  buildStep,
  recreateStep,
  healthStep,
  cleanupStep,
]

export const rollbackSteps: Step<RebuildContext>[] = [
  retagStep,
  recreateStep,
  healthStep,
  cleanupStep,
]
