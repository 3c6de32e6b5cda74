/**
 * The one adapter for differences between engine versions (API 1.41 … 1.45+) and image
 * stores. Pure functions from raw API payloads to lib/docker/types.ts; nothing else in
 * shipshape reads raw engine fields.
 */
import type {
  BuildCacheRecord,
  ContainerDetails,
  ContainerSummary,
  DeviceRequest,
  ImageDetails,
  DiskUsage,
  EngineInfo,
  HistoryEntry,
  ImageSummary,
  MountSummary,
  PublishedPort,
  VolumeSummary,
} from './types.js'

type Raw = Record<string, unknown>

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null)
const str = (v: unknown): string => (typeof v === 'string' ? v : '')
const strs = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
const labels = (v: unknown): Record<string, string> =>
  v && typeof v === 'object' ? (v as Record<string, string>) : {}
const unixToIso = (v: unknown): string => {
  const n = num(v)
  return n === null ? '' : new Date(n * 1000).toISOString()
}
const isoOrNull = (v: unknown): string | null => {
  const s = str(v)
  if (!s || s.startsWith('0001-01-01')) return null
  const d = new Date(s)
  return Number.isNaN(d.getTime()) ? null : d.toISOString()
}
/** -1 means "not computed" in the engine API. */
const measured = (v: unknown): number | null => {
  const n = num(v)
  return n === null || n < 0 ? null : n
}

export function normalizeImage(raw: Raw): ImageSummary {
  // API 1.44 dropped VirtualSize; before it, Size and VirtualSize were equal for images.
  const size = num(raw.Size) ?? num(raw.VirtualSize) ?? 0
  return {
    id: str(raw.Id),
    tags: strs(raw.RepoTags).filter((t) => t !== '<none>:<none>'),
    digests: strs(raw.RepoDigests).filter((t) => t !== '<none>@<none>'),
    createdAt: unixToIso(raw.Created),
    sizeBytes: size,
    sharedBytes: measured(raw.SharedSize),
    containers: measured(raw.Containers),
    labels: labels(raw.Labels),
    parentId: str(raw.ParentId),
  }
}

/** Names of build args / env vars whose values are secrets. */
const SECRET_NAME =
  /(TOKEN|SECRET|PASSW(OR)?D|PASSPHRASE|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|AUTH)/i

/**
 * Build args and ENV values baked into an image's history (`|1 HF_TOKEN=… /bin/sh -c …`,
 * `ENV API_KEY=…`) and passwords in URLs are replaced by *** before anything prints them.
 */
export function redactSecrets(text: string): string {
  return text
    .replace(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|'[^']*'|\S+)/g, (m, name: string) =>
      SECRET_NAME.test(name) ? `${name}=***` : m,
    )
    .replace(/\b([A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s:/@]+):[^\s@/]+@/g, '$1:***@')
}

export function normalizeHistory(raw: Raw): HistoryEntry {
  return {
    id: str(raw.Id),
    createdAt: unixToIso(raw.Created),
    createdBy: redactSecrets(str(raw.CreatedBy)),
    sizeBytes: num(raw.Size) ?? 0,
    tags: strs(raw.Tags),
    comment: str(raw.Comment),
  }
}

function normalizeMount(raw: Raw): MountSummary {
  const m: MountSummary = {
    type: str(raw.Type),
    source: str(raw.Source),
    destination: str(raw.Destination),
    readOnly: raw.RW === false,
  }
  if (raw.Name) m.name = str(raw.Name)
  return m
}

export function normalizeContainer(raw: Raw): ContainerSummary {
  const names = strs(raw.Names)
  return {
    id: str(raw.Id),
    name: (names[0] ?? '').replace(/^\//, ''),
    image: str(raw.Image),
    imageId: str(raw.ImageID),
    state: str(raw.State),
    status: str(raw.Status),
    createdAt: unixToIso(raw.Created),
    sizeRwBytes: measured(raw.SizeRw),
    mounts: Array.isArray(raw.Mounts) ? (raw.Mounts as Raw[]).map(normalizeMount) : [],
    labels: labels(raw.Labels),
  }
}

export function normalizeVolume(raw: Raw): VolumeSummary {
  const usage = (raw.UsageData ?? {}) as Raw
  return {
    name: str(raw.Name),
    driver: str(raw.Driver),
    mountpoint: str(raw.Mountpoint),
    sizeBytes: measured(usage.Size),
    refCount: measured(usage.RefCount),
    labels: labels(raw.Labels),
    createdAt: isoOrNull(raw.CreatedAt),
  }
}

export function normalizeBuildCache(raw: Raw): BuildCacheRecord {
  return {
    id: str(raw.ID),
    type: str(raw.Type),
    description: str(raw.Description),
    sizeBytes: num(raw.Size) ?? 0,
    inUse: raw.InUse === true,
    shared: raw.Shared === true,
    createdAt: isoOrNull(raw.CreatedAt),
    lastUsedAt: isoOrNull(raw.LastUsedAt),
  }
}

/** GET /system/df. Fills an image's container count from the container list when the engine left it out. */
export function normalizeDiskUsage(raw: Raw): DiskUsage {
  const containers = ((raw.Containers as Raw[] | null) ?? []).map(normalizeContainer)
  const images = ((raw.Images as Raw[] | null) ?? []).map(normalizeImage)
  const uses = new Map<string, number>()
  for (const c of containers) uses.set(c.imageId, (uses.get(c.imageId) ?? 0) + 1)
  for (const img of images) if (img.containers === null) img.containers = uses.get(img.id) ?? 0
  const layersSize = num(raw.LayersSize)
  return {
    layersSize: layersSize ?? images.reduce((a, i) => a + i.sizeBytes, 0),
    images,
    containers,
    volumes: ((raw.Volumes as Raw[] | null) ?? []).map(normalizeVolume),
    buildCache: ((raw.BuildCache as Raw[] | null) ?? []).map(normalizeBuildCache),
  }
}

type VersionFacts = Pick<EngineInfo, 'version' | 'apiVersion' | 'engineApiVersion' | 'os' | 'arch'>

/** GET /version: the engine's version and newest API, and the API version shipshape speaks. */
export function normalizeVersion(raw: Raw): VersionFacts {
  const engineApi = str(raw.ApiVersion)
  return {
    version: str(raw.Version),
    apiVersion: negotiateApiVersion(engineApi),
    engineApiVersion: engineApi,
    os: `${raw.Os}`,
    arch: `${raw.Arch}`,
  }
}

/** What the rest of shipshape knows about the engine: /version (normalized) and GET /info. */
export function normalizeEngineInfo(address: string, v: VersionFacts, info: Raw): EngineInfo {
  return {
    address,
    version: v.version,
    apiVersion: v.apiVersion,
    engineApiVersion: v.engineApiVersion,
    os: v.os,
    arch: v.arch,
    storageDriver: String(info.Driver ?? ''),
    dockerRootDir: String(info.DockerRootDir ?? ''),
    imageStore: detectImageStore(info),
  }
}

export function detectImageStore(info: Raw): 'classic' | 'containerd' {
  const status = (info.DriverStatus as unknown[][] | null) ?? []
  const snapshotter = status.some(
    (kv) => Array.isArray(kv) && kv[0] === 'driver-type' && String(kv[1]).includes('snapshotter'),
  )
  return snapshotter ? 'containerd' : 'classic'
}

/** Compare dotted API versions ("1.41" < "1.45"). */
export function compareApiVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

/** Newest API version shipshape is tested against; newer engines still serve it. */
export const CLIENT_MAX_API = '1.45'
/** Oldest API version shipshape supports (Docker 20.10). */
export const CLIENT_MIN_API = '1.41'

export function negotiateApiVersion(engineApi: string): string {
  return compareApiVersions(engineApi, CLIENT_MAX_API) < 0 ? engineApi : CLIENT_MAX_API
}

function normalizeDeviceRequest(raw: Raw): DeviceRequest {
  return {
    driver: str(raw.Driver),
    count: num(raw.Count) ?? 0,
    deviceIds: strs(raw.DeviceIDs),
    capabilities: Array.isArray(raw.Capabilities) ? (raw.Capabilities as unknown[]).map(strs) : [],
  }
}

export function normalizeContainerDetails(raw: Raw): ContainerDetails {
  const state = (raw.State ?? {}) as Raw
  const host = (raw.HostConfig ?? {}) as Raw
  const config = (raw.Config ?? {}) as Raw
  const finishedAt = str(state.FinishedAt)
  return {
    id: str(raw.Id),
    name: str(raw.Name).replace(/^\//, ''),
    image: str(config.Image),
    imageId: str(raw.Image),
    running: state.Running === true,
    status: str(state.Status),
    runtime: str(host.Runtime),
    deviceRequests: Array.isArray(host.DeviceRequests)
      ? (host.DeviceRequests as Raw[]).map(normalizeDeviceRequest)
      : [],
    env: strs(config.Env),
    workingDir: str(config.WorkingDir),
    labels: labels(config.Labels),
    mounts: Array.isArray(raw.Mounts) ? (raw.Mounts as Raw[]).map(normalizeMount) : [],
    user: str(config.User),
    restartCount: num(raw.RestartCount) ?? 0,
    startedAt: str(state.StartedAt),
    // "0001-01-01T00:00:00Z": never stopped
    finishedAt: finishedAt && !finishedAt.startsWith('0001-') ? finishedAt : null,
    sizeRwBytes: measured(raw.SizeRw),
    health: healthStatus((state.Health as Raw | undefined)?.Status),
    composeProject: labels(config.Labels)['com.docker.compose.project'] ?? null,
    composeService: labels(config.Labels)['com.docker.compose.service'] ?? null,
    ...containerNetwork(raw),
  }
}

const obj = (v: unknown): Raw => (v && typeof v === 'object' ? (v as Raw) : {})

/** "8080/tcp" → [8080, 'tcp'] */
function portKey(key: string): [number, string] | null {
  const m = /^(\d+)(?:\/([a-z]+))?$/.exec(key)
  return m ? [Number(m[1]), m[2] ?? 'tcp'] : null
}

/** A container's network mode, published and exposed ports, and whether it has a HEALTHCHECK. */
function containerNetwork(
  raw: Raw,
): Pick<ContainerDetails, 'networkMode' | 'published' | 'exposed' | 'healthcheck'> {
  const host = obj(raw.HostConfig)
  const config = obj(raw.Config)
  const running = obj(raw.State).Running === true
  // a running container's actual bindings (random host ports resolved); else what it asks for
  const bindings = running ? obj(obj(raw.NetworkSettings).Ports) : obj(host.PortBindings)
  const published: PublishedPort[] = []
  for (const [key, list] of Object.entries(bindings)) {
    const p = portKey(key)
    if (!p || !Array.isArray(list)) continue
    for (const b of list as Raw[]) {
      const hostPort = Number(str(obj(b).HostPort))
      if (!Number.isInteger(hostPort) || hostPort <= 0) continue
      published.push({ port: p[0], protocol: p[1], hostIp: str(obj(b).HostIp), hostPort })
    }
  }
  const exposed = Object.keys(obj(config.ExposedPorts))
    .map(portKey)
    .filter((p): p is [number, string] => p !== null && p[1] === 'tcp')
    .map((p) => p[0])
  // the daemon merges the image's HEALTHCHECK into the container's config; NONE turns it off
  const test = obj(config.Healthcheck).Test
  const healthcheck = Array.isArray(test) && test.length > 0 && test[0] !== 'NONE'
  return {
    networkMode: str(host.NetworkMode),
    published: dedupePorts(published),
    exposed: [...new Set(exposed)].sort((a, b) => a - b),
    healthcheck,
  }
}

function dedupePorts(ports: PublishedPort[]): PublishedPort[] {
  const seen = new Set<string>()
  return ports.filter((p) => {
    const k = `${p.port}/${p.protocol}:${p.hostPort}`
    if (seen.has(k)) return false // the same binding on 0.0.0.0 and ::
    seen.add(k)
    return true
  })
}

function healthStatus(v: unknown): ContainerDetails['health'] {
  return v === 'starting' || v === 'healthy' || v === 'unhealthy' ? v : null
}

export function normalizeImageDetails(raw: Raw): ImageDetails {
  const config = (raw.Config ?? {}) as Raw
  const health = (config.Healthcheck ?? null) as Raw | null
  const test = health ? strs(health.Test) : []
  return {
    id: str(raw.Id),
    tags: strs(raw.RepoTags).filter((t) => t !== '<none>:<none>'),
    digests: strs(raw.RepoDigests).filter((t) => t !== '<none>@<none>'),
    sizeBytes: num(raw.Size) ?? 0,
    user: str(config.User),
    workingDir: str(config.WorkingDir),
    env: strs(config.Env),
    entrypoint: strs(config.Entrypoint),
    cmd: strs(config.Cmd),
    labels: labels(config.Labels),
    healthcheck: test.length > 0 && test[0] !== 'NONE',
    lastTagTime: isoOrNull(((raw.Metadata ?? {}) as Raw).LastTagTime),
  }
}
