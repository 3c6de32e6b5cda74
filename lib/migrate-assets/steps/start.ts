import type { MigrateContext } from '../context.js'
import { startContainersStep } from './containers.js'

/** Starting resolves the bind mount again: the containers now see the symlink's target. */
export const startStep = startContainersStep<MigrateContext>(
  'Start the containers on the new location',
)
