// What the engine port hands dockerode and the scan's worker: the address chosen by shipshape
// (--docker-host › $DOCKER_HOST › config) is the one both talk to.
import Docker from 'dockerode'
import { afterEach, describe, expect, it } from 'vitest'
import { parseEngineAddress } from '../../../lib/shared/address.js'
import { exportRequestOf, modemOptions } from '../../../lib/docker/connect.js'

const saved = process.env.DOCKER_HOST
afterEach(() => {
  if (saved === undefined) delete process.env.DOCKER_HOST
  else process.env.DOCKER_HOST = saved
})

describe('modemOptions', () => {
  it('a unix socket chosen by flag or config wins over a TCP $DOCKER_HOST dockerode would read', () => {
    process.env.DOCKER_HOST = 'tcp://192.0.2.7:2375'
    const addr = parseEngineAddress('unix:///run/sst/docker.sock')
    const modem = (
      new Docker(modemOptions(addr, {})) as unknown as { modem: Record<string, unknown> }
    ).modem
    expect(modem.socketPath).toBe('/run/sst/docker.sock')
    expect(modem.host).toBeUndefined()
  })

  it('a TCP address is host and port', () => {
    const addr = parseEngineAddress('tcp://10.1.2.3:2375')
    expect(modemOptions(addr, {})).toEqual({ host: '10.1.2.3', port: 2375, protocol: 'http' })
  })
})

describe('exportRequestOf', () => {
  const ID = 'sha256:' + 'cd'.repeat(32)

  it('a unix socket: the versioned, encoded export path', () => {
    const req = exportRequestOf({ socketPath: '/s.sock' }, '1.45', ID, 1000)
    expect(req).toEqual({
      socketPath: '/s.sock',
      protocol: 'http',
      path: `/v1.45/images/sha256%3A${'cd'.repeat(32)}/get`,
      idleTimeoutMs: 1000,
      what: `export of image ${ID} (/images/{id}/get)`,
    })
  })

  it('TCP: an IPv6 literal without its brackets; TLS material as given', () => {
    const ca = Buffer.from('CA')
    const req = exportRequestOf(
      {
        host: '[::1]',
        port: 2376,
        protocol: 'https',
        ca,
        cert: Buffer.from('C'),
        key: Buffer.from('K'),
      },
      '1.41',
      'app:1',
      5,
    )
    expect(req).toMatchObject({
      host: '::1',
      port: 2376,
      protocol: 'https',
      path: '/v1.41/images/app%3A1/get',
    })
    expect(req.ca).toBe(ca)
    expect(Buffer.from(req.key!).toString()).toBe('K')
    expect(req.socketPath).toBeUndefined()
  })
})
