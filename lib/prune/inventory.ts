/**
 * What the prune planner reads, gathered once: the engine's disk usage (images, containers,
 * volumes, build cache in one call), when each stopped container stopped, the engine disk's fill,
 * the last use of each image recorded by `schedule`, and the originals migrate-assets keeps aside.
 */
import { statfs } from 'node:fs/promises'
import pLimit from 'p-limit'
import type { Config } from '../config/index.js'
import type { Engine } from '../docker/engine.js'
import type { DiskUsage } from '../docker/types.js'
import { finalizeBlocker, findKeptOriginals, foreignOriginal } from '../assets/finalize.js'
import { measureDir } from '../report/paths.js'
import { lastUsedPath, readLastUsed } from '../schedule/events.js'
import type { PruneInventory, PruneOriginal } from './types.js'

/** The engine's own accounting of its disk use: layers, writable layers, volumes, build cache. */
export function engineBytes(d: DiskUsage): number {
  return (
    d.layersSize +
    d.containers.reduce((a, c) => a + (c.sizeRwBytes ?? 0), 0) +
    d.volumes.reduce((a, v) => a + (v.sizeBytes ?? 0), 0) +
    d.buildCache.filter((b) => !b.shared).reduce((a, b) => a + b.sizeBytes, 0)
  )
}

/** Used and total bytes of the filesystem holding dir (the engine's data root, when local). */
export async function fsUse(
  dir: string,
): Promise<{ usedBytes: number; totalBytes: number } | null> {
  try {
    const s = await statfs(dir)
    const total = Number(s.blocks) * Number(s.bsize)
    return { usedBytes: total - Number(s.bfree) * Number(s.bsize), totalBytes: total }
  } catch {
    return null
  }
}

export async function engineDisk(
  engine: Engine,
): Promise<{ usedBytes: number; totalBytes: number } | null> {
  if (!engine.info.address.startsWith('unix:') || !engine.info.dockerRootDir) return null
  return fsUse(engine.info.dockerRootDir)
}

async function originals(config: Config, now: Date): Promise<PruneOriginal[]> {
  const out: PruneOriginal[] = []
  for (const [name, asset] of Object.entries(config.assets)) {
    for (const k of await findKeptOriginals(config.backupDir, name)) {
      if (k.removedAt || k.revertedAt) continue
      const foreign = foreignOriginal(k, asset, config)
      // the planner judges the time itself; other blockers keep it
      const blocker = foreign ?? (await finalizeBlocker(k, now))
      out.push({
        asset: name,
        path: k.original,
        bytes: 0,
        keepUntil: k.keepUntil,
        blocker: blocker?.startsWith('kept until') ? null : blocker,
      })
    }
  }
  return out
}

export async function gatherPruneInventory(
  engine: Engine,
  config: Config,
  now: Date,
  warn: (line: string) => void = () => {},
): Promise<{ inventory: PruneInventory; usage: DiskUsage }> {
  const [usage, disk, lastUsed, kept] = await Promise.all([
    engine.diskUsage(),
    engineDisk(engine),
    readLastUsed(lastUsedPath(config.stateDir), warn),
    originals(config, now),
  ])
  // when did each stopped container stop: one inspect each, a few at a time
  const limit = pLimit(8)
  const finished = new Map<string, string | null>()
  await Promise.all(
    usage.containers
      .filter((c) => c.state !== 'running' && c.state !== 'paused' && c.state !== 'restarting')
      .map((c) =>
        limit(async () => {
          const raw = await engine.inspectContainerRaw(c.id).catch(() => null)
          const at = raw?.State?.FinishedAt
          finished.set(c.id, at && !at.startsWith('0001-') ? at : null)
        }),
      ),
  )
  const bytesOf = await Promise.all(kept.map((k) => duBytes(k.path)))
  kept.forEach((k, i) => (k.bytes = bytesOf[i] ?? 0))
  if (!disk) warn('the engine’s disk is not local (or not readable): the disk-pressure rule is off')
  return {
    usage,
    inventory: {
      images: usage.images.map((i) => ({
        id: i.id,
        tags: i.tags.filter((t) => t !== '<none>:<none>'),
        createdAt: i.createdAt,
        sizeBytes: i.sizeBytes,
        sharedBytes: i.sharedBytes,
        labels: i.labels,
      })),
      containers: usage.containers.map((c) => ({
        id: c.id,
        name: c.name,
        imageId: c.imageId,
        state: c.state,
        createdAt: c.createdAt,
        finishedAt: finished.get(c.id) ?? null,
        sizeRwBytes: c.sizeRwBytes,
        labels: c.labels,
      })),
      volumes: usage.volumes.map((v) => ({
        name: v.name,
        sizeBytes: v.sizeBytes,
        refCount: v.refCount,
        labels: v.labels,
      })),
      buildCache: usage.buildCache.map((b) => ({
        id: b.id,
        sizeBytes: b.sizeBytes,
        inUse: b.inUse,
        shared: b.shared,
        createdAt: b.createdAt,
        lastUsedAt: b.lastUsedAt,
      })),
      disk,
      lastUsed,
      originals: kept,
    },
  }
}

async function duBytes(dir: string): Promise<number> {
  try {
    return (await measureDir(dir)).sizeBytes ?? 0
  } catch {
    return 0
  }
}
