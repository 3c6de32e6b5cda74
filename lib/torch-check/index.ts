import type { Config, ServiceConfig } from '../config/index.js'
import { serviceOfContainer } from '../config/services.js'
import type { Engine } from '../docker/engine.js'
import type { ContainerDetails, ImageDetails } from '../docker/types.js'
import { UsageError } from '../errors.js'
import { scanImage } from '../scan/scan.js'
import type { CodeMatch, ScanResult } from '../scan/types.js'
import { findCudaCallsInDir } from '../scan/code.js'
import { detectHostGpu, gpuRequest, type GpuRequest, type HostGpu } from '../docker/gpu.js'
import { probeTorch, type RuntimeProbe } from '../scan/torch-probe.js'
import { decideVerdict, type StaticTorch, type Verdict } from '../scan/torch-verdict.js'

export const TORCH_CHECK_SCHEMA = 'shipshape.torch-check/1'

export interface TorchTarget {
  target: string
  kind: 'container' | 'image'
  container: { id: string; name: string; running: boolean } | null
  image: { id: string; tags: string[] }
  /** the configured service this container belongs to */
  service: string | null
  verdict: Verdict
  torch: { version: string; cuda: string | null } | null
  runtime: RuntimeProbe | null
  static: StaticTorch | null
  gpuRequest: GpuRequest | null
  codeCalls: CodeMatch[]
  estimatedSavingsBytes: number
  suggestion: string | null
  reasons: string[]
  /** mismatches with the config (services.X.gpu) */
  findings: string[]
}

export interface TorchCheckReport {
  schema: typeof TORCH_CHECK_SCHEMA
  generatedAt: string
  hostGpu: HostGpu
  targets: TorchTarget[]
}

export interface TorchCheckOptions {
  all?: boolean
  /** read the image content (the static check); off: runtime only */
  scan?: boolean
  /** run the python probe inside running containers (it imports torch there: memory, CPU) */
  probe?: boolean
  probeTimeoutMs?: number
  progress?: (text: string) => void
  now?: () => Date
}

/** CUDA bytes of a scan: NVIDIA libraries, libtorch_cuda*, cudnn outside nvidia/, triton. */
export function staticTorch(scan: ScanResult): StaticTorch {
  const parts = ['nvidia-libs', 'libtorch-cuda', 'cudnn', 'triton']
    .map((name) => ({ name, bytes: scan.buckets[name]?.bytes ?? 0 }))
    .filter((p) => p.bytes > 0)
  return {
    torch: scan.torch ? { version: scan.torch.version, cuda: scan.torch.cuda } : null,
    cudaBytes: parts.reduce((a, p) => a + p.bytes, 0),
    parts,
  }
}

type Resolved =
  | { kind: 'container'; target: string; container: ContainerDetails }
  | { kind: 'image'; target: string; image: ImageDetails }

/** TARGET: a container (name or id) first, else an image; `container:X` / `image:X` force one. */
async function resolveTarget(engine: Engine, target: string): Promise<Resolved> {
  const forced = /^(container|image):(.+)$/.exec(target)
  const name = forced ? forced[2]! : target
  if (!forced || forced[1] === 'container') {
    const c = await engine.inspectContainer(name)
    if (c) return { kind: 'container', target, container: c }
  }
  if (!forced || forced[1] === 'image') {
    const i = await engine.inspectImage(name)
    if (i) return { kind: 'image', target, image: i }
  }
  throw new UsageError(
    `no ${forced ? forced[1] : 'container or image'} named '${name}' on this engine`,
  )
}

/** Judge each target on an open engine (the caller's: it closes it). Read-only. */
export async function torchCheckOn(
  engine: Engine,
  config: Config,
  targets: string[],
  opts: TorchCheckOptions = {},
): Promise<TorchCheckReport> {
  if (!targets.length && !opts.all) throw new UsageError('name a container or image, or use --all')
  const resolved: Resolved[] = []
  for (const t of targets) resolved.push(await resolveTarget(engine, t))
  if (opts.all) {
    const containers = await engine.listContainers()
    const used = new Set(containers.map((c) => c.imageId))
    for (const c of containers) {
      const d = await engine.inspectContainer(c.id)
      if (d && !resolved.some((r) => r.kind === 'container' && r.container.id === d.id))
        resolved.push({ kind: 'container', target: d.name, container: d })
    }
    for (const img of (await engine.diskUsage()).images) {
      if (used.has(img.id) || resolved.some((r) => r.kind === 'image' && r.image.id === img.id))
        continue
      const d = await engine.inspectImage(img.id)
      if (d) resolved.push({ kind: 'image', target: d.tags[0] ?? img.id.slice(7, 19), image: d })
    }
  }
  const hostGpu = await detectHostGpu()
  const scans = new Map<string, Promise<ScanResult>>()
  const scanOf = (imageId: string) => {
    if (!scans.has(imageId)) {
      opts.progress?.(`Scanning image ${imageId.slice(7, 19)}`)
      scans.set(imageId, scanImage(engine, imageId, { top: config.report.top }))
    }
    return scans.get(imageId)!
  }
  const out: TorchTarget[] = []
  for (const r of resolved) {
    const imageId = r.kind === 'container' ? r.container.imageId : r.image.id
    opts.progress?.(`Checking ${r.target}`)
    const scan = opts.scan === false ? null : await scanOf(imageId)
    let runtime: RuntimeProbe | null = null
    let request: GpuRequest | null = null
    let service: [string, ServiceConfig] | null = null
    const codeCalls: CodeMatch[] = [...(scan?.cudaCalls ?? [])]
    if (r.kind === 'container') {
      request = gpuRequest(r.container)
      if (r.container.running && opts.probe !== false)
        runtime = await probeTorch(engine, r.container.id, opts.probeTimeoutMs)
      service = serviceOfContainer(config, r.container)
      if (service?.[1].sourceDir)
        codeCalls.push(...(await findCudaCallsInDir(service[1].sourceDir)))
    }
    const v = decideVerdict({
      kind: r.kind,
      runtime,
      static: scan ? staticTorch(scan) : null,
      gpuRequest: request,
      hostGpu: hostGpu.present,
      codeCalls,
      expectation: service?.[1].gpu,
    })
    const image = r.kind === 'container' ? await engine.inspectImage(imageId) : r.image
    out.push({
      target: r.target,
      kind: r.kind,
      container:
        r.kind === 'container'
          ? { id: r.container.id, name: r.container.name, running: r.container.running }
          : null,
      image: { id: imageId, tags: image?.tags ?? [] },
      service: service?.[0] ?? null,
      verdict: v.verdict,
      torch: v.torch,
      runtime,
      static: scan ? staticTorch(scan) : null,
      gpuRequest: request,
      codeCalls,
      estimatedSavingsBytes: v.estimatedSavingsBytes,
      // a configured service: the rebuild command names it
      suggestion:
        v.suggestion && service
          ? v.suggestion.replace('shipshape rebuild SERVICE', `shipshape rebuild ${service[0]}`)
          : v.suggestion,
      reasons: v.reasons,
      findings: v.mismatch ? [v.mismatch] : [],
    })
  }
  return {
    schema: TORCH_CHECK_SCHEMA,
    generatedAt: (opts.now ?? (() => new Date()))().toISOString(),
    hostGpu,
    targets: out,
  }
}
