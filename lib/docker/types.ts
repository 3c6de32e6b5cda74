/** Engine data as shipshape uses it, the same on every engine version (see normalize.ts). */

export interface EngineInfo {
  address: string
  version: string
  /** API version shipshape speaks (negotiated). */
  apiVersion: string
  /** Newest API version the engine offers. */
  engineApiVersion: string
  os: string
  arch: string
  storageDriver: string
  dockerRootDir: string
  imageStore: 'classic' | 'containerd'
}

export interface ImageSummary {
  id: string
  tags: string[]
  digests: string[]
  createdAt: string
  sizeBytes: number
  /** Bytes shared with other images; null when the engine did not compute it. */
  sharedBytes: number | null
  /** Containers (running or stopped) using it; null when the engine did not count. */
  containers: number | null
  labels: Record<string, string>
  /** ParentId: the local image it was built on (classic store, local builds); '' when none */
  parentId?: string
}

export interface HistoryEntry {
  id: string
  createdAt: string
  createdBy: string
  sizeBytes: number
  tags: string[]
  comment: string
}

export interface MountSummary {
  type: string
  source: string
  destination: string
  readOnly: boolean
  name?: string
}

export interface ContainerSummary {
  id: string
  name: string
  image: string
  imageId: string
  state: string
  status: string
  createdAt: string
  /** Bytes written in the container's own layer; null when not computed. */
  sizeRwBytes: number | null
  mounts: MountSummary[]
  labels: Record<string, string>
}

export interface VolumeSummary {
  name: string
  driver: string
  mountpoint: string
  /** null when the engine could not measure it (non-local driver). */
  sizeBytes: number | null
  refCount: number | null
  labels: Record<string, string>
  /** CreatedAt; null when the engine did not say */
  createdAt?: string | null
}

export interface BuildCacheRecord {
  id: string
  type: string
  description: string
  sizeBytes: number
  inUse: boolean
  shared: boolean
  createdAt: string | null
  lastUsedAt: string | null
}

export interface DiskUsage {
  layersSize: number
  images: ImageSummary[]
  containers: ContainerSummary[]
  volumes: VolumeSummary[]
  buildCache: BuildCacheRecord[]
}

export interface DeviceRequest {
  driver: string
  count: number
  deviceIds: string[]
  capabilities: string[][]
}

export interface PublishedPort {
  /** the container's port */
  port: number
  protocol: string
  /** '' or 0.0.0.0 / :: for every address */
  hostIp: string
  hostPort: number
}

/** GET /containers/{id}/json, the fields shipshape reads. */
export interface ContainerDetails {
  id: string
  name: string
  image: string
  imageId: string
  running: boolean
  status: string
  /** HostConfig.Runtime (e.g. "runc", "nvidia") */
  runtime: string
  deviceRequests: DeviceRequest[]
  env: string[]
  workingDir: string
  labels: Record<string, string>
  mounts: MountSummary[]
  /** Config.User as given ('' = the image's default, usually root; 'uid', 'uid:gid', 'name') */
  user: string
  /** RestartCount: how often the engine restarted it under its restart policy */
  restartCount: number
  /** State.StartedAt (ISO; '' when never started) */
  startedAt: string
  /** State.FinishedAt as the engine gives it; null when it never stopped */
  finishedAt: string | null
  /** SizeRw: bytes written in its own layer; null unless inspected with `size` */
  sizeRwBytes: number | null
  /** State.Health.Status when the container has a HEALTHCHECK, else null */
  health: 'starting' | 'healthy' | 'unhealthy' | null
  /** compose labels, when compose made it */
  composeProject: string | null
  composeService: string | null
  /** HostConfig.NetworkMode: host, none, bridge, a network name, container:ID */
  networkMode: string
  /** published ports: a running one's actual bindings, else what it asks for */
  published: PublishedPort[]
  /** TCP ports the container or its image EXPOSEs */
  exposed: number[]
  /** a HEALTHCHECK (its own or its image's) other than NONE */
  healthcheck: boolean
}

/** GET /images/{name}/json, the fields shipshape reads. */
export interface ImageDetails {
  id: string
  tags: string[]
  /** RepoDigests: `repo@sha256:…` of each registry manifest it was pulled or pushed as */
  digests?: string[]
  /** inspect's Size: under the containerd image store the compressed content only */
  sizeBytes: number
  user: string
  workingDir: string
  env: string[]
  entrypoint: string[]
  cmd: string[]
  labels: Record<string, string>
  /** a HEALTHCHECK other than NONE */
  healthcheck: boolean
  /** Metadata.LastTagTime: when it was last tagged (pulled, built, tagged) on this host; null: unknown */
  lastTagTime?: string | null
}
