import { Command } from 'commander'
import { withCommand } from '../lib/cli/command.js'
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
    .action(
      withCommand(
        ({ g, out, config, spin }, image: string) =>
          spin(`Scanning ${image}`, (progress) =>
            runInspect(image, { config, dockerHost: g.dockerHost, progress, warn: out.warn }),
          ),
        {
          human: (report, { out, config }) =>
            out.human(renderInspectHuman(report, out.interactive, config.report.top)),
        },
      ),
    )
}
