/**
 * What the prune planner reads, gathered once: the engine's disk usage (images, containers,
 * volumes, build cache in one call), when each stopped container stopped, the engine disk's fill,
 * the last use of each image recorded by `schedule`, and the originals migrate-assets keeps aside.
 */
import { lstat, statfs } from 'node:fs/promises'
import path from 'node:path'
import pLimit from 'p-limit'
import type { Config } from '../config/index.js'
import type { Engine } from '../docker/engine.js'
import type { DiskUsage } from '../docker/types.js'
import { archiveAction, findArchives } from '../assets/archive.js'
import {
  finalizeBlocker,
  findKeptOriginals,
  foreignOriginal,
  hungMountOf,
} from '../assets/finalize.js'
import { measureDir } from '../host/du.js'
import { composeProjectNames } from '../docker/compose.js'
import { readJournals, type JournalState } from '../runbook/journal.js'
import { lastUsedPath, readLastUsedDoc } from '../state/last-used.js'
import { journalPins } from './pins.js'
import type { PruneArchive, PruneInventory, PruneOriginal } from './types.js'

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

async function archives(config: Config, now: Date): Promise<PruneArchive[]> {
  const out: PruneArchive[] = []
  for (const [name, asset] of Object.entries(config.assets)) {
    for (const a of await findArchives(config, name)) {
      let what = archiveAction(a, asset, name, now)
      if (!what || !a.local) continue
      if (what.action === 'move' || (what.action === 'remove' && !a.fate.archiveRemovedAt)) {
        // the destination is verified before it goes: not through a mount that does not answer
        const hung = await hungMountOf({ dest: asset.dest, original: asset.dest })
        if (hung) what = { action: 'keep', why: hung }
      }
      out.push({
        asset: name,
        path: a.local,
        workDir: a.kept.workDir,
        bytes: a.bytes,
        action: what.action,
        note: what.action === 'keep' ? what.why : what.since,
      })
    }
  }
  return out
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
  o: { apply?: boolean } = {},
): Promise<{ inventory: PruneInventory; usage: DiskUsage }> {
  const [usage, disk, lastUsed, kept, journals, configuredProjects, archived] = await Promise.all([
    engine.diskUsage(),
    engineDisk(engine),
    readLastUsedDoc(lastUsedPath(config.stateDir), warn),
    originals(config, now),
    readJournals(config.stateDir).catch((err: Error) => {
      // a real run without them would not know what unfinished runs need: it is refused (exit 4)
      if (o.apply) throw err
      warn(
        `the journals could not be read (${err.message}): what unfinished runs need is unknown; a real run is refused`,
      )
      return [] as JournalState[]
    }),
    projectsOfServices(config),
    archives(config, now),
  ])
  // when each image came to this host (pulled, loaded, built, tagged)
  const arrived = new Map<string, string | null>()
  await Promise.all(
    usage.images.map((i) =>
      limitInspect(async () => arrived.set(i.id, await arrivalOf(engine, i.id))),
    ),
  )
  // when did each stopped container stop: one inspect each, a few at a time
  const limit = pLimit(8)
  const finished = new Map<string, string | null>()
  await Promise.all(
    usage.containers
      .filter((c) => c.state !== 'running' && c.state !== 'paused' && c.state !== 'restarting')
      .map((c) =>
        limit(async () => {
          const details = await engine.inspectContainer(c.id).catch(() => null)
          finished.set(c.id, details?.finishedAt ?? null)
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
        parentId: i.parentId ?? '',
        arrivedAt: arrived.get(i.id) ?? null,
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
        createdAt: v.createdAt ?? null,
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
      lastUsed: lastUsed.images,
      lastUsedVolumes: lastUsed.volumes,
      configuredProjects,
      pins: journalPins(journals, null),
      originals: kept,
      archives: archived,
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

const limitInspect = pLimit(8)

/** compose project → a configured service of it: the names compose would give the project. */
async function projectsOfServices(config: Config): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const [name, svc] of Object.entries(config.services).sort(([a], [b]) =>
    a.localeCompare(b),
  )) {
    if (!svc.compose) continue
    for (const p of await composeProjectNames(svc.compose)) out[p] ??= name
  }
  return out
}

/**
 * When an image came to this host. The containerd image store keeps it as the image record's
 * time (Metadata.LastTagTime, set by pull and load too); the classic store sets LastTagTime only on
 * `docker tag`/build, so there the time its config was written into the engine's image store
 * (<data root>/image/<driver>/imagedb/content/sha256/<hex>: pull, load, build, commit) counts too —
 * read only for a local engine, in the engine's own root-owned data root. null: unknown.
 */
async function arrivalOf(engine: Engine, id: string): Promise<string | null> {
  const tagged = await engine
    .inspectImage(id)
    .then((d) => d?.lastTagTime ?? null)
    .catch(() => null)
  const { imageStore, address, dockerRootDir, storageDriver } = engine.info
  if (imageStore !== 'classic' || !address.startsWith('unix:') || !dockerRootDir) return tagged
  const hex = id.replace(/^sha256:/, '')
  if (!/^[0-9a-f]{64}$/.test(hex) || !/^[A-Za-z0-9_-]+$/.test(storageDriver)) return tagged
  const file = path.join(dockerRootDir, 'image', storageDriver, 'imagedb', 'content', 'sha256', hex)
  const written = await lstat(file).then(
    (st) => (st.isFile() ? st.mtimeMs : null),
    () => null,
  )
  if (written === null) return tagged
  const t = tagged === null ? 0 : Date.parse(tagged)
  return new Date(Math.max(written, t)).toISOString()
}
