import { lstat, stat } from 'node:fs/promises'
import pLimit from 'p-limit'
import type { Engine } from '../docker/engine.js'
import type { DiskUsage, EngineInfo, HistoryEntry } from '../docker/types.js'
import { readMountinfo, type MountEntry } from '../host/mountinfo.js'
import { isUnder } from '../shared/paths.js'
import { guardPath, mountWarning } from '../host/mountprobe.js'
import { measureDir, scanPath, type PathScan } from '../host/du.js'

export interface BindSource {
  path: string
  isDirectory: boolean
  onRootFs: boolean
  sizeBytes: number | null
}

/** Everything the report analysis reads: gathered once, then analysed by pure code. */
export interface Inventory {
  engine: EngineInfo
  disk: DiskUsage
  histories: Record<string, HistoryEntry[]>
  paths: PathScan[]
  bindSources: BindSource[]
  warnings: string[]
}

export interface GatherOptions {
  paths: string[]
  concurrency: number
  progress?: (text: string) => void
  mountinfoFile?: string
}

/**
 * Gathers the inventory with bounded concurrency: engine disk usage, every image's history
 * (one keep-alive connection pool), the configured host paths, the bind-mount sources.
 */
export async function gatherInventory(engine: Engine, opts: GatherOptions): Promise<Inventory> {
  const warnings: string[] = []
  const progress = opts.progress ?? (() => {})
  const limit = pLimit(Math.max(1, opts.concurrency))
  const mountsP: Promise<MountEntry[]> = readMountinfo(opts.mountinfoFile).catch((err) => {
    warnings.push(`cannot read mount table: ${(err as Error).message}`)
    return []
  })
  const pathsP = mountsP.then((mounts) =>
    Promise.all(opts.paths.map((p) => limit(() => scanPath(p, mounts)))),
  )
  progress('Reading engine disk usage')
  const disk = await engine.diskUsage()
  let done = 0
  const histories: Record<string, HistoryEntry[]> = {}
  await Promise.all(
    disk.images.map((img) =>
      limit(async () => {
        try {
          histories[img.id] = await engine.imageHistory(img.id)
        } catch (err) {
          // An image removed while we read is not an error of the report.
          warnings.push((err as Error).message)
          histories[img.id] = []
        }
        done++
        if (done % 10 === 0 || done === disk.images.length)
          progress(`Reading image histories ${done}/${disk.images.length}`)
      }),
    ),
  )
  progress('Measuring host paths')
  const paths = await pathsP
  const bindSources = await measureBindSources(disk, paths, limit, await mountsP, warnings)
  return { engine: engine.info, disk, histories, paths, bindSources, warnings }
}

async function measureBindSources(
  disk: DiskUsage,
  paths: PathScan[],
  limit: ReturnType<typeof pLimit>,
  mounts: readonly MountEntry[],
  warnings: string[],
): Promise<BindSource[]> {
  const rootDev = (await stat('/')).dev
  const measured = new Map<string, number>()
  for (const p of paths) for (const e of p.entries) measured.set(e.path, e.sizeBytes)
  const sources = new Set<string>()
  for (const c of disk.containers)
    for (const m of c.mounts)
      if (m.type === 'bind' && paths.some((p) => p.exists && isUnder(m.source, p.path)))
        sources.add(m.source)
  return Promise.all(
    [...sources].sort().map((source) =>
      limit(async (): Promise<BindSource> => {
        // a source on (or above) a hung mount: lstat or du there would never return
        const hung = await guardPath(source, { mounts, below: true })
        if (hung.some((p) => p.state === 'hung' || isUnder(source, p.mountPoint))) {
          for (const p of hung) {
            const w = mountWarning(p, `the size of bind-mount source ${source}`)
            if (!warnings.includes(w)) warnings.push(w)
          }
          return { path: source, isDirectory: false, onRootFs: false, sizeBytes: null }
        }
        const st = await lstat(source).catch(() => null)
        if (!st || !st.isDirectory())
          return { path: source, isDirectory: false, onRootFs: false, sizeBytes: null }
        const known = measured.get(source)
        const sizeBytes = known ?? (await measureDir(source, mounts)).sizeBytes
        return { path: source, isDirectory: true, onRootFs: st.dev === rootDev, sizeBytes }
      }),
    ),
  )
}
