import type { Engine } from '../docker/engine.js'
import type { EngineCommandContext } from '../config/context.js'
import { scanImage } from './scan.js'
import type { ScanResult } from './types.js'
import { inspectFindings, type Finding } from './rules.js'

export const INSPECT_SCHEMA = 'shipshape.inspect/1'

export interface InspectReport extends ScanResult {
  schema: typeof INSPECT_SCHEMA
  generatedAt: string
  engine: { address: string; version: string; imageStore: 'classic' | 'containerd' }
  findings: Finding[]
}

export type InspectContext = EngineCommandContext

/** Scan one image on an open engine and judge it. Read-only. */
export async function inspectImageOn(
  engine: Engine,
  imageRef: string,
  ctx: InspectContext,
): Promise<InspectReport> {
  const scan = await scanImage(engine, imageRef, {
    top: ctx.config.report.top,
    progress: (bytes) => ctx.progress?.(`Reading ${imageRef}: ${(bytes / 1e6).toFixed(0)} MB`),
  })
  return {
    schema: INSPECT_SCHEMA,
    generatedAt: (ctx.now ?? (() => new Date()))().toISOString(),
    engine: {
      address: engine.info.address,
      version: engine.info.version,
      imageStore: engine.info.imageStore,
    },
    ...scan,
    findings: inspectFindings(scan),
  }
}
