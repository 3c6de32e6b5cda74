/**
 * The `migrate-assets NAME --revert` runbook, in order. Step ids are the journal's keys (of the
 * operation migrate-assets-revert): never rename one. Undo runs in reverse: finish (link aside
 * again) → start (stop again) → swap (symlink back) → stop (start on the mount, health) →
 * stage (staging renamed back to the original, or the copy back removed).
 */
import type { Step } from '../../../runbook/index.js'
import type { RevertContext } from '../../revert-context.js'
import { revertCheckStep } from './check.js'
import { revertFinishStep } from './finish.js'
import { revertRecheckStep } from './recheck.js'
import { removeCopyStep } from './remove-copy.js'
import { stageStep } from './stage.js'
import { revertStartStep } from './start.js'
import { revertStopStep } from './stop.js'
import { revertSwapStep } from './swap.js'
import { verifyStep } from './verify.js'

export const revertSteps: Step<RevertContext>[] = [
  stageStep,
  verifyStep,
  revertStopStep,
  revertRecheckStep,
  revertSwapStep,
  revertStartStep,
  revertCheckStep,
  revertFinishStep,
  removeCopyStep,
]
