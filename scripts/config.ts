import os from 'node:os'
import { Command } from 'commander'
import { stringify } from 'yaml'
import { withCommand, type CommandContext } from '../lib/cli/command.js'
import {
  checkConfig,
  CONFIG_CHECK_SCHEMA,
  CONFIG_SCHEMA,
  showConfig,
} from '../lib/config/command.js'
import type { LoadConfigOptions } from '../lib/config/load.js'
import type { Engine } from '../lib/docker/engine.js'
import { openEngine } from '../lib/docker/open.js'
import { configToInput } from '../lib/config/schema.js'
import {
  checkInitOptions,
  configInitRun,
  initNotes,
  type ConfigInitDeps,
  type ConfigInitOptions,
  type InitEngine,
} from '../lib/config-init/command.js'
import { CONFIG_INIT_SCHEMA } from '../lib/config-init/index.js'

export { CONFIG_CHECK_SCHEMA, CONFIG_SCHEMA }

/** What the commands read and write; tests pass their own. */
export interface ConfigCommandDeps extends ConfigInitDeps {
  stdout?: NodeJS.WritableStream
  stderr?: NodeJS.WritableStream & { isTTY?: boolean }
}

function shared(deps: ConfigCommandDeps) {
  const lookup = (file: string | undefined): LoadConfigOptions => ({
    file,
    env: deps.env,
    hostname: deps.hostname,
    packageRoot: deps.packageRoot,
  })
  // every subcommand reads the config itself (check: the file named; init: before the engine)
  const base = { config: 'none', io: { stdout: deps.stdout, stderr: deps.stderr } } as const
  return { lookup, base }
}

/** A config subcommand: its name, its one-line description and the help printed after its usage. */
function subcommand(name: string, description: string, helpAfter: string): Command {
  return new Command(name).description(description).addHelpText('after', helpAfter)
}

function checkCommand(deps: ConfigCommandDeps): Command {
  const { lookup, base } = shared(deps)
  return subcommand(
    'check',
    'Validate a host config: every problem with its file, line and key',
    `\nExit codes: 0 valid, 2 invalid or unreadable.\nJSON shape: "schema": "${CONFIG_CHECK_SCHEMA}".`,
  )
    .argument(
      '[file]',
      'config file (default: --config, $SHIPSHAPE_CONFIG, config/hosts/<hostname>.yaml, embedded default)',
    )
    .action(
      withCommand(({ g }, file: string | undefined) => checkConfig(lookup(file ?? g.config)), {
        ...base,
        json: (r) => r.json,
        human: (r, { out }) => {
          if (!r.error) out.info(`ok: ${r.json.source}`)
        },
        verdict: (r) => r.error,
      }),
    )
    .exitOverride()
}

function showCommand(deps: ConfigCommandDeps): Command {
  const { lookup, base } = shared(deps)
  return subcommand(
    'show',
    'Print the effective config (after defaults) as YAML, or JSON with --json',
    `\nExit codes: 0 shown, 2 invalid or unreadable config.\nJSON shape: "schema": "${CONFIG_SCHEMA}"; sizes in bytes, durations in milliseconds, percentages as fractions.`,
  )
    .action(
      withCommand(({ g }) => showConfig(lookup(g.config)), {
        ...base,
        human: (r, { out }) => {
          out.info(`# effective config from ${r.source}`)
          out.data(stringify(configToInput(r.config)))
        },
      }),
    )
    .exitOverride()
}

/**
 * config init's engine. Its config is not the context's (it reads its own lookup, after refusing
 * an existing file), so withCommand's engine(), opened with the context's config, cannot serve it:
 * opened here, once, with the config init read, and closed when the command ends.
 */
function initEngine(
  { g, out }: Pick<CommandContext, 'g' | 'out'>,
  env: NodeJS.ProcessEnv | undefined,
): { open: InitEngine; close: () => Promise<void> } {
  let engine: Promise<Engine> | undefined
  return {
    open: (config, progress) =>
      (engine ??= openEngine({ config, dockerHost: g.dockerHost, env, progress, warn: out.warn })),
    close: async () => {
      if (engine) await engine.then((e) => e.close()).catch(() => {})
    },
  }
}

function initCommand(deps: ConfigCommandDeps): Command {
  const { base } = shared(deps)
  return new Command('init')
    .description(
      'Write a starting host config from what runs here: compose services, plain containers, health checks, big bind-mounted directories, images to protect (read-only on the engine)',
    )
    .option(
      '--out <file>',
      'write it here (default: config/hosts/<hostname>.yaml in shipshape’s directory, where config check and report find it)',
    )
    .option('--stdout', 'print it on stdout instead of writing a file')
    .option('--force', 'replace an existing file')
    .addHelpText(
      'after',
      `\nThresholds (report.bigAssets) and allowedRoots come from the config the lookup finds (--config FILE to lower them).\nExit codes: 0 written, 2 bad usage or config, 3 Docker engine unreachable, 4 the file exists (--force replaces it).\nJSON shape: "schema": "${CONFIG_INIT_SCHEMA}".`,
    )
    .action(
      withCommand(
        async (ctx, opts: ConfigInitOptions) => {
          const engine = initEngine(ctx, deps.env)
          const r = await configInitRun(ctx, opts, deps, engine.open).finally(engine.close)
          const notes = initNotes(r, {
            out: opts.out,
            hostname: deps.hostname ?? os.hostname(),
            env: deps.env ?? process.env,
          })
          for (const line of notes.info) ctx.out.info(line)
          for (const line of notes.warn) ctx.out.warn(line)
          return r
        },
        {
          ...base,
          before: (_g, opts) => checkInitOptions(opts),
          human: (r, { out }) => {
            if (!r.file) out.data(r.yaml)
          },
        },
      ),
    )
    .exitOverride()
}

export function configCommand(deps: ConfigCommandDeps = {}): Command {
  return new Command('config')
    .description('Validate (check) or print (show) the host config, or write a starting one (init)')
    .addCommand(checkCommand(deps))
    .addCommand(showCommand(deps))
    .addCommand(initCommand(deps))
}
