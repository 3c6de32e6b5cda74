/**
 * The checks of `shipshape doctor`, one module each ({id, gather, judge}: gather reads the host
 * through the ports, judge is pure), listed here in the order their findings are shown. Nothing
 * here changes the host but the probe file the directory checks create and remove again.
 */
import type { Config } from '../../config/index.js'
import type { AnyCheck } from '../check.js'
import { assetCheck } from './asset.js'
import { composeCheck } from './compose.js'
import { configCheck } from './config.js'
import { dirCheck } from './dirs.js'
import { engineDiskCheck } from './engine-disk.js'
import { engineCheck } from './engine.js'
import { journalsCheck } from './journals.js'
import { lockCheck } from './lock.js'
import { rcloneCheck } from './rclone.js'
import { systemdCheck } from './systemd.js'

/**
 * The checks in their order. Without a valid config (null) only those that need none: the engine,
 * compose and rclone are still checked (with the embedded default's engine settings).
 */
export function doctorChecks(config: Config | null): AnyCheck[] {
  const always: AnyCheck[] = [configCheck, engineCheck, engineDiskCheck, composeCheck, rcloneCheck]
  if (!config) return always
  return [
    ...always,
    ...Object.entries(config.assets).map(([name, asset]) => assetCheck(name, asset)),
    dirCheck('stateDir'),
    dirCheck('backupDir'),
    lockCheck,
    journalsCheck,
    systemdCheck,
  ]
}

export * from './asset.js'
export * from './compose.js'
export * from './config.js'
export * from './dirs.js'
export * from './engine-disk.js'
export * from './engine.js'
export * from './journals.js'
export * from './lock.js'
export * from './rclone.js'
export * from './systemd.js'
