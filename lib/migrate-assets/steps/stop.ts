import type { MigrateContext } from '../context.js'
import { stopContainersStep } from './containers.js'

/** A running container keeps the old directory open through its bind mount: stop it first. */
export const stopStep = stopContainersStep<MigrateContext>('on the original directory')
