import { Command, InvalidArgumentError } from 'commander'
import { loadConfig } from '../lib/config/index.js'
import { globalOptions } from '../lib/cli/global.js'
import { createOutput } from '../lib/cli/output.js'
import { redactUrl } from '../lib/cli/url.js'
import { checkUpdates } from '../lib/rebuild/index.js'
import { buildReport, renderHuman, renderMarkdown, saveReport } from '../lib/report/index.js'
import { ensureReportDir } from '../lib/report/growth.js'
import { dropOldReports, engineDiskUse, noticeFor, sendWebhook } from '../lib/report/notify.js'
import type { Report } from '../lib/report/types.js'
import { lastUsedPath } from '../lib/state/last-used.js'

const positiveInt = (v: string): number => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number ≥ 1')
  return n
}

export function reportCommand(): Command {
  return new Command('report')
    .description(
      'Size analysis of the engine and the configured host paths, with recommendations (read-only)',
    )
    .option('--markdown', 'print the report as Markdown on stdout')
    .option(
      '--deep',
      'also scan every image over report.bigImage (as inspect) and recommend from what it finds',
    )
    .option(
      '--out <dir>',
      'also write dated JSON + Markdown into DIR and show growth since the previous report there',
    )
    .option(
      '--keep <n>',
      'with --out: keep only the newest N reports there (default: report.keep)',
      positiveInt,
    )
    .option(
      '--notify',
      'send a short notification to the webhook in $SHIPSHAPE_WEBHOOK_URL (notify.webhookEnv) when an image newly passes report.bigImage or disk use passes notify.diskLimit',
    )
    .option(
      '--top <n>',
      'how many images, volumes and path entries to show (overrides report.top)',
      positiveInt,
    )
    .addHelpText(
      'after',
      '\nExit codes: 0 report made, 2 bad usage or config, 3 Docker engine unreachable,\n4 refused (--out inside a stateDir other users could write, or a symlink).\nJSON shape: "schema": "shipshape.report/1" (see README).',
    )
    .action(
      async (
        opts: {
          markdown?: boolean
          out?: string
          top?: number
          deep?: boolean
          keep?: number
          notify?: boolean
        },
        cmd: Command,
      ) => {
        const g = globalOptions(cmd)
        const out = createOutput({ json: g.json, quiet: g.quiet })
        const { config, source } = await loadConfig({ file: g.config })
        if (opts.top) config.report.top = opts.top
        if (opts.out) await ensureReportDir(opts.out, config.stateDir)
        const spinner = out.spinner('Starting')
        let report
        try {
          report = await buildReport({
            checkUpdates,
            config,
            configSource: source,
            dockerHost: g.dockerHost,
            deep: opts.deep,
            ...(opts.out ? { recordUseFile: lastUsedPath(config.stateDir) } : {}),
            progress: (t) => spinner.update(t),
            warn: (w) => out.warn(w),
          })
        } catch (err) {
          spinner.stop()
          throw err
        }
        spinner.stop()
        const layersPerImage = config.report.layersPerImage
        let previous: Report | null = null
        if (opts.out) {
          const saved = await saveReport(report, opts.out, {
            layersPerImage,
            warn: (w) => out.warn(w),
          })
          report = saved.report
          previous = saved.previous
          out.info(`wrote ${saved.jsonFile} and ${saved.markdownFile}`)
          const gone = await dropOldReports(opts.out, opts.keep ?? config.report.keep)
          if (gone.length)
            out.info(
              `removed ${gone.length} old report file(s) (keep ${opts.keep ?? config.report.keep})`,
            )
        }
        if (opts.notify) {
          const notice = noticeFor(report, previous, {
            diskUse: await engineDiskUse(report),
            diskLimit: config.notify.diskLimit,
          })
          const url = process.env[config.notify.webhookEnv]
          if (!notice) out.info('notify: nothing to report')
          else if (!url)
            out.warn(
              `notify: ${config.notify.webhookEnv} is not set; would have sent: ${notice.lines.join('; ')}`,
            )
          else {
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
        }
        // machine output carries the warnings inside; a timer's journal should see them too
        if (g.json || opts.markdown || g.quiet) for (const w of report.warnings) out.warn(w)
        if (g.json) out.data(JSON.stringify(report, null, 2))
        else if (opts.markdown) out.data(renderMarkdown(report, { layersPerImage }))
        else out.human(renderHuman(report, { color: out.interactive, layersPerImage }))
      },
    )
}
