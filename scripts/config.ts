import os from 'node:os'
import path from 'node:path'
import { Command } from 'commander'
import { stringify } from 'yaml'
import { globalOptions } from '../lib/cli/global.js'
import { createOutput } from '../lib/cli/output.js'
import {
  findPackageRoot,
  loadConfigFrom,
  resolveConfigSource,
  type LoadConfigOptions,
} from '../lib/config/load.js'
import { configToInput, type Config } from '../lib/config/schema.js'
import { ConfigError, UsageError } from '../lib/errors.js'
import {
  CONFIG_INIT_SCHEMA,
  defaultConfigFile,
  initConfig,
  refuseExisting,
  writeConfigFile,
  type ConfigInitJson,
  type InitFacts,
} from '../lib/init/index.js'

export const CONFIG_CHECK_SCHEMA = 'shipshape.config-check/1'
export const CONFIG_SCHEMA = 'shipshape.config/1'

/** What the commands read and write; tests pass their own. */
export interface ConfigCommandDeps {
  stdout?: NodeJS.WritableStream
  stderr?: NodeJS.WritableStream & { isTTY?: boolean }
  env?: NodeJS.ProcessEnv
  hostname?: string
  packageRoot?: string
  /** config init: the facts from elsewhere instead of the engine and this host */
  initFacts?: (config: Config) => Promise<InitFacts>
  now?: () => Date
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

  const init = new Command('init')
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
    .action(async (opts: { out?: string; stdout?: boolean; force?: boolean }, cmd: Command) => {
      const { g, out } = output(cmd)
      if (opts.stdout && opts.out) throw new UsageError('--out and --stdout exclude each other')
      const hostname = deps.hostname ?? os.hostname()
      const packageRoot = deps.packageRoot ?? findPackageRoot()
      const file = opts.stdout
        ? null
        : path.resolve(opts.out ?? defaultConfigFile(packageRoot, hostname))
      // refused before the engine is asked anything; the write refuses again, atomically
      if (file && !opts.force) await refuseExisting(file)
      const resolved = await resolveConfigSource(lookup(g.config))
      const loaded = await loadConfigFrom(resolved, deps.hostname)
      const schemaFile = path.join(packageRoot, 'config', 'shipshape.schema.json')
      const spinner = out.spinner('Starting')
      let result
      try {
        result = await initConfig({
          config: loaded.config,
          configSource: loaded.source,
          hostname,
          dockerHost: g.dockerHost,
          env: deps.env,
          now: deps.now,
          gather: deps.initFacts,
          progress: (t) => spinner.update(t),
          warn: (w) => out.warn(w),
          schemaRef: file ? path.relative(path.dirname(file), schemaFile) : schemaFile,
        })
      } finally {
        spinner.stop()
      }
      const { proposal, yaml } = result
      if (file) await writeConfigFile(file, yaml, { force: Boolean(opts.force) })
      for (const w of proposal.warnings) out.warn(w)
      if (g.json) {
        const json: ConfigInitJson = {
          schema: CONFIG_INIT_SCHEMA,
          file,
          services: proposal.services,
          assets: proposal.assets,
          protect: proposal.protect,
          guessed: proposal.guessed,
          warnings: proposal.warnings,
          yaml,
        }
        out.data(JSON.stringify(json, null, 2))
      } else if (!file) {
        out.data(yaml)
      }
      const counts = `${proposal.services.length} services, ${proposal.assets.length} assets, ${proposal.protect.length} protected images`
      out.info(file ? `wrote ${file}: ${counts}` : `config for ${hostname}: ${counts}`)
      if (proposal.guessed.length)
        out.info(`guessed, confirm before use: ${proposal.guessed.join(', ')}`)
      if (file && opts.out === undefined) {
        out.info(
          `config check, report and the other commands find it on this host (config/hosts/${hostname}.yaml)`,
        )
        if ((deps.env ?? process.env).SHIPSHAPE_CONFIG)
          out.warn(`$SHIPSHAPE_CONFIG is set: the commands read that file instead of ${file}`)
      } else if (file) {
        out.info(`check it with: shipshape config check ${file}; use it with --config ${file}`)
      }
    })
    .exitOverride()

  return new Command('config')
    .description('Validate (check) or print (show) the host config, or write a starting one (init)')
    .addCommand(check)
    .addCommand(show)
    .addCommand(init)
}
