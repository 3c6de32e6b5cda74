/**
 * The migrate-assets runbook, in order. Step ids are the journal's keys: never rename one.
 * Undo runs in reverse: start (stop again) → swap (original back) → stop (start on the original)
 * → copy (remove what was copied); the backup is always kept.
 */
import type { Step } from '../../runbook/index.js'
import type { MigrateContext } from '../context.js'
import { backupStep } from './backup.js'
import { checkStep } from './check.js'
import { copyStep } from './copy.js'
import { recheckStep } from './recheck.js'
import { startStep } from './start.js'
import { stopStep } from './stop.js'
import { swapStep } from './swap.js'
import { verifyBackupStep } from './verify-backup.js'
import { verifyRemoteStep } from './verify-remote.js'

export const migrateSteps: Step<MigrateContext>[] = [
  backupStep,
  verifyBackupStep,
  copyStep,
  verifyRemoteStep,
  stopStep,
  recheckStep,
  swapStep,
  startStep,
  checkStep,
]
