/** `config check` and `config show`: what scripts/config.ts prints, as results. */
import { ConfigError, type ConfigProblem } from '../errors.js'
import {
  loadConfigFrom,
  resolveConfigSource,
  type ConfigOrigin,
  type LoadConfigOptions,
} from './load.js'
import type { Config } from './schema.js'

export const CONFIG_CHECK_SCHEMA = 'shipshape.config-check/1'
export const CONFIG_SCHEMA = 'shipshape.config/1'

export interface ConfigCheckJson {
  schema: typeof CONFIG_CHECK_SCHEMA
  ok: boolean
  source: string
  origin: ConfigOrigin
  problems: ConfigProblem[]
}

/** The verdict on the config the lookup finds; `error` (exit 2) when it is not valid. */
export async function checkConfig(
  lookup: LoadConfigOptions,
): Promise<{ json: ConfigCheckJson; error: ConfigError | null }> {
  const resolved = await resolveConfigSource(lookup)
  const json = (ok: boolean, problems: ConfigProblem[]): ConfigCheckJson => ({
    schema: CONFIG_CHECK_SCHEMA,
    ok,
    source: resolved.source,
    origin: resolved.origin,
    problems,
  })
  try {
    await loadConfigFrom(resolved, lookup.hostname)
  } catch (err) {
    if (err instanceof ConfigError) return { json: json(false, err.problems), error: err }
    throw err
  }
  return { json: json(true, []), error: null }
}

export interface ConfigShowJson {
  schema: typeof CONFIG_SCHEMA
  source: string
  origin: ConfigOrigin
  config: Config
}

/** The effective config (after defaults) the lookup finds. */
export async function showConfig(lookup: LoadConfigOptions): Promise<ConfigShowJson> {
  const loaded = await loadConfigFrom(await resolveConfigSource(lookup), lookup.hostname)
  return {
    schema: CONFIG_SCHEMA,
    source: loaded.source,
    origin: loaded.origin,
    config: loaded.config,
  }
}
