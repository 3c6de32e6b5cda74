export {
  configSchema,
  configToInput,
  type AssetConfig,
  type Config,
  type ConfigInput,
  type HealthConfig,
  type ServiceConfig,
} from './schema.js'
export {
  EMBEDDED_DEFAULT,
  findPackageRoot,
  loadConfig,
  loadConfigFrom,
  parseConfigText,
  resolveConfigSource,
  type ConfigOrigin,
  type ConfigSource,
  type LoadConfigOptions,
  type LoadedConfig,
  type ParseConfigOptions,
} from './load.js'
export { formatBytes, formatDuration, parseDuration, parsePercent, parseSize } from './units.js'
