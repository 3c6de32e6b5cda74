/**
 * The `--json` shapes of `shipshape config check` and `shipshape config show` (the schema
 * strings are CONFIG_CHECK_SCHEMA and CONFIG_SCHEMA in scripts/config.ts).
 */
import type { ConfigProblem } from '../errors.js'
import type { ConfigOrigin } from './load.js'
import type { Config } from './schema.js'

export interface ConfigCheckJson {
  schema: 'shipshape.config-check/1'
  /** no problem found */
  ok: boolean
  /** the file read, or "embedded default" */
  source: string
  /** how the lookup found it */
  origin: ConfigOrigin
  /** every problem, with its file, line and key (empty when ok) */
  problems: ConfigProblem[]
}

export interface ConfigShowJson {
  schema: 'shipshape.config/1'
  source: string
  origin: ConfigOrigin
  /** the effective config after defaults: sizes in bytes, durations in milliseconds, percentages as fractions */
  config: Config
}
