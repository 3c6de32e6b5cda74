import path from 'node:path'
import { UsageError } from '../errors.js'
import type { Config, ServiceConfig } from './schema.js'

/**
 * The configured service a container belongs to: `container:` by name, or `compose:` by the
 * compose labels (service name, and the compose file among config_files — compose v1 records
 * it as given, so the project's working_dir with the file's directory counts too).
 */
export function serviceOfContainer(
  config: Pick<Config, 'services'>,
  c: { name: string; labels: Record<string, string> },
): [string, ServiceConfig] | null {
  for (const [name, svc] of Object.entries(config.services)) {
    if (svc.container && svc.container === c.name.replace(/^\//, '')) return [name, svc]
    if (svc.compose && c.labels['com.docker.compose.service'] === (svc.service ?? name)) {
      const files = (c.labels['com.docker.compose.project.config_files'] ?? '').split(',')
      if (
        files.includes(svc.compose) ||
        c.labels['com.docker.compose.project.working_dir'] === path.dirname(svc.compose)
      )
        return [name, svc]
    }
  }
  return null
}

/** The configured services.NAME or assets.NAME, or a usage error listing the ones there are. */
export function findConfigured<K extends 'services' | 'assets'>(
  config: Pick<Config, K>,
  section: K,
  name: string,
): Config[K][string] {
  const entries = config[section] as Record<string, Config[K][string]>
  const found = entries[name]
  if (found) return found
  const what = section === 'services' ? 'service' : 'asset'
  const known = Object.keys(entries)
  throw new UsageError(
    `no ${what} named ${name} in the host config`,
    known.length
      ? `configured ${section}: ${known.join(', ')}`
      : `add one under ${section}: in the host config (see README)`,
  )
}
