import { connectEngine } from '../docker/engine.js'
import { chooseEngineAddress } from '../docker/address.js'
import type { Config } from '../config/index.js'
import { analyzeReport } from './analyze.js'
import { gatherInventory } from './gather.js'
import { computeGrowth, readPreviousReport, writeReportFiles } from './growth.js'
import { renderMarkdown } from './render.js'
import type { Report } from './types.js'

export * from './types.js'
export { renderHuman, renderMarkdown } from './render.js'

export interface ReportContext {
  config: Config
  configSource: string
  dockerHost?: string | undefined
  env?: NodeJS.ProcessEnv
  now?: () => Date
  progress?: (text: string) => void
  warn?: (text: string) => void
}

/** Connect, gather, analyse. Read-only: nothing on the host or engine changes. */
export async function buildReport(ctx: ReportContext): Promise<Report> {
  const { config } = ctx
  const address = chooseEngineAddress({
    flag: ctx.dockerHost,
    env: ctx.env,
    config: config.docker.host,
  })
  ctx.progress?.(`Connecting to ${address.url}`)
  const engine = await connectEngine(address, {
    timeoutMs: config.docker.timeout,
    env: ctx.env,
    warn: ctx.warn,
  })
  try {
    const inventory = await gatherInventory(engine, {
      paths: config.report.paths,
      concurrency: config.report.concurrency,
      progress: ctx.progress,
    })
    return analyzeReport(
      inventory,
      {
        host: config.host,
        configSource: ctx.configSource,
        top: config.report.top,
        bigImageBytes: config.report.bigImage,
        bigAssetsBytes: config.report.bigAssets,
        assets: config.assets,
      },
      (ctx.now ?? (() => new Date()))(),
    )
  } finally {
    engine.close()
  }
}

/**
 * Writes the dated JSON + Markdown into dir and attaches the growth since the newest
 * earlier report found there.
 */
export async function saveReport(
  report: Report,
  dir: string,
  opts: { layersPerImage: number; warn: (s: string) => void },
): Promise<{ report: Report; jsonFile: string; markdownFile: string }> {
  const previous = await readPreviousReport(dir, opts.warn)
  const withGrowth: Report = previous
    ? {
        ...report,
        growth: computeGrowth(previous.report, report, previous.file, report.thresholds.top),
      }
    : report
  const files = await writeReportFiles(dir, withGrowth, renderMarkdown(withGrowth, opts))
  return { report: withGrowth, ...files }
}
