import { Command } from 'commander'
import { withCommand } from '../lib/cli/command.js'
import { inspectImageOn } from '../lib/scan/inspect.js'
import { chooseEngineAddress } from '../lib/shared/address.js'
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
        // the context's engine: withCommand opens it once and closes it
        ({ g, config, spin, engine }, image: string) =>
          spin(`Scanning ${image}`, async (progress) => {
            const address = chooseEngineAddress({ flag: g.dockerHost, config: config.docker.host })
            progress(`Connecting to ${address.url}`)
            return inspectImageOn(await engine(), image, { config, progress })
          }),
        {
          human: (report, { out, config }) =>
            out.human(renderInspectHuman(report, out.interactive, config.report.top)),
        },
      ),
    )
}
