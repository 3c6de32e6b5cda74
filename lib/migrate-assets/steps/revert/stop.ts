import type { RevertContext } from '../../revert-context.js'
import { stopContainersStep } from '../containers.js'

/** The containers hold the mount open through their bind mounts: stopped before the swap. */
export const revertStopStep = stopContainersStep<RevertContext>('on the mount')
