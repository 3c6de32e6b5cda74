/**
 * Carries out a prune plan against the engine: containers first (their images may go next), then
 * tags and images (children before their parents), volumes, the build cache, the kept originals. Each kind's removals run a few at
 * a time; one failure (an image that came into use, a container started meanwhile) is recorded and
 * the rest go on. Nothing here decides what goes: the plan did (plan.ts).
 *
 * A removal cannot be undone; what makes prune safe is before it: the plan is shown (dry run is the
 * default), protected and in-use things are never candidates, the newest backup per service stays,
 * and the engine itself refuses to remove what is in use. The plan and every result are written to
 * <stateDir>/prune/<stamp>.json (the plan before the first removal).
 */
import path from 'node:path'
import pLimit from 'p-limit'
import { settleArchive } from '../assets/archive.js'
import type { Engine } from '../docker/engine.js'
import {
  finalizeBlocker,
  findKeptOriginals,
  foreignOriginal,
  markRemoved,
  removeOriginal,
} from '../assets/finalize.js'
import type { Config } from '../config/index.js'
import type { Candidate, CandidateKind } from './types.js'

export interface RemovalResult {
  status: 'removed' | 'gone' | 'failed'
  error?: string
  /** build cache: bytes the engine said it freed */
  freedBytes?: number
}

const ORDER: CandidateKind[] = [
  'container',
  'tag',
  'image',
  'volume',
  'build-cache',
  'original',
  'archive',
]

async function removeOne(
  engine: Engine,
  c: Candidate,
  o: {
    config: Config
    now: Date
    buildCacheKeepBytes: number | null
    tagsOf: Map<string, string[]>
  },
): Promise<RemovalResult> {
  switch (c.kind) {
    case 'container':
      return { status: (await engine.removeContainer(c.id)) ? 'removed' : 'gone' }
    case 'tag':
      return { status: (await engine.removeImage(c.name)) ? 'removed' : 'gone' }
    case 'image': {
      // an image with several tags goes with its last one; by id it would need force
      const tags = o.tagsOf.get(c.id) ?? []
      // a tag put on it since the plan (a deploy, a protect.images name) is not the plan's to take
      const newer = c.tags ? tags.filter((t) => !c.tags!.includes(t)) : []
      if (newer.length) {
        return {
          status: 'failed',
          error: `tagged ${newer.join(', ')} since the plan: kept (plan again)`,
        }
      }
      let any = false
      for (const t of tags) any = (await engine.removeImage(t, { pruneParents: true })) || any
      if (!tags.length) any = await engine.removeImage(c.id, { pruneParents: true })
      if (tags.length && (await engine.inspectImage(c.id))) {
        return { status: 'failed', error: 'the image is still there after its tags were removed' }
      }
      return { status: any ? 'removed' : 'gone' }
    }
    case 'volume':
      return { status: (await engine.removeVolume(c.id)) ? 'removed' : 'gone' }
    case 'build-cache': {
      const freed = await engine.pruneBuildCache(o.buildCacheKeepBytes ?? 0)
      return { status: 'removed', freedBytes: freed }
    }
    case 'original': {
      // the same guard as migrate-assets --finalize, read again right before the removal
      for (const [name, asset] of Object.entries(o.config.assets)) {
        const k = (await findKeptOriginals(o.config.backupDir, name)).find(
          (x) => x.original === c.id,
        )
        if (!k) continue
        // original.json is a plain file: what it names must still be this asset's kept original
        // …and the original is walked again: anything written into it since the migration keeps it
        const blocker = foreignOriginal(k, asset, o.config) ?? (await finalizeBlocker(k, o.now))
        if (blocker) return { status: 'failed', error: blocker }
        // by descriptors, each entry checked against the manifest as it goes (safefs.ts)
        await removeOriginal(k)
        // recorded as finalize does: the archive's keepBackup counts from here
        await markRemoved(k, o.now)
        return { status: 'removed' }
      }
      return { status: 'failed', error: 'no migrate-assets run records this original' }
    }
    case 'archive': {
      // the run's asset, by the work dir the plan names (<backupDir>/<asset>/<stamp>)
      const asset = path.basename(path.dirname(c.id))
      if (path.dirname(path.dirname(c.id)) !== o.config.backupDir || !o.config.assets[asset]) {
        return { status: 'failed', error: `${c.id} is not a run of a configured asset` }
      }
      await settleArchive(o.config, asset, c.id, o.now)
      return { status: 'removed' }
    }
  }
}

export async function executePlan(
  engine: Engine,
  candidates: Candidate[],
  o: {
    config: Config
    now: Date
    buildCacheKeepBytes: number | null
    concurrency?: number
    /** true once the run is to stop: the removals not begun are left, failed 'interrupted' */
    stop?: () => boolean
    onResult?: (c: Candidate, r: RemovalResult) => void
  },
): Promise<Map<Candidate, RemovalResult>> {
  const results = new Map<Candidate, RemovalResult>()
  const images = await engine.listImages()
  const tagsOf = new Map(images.map((i) => [i.id, i.tags.filter((t) => t !== '<none>:<none>')]))
  const limit = pLimit(Math.max(1, o.concurrency ?? 4))
  // images in waves, deepest first: a child before the image it is built on (an image with
  // children cannot be removed), never both at once
  const parentOf = new Map(images.map((i) => [i.id, i.parentId ?? '']))
  const depth = (id: string): number => {
    let d = 0
    for (let p = parentOf.get(id); p && d < 1000; p = parentOf.get(p)) d++
    return d
  }
  const waves: Candidate[][] = []
  for (const kind of ORDER) {
    const batch = candidates.filter((c) => c.kind === kind)
    if (kind !== 'image') {
      waves.push(batch)
      continue
    }
    const byDepth = new Map<number, Candidate[]>()
    for (const c of batch) {
      const d = depth(c.id)
      byDepth.set(d, [...(byDepth.get(d) ?? []), c])
    }
    for (const d of [...byDepth.keys()].sort((a, b) => b - a)) waves.push(byDepth.get(d)!)
  }
  for (const batch of waves) {
    await Promise.all(
      batch.map((c) =>
        limit(async () => {
          let r: RemovalResult
          try {
            r = o.stop?.()
              ? { status: 'failed', error: 'not removed: interrupted' }
              : await removeOne(engine, c, { ...o, tagsOf })
          } catch (err) {
            r = { status: 'failed', error: (err as Error).message }
          }
          results.set(c, r)
          o.onResult?.(c, r)
        }),
      ),
    )
  }
  return results
}
