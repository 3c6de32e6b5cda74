/**
 * `shipshape config init`: gather (gather.ts, I/O) → propose (propose.ts, pure) → render
 * (render.ts, pure) → checked against the schema → written atomically, never over an existing
 * file without --force.
 */
import { lstat } from 'node:fs/promises'
import path from 'node:path'
import { configDir, isClone, parseConfigText } from '../config/load.js'
import type { EngineCommandContext } from '../config/context.js'
import type { Config } from '../config/schema.js'
import { ConfigError, RefusedError, UsageError } from '../errors.js'
import { mkdirDurable, writeFileDurable } from '../host/durable.js'
import type { InitFacts } from './facts.js'
import { propose, type Proposal } from './propose.js'
import { renderProposal } from './render.js'

export type { InitFacts } from './facts.js'
export { propose, type Proposal } from './propose.js'
export { renderProposal } from './render.js'

export const CONFIG_INIT_SCHEMA = 'shipshape.config-init/1'

export interface ConfigInitJson {
  schema: typeof CONFIG_INIT_SCHEMA
  file: string | null
  services: string[]
  assets: string[]
  protect: string[]
  guessed: string[]
  warnings: string[]
  yaml: string
}

export interface InitOptions extends Pick<EngineCommandContext, 'config' | 'now'> {
  configSource: string
  hostname: string
  /** the facts: from the engine and this host (configInitRun wires gather.ts), or a test's */
  gather: (config: Config) => Promise<InitFacts>
  /** JSON Schema reference written at the top of the file */
  schemaRef?: string
}

/** Gathers, proposes and renders; the text is checked against the schema before it is returned. */
export async function initConfig(o: InitOptions): Promise<{ proposal: Proposal; yaml: string }> {
  const facts = await o.gather(o.config)
  const proposal = propose(facts, {
    config: o.config,
    configSource: o.configSource,
    now: (o.now ?? (() => new Date()))(),
  })
  const yaml = renderProposal(proposal, { schemaRef: o.schemaRef })
  try {
    parseConfigText(yaml, 'the generated config', { hostname: o.hostname })
  } catch (err) {
    // never hand out a config `config check` refuses: that is a bug of ours, not the user's
    if (err instanceof ConfigError)
      throw new Error(`config init made a config the schema refuses (a bug): ${err.message}`)
    throw err
  }
  return { proposal, yaml }
}

/**
 * Where the config lookup finds this host's file: /etc/shipshape/<hostname>.yaml for an installed
 * package (an upgrade never touches it), <clone>/config/hosts/<hostname>.yaml run from a clone.
 */
export function defaultConfigFile(
  packageRoot: string,
  hostname: string,
  env: NodeJS.ProcessEnv = process.env,
): string {
  // the same rule as lib/config/load.ts: only a plain hostname names a file there
  const dir = isClone(packageRoot) ? path.join(packageRoot, 'config', 'hosts') : configDir(env)
  if (!/^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(hostname))
    throw new UsageError(
      `the hostname ${JSON.stringify(hostname)} cannot name a file in ${dir}`,
      'name the file with --out FILE (and use it with --config FILE)',
    )
  return path.join(dir, `${hostname}.yaml`)
}

const refusal = (file: string) =>
  new RefusedError(
    `${file} exists: config init does not overwrite it`,
    'add --force to replace it, or write elsewhere with --out FILE (or --stdout)',
  )

/** Refuses (exit 4) when something is at `file` already. */
export async function refuseExisting(file: string): Promise<void> {
  if (
    await lstat(file).then(
      () => true,
      () => false,
    )
  )
    throw refusal(file)
}

/**
 * Writes the file atomically and durably (lib/host/durable.ts), mode 0644 whatever the umask (it
 * holds no secrets): a temp file in the same directory, fsync'ed, then linked into place (fails if
 * the file appeared meanwhile: never an overwrite without `force`) or, with `force`, renamed over
 * it. A missing directory is created (0755).
 */
export async function writeConfigFile(
  file: string,
  text: string,
  o: { force: boolean },
): Promise<void> {
  try {
    await mkdirDurable(path.dirname(file), 0o755)
  } catch (err) {
    // EEXIST here is a file where a directory of the path should be, not the config file
    throw new UsageError(
      `cannot create ${path.dirname(file)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      'name a file you can write with --out FILE, or run as a user who can',
    )
  }
  try {
    await writeFileDurable(file, text, { mode: 0o644, noReplace: o.force ? false : 'orCheckFirst' })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST' && !o.force) throw refusal(file)
    throw new UsageError(
      `cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      'name a file you can write with --out FILE, or run as a user who can',
    )
  }
}
