/**
 * `config init` as a command: where the file goes (refused before the engine is asked when it
 * exists), the proposal gathered and rendered, the file written, and what a person reads after.
 */
import os from 'node:os'
import path from 'node:path'
import type { CommandContext } from '../cli/command.js'
import { findPackageRoot, loadConfigFrom, resolveConfigSource } from '../config/load.js'
import type { Config } from '../config/schema.js'
import type { Engine } from '../docker/engine.js'
import { UsageError } from '../errors.js'
import type { InitFacts } from './facts.js'
import { gatherInitFacts } from './gather.js'
import {
  CONFIG_INIT_SCHEMA,
  defaultConfigFile,
  initConfig,
  refuseExisting,
  writeConfigFile,
  type ConfigInitJson,
} from './index.js'

export interface ConfigInitOptions {
  out?: string
  stdout?: boolean
  force?: boolean
}

/** What the command reads; tests pass their own. */
export interface ConfigInitDeps {
  env?: NodeJS.ProcessEnv
  hostname?: string
  packageRoot?: string
  /** the facts from elsewhere instead of the engine and this host */
  initFacts?: (config: Config) => Promise<InitFacts>
  now?: () => Date
}

/**
 * The engine, opened (once) with the config init reads itself — config init has no config in its
 * command context — and closed by the caller; progress is the spinner's.
 */
export type InitEngine = (config: Config, progress: (text: string) => void) => Promise<Engine>

export function checkInitOptions(opts: ConfigInitOptions): void {
  if (opts.stdout && opts.out) throw new UsageError('--out and --stdout exclude each other')
}

/**
 * Writes the file (or not, with --stdout) and returns what --json prints. The engine is asked
 * for only when the facts come from it (not with deps.initFacts), after the existing-file check.
 */
export async function configInitRun(
  ctx: Pick<CommandContext, 'g' | 'out' | 'spin'>,
  opts: ConfigInitOptions,
  deps: ConfigInitDeps,
  engine: InitEngine,
): Promise<ConfigInitJson> {
  const { g, out } = ctx
  const hostname = deps.hostname ?? os.hostname()
  const packageRoot = deps.packageRoot ?? findPackageRoot()
  const file = opts.stdout
    ? null
    : path.resolve(opts.out ?? defaultConfigFile(packageRoot, hostname, deps.env))
  // refused before the engine is asked anything; the write refuses again, atomically
  if (file && !opts.force) await refuseExisting(file)
  const lookup = {
    file: g.config,
    env: deps.env,
    hostname: deps.hostname,
    packageRoot: deps.packageRoot,
  }
  const loaded = await loadConfigFrom(await resolveConfigSource(lookup), deps.hostname)
  const schemaFile = path.join(packageRoot, 'config', 'shipshape.schema.json')
  const { proposal, yaml } = await ctx.spin('Starting', (progress) =>
    initConfig({
      config: loaded.config,
      configSource: loaded.source,
      hostname,
      now: deps.now,
      gather:
        deps.initFacts ??
        (async (config) =>
          gatherInitFacts(await engine(config, progress), { hostname, config, progress })),
      schemaRef: file ? path.relative(path.dirname(file), schemaFile) : schemaFile,
    }),
  )
  if (file) await writeConfigFile(file, yaml, { force: Boolean(opts.force) })
  for (const w of proposal.warnings) out.warn(w)
  return {
    schema: CONFIG_INIT_SCHEMA,
    file,
    services: proposal.services,
    assets: proposal.assets,
    protect: proposal.protect,
    guessed: proposal.guessed,
    warnings: proposal.warnings,
    yaml,
  }
}

/** The lines after the output: what was written, what was guessed, how it is found. */
export function initNotes(
  r: ConfigInitJson,
  o: { out: string | undefined; hostname: string; env: NodeJS.ProcessEnv },
): { info: string[]; warn: string[] } {
  const info: string[] = []
  const warn: string[] = []
  const counts = `${r.services.length} services, ${r.assets.length} assets, ${r.protect.length} protected images`
  info.push(r.file ? `wrote ${r.file}: ${counts}` : `config for ${o.hostname}: ${counts}`)
  if (r.guessed.length) info.push(`guessed, confirm before use: ${r.guessed.join(', ')}`)
  if (r.file && o.out === undefined) {
    info.push(
      `config check, report and the other commands find it on this host (config/hosts/${o.hostname}.yaml)`,
    )
    if (o.env.SHIPSHAPE_CONFIG)
      warn.push(`$SHIPSHAPE_CONFIG is set: the commands read that file instead of ${r.file}`)
  } else if (r.file) {
    info.push(`check it with: shipshape config check ${r.file}; use it with --config ${r.file}`)
  }
  return { info, warn }
}
