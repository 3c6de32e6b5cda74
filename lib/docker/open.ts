import { chooseEngineAddress } from '../shared/address.js'
import { connectEngine, type Engine } from './engine.js'

export interface OpenEngineOptions {
  /** --docker-host */
  dockerHost?: string | undefined
  env?: NodeJS.ProcessEnv
  config: { docker: { host?: string | undefined; timeout: number; callTimeout: number } }
  warn?: ((line: string) => void) | undefined
  progress?: ((text: string) => void) | undefined
}

/** The engine every command talks to: --docker-host › $DOCKER_HOST › docker.host › default socket. */
export async function openEngine(o: OpenEngineOptions): Promise<Engine> {
  const address = chooseEngineAddress({
    flag: o.dockerHost,
    env: o.env,
    config: o.config.docker.host,
  })
  o.progress?.(`Connecting to ${address.url}`)
  return connectEngine(address, {
    timeoutMs: o.config.docker.timeout,
    callTimeoutMs: o.config.docker.callTimeout,
    env: o.env,
    warn: o.warn,
  })
}
