/**
 * What `config init` knows about the host: gathered by gather.ts (I/O), read by propose.ts
 * (pure). Plain data, so unit tests write it as tables.
 */
import type { HistoryEntry, MountSummary, PublishedPort } from '../docker/types.js'
import type { GpuRequest } from '../docker/gpu.js'

export type { PublishedPort } from '../docker/types.js'

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
