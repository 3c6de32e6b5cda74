import type { Finding } from '../scan/rules.js'
import type { Recommendation, Report, Risk } from './types.js'

export interface DeepResult {
  image: string
  id: string
  wastedBytes: number
  findings: Finding[]
}

function rebuildHint(services: string[] | undefined): string {
  if (!services?.length)
    return 'rebuild (shipshape rebuild SERVICE, once the service is in the host config)'
  return services.map((s) => `shipshape rebuild ${s}`).join(' / ')
}

const RISK: Record<string, Risk> = {
  'cuda-torch': 'medium',
  'build-tools': 'medium',
  'non-slim-base': 'medium',
}

/**
 * `report --deep`: the findings of each big image's scan become recommendations, in place of
 * the generic "inspect it" one. Pure.
 */
export function withDeepFindings(
  report: Report,
  deep: DeepResult[],
  /** image id → the configured services that run it: a rebuild recommendation names them */
  servicesByImage: Map<string, string[]> = new Map(),
): Report {
  const scanned = new Set(deep.map((d) => d.image))
  const recs: Recommendation[] = report.recommendations.filter(
    (r) => !(r.kind === 'inspect-image' && scanned.has(r.target)),
  )
  for (const d of deep) {
    for (const f of d.findings) {
      if (f.estimatedSavingsBytes <= 0) continue
      recs.push({
        kind: `image-${f.rule}`,
        target: d.image,
        estimatedSavingsBytes: f.estimatedSavingsBytes,
        risk: RISK[f.rule] ?? 'low',
        command:
          f.rule === 'cuda-torch'
            ? `shipshape torch-check image:${d.image}`
            : `shipshape inspect ${d.image}`,
        reason: `${f.message}; fix in the Dockerfile, then ${rebuildHint(servicesByImage.get(d.id))}`,
      })
    }
  }
  recs.sort(
    (a, b) =>
      (b.estimatedSavingsBytes ?? -1) - (a.estimatedSavingsBytes ?? -1) ||
      a.target.localeCompare(b.target),
  )
  return { ...report, recommendations: recs, deep }
}
