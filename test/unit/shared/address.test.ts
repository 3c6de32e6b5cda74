import { describe, expect, it } from 'vitest'
import { chooseEngineAddress, parseEngineAddress } from '../../../lib/shared/address.js'
import { ExitCode } from '../../../lib/errors.js'

describe('chooseEngineAddress', () => {
  it('takes --docker-host, then $DOCKER_HOST, then the config, then the default socket', () => {
    const env = { DOCKER_HOST: 'unix:///env.sock' }
    expect(
      chooseEngineAddress({ flag: 'unix:///flag.sock', env, config: 'unix:///cfg.sock' }).url,
    ).toBe('unix:///flag.sock')
    expect(chooseEngineAddress({ env, config: 'unix:///cfg.sock' }).url).toBe('unix:///env.sock')
    expect(chooseEngineAddress({ env: {}, config: 'unix:///cfg.sock' }).url).toBe(
      'unix:///cfg.sock',
    )
    expect(chooseEngineAddress({ env: {} })).toEqual({
      kind: 'unix',
      url: 'unix:///var/run/docker.sock',
      socketPath: '/var/run/docker.sock',
    })
  })
})

describe('parseEngineAddress', () => {
  it('reads tcp with default ports, TLS from DOCKER_TLS_VERIFY', () => {
    expect(parseEngineAddress('tcp://10.0.0.5')).toMatchObject({
      host: '10.0.0.5',
      port: 2375,
      protocol: 'http',
    })
    expect(parseEngineAddress('tcp://h:1234', { DOCKER_TLS_VERIFY: '1' })).toMatchObject({
      port: 1234,
      protocol: 'https',
    })
    expect(parseEngineAddress('/run/docker.sock')).toMatchObject({
      kind: 'unix',
      socketPath: '/run/docker.sock',
    })
  })
  it('refuses ssh:// and nonsense with a usage error and a fix', () => {
    for (const bad of [
      'ssh://me@host',
      'npipe:////./pipe/docker',
      'unix://relative.sock',
      'tcp://[bad',
    ]) {
      let err: unknown
      try {
        parseEngineAddress(bad)
      } catch (e) {
        err = e
      }
      expect(err, bad).toMatchObject({ exitCode: ExitCode.usage })
    }
  })
})
