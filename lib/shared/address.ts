import { UsageError } from '../errors.js'

export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock'

export type EngineAddress =
  | { kind: 'unix'; url: string; socketPath: string }
  | { kind: 'tcp'; url: string; host: string; port: number; protocol: 'http' | 'https' }

export interface AddressSources {
  flag?: string | undefined
  env?: NodeJS.ProcessEnv
  config?: string | undefined
}

/** Engine address: --docker-host › $DOCKER_HOST › config docker.host › the default socket. */
export function chooseEngineAddress(src: AddressSources): EngineAddress {
  const env = src.env ?? process.env
  const raw = src.flag || env.DOCKER_HOST || src.config || DEFAULT_DOCKER_HOST
  return parseEngineAddress(raw, env)
}

export function parseEngineAddress(raw: string, env: NodeJS.ProcessEnv = {}): EngineAddress {
  if (raw.startsWith('unix://')) {
    const socketPath = raw.slice('unix://'.length)
    if (!socketPath.startsWith('/'))
      throw new UsageError(`docker host '${raw}': a unix socket path must be absolute`)
    return { kind: 'unix', url: raw, socketPath }
  }
  if (raw.startsWith('/')) return { kind: 'unix', url: `unix://${raw}`, socketPath: raw }
  if (raw.startsWith('tcp://') || raw.startsWith('http://') || raw.startsWith('https://')) {
    let u: URL
    try {
      u = new URL(raw.replace(/^tcp:/, 'http:'))
    } catch {
      throw new UsageError(`docker host '${raw}' is not a valid address`)
    }
    const tls = raw.startsWith('https://') || Boolean(env.DOCKER_TLS_VERIFY)
    const port = u.port ? Number(u.port) : tls ? 2376 : 2375
    return {
      kind: 'tcp',
      url: `tcp://${u.hostname}:${port}`,
      host: u.hostname,
      port,
      protocol: tls ? 'https' : 'http',
    }
  }
  if (raw.startsWith('ssh://')) {
    throw new UsageError(
      `docker host '${raw}': ssh:// is not supported`,
      'forward the socket instead: ssh -L /tmp/docker.sock:/var/run/docker.sock HOST, then --docker-host unix:///tmp/docker.sock',
    )
  }
  throw new UsageError(
    `docker host '${raw}' is not understood`,
    'use unix:///path/to/docker.sock or tcp://host:port',
  )
}
