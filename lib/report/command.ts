/**
 * `shipshape report` as a command: the report built on the context's engine (withCommand opens
 * and closes it), then with --out saved (growth since the previous one, old ones dropped), with
 * --notify the webhook told. scripts/report.ts renders it.
 */
import type { CommandContext } from '../cli/command.js'
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
}

export async function reportCommandRun(
  ctx: CommandContext,
  opts: ReportCommandOptions,
  ports: Pick<ReportContext, 'checkUpdates'> = {},
): Promise<Report> {
  const { config, out, g } = ctx
  if (opts.top) config.report.top = opts.top
  if (opts.out) await ensureReportDir(opts.out, config.stateDir)
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
