import { access, readdir } from 'node:fs/promises'
import type { ContainerDetails } from './types.js'

export interface GpuRequest {
  requested: boolean
  /** what asks for a GPU: a device request, the nvidia runtime, NVIDIA_VISIBLE_DEVICES */
  reasons: string[]
}

/** Does this container ask for a GPU? Pure. */
export function gpuRequest(
  c: Pick<ContainerDetails, 'deviceRequests' | 'runtime' | 'env'>,
): GpuRequest {
  const reasons: string[] = []
  for (const d of c.deviceRequests) {
    const gpu = d.driver === 'nvidia' || d.capabilities.some((set) => set.includes('gpu'))
    if (gpu) {
      const which = d.deviceIds.length
        ? `devices ${d.deviceIds.join(',')}`
        : d.count === -1
          ? 'all'
          : `count ${d.count}`
      reasons.push(`device request (${d.driver || 'gpu'}: ${which})`)
    }
  }
  if (c.runtime === 'nvidia') reasons.push('runtime nvidia')
  const visible = c.env.find((e) => e.startsWith('NVIDIA_VISIBLE_DEVICES='))?.split('=')[1]
  if (visible !== undefined && !['', 'void', 'none'].includes(visible.trim().toLowerCase()))
    reasons.push(`NVIDIA_VISIBLE_DEVICES=${visible}`)
  return { requested: reasons.length > 0, reasons }
}

export interface HostGpu {
  present: boolean
  evidence: string[]
}

/** Is there an NVIDIA GPU on this host? (device nodes, the driver's proc entries) */
export async function detectHostGpu(root = '/'): Promise<HostGpu> {
  const evidence: string[] = []
  const p = (s: string) => (root === '/' ? s : root + s)
  if (
    await access(p('/dev/nvidia0')).then(
      () => true,
      () => false,
    )
  )
    evidence.push('/dev/nvidia0')
  const gpus = await readdir(p('/proc/driver/nvidia/gpus')).catch(() => [] as string[])
  if (gpus.length) evidence.push(`/proc/driver/nvidia/gpus (${gpus.length})`)
  return { present: evidence.length > 0, evidence }
}
