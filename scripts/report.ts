import { Command, InvalidArgumentError } from 'commander'
import { withCommand } from '../lib/cli/command.js'
import { checkUpdates } from '../lib/rebuild/index.js'
import { reportCommandRun, type ReportCommandOptions } from '../lib/report/command.js'
import { renderHuman, renderMarkdown } from '../lib/report/index.js'
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
      '--metrics <file>',
      'also write a Prometheus textfile (node-exporter textfile collector) to FILE, atomically',
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
      withCommand(
        (ctx, opts: ReportCommandOptions) => reportCommandRun(ctx, opts, { checkUpdates }),
        {
          human: (report, { out, config }, opts) => {
            const layersPerImage = config.report.layersPerImage
            if (opts.markdown) out.data(renderMarkdown(report, { layersPerImage }))
            else out.human(renderHuman(report, { color: out.interactive, layersPerImage }))
          },
        },
      ),
    )
}
