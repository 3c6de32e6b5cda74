import type { RevertContext } from '../../revert-context.js'
import { startContainersStep } from '../containers.js'

/** Starting resolves the bind mount again: the containers now see the local directory. */
export const revertStartStep = startContainersStep<RevertContext>(
  'Start the containers on the local directory',
)
