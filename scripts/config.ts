import { Command } from 'commander'
import { stringify } from 'yaml'
import { globalOptions } from '../lib/cli/global.js'
import { createOutput } from '../lib/cli/output.js'
import { loadConfigFrom, resolveConfigSource, type LoadConfigOptions } from '../lib/config/load.js'
import { configToInput } from '../lib/config/schema.js'
import { ConfigError } from '../lib/errors.js'

export const CONFIG_CHECK_SCHEMA = 'shipshape.config-check/1'
export const CONFIG_SCHEMA = 'shipshape.config/1'

/** What the commands read and write; tests pass their own. */
export interface ConfigCommandDeps {
  stdout?: NodeJS.WritableStream
  stderr?: NodeJS.WritableStream & { isTTY?: boolean }
  env?: NodeJS.ProcessEnv
  hostname?: string
  packageRoot?: string
}

export function configCommand(deps: ConfigCommandDeps = {}): Command {
  const lookup = (file: string | undefined): LoadConfigOptions => ({
    file,
    env: deps.env,
    hostname: deps.hostname,
    packageRoot: deps.packageRoot,
  })
  const output = (cmd: Command) => {
    const g = globalOptions(cmd)
    return {
      g,
      out: createOutput({ json: g.json, quiet: g.quiet, stdout: deps.stdout, stderr: deps.stderr }),
    }
  }

  const check = new Command('check')
    .description('Validate a host config: every problem with its file, line and key')
    .argument(
      '[file]',
      'config file (default: --config, $SHIPSHAPE_CONFIG, config/hosts/<hostname>.yaml, embedded default)',
    )
    .addHelpText(
      'after',
      `\nExit codes: 0 valid, 2 invalid or unreadable.\nJSON shape: "schema": "${CONFIG_CHECK_SCHEMA}".`,
    )
    .action(async (file: string | undefined, _opts: unknown, cmd: Command) => {
      const { g, out } = output(cmd)
      const resolved = await resolveConfigSource(lookup(file ?? g.config))
      try {
        await loadConfigFrom(resolved, deps.hostname)
      } catch (err) {
        if (g.json && err instanceof ConfigError) {
          out.data(
            JSON.stringify(
              {
                schema: CONFIG_CHECK_SCHEMA,
                ok: false,
                source: resolved.source,
                origin: resolved.origin,
                problems: err.problems,
              },
              null,
              2,
            ),
          )
        }
        throw err
      }
      if (g.json) {
        out.data(
          JSON.stringify(
            {
              schema: CONFIG_CHECK_SCHEMA,
              ok: true,
              source: resolved.source,
              origin: resolved.origin,
              problems: [],
            },
            null,
            2,
          ),
        )
      } else {
        out.info(`ok: ${resolved.source}`)
      }
    })
    .exitOverride()

  const show = new Command('show')
    .description('Print the effective config (after defaults) as YAML, or JSON with --json')
    .addHelpText(
      'after',
      `\nExit codes: 0 shown, 2 invalid or unreadable config.\nJSON shape: "schema": "${CONFIG_SCHEMA}"; sizes in bytes, durations in milliseconds, percentages as fractions.`,
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const { g, out } = output(cmd)
      const loaded = await loadConfigFrom(
        await resolveConfigSource(lookup(g.config)),
        deps.hostname,
      )
      if (g.json) {
        out.data(
          JSON.stringify(
            {
              schema: CONFIG_SCHEMA,
              source: loaded.source,
              origin: loaded.origin,
              config: loaded.config,
            },
            null,
            2,
          ),
        )
      } else {
        out.info(`# effective config from ${loaded.source}`)
        out.data(stringify(configToInput(loaded.config)))
      }
    })
    .exitOverride()

  return new Command('config')
    .description('Validate (check) or print (show) the host config')
    .addCommand(check)
    .addCommand(show)
}
