import type { Engine } from '../docker/engine.js'
import { inspectImageOn } from '../scan/inspect.js'
import type { Config } from '../config/index.js'
import type { EngineCommandContext } from '../config/context.js'
import { analyzeReport, imageRef, updateRecommendations } from './analyze.js'
import { withDeepFindings, type DeepResult } from './deep.js'
import { serviceOfContainer } from '../config/services.js'
import { gatherInventory } from './gather.js'
import { recordUse } from '../state/last-used.js'
import { gatherMigrations } from './migrations.js'
import { computeGrowth, readPreviousReport, writeReportFiles } from './growth.js'
import { renderMarkdown } from './render.js'
import type { Report } from './types.js'

export * from './types.js'
export { renderHuman, renderMarkdown } from './render.js'

/** What buildReport reads besides the engine (which the caller opens, passes and closes). */
export interface ReportContext extends Omit<EngineCommandContext, 'dockerHost' | 'env' | 'warn'> {
  configSource: string
  /** also scan every image over report.bigImage (inspect) and recommend from its findings */
  deep?: boolean
  /**
   * the nightly job (`report --out`): record each image's and volume's last use into this
   * last-used.json (lib/schedule/events.ts recordUse) for prune — the report's only other write
   */
  recordUseFile?: string
  /**
   * the registry check of `update --check` (lib/rebuild), wired in by the entry point (a command
   * never imports another); without it the report has no updates section
   */
  checkUpdates?: (
    c: { config: Config; engine: Engine },
    names: string[],
  ) => Promise<NonNullable<Report['updates']>>
}

/**
 * Gather and analyse on an open engine (the caller's: it closes it). Read-only: nothing on the
 * host or engine changes.
 */
export async function buildReport(engine: Engine, ctx: ReportContext): Promise<Report> {
  const { config } = ctx
  const inventory = await gatherInventory(engine, {
    paths: config.report.paths,
    concurrency: config.report.concurrency,
    progress: ctx.progress,
  })
  const report = analyzeReport(
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
  if (Object.keys(config.assets).length) {
    const migrations = await gatherMigrations(config, new Date(report.generatedAt)).catch(
      (err: Error) => {
        report.warnings.push(`migrated assets: ${err.message}`)
        return []
      },
    )
    if (migrations.length) report.migrations = migrations
  }
  if (ctx.recordUseFile) {
    ctx.progress?.('Recording when images and volumes were last used')
    await recordUse(engine, ctx.recordUseFile, new Date(report.generatedAt), (w) =>
      report.warnings.push(w),
    ).catch((err: Error) =>
      report.warnings.push(`last use not recorded in ${ctx.recordUseFile}: ${err.message}`),
    )
  }
  if (ctx.checkUpdates && Object.values(config.services).some((svc) => svc.update !== 'off')) {
    ctx.progress?.('Asking the registries about newer images')
    report.updates = await ctx.checkUpdates({ config, engine }, [])
    report.recommendations.push(...updateRecommendations(report.updates))
    for (const u of report.updates.filter((x) => x.error)) {
      report.warnings.push(`update check of ${u.service}: ${u.error}`)
    }
  }
  if (!ctx.deep) return report
  const deep: DeepResult[] = []
  for (const img of report.images.filter((i) => i.big)) {
    const ref = imageRef(img)
    ctx.progress?.(`Deep scan of ${ref}`)
    try {
      const r = await inspectImageOn(engine, img.id, { config, progress: ctx.progress })
      deep.push({ image: ref, id: img.id, wastedBytes: r.wastedBytes, findings: r.findings })
    } catch (err) {
      report.warnings.push(`deep scan of ${ref} failed: ${(err as Error).message}`)
    }
  }
  const servicesByImage = new Map<string, string[]>()
  for (const c of await engine.listContainers()) {
    const svc = serviceOfContainer(config, c)
    if (!svc) continue
    const list = servicesByImage.get(c.imageId) ?? []
    if (!list.includes(svc[0])) servicesByImage.set(c.imageId, [...list, svc[0]])
  }
  return withDeepFindings(report, deep, servicesByImage)
}

/**
 * Writes the dated JSON + Markdown into dir and attaches the growth since the newest
 * earlier report found there.
 */
export async function saveReport(
  report: Report,
  dir: string,
  opts: { layersPerImage: number; warn: (s: string) => void },
): Promise<{
  report: Report
  jsonFile: string
  markdownFile: string
  previous: Report | null
}> {
  const previous = await readPreviousReport(dir, opts.warn, new Date(report.generatedAt))
  const withGrowth: Report = previous
    ? {
        ...report,
        growth: computeGrowth(previous.report, report, previous.file, report.thresholds.top),
      }
    : report
  const files = await writeReportFiles(dir, withGrowth, renderMarkdown(withGrowth, opts))
  return { report: withGrowth, ...files, previous: previous?.report ?? null }
}
