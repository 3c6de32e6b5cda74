/**
 * Pure analysis: inventory + settings + clock → Report. No I/O; every renderer
 * (table, Markdown, JSON) prints what this returns.
 */
import path from 'node:path'
import type { ContainerSummary, DiskUsage, ImageSummary } from '../docker/types.js'
import { isUnder } from '../shared/paths.js'
import type { Inventory } from './gather.js'
import {
  REPORT_SCHEMA,
  type DiskUsageByType,
  type MountedBy,
  type PathChild,
  type Recommendation,
  type Report,
  type ReportImage,
  type ReportPath,
} from './types.js'

export interface ReportSettings {
  host: string
  configSource: string
  top: number
  bigImageBytes: number
  bigAssetsBytes: number
  /** Configured assets (name → source), to name them in recommendations. */
  assets: Record<string, { source: string }>
}

const ACTIVE_STATES = ['running', 'paused', 'restarting']
export const isActiveContainer = (c: Pick<ContainerSummary, 'state'>): boolean =>
  ACTIVE_STATES.some((s) => c.state.includes(s))

/** Containers or volumes: a thing's whole size is reclaimable once nothing active uses it. */
function tally<T>(
  items: T[],
  sizeOf: (t: T) => number,
  isActive: (t: T) => boolean,
): DiskUsageByType {
  const usage: DiskUsageByType = {
    count: items.length,
    active: 0,
    sizeBytes: 0,
    reclaimableBytes: 0,
  }
  for (const t of items) {
    const size = sizeOf(t)
    usage.sizeBytes += size
    if (isActive(t)) usage.active++
    else usage.reclaimableBytes += size
  }
  return usage
}

/** The same arithmetic as `docker system df`, so the figures match the engine's own. */
export function diskUsageByType(disk: DiskUsage): Report['disk'] {
  const images: DiskUsageByType = {
    count: disk.images.length,
    active: disk.images.filter((i) => (i.containers ?? 0) > 0).length,
    sizeBytes: disk.layersSize,
    reclaimableBytes: 0,
  }
  let usedImageBytes = 0
  for (const i of disk.images)
    if ((i.containers ?? 0) > 0 && i.sharedBytes !== null)
      usedImageBytes += i.sizeBytes - i.sharedBytes
  images.reclaimableBytes = Math.max(0, disk.layersSize - usedImageBytes)

  const containers = tally(disk.containers, (c) => c.sizeRwBytes ?? 0, isActiveContainer)
  const volumes = tally(
    disk.volumes,
    (v) => v.sizeBytes ?? 0,
    (v) => (v.refCount ?? 0) > 0,
  )

  const buildCache: DiskUsageByType = {
    count: disk.buildCache.length,
    active: 0,
    sizeBytes: 0,
    reclaimableBytes: 0,
  }
  let inUseBytes = 0
  for (const b of disk.buildCache) {
    if (b.inUse) buildCache.active++
    if (b.shared) continue
    buildCache.sizeBytes += b.sizeBytes
    if (b.inUse) inUseBytes += b.sizeBytes
  }
  buildCache.reclaimableBytes = buildCache.sizeBytes - inUseBytes

  const all = [images, containers, volumes, buildCache]
  return {
    images,
    containers,
    volumes,
    buildCache,
    totalBytes: all.reduce((a, d) => a + d.sizeBytes, 0),
    reclaimableBytes: all.reduce((a, d) => a + d.reclaimableBytes, 0),
  }
}

export function imageRef(img: Pick<ImageSummary, 'id' | 'tags'>): string {
  return img.tags[0] ?? img.id.replace(/^sha256:/, '').slice(0, 12)
}

function mountedBy(dir: string, containers: ContainerSummary[]): MountedBy[] {
  const out: MountedBy[] = []
  for (const c of containers)
    for (const m of c.mounts)
      if (m.type === 'bind' && (isUnder(m.source, dir) || isUnder(dir, m.source)))
        out.push({
          container: c.name,
          source: m.source,
          destination: m.destination,
          readOnly: m.readOnly,
        })
  return out.sort(
    (a, b) => a.container.localeCompare(b.container) || a.source.localeCompare(b.source),
  )
}

function depthBelow(p: string, root: string): number {
  const rel = path.relative(root, p)
  return rel === '' ? 0 : rel.split(path.sep).length
}

function analyzePaths(inv: Inventory, top: number): ReportPath[] {
  return inv.paths.map((scan) => {
    const self = scan.entries.find((e) => e.path === scan.path)
    const children: PathChild[] = scan.entries
      .filter((e) => e.path !== scan.path)
      .map((e) => ({
        path: e.path,
        depth: depthBelow(e.path, scan.path),
        sizeBytes: e.sizeBytes,
        mountedBy: mountedBy(e.path, inv.disk.containers),
      }))
      .sort((a, b) => b.sizeBytes - a.sizeBytes || a.path.localeCompare(b.path))
    // The top N by size, plus every bind-mounted child: the operator needs those whatever their size.
    const shown = children.filter((c, i) => i < top || c.mountedBy.some((m) => m.source === c.path))
    return {
      path: scan.path,
      exists: scan.exists,
      sizeBytes: scan.exists ? (self?.sizeBytes ?? null) : null,
      mountedBy: scan.exists ? mountedBy(scan.path, inv.disk.containers) : [],
      children: shown,
      mounts: scan.mounts.map((m) => ({ path: m.mountPoint, fsType: m.fsType, source: m.source })),
      warnings: scan.warnings,
    }
  })
}

function slug(p: string): string {
  return p
    .split('/')
    .filter(Boolean)
    .slice(-2)
    .join('-')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .toLowerCase()
}

function recommend(
  report: Omit<Report, 'recommendations'>,
  inv: Inventory,
  s: ReportSettings,
): Recommendation[] {
  const recs: Recommendation[] = []
  const d = report.disk
  // Savings of removing images: the bytes only they hold (size − shared), a lower bound that
  // never counts a base layer an image in use still needs. docker system df's "reclaimable"
  // (disk.images) is the upper bound. Dangling and tagged unused images are counted apart.
  const unique = (imgs: ReportImage[]) => imgs.reduce((a, i) => a + (i.uniqueBytes ?? 0), 0)
  const dangling = report.images.filter((i) => i.dangling && i.containers === 0)
  if (dangling.length > 0 && unique(dangling) > 0) {
    recs.push({
      kind: 'prune-dangling-images',
      target: `${dangling.length} dangling image${dangling.length === 1 ? '' : 's'}`,
      estimatedSavingsBytes: unique(dangling),
      risk: 'low',
      command: 'shipshape prune',
      reason: 'untagged images left behind by rebuilds (bytes no other image shares)',
    })
  }
  const unused = report.images.filter((i) => !i.dangling && i.containers === 0)
  if (unused.length > 0 && unique(unused) > 0) {
    recs.push({
      kind: 'prune-images',
      target: `${unused.length} tagged image${unused.length === 1 ? '' : 's'} no container uses`,
      estimatedSavingsBytes: unique(unused),
      risk: 'medium',
      command: 'shipshape prune',
      reason:
        'bytes no other image shares (at least this much; up to the reclaimable figure of the disk table); prune keeps the newest tags and protected images',
    })
  }
  if (d.containers.reclaimableBytes > 0) {
    const stopped = d.containers.count - d.containers.active
    recs.push({
      kind: 'prune-containers',
      target: `${stopped} stopped container${stopped === 1 ? '' : 's'}`,
      estimatedSavingsBytes: d.containers.reclaimableBytes,
      risk: 'medium',
      command: 'shipshape prune',
      reason: "stopped containers' writable layers (anything written inside them is lost)",
    })
  }
  if (d.buildCache.reclaimableBytes > 0) {
    recs.push({
      kind: 'prune-build-cache',
      target: `${d.buildCache.count - d.buildCache.active} build cache records`,
      estimatedSavingsBytes: d.buildCache.reclaimableBytes,
      risk: 'low',
      command: 'shipshape prune',
      reason: 'build cache not in use; the next build is slower',
    })
  }
  if (d.volumes.reclaimableBytes > 0) {
    recs.push({
      kind: 'prune-volumes',
      target: `${d.volumes.count - d.volumes.active} unused volumes`,
      estimatedSavingsBytes: d.volumes.reclaimableBytes,
      risk: 'high',
      command: 'shipshape prune (with prune.volumes: true)',
      reason: 'volumes no container uses; they may hold data nobody backed up',
    })
  }
  for (const b of inv.bindSources) {
    if (!b.isDirectory || !b.onRootFs || b.sizeBytes === null || b.sizeBytes <= s.bigAssetsBytes)
      continue
    const configured = Object.entries(s.assets).find(([, a]) => a.source === b.path)?.[0]
    const users = [
      ...new Set(
        inv.disk.containers
          .filter((c) => c.mounts.some((m) => m.type === 'bind' && m.source === b.path))
          .map((c) => c.name),
      ),
    ]
    recs.push({
      kind: 'migrate-assets',
      target: b.path,
      estimatedSavingsBytes: b.sizeBytes,
      risk: 'low',
      command: `shipshape migrate-assets ${configured ?? slug(b.path)}`,
      reason:
        `bind-mounted by ${users.join(', ')} on the root filesystem, over report.bigAssets` +
        (configured ? '' : `; add it under assets.${slug(b.path)} in the host config first`),
    })
  }
  for (const img of report.images) {
    if (!img.big) continue
    recs.push({
      kind: 'inspect-image',
      target: imageRef(img),
      estimatedSavingsBytes: null,
      risk: 'low',
      command: `shipshape inspect ${imageRef(img)}`,
      reason: 'image over report.bigImage: a deep scan finds what it carries for nothing',
    })
  }
  return recs.sort(
    (a, b) =>
      (b.estimatedSavingsBytes ?? -1) - (a.estimatedSavingsBytes ?? -1) ||
      a.target.localeCompare(b.target),
  )
}

export function analyzeReport(inv: Inventory, s: ReportSettings, now: Date): Report {
  const disk = diskUsageByType(inv.disk)
  const images: ReportImage[] = inv.disk.images
    .map((img) => ({
      id: img.id,
      tags: img.tags,
      digests: img.digests,
      createdAt: img.createdAt,
      sizeBytes: img.sizeBytes,
      sharedBytes: img.sharedBytes,
      uniqueBytes: img.sharedBytes === null ? null : img.sizeBytes - img.sharedBytes,
      containers: img.containers ?? 0,
      dangling: img.tags.length === 0,
      big: img.sizeBytes > s.bigImageBytes,
      layers: (inv.histories[img.id] ?? []).map((h) => ({
        id: h.id,
        createdAt: h.createdAt,
        createdBy: h.createdBy,
        sizeBytes: h.sizeBytes,
        comment: h.comment,
      })),
    }))
    .sort((a, b) => b.sizeBytes - a.sizeBytes || imageRef(a).localeCompare(imageRef(b)))
  const base: Omit<Report, 'recommendations'> = {
    schema: REPORT_SCHEMA,
    generatedAt: now.toISOString(),
    host: s.host,
    configSource: s.configSource,
    engine: inv.engine,
    thresholds: { bigImageBytes: s.bigImageBytes, bigAssetsBytes: s.bigAssetsBytes, top: s.top },
    disk,
    images,
    containers: inv.disk.containers
      .map(({ mounts: _m, labels: _l, ...c }) => ({ ...c, running: isActiveContainer(c) }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    volumes: inv.disk.volumes
      .map((v) => ({
        name: v.name,
        driver: v.driver,
        sizeBytes: v.sizeBytes,
        refCount: v.refCount,
        inUse: (v.refCount ?? 0) > 0,
      }))
      .sort((a, b) => (b.sizeBytes ?? 0) - (a.sizeBytes ?? 0) || a.name.localeCompare(b.name)),
    paths: analyzePaths(inv, s.top),
    warnings: [...inv.warnings, ...inv.paths.flatMap((p) => p.warnings)],
  }
  return { ...base, recommendations: recommend(base, inv, s) }
}

/** The biggest layers of an image, biggest first. */
export function biggestLayers(img: ReportImage, n: number): ReportImage['layers'] {
  return [...img.layers]
    .filter((l) => l.sizeBytes > 0)
    .sort((a, b) => b.sizeBytes - a.sizeBytes)
    .slice(0, n)
}

/** A newer image in the registry for a service with update: notify | apply (pure). */
export function updateRecommendations(updates: NonNullable<Report['updates']>): Recommendation[] {
  return updates
    .filter((u) => u.newer === true)
    .map((u) => ({
      kind: 'update-image',
      target: u.service,
      estimatedSavingsBytes: null,
      risk: 'medium' as const,
      command: `shipshape update ${u.service}`,
      reason: `the registry has a newer ${u.ref} (${u.remoteDigest?.slice(0, 19)}…) than the image ${u.service} runs (${u.runs?.slice(7, 19)})${u.mode === 'apply' ? '; update: apply — `shipshape update --auto --yes` updates it with the backup, gate and rollback' : ''}`,
    }))
}
