/**
 * `config init`, the I/O half: the engine's containers (one list, one inspect each), their
 * images (inspect + history, for the CUDA hints), the compose files they were started with, the
 * mount table, and `du` of the bind-mounted directories that could be assets — all under one
 * concurrency limit. Read-only.
 */
import { lstat, readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import pLimit from 'p-limit'
import { parse as parseYaml } from 'yaml'
import type { Config } from '../config/schema.js'
import type { Engine } from '../docker/engine.js'
import type { HistoryEntry, ImageDetails } from '../docker/types.js'
import { readMountinfo, type MountEntry } from '../host/mountinfo.js'
import { isUnder } from '../shared/paths.js'
import { labelFiles } from '../shared/labels.js'
import { measureDir } from '../host/du.js'
import { gpuRequest } from '../docker/gpu.js'
import {
  cudaHints,
  type BuildFacts,
  type ComposeFileFacts,
  type ContainerFacts,
  type FuseMount,
  type InitFacts,
  type SourceFacts,
  type SourceKind,
} from './facts.js'
import { sourceRefusal } from './propose-assets.js'

export interface GatherInitOptions {
  hostname: string
  /** report.concurrency, and the path rule (allowedRoots, stateDir, backupDir) */
  config: Config
  mountinfoFile?: string
  progress?: (text: string) => void
  /** how long a FUSE mountpoint may take to answer a stat (a hung remote) */
  statTimeoutMs?: number
}

/** FUSE filesystems that are no place for data (desktop portals, lxcfs's /proc files, snaps). */
const NOT_STORAGE = new Set([
  'fuse.lxcfs',
  'fuse.portal',
  'fuse.gvfsd-fuse',
  'fuse.snapfuse',
  'fuse.squashfuse',
  'fuse.xdg-document-portal',
])
const SYSTEM_MOUNTS = ['/proc', '/sys', '/dev', '/run/user', '/snap']

/** FUSE mounts that could hold data, the visible one per mountpoint, in mountinfo order. */
export function storageFuseMounts(mounts: MountEntry[]): MountEntry[] {
  const byPoint = new Map<string, MountEntry>()
  for (const m of mounts) {
    const fuse = m.fsType === 'fuse' || m.fsType === 'fuseblk' || m.fsType.startsWith('fuse.')
    if (!fuse || NOT_STORAGE.has(m.fsType)) continue
    if (SYSTEM_MOUNTS.some((s) => isUnder(m.mountPoint, s))) continue
    byPoint.delete(m.mountPoint) // a later mount on the same point hides the earlier one
    byPoint.set(m.mountPoint, m)
  }
  return [...byPoint.values()]
}

function timeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms)
    timer.unref()
  })
  return Promise.race([p, t]).finally(() => clearTimeout(timer))
}

async function liveness(m: MountEntry, ms: number): Promise<FuseMount> {
  const base = { mountPoint: m.mountPoint, fsType: m.fsType, source: m.source }
  try {
    await timeout(stat(m.mountPoint), ms, 'stat')
    return { ...base, live: true, problem: null }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const problem =
      code === 'ENOTCONN'
        ? 'ENOTCONN: its FUSE process is gone (fusermount3 -uz it, then mount it again)'
        : code === 'EACCES'
          ? 'EACCES: mounted without allow_other?'
          : (code ?? (err as Error).message)
    return { ...base, live: false, problem }
  }
}

function kindOf(st: Awaited<ReturnType<typeof lstat>> | null): SourceKind {
  if (!st) return 'missing'
  if (st.isSymbolicLink()) return 'symlink'
  if (st.isDirectory()) return 'dir'
  if (st.isFile()) return 'file'
  if (st.isSocket()) return 'socket'
  return 'other'
}

async function buildFacts(
  labels: Record<string, string>,
  imageLabels: Record<string, string>,
): Promise<BuildFacts | null> {
  const dir = labels['shipshape.build'] ?? imageLabels['shipshape.build']
  if (dir === undefined) return null
  const dockerfile = labels['shipshape.dockerfile'] ?? imageLabels['shipshape.dockerfile'] ?? null
  if (!path.posix.isAbsolute(dir))
    return { dir, dockerfile, problem: `names ${dir}, not an absolute path` }
  const file = path.posix.resolve(dir, dockerfile ?? 'Dockerfile')
  const st = await stat(file).catch(() => null)
  return {
    dir: path.posix.normalize(dir),
    dockerfile,
    problem: st?.isFile() ? null : `names ${dir}, and there is no ${file}`,
  }
}

async function composeFile(file: string): Promise<ComposeFileFacts> {
  const text = await readFile(file, 'utf8').catch(() => null)
  if (text === null) {
    const exists = (await stat(file).catch(() => null)) !== null
    return { path: file, exists, servicesWithBuild: null }
  }
  try {
    const doc = parseYaml(text) as { services?: Record<string, { build?: unknown } | null> }
    const services = Object.entries(doc?.services ?? {})
      .filter(([, s]) => s && s.build !== undefined && s.build !== null)
      .map(([name]) => name)
    return { path: file, exists: true, servicesWithBuild: services }
  } catch {
    return { path: file, exists: true, servicesWithBuild: null }
  }
}

const normalizeSource = (p: string) => path.posix.normalize(p).replace(/(.)\/+$/, '$1')

export async function gatherInitFacts(engine: Engine, o: GatherInitOptions): Promise<InitFacts> {
  const warnings: string[] = []
  const progress = o.progress ?? (() => {})
  const limit = pLimit(Math.max(1, o.config.report.concurrency))
  const mountsP = readMountinfo(o.mountinfoFile).catch((err) => {
    warnings.push(`cannot read the mount table: ${(err as Error).message}`)
    return [] as MountEntry[]
  })
  const fuseP = mountsP.then((all) =>
    Promise.all(storageFuseMounts(all).map((m) => liveness(m, o.statTimeoutMs ?? 1000))),
  )

  progress('Listing containers')
  const list = await engine.listContainers()
  progress(`Inspecting ${list.length} containers`)
  const inspected = (
    await Promise.all(list.map((c) => limit(() => engine.inspectContainer(c.id))))
  ).filter((d) => d !== null) // removed meanwhile

  const imageIds = [...new Set(inspected.map((d) => d.imageId))]
  const images = new Map<string, { details: ImageDetails | null; history: HistoryEntry[] }>()
  await Promise.all(
    imageIds.map((id) =>
      limit(async () => {
        const [details, history] = await Promise.all([
          engine.inspectImage(id),
          engine.imageHistory(id).catch((err: Error) => {
            warnings.push(err.message)
            return [] as HistoryEntry[]
          }),
        ])
        images.set(id, { details, history })
      }),
    ),
  )

  const containers: ContainerFacts[] = await Promise.all(
    inspected.map(async (d): Promise<ContainerFacts> => {
      const img = images.get(d.imageId)
      const imageLabels = img?.details?.labels ?? {}
      return {
        id: d.id,
        name: d.name,
        image: d.image,
        imageId: d.imageId,
        imageTags: img?.details?.tags ?? [],
        running: d.running,
        labels: d.labels,
        mounts: d.mounts,
        networkMode: d.networkMode,
        published: d.published,
        exposed: d.exposed,
        healthcheck: d.healthcheck,
        gpu: gpuRequest(d),
        cudaHints: img?.details ? cudaHints(img.details, img.history) : [],
        build: await buildFacts(d.labels, imageLabels),
      }
    }),
  )

  progress('Reading compose files')
  const files = new Set<string>()
  for (const c of containers)
    if (c.labels['com.docker.compose.project']) for (const f of labelFiles(c)) files.add(f)
  const composeFiles: Record<string, ComposeFileFacts> = {}
  await Promise.all(
    [...files].map((f) =>
      limit(async () => {
        composeFiles[f] = await composeFile(f)
      }),
    ),
  )

  const fuse = await fuseP
  progress('Measuring bind-mounted directories')
  const sourcePaths = new Set<string>()
  for (const c of containers)
    for (const m of c.mounts)
      if (m.type === 'bind' && m.source.startsWith('/')) sourcePaths.add(normalizeSource(m.source))
  const sources: Record<string, SourceFacts> = {}
  await Promise.all(
    [...sourcePaths].map((p) =>
      limit(async () => {
        const kind = kindOf(await lstat(p).catch(() => null))
        const candidate =
          kind === 'dir' &&
          sourceRefusal(p, o.config) === null &&
          !fuse.some((m) => isUnder(p, m.mountPoint)) // never du through a remote
        let sizeBytes: number | null = null
        if (candidate) {
          const du = await measureDir(p)
          sizeBytes = du.sizeBytes
          warnings.push(...du.warnings)
        }
        sources[p] = { path: p, kind, sizeBytes }
      }),
    ),
  )

  return {
    hostname: o.hostname,
    engine: engine.info.address,
    containers: containers.sort((a, b) => a.name.localeCompare(b.name)),
    composeFiles,
    sources,
    mounts: fuse,
    warnings,
  }
}
