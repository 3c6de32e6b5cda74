/** The engine's disk: free space under its data root (only for a local engine). */
import { formatBytes } from '../../config/index.js'
import { type MountEntry } from '../../host/mountinfo.js'
import { isUnder } from '../../shared/paths.js'
import { errorText, type Check, type CheckStatus, type DoctorCheck } from '../check.js'
import type { DiskSpace } from '../ports.js'

export const DISK_WARN_BELOW = 0.15
export const DISK_FAIL_BELOW = 0.05

/** The engine's disk: warn under 15 % free, fail under 5 %. Pure. */
export function judgeDiskFree(space: DiskSpace): CheckStatus {
  if (!(space.total > 0)) return 'ok'
  const f = space.free / space.total
  return f < DISK_FAIL_BELOW ? 'fail' : f < DISK_WARN_BELOW ? 'warn' : 'ok'
}

const percent = (space: DiskSpace) =>
  space.total > 0 ? `${Math.floor((space.free / space.total) * 1000) / 10} %` : '? %'

/** The mount holding p: the deepest mount point above it (the last one mounted wins). */
export function mountOf(mounts: MountEntry[], p: string): MountEntry | null {
  let best: MountEntry | null = null
  for (const m of mounts) {
    if (isUnder(p, m.mountPoint) && (!best || m.mountPoint.length >= best.mountPoint.length)) {
      best = m
    }
  }
  return best
}

export type EngineDiskFacts =
  /** no engine: the engine check says why */
  null | {
    address: string
    storageDriver: string
    dockerRootDir: string
    /** statfs of the data root, or why it failed; absent when not measured */
    space?: { ok: DiskSpace; disk: MountEntry | null } | { error: unknown }
  }

/** Pure. */
export function judgeEngineDisk(f: EngineDiskFacts): Check[] {
  if (!f) return []
  const base = { id: 'engine-disk', title: 'Engine disk' }
  const { address, storageDriver, dockerRootDir } = f
  const driver = storageDriver || 'unknown storage driver'
  const notMeasured = (why: string): Check[] => [
    {
      ...base,
      status: 'warn',
      detail: `${driver}; free space not measured: ${why}`,
      fix: "run shipshape doctor on the engine's own host",
    },
  ]
  if (!address.startsWith('unix:')) return notMeasured(`the engine at ${address} is remote`)
  if (!dockerRootDir || !f.space) {
    return notMeasured('the engine did not say where its data root is')
  }
  if ('error' in f.space) {
    return notMeasured(
      `its data root ${dockerRootDir} is not readable here (${errorText(f.space.error)}): a socket forwarded from another host?`,
    )
  }
  const { ok: space, disk } = f.space
  const on = disk ? ` on ${disk.source} (${disk.fsType} at ${disk.mountPoint})` : ''
  const status = judgeDiskFree(space)
  return [
    {
      ...base,
      status,
      detail: `${driver}, data root ${dockerRootDir}${on}: ${formatBytes(space.free)} free of ${formatBytes(space.total)} (${percent(space)})${status === 'ok' ? '' : `, below ${(status === 'fail' ? DISK_FAIL_BELOW : DISK_WARN_BELOW) * 100} %`}`,
      fix:
        status === 'ok'
          ? null
          : '`shipshape prune` shows what can go (`--yes` removes it); `shipshape report` shows what uses the space',
    },
  ]
}

export const engineDiskCheck: DoctorCheck<EngineDiskFacts> = {
  id: 'engine-disk',
  title: 'Engine disk',
  needsEngine: true,
  async gather(ctx) {
    if (!ctx.engine) return null
    const { address, storageDriver, dockerRootDir } = ctx.engine.info
    const facts = { address, storageDriver, dockerRootDir }
    if (!address.startsWith('unix:') || !dockerRootDir) return facts
    let space: DiskSpace
    try {
      space = await ctx.ports.statfs(dockerRootDir)
    } catch (error) {
      return { ...facts, space: { error } }
    }
    const disk = mountOf(await ctx.mounts().catch(() => []), dockerRootDir)
    return { ...facts, space: { ok: space, disk } }
  },
  judge: judgeEngineDisk,
}
