/** Pure refusals of rebuild/rollback: the preflight's judgements, no I/O. */
import type { Refusal } from '../shared/refusal.js'
import type { ServiceConfig } from '../config/index.js'
import { formatBytes } from '../config/index.js'
import { parseImageRef } from './context.js'

export function judgeService(o: {
  name: string
  service: ServiceConfig
  imageRef: string | null
  containers: { name: string; running: boolean }[]
  /** rollback may bring back a stopped service; rebuild needs one that runs */
  needRunning: boolean
}): Refusal[] {
  const out: Refusal[] = []
  if (!o.service.health) {
    out.push({
      check: 'health',
      message: `${o.name} has no health check: nothing would tell a good ${o.needRunning ? 'rebuild' : 'rollback'} from a bad one`,
      remedy: `add services.${o.name}.health (url, command or container: true) to the host config`,
    })
  }
  if (o.imageRef !== null && !parseImageRef(o.imageRef)) {
    out.push({
      check: 'image',
      message: `${o.name} runs ${o.imageRef}, an image id or digest: there is no tag to build or roll back under`,
      remedy: 'run the container from a tagged image (name:tag)',
    })
  }
  if (o.needRunning && o.containers.length && !o.containers.some((c) => c.running)) {
    out.push({
      check: 'containers',
      message: `${o.containers.map((c) => c.name).join(', ')} ${o.containers.length === 1 ? 'is' : 'are'} not running`,
      remedy: 'start the service first (a rebuild is checked against a running one)',
    })
  }
  return out
}

export function judgeBuildSpace(o: {
  needBytes: number
  freeBytes: number
  dir: string
}): Refusal[] {
  if (o.freeBytes >= o.needBytes) return []
  return [
    {
      check: 'space',
      message: `a rebuild may need ${formatBytes(o.needBytes)} (the image again and the commit of the container) and ${o.dir} has ${formatBytes(o.freeBytes)} free`,
      remedy: 'free space first: shipshape prune, or docker builder prune',
    },
  ]
}
