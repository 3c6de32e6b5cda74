/**
 * `shipshape report` as a command: the report built on the context's engine (withCommand opens
 * and closes it), then with --out saved (growth since the previous one, old ones dropped), with
 * --notify the webhook told. scripts/report.ts renders it.
 */
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import type { CommandContext } from '../cli/command.js'
import { mkdirDurable, writeFileDurable } from '../host/durable.js'
import { readJournals } from '../runbook/journal.js'
import { lastSuccesses, renderMetrics } from './metrics.js'
import { redactUrl } from '../cli/url.js'
import { ensureReportDir } from './growth.js'
import { buildReport, saveReport, type ReportContext } from './index.js'
import { dropOldReports, engineDiskUse, noticeFor, sendWebhook } from './notify.js'
import type { Report } from './types.js'
import { lastUsedPath } from '../state/last-used.js'
import { chooseEngineAddress } from '../shared/address.js'

export interface ReportCommandOptions {
  markdown?: boolean
  out?: string
  top?: number
  deep?: boolean
  keep?: number
  notify?: boolean
  /** also write a Prometheus textfile here (the nightly job passes report.metricsFile) */
  metrics?: string
}

export async function reportCommandRun(
  ctx: CommandContext,
  opts: ReportCommandOptions,
  ports: Pick<ReportContext, 'checkUpdates'> = {},
): Promise<Report> {
  const { config, out, g } = ctx
  if (opts.top) config.report.top = opts.top
  if (opts.out) await ensureReportDir(opts.out, config.stateDir)
  const t0 = performance.now()
  let report = await ctx.spin('Starting', async (progress) => {
    // the spinner names the engine while it connects
    progress(
      `Connecting to ${chooseEngineAddress({ flag: g.dockerHost, config: config.docker.host }).url}`,
    )
    return buildReport(await ctx.engine(), {
      ...ports,
      config,
      configSource: ctx.loaded.source,
      deep: opts.deep,
      ...(opts.out ? { recordUseFile: lastUsedPath(config.stateDir) } : {}),
      progress,
    })
  })
  let previous: Report | null = null
  if (opts.out) {
    const saved = await saveReport(report, opts.out, {
      layersPerImage: config.report.layersPerImage,
      warn: (w) => out.warn(w),
    })
    report = saved.report
    previous = saved.previous
    out.info(`wrote ${saved.jsonFile} and ${saved.markdownFile}`)
    const keep = opts.keep ?? config.report.keep
    const gone = await dropOldReports(opts.out, keep)
    if (gone.length) out.info(`removed ${gone.length} old report file(s) (keep ${keep})`)
  }
  if (opts.metrics) {
    await writeMetrics(opts.metrics, report, (performance.now() - t0) / 1000, config.stateDir)
    out.info(`wrote ${opts.metrics}`)
  }
  if (opts.notify) await notify(ctx, report, previous)
  // machine output carries the warnings inside; a timer's journal should see them too
  if (g.json || opts.markdown || g.quiet) for (const w of report.warnings) out.warn(w)
  return report
}

async function notify(ctx: CommandContext, report: Report, previous: Report | null) {
  const { config, out } = ctx
  const notice = noticeFor(report, previous, {
    diskUse: await engineDiskUse(report),
    diskLimit: config.notify.diskLimit,
  })
  const url = process.env[config.notify.webhookEnv]
  if (!notice) return out.info('notify: nothing to report')
  if (!url) {
    return out.warn(
      `notify: ${config.notify.webhookEnv} is not set; would have sent: ${notice.lines.join('; ')}`,
    )
  }
  try {
    await sendWebhook(url, notice)
    out.info(`notify: sent (${notice.lines.length} line(s))`)
  } catch (err) {
    // sendWebhook names it by scheme://host only; anything else is scrubbed here too
    const why = redactUrl(String((err as Error)?.message ?? err), url)
    report.warnings.push(`notify: ${why}`)
    out.warn(`notify: ${why}`)
  }
}

/**
 * The Prometheus textfile, written atomically (node-exporter reads the directory at any moment:
 * never a half-written file), 0644: it holds sizes and times, no secret.
 */
async function writeMetrics(
  file: string,
  report: Report,
  durationSeconds: number,
  stateDir: string,
): Promise<void> {
  const journals = await readJournals(stateDir)
  const text = renderMetrics({ report, durationSeconds, lastSuccess: lastSuccesses(journals) })
  await mkdirDurable(path.dirname(path.resolve(file)), 0o755)
  await writeFileDurable(file, text, { mode: 0o644 })
}
