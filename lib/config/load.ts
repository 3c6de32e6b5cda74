/**
 * Finds, reads and validates the host config.
 * Lookup: --config FILE › $SHIPSHAPE_CONFIG › /etc/shipshape/<hostname>.yaml ›
 * /etc/shipshape/shipshape.yaml › (run from a clone, not an installed package)
 * <clone>/config/hosts/<hostname>.yaml › the embedded default (config/default.yaml, compiled in as
 * lib/config/default.ts). The config lives outside the package: an upgrade replaces the package,
 * never the host's config. $SHIPSHAPE_CONFIG_DIR stands for /etc/shipshape (tests, other layouts).
 */
import { existsSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { LineCounter, parseDocument } from 'yaml'
import type { ConfigProblem } from '../errors.js'
import { DEFAULT_CONFIG_YAML } from './default.js'
import { Locator, configError, schemaProblems, yamlProblems } from './problems.js'
import { configSchema, type Config } from './schema.js'

export type ConfigOrigin = 'flag' | 'env' | 'etc' | 'host' | 'default'

export interface LoadConfigOptions {
  /** --config FILE (relative to the working directory). */
  file?: string
  /** Defaults to process.env (SHIPSHAPE_CONFIG, SHIPSHAPE_CONFIG_DIR). */
  env?: NodeJS.ProcessEnv
  /** Defaults to os.hostname(): picks config/hosts/<hostname>.yaml and fills `host`. */
  hostname?: string
  /**
   * Where config/hosts/ is looked for, when it is a clone; defaults to the directory of
   * shipshape's package.json.
   */
  packageRoot?: string
}

/** The system config directory: $SHIPSHAPE_CONFIG_DIR, else /etc/shipshape. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.SHIPSHAPE_CONFIG_DIR || '/etc/shipshape')
}

/** An installed package (under node_modules) keeps no host config inside: only a clone does. */
export function isClone(packageRoot: string): boolean {
  return !packageRoot.split(path.sep).includes('node_modules')
}

export interface LoadedConfig {
  config: Config
  /** Absolute path of the file read, or 'embedded default'. */
  source: string
  origin: ConfigOrigin
}

export interface ConfigSource {
  /** Absolute path of the file to read, or 'embedded default'. */
  source: string
  origin: ConfigOrigin
}

export const EMBEDDED_DEFAULT = 'embedded default'

const ORIGIN_TEXT: Record<ConfigOrigin, string> = {
  flag: 'given by --config',
  env: 'given by $SHIPSHAPE_CONFIG',
  etc: 'found in the system config directory',
  host: 'found for this hostname in the clone',
  default: 'embedded default',
}

/** The directory holding the package.json above a module (works from lib/ and dist/lib/). */
export function findPackageRoot(moduleUrl: string = import.meta.url): string {
  let dir = path.dirname(fileURLToPath(moduleUrl))
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir
    const parent = path.dirname(dir)
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(moduleUrl)}`)
    dir = parent
  }
}

const isFile = async (file: string) => (await stat(file).catch(() => undefined))?.isFile() ?? false

/** Which config the lookup picks, without reading it. */
export async function resolveConfigSource(opts: LoadConfigOptions = {}): Promise<ConfigSource> {
  if (opts.file) return { source: path.resolve(opts.file), origin: 'flag' }
  const env = opts.env ?? process.env
  const fromEnv = env.SHIPSHAPE_CONFIG
  if (fromEnv) return { source: path.resolve(fromEnv), origin: 'env' }
  const names = hostFileNames(opts.hostname ?? os.hostname())
  const etc = configDir(env)
  for (const name of [...names, 'shipshape']) {
    const file = path.join(etc, `${name}.yaml`)
    if (await isFile(file)) return { source: file, origin: 'etc' }
  }
  const root = opts.packageRoot ?? findPackageRoot()
  if (isClone(root)) {
    for (const name of names) {
      const file = path.join(root, 'config', 'hosts', `${name}.yaml`)
      if (await isFile(file)) return { source: file, origin: 'host' }
    }
  }
  return { source: EMBEDDED_DEFAULT, origin: 'default' }
}

/** The file names a hostname picks: itself and its first label (only plain names: no "/", no leading "."). */
function hostFileNames(hostname: string): string[] {
  if (!/^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(hostname)) return []
  return [...new Set([hostname, hostname.split('.')[0] ?? hostname])]
}

/** Reads a config file; a file that cannot be read is a ConfigError (exit 2), never a fallback. */
export async function readConfigFile(file: string, origin: ConfigOrigin): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const why =
      code === 'ENOENT'
        ? 'no such config file'
        : code === 'EISDIR'
          ? 'is a directory, not a config file'
          : code === 'EACCES'
            ? 'cannot read the config file (permission denied)'
            : `cannot read the config file: ${(err as Error).message}`
    const problem: ConfigProblem = { file, key: '', message: `${why} (${ORIGIN_TEXT[origin]})` }
    throw configError([problem])
  }
}

export interface ParseConfigOptions {
  /** `host` when the file has none (default: os.hostname()). */
  hostname?: string
}

/**
 * Parses and validates config text (pure). Throws ConfigError listing every problem as
 * FILE:LINE:COL: KEY: message.
 */
export function parseConfigText(
  text: string,
  file: string,
  options: ParseConfigOptions = {},
): Config {
  const lines = new LineCounter()
  const doc = parseDocument(text, {
    lineCounter: lines,
    prettyErrors: true,
    merge: true,
    logLevel: 'error',
  })
  if (doc.errors.length > 0) throw configError(yamlProblems(doc, file))
  const locator = new Locator(doc, lines)

  let data: unknown
  try {
    data = doc.toJS({ maxAliasCount: 100 })
  } catch (err) {
    const at = locator.brokenAlias()
    const message = `YAML: ${(err as Error).message}`
    throw configError([{ file, line: at?.line, column: at?.column, key: '', message }])
  }
  data ??= {}
  if (
    options.hostname !== undefined &&
    typeof data === 'object' &&
    !Array.isArray(data) &&
    (data as { host?: unknown }).host === undefined
  ) {
    data = { ...data, host: options.hostname }
  }

  const result = configSchema.safeParse(data, { reportInput: true })
  if (!result.success) {
    throw configError(schemaProblems(result.error.issues, file, locator, configSchema))
  }
  return result.data
}

/** Finds, reads and validates the config (see the lookup order above). */
export async function loadConfig(opts: LoadConfigOptions = {}): Promise<LoadedConfig> {
  return loadConfigFrom(await resolveConfigSource(opts), opts.hostname)
}

/** Reads and validates the config the lookup picked. */
export async function loadConfigFrom(
  { source, origin }: ConfigSource,
  hostname: string = os.hostname(),
): Promise<LoadedConfig> {
  const text = origin === 'default' ? DEFAULT_CONFIG_YAML : await readConfigFile(source, origin)
  const label = origin === 'default' ? `${EMBEDDED_DEFAULT} (config/default.yaml)` : source
  return { config: parseConfigText(text, label, { hostname }), source, origin }
}
