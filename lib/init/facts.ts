/**
 * What `config init` knows about the host: gathered by gather.ts (I/O), read by propose.ts
 * (pure). Plain data, so unit tests write it as tables.
 */
import type { HistoryEntry, MountSummary } from '../docker/types.js'
import type { GpuRequest } from '../docker/gpu.js'

export interface PublishedPort {
  /** the container's port */
  port: number
  protocol: string
  /** '' or 0.0.0.0 / :: for every address */
  hostIp: string
  hostPort: number
}

/** One container, from its inspect, its image and its labels. */
export interface ContainerFacts {
  id: string
  name: string
  /** the reference it was created from (Config.Image): a tag, a digest or an image id */
  image: string
  imageId: string
  /** the image's tags now */
  imageTags: string[]
  running: boolean
  labels: Record<string, string>
  mounts: MountSummary[]
  /** a HEALTHCHECK (its own or its image's) other than NONE */
  healthcheck: boolean
  /** HostConfig.NetworkMode: host, none, bridge, a network name, container:ID */
  networkMode: string
  /** published ports (what answers on the host) */
  published: PublishedPort[]
  /** TCP ports the container or its image EXPOSEs */
  exposed: number[]
  gpu: GpuRequest
  /** cheap signs of a CUDA torch in the image (its ENV and history: never a content scan) */
  cudaHints: string[]
  /** build context named by a shipshape.build label (the container's or its image's) */
  build: BuildFacts | null
}

export interface BuildFacts {
  dir: string
  /** shipshape.dockerfile, relative to dir (null: Dockerfile) */
  dockerfile: string | null
  /** why it cannot be used (not absolute, no Dockerfile there…); null when it can */
  problem: string | null
}

export interface ComposeFileFacts {
  path: string
  exists: boolean
  /** services with a build: key in this file; null when it could not be read or parsed */
  servicesWithBuild: string[] | null
}

export type SourceKind = 'dir' | 'file' | 'symlink' | 'socket' | 'other' | 'missing'

/** A bind-mount source on the host. */
export interface SourceFacts {
  path: string
  kind: SourceKind
  /** du -x -s in bytes; null when not measured (not a candidate) or du failed */
  sizeBytes: number | null
}

/** A FUSE mount in /proc/self/mountinfo. */
export interface FuseMount {
  mountPoint: string
  fsType: string
  source: string
  /** answers a stat (a dead rclone answers ENOTCONN, a mount without allow_other EACCES) */
  live: boolean
  problem: string | null
}

export interface InitFacts {
  hostname: string
  /** the engine address read */
  engine: string
  containers: ContainerFacts[]
  /** by absolute path */
  composeFiles: Record<string, ComposeFileFacts>
  /** bind-mount sources by path */
  sources: Record<string, SourceFacts>
  /** FUSE mounts in mountinfo order */
  mounts: FuseMount[]
  warnings: string[]
}

type Raw = Record<string, unknown>

const obj = (v: unknown): Raw => (v && typeof v === 'object' ? (v as Raw) : {})
const str = (v: unknown): string => (typeof v === 'string' ? v : '')

/** "8080/tcp" → [8080, 'tcp'] */
function portKey(key: string): [number, string] | null {
  const m = /^(\d+)(?:\/([a-z]+))?$/.exec(key)
  return m ? [Number(m[1]), m[2] ?? 'tcp'] : null
}

/**
 * The fields of GET /containers/{id}/json that lib/docker/types.ts has no place for yet (network
 * mode, ports, the HEALTHCHECK of a stopped container). Pure.
 */
export function networkFacts(raw: Raw): {
  networkMode: string
  published: PublishedPort[]
  exposed: number[]
  healthcheck: boolean
} {
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

const CUDA_ENV = /^(CUDA_VERSION|NV_CUDA_CUDART_VERSION|NVIDIA_REQUIRE_CUDA)=(.*)$/

/**
 * Signs that an image carries a CUDA torch, from what the engine already has at hand: its ENV
 * (CUDA base images set CUDA_VERSION), its labels, and the instructions in its history (a pip
 * install of torch without the CPU wheel index pulls the CUDA build on x86_64). Pure; never reads
 * the image content (that is `shipshape torch-check`).
 */
export function cudaHints(
  image: { env: string[]; labels: Record<string, string> },
  history: Pick<HistoryEntry, 'createdBy'>[],
): string[] {
  const hints: string[] = []
  const env = image.env.map((e) => CUDA_ENV.exec(e)).find((m) => m !== null)
  if (env) hints.push(`${env[1]}=${env[2]!.slice(0, 40)} in the image's ENV (a CUDA base image)`)
  else if (image.labels['com.nvidia.cuda.version'])
    hints.push(`label com.nvidia.cuda.version=${image.labels['com.nvidia.cuda.version']}`)
  for (const h of history) {
    const by = h.createdBy
    if (/download\.pytorch\.org\/whl\/cu\d+/.test(by)) {
      hints.push('its history installs torch from the CUDA wheel index')
      break
    }
    if (
      /\b(pip3?|uv|conda|mamba|poetry)\b/.test(by) &&
      /(^|[\s"'=])torch([=<>~!\s"']|$)/.test(by) &&
      !/whl\/cpu|\+cpu|cpuonly/.test(by)
    ) {
      hints.push('its history installs torch without the CPU wheel index (a CUDA build on x86_64)')
      break
    }
  }
  return hints
}
