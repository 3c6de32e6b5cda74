import { Command } from 'commander'
import { loadConfig } from '../lib/config/index.js'
import { globalOptions } from '../lib/cli/global.js'
import { createOutput } from '../lib/cli/output.js'
import { runInspect } from '../lib/scan/inspect.js'
import { renderInspectHuman } from '../lib/inspect/render.js'

export function inspectCommand(): Command {
  return new Command('inspect')
    .description(
      'Deep scan of one image, streamed from the engine: sizes by directory and package, wasted bytes, findings with their savings and the Dockerfile fix (read-only)',
    )
    .argument('<image>', 'image reference or id')
    .addHelpText(
      'after',
      '\nExit codes: 0 scanned, 2 bad usage/config or no such image, 3 Docker engine unreachable.\nJSON shape: "schema": "shipshape.inspect/1" (see README).',
    )
    .action(async (image: string, _opts: unknown, cmd: Command) => {
      const g = globalOptions(cmd)
      const out = createOutput({ json: g.json, quiet: g.quiet })
      const { config } = await loadConfig({ file: g.config })
      const spinner = out.spinner(`Scanning ${image}`)
      try {
        const report = await runInspect(image, {
          config,
          dockerHost: g.dockerHost,
          progress: (t) => spinner.update(t),
          warn: (w) => out.warn(w),
        })
        spinner.stop()
        if (g.json) out.data(JSON.stringify(report, null, 2))
        else out.human(renderInspectHuman(report, out.interactive, config.report.top))
      } finally {
        spinner.stop()
      }
    })
}
