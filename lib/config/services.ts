import path from 'node:path'
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
