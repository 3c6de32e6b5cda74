import type { Config } from './schema.js'

/**
 * What a command that reads the engine is given: the configuration, --docker-host and the
 * environment (to choose the engine), a clock, and where progress and warnings go.
 */
export interface EngineCommandContext {
  config: Config
  dockerHost?: string | undefined
  env?: NodeJS.ProcessEnv
  now?: () => Date
  progress?: (text: string) => void
  warn?: (text: string) => void
}
