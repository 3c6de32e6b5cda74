import { describe, expect, it } from 'vitest'
import {
  compareApiVersions,
  detectImageStore,
  negotiateApiVersion,
  normalizeContainerDetails,
  normalizeDiskUsage,
  normalizeEngineInfo,
  normalizeHistory,
  normalizeImage,
  normalizeVersion,
  redactSecrets,
} from '../../../lib/docker/normalize.js'

// Shapes as the engines send them: API 1.41 (Docker 20.10) still has VirtualSize and
// leaves Containers at -1 in /images/json; API 1.44+ dropped VirtualSize.
const image141 = {
  Id: 'sha256:aaa',
  RepoTags: ['app:1', 'app:latest'],
  RepoDigests: null,
  Created: 1764806400,
  Size: 5128000,
  VirtualSize: 5128000,
  SharedSize: 1982000,
  Containers: -1,
  Labels: null,
}
const image145 = { ...image141, VirtualSize: undefined, Size: 9000, SharedSize: -1, Containers: 2 }

describe('normalizeImage', () => {
  it('reads API 1.41 payloads, -1 meaning not computed', () => {
    const img = normalizeImage(image141)
    expect(img).toMatchObject({
      id: 'sha256:aaa',
      tags: ['app:1', 'app:latest'],
      sizeBytes: 5128000,
      sharedBytes: 1982000,
      containers: null,
      createdAt: '2025-12-04T00:00:00.000Z',
    })
  })
  it('reads API 1.45 payloads without VirtualSize', () => {
    const img = normalizeImage(image145)
    expect(img.sizeBytes).toBe(9000)
    expect(img.sharedBytes).toBeNull()
    expect(img.containers).toBe(2)
  })
  it('falls back to VirtualSize when Size is missing', () => {
    expect(normalizeImage({ Id: 'x', VirtualSize: 77 }).sizeBytes).toBe(77)
  })
  it('drops <none>:<none> tags (dangling images)', () => {
    expect(normalizeImage({ Id: 'x', RepoTags: ['<none>:<none>'], Size: 1 }).tags).toEqual([])
  })
})

describe('normalizeDiskUsage', () => {
  it('counts containers per image when the engine left the count out', () => {
    const du = normalizeDiskUsage({
      LayersSize: 123,
      Images: [image141, { ...image141, Id: 'sha256:bbb', Containers: -1 }],
      Containers: [
        {
          Id: 'c1',
          Names: ['/web'],
          ImageID: 'sha256:aaa',
          State: 'running',
          SizeRw: 10,
          Mounts: [],
        },
        {
          Id: 'c2',
          Names: ['/old'],
          ImageID: 'sha256:aaa',
          State: 'exited',
          SizeRw: 20,
          Mounts: null,
        },
      ],
      Volumes: [{ Name: 'v', Driver: 'local', UsageData: { Size: 5, RefCount: 0 } }],
      BuildCache: null,
    })
    expect(du.layersSize).toBe(123)
    expect(du.images.map((i) => i.containers)).toEqual([2, 0])
    expect(du.containers[0]).toMatchObject({ name: 'web', sizeRwBytes: 10, mounts: [] })
    expect(du.volumes[0]).toMatchObject({ name: 'v', sizeBytes: 5, refCount: 0 })
    expect(du.buildCache).toEqual([])
  })
  it('reads bind mounts with their read-only flag', () => {
    const du = normalizeDiskUsage({
      Containers: [
        {
          Id: 'c',
          Names: ['/m'],
          Mounts: [{ Type: 'bind', Source: '/opt/a', Destination: '/a', RW: false }],
        },
      ],
    })
    expect(du.containers[0]?.mounts).toEqual([
      { type: 'bind', source: '/opt/a', destination: '/a', readOnly: true },
    ])
  })
})

describe('normalizeHistory', () => {
  it('keeps the full instruction and size', () => {
    expect(
      normalizeHistory({
        Id: '<missing>',
        Created: 0,
        CreatedBy: '/bin/sh -c pip install x',
        Size: 7,
        Tags: null,
      }),
    ).toEqual({
      id: '<missing>',
      createdAt: '1970-01-01T00:00:00.000Z',
      createdBy: '/bin/sh -c pip install x',
      sizeBytes: 7,
      tags: [],
      comment: '',
    })
  })
})

describe('API version negotiation', () => {
  it('compares dotted versions numerically', () => {
    expect(compareApiVersions('1.41', '1.45')).toBeLessThan(0)
    expect(compareApiVersions('1.100', '1.45')).toBeGreaterThan(0)
    expect(compareApiVersions('1.45', '1.45')).toBe(0)
  })
  it('speaks the engine version up to the newest tested one', () => {
    expect(negotiateApiVersion('1.41')).toBe('1.41')
    expect(negotiateApiVersion('1.45')).toBe('1.45')
    expect(negotiateApiVersion('1.51')).toBe('1.45')
  })
})

describe('detectImageStore', () => {
  it('sees the containerd snapshotter in DriverStatus', () => {
    expect(
      detectImageStore({ DriverStatus: [['driver-type', 'io.containerd.snapshotter.v1']] }),
    ).toBe('containerd')
    expect(detectImageStore({ DriverStatus: [['Backing Filesystem', 'extfs']] })).toBe('classic')
    expect(detectImageStore({})).toBe('classic')
  })
})

describe('redactSecrets', () => {
  it('hides secret build args, ENV values and URL passwords, keeps the rest', () => {
    expect(
      redactSecrets(
        '|2 HF_TOKEN=hf_SuperSecret123 PIP_INDEX=https://pypi.org/simple /bin/sh -c pip install x',
      ),
    ).toBe('|2 HF_TOKEN=*** PIP_INDEX=https://pypi.org/simple /bin/sh -c pip install x')
    expect(redactSecrets('/bin/sh -c #(nop)  ENV DB_PASSWORD="s3 cret" MODE=prod')).toBe(
      '/bin/sh -c #(nop)  ENV DB_PASSWORD=*** MODE=prod',
    )
    expect(redactSecrets('RUN git clone https://user:ghp_abc@github.com/x.git')).toBe(
      'RUN git clone https://user:***@github.com/x.git',
    )
    expect(redactSecrets('/bin/sh -c apt-get install -y git curl')).toBe(
      '/bin/sh -c apt-get install -y git curl',
    )
  })
  it('applies to every history entry', () => {
    expect(normalizeHistory({ CreatedBy: '|1 API_KEY=abc /bin/sh -c make' }).createdBy).toBe(
      '|1 API_KEY=*** /bin/sh -c make',
    )
  })
})

describe('normalizeContainerDetails', () => {
  it('running ports, wanted ports of a stopped one, EXPOSE, HEALTHCHECK NONE', () => {
    const running = normalizeContainerDetails({
      State: { Running: true },
      HostConfig: {
        NetworkMode: 'appnet',
        PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '' }] },
      },
      NetworkSettings: {
        Ports: {
          '80/tcp': [
            { HostIp: '0.0.0.0', HostPort: '32768' },
            { HostIp: '::', HostPort: '32768' },
          ],
          '9000/tcp': null,
        },
      },
      Config: {
        ExposedPorts: { '80/tcp': {}, '53/udp': {} },
        Healthcheck: { Test: ['CMD', 'true'] },
      },
    })
    expect(running).toMatchObject({
      networkMode: 'appnet',
      published: [{ port: 80, protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 32768 }],
      exposed: [80],
      healthcheck: true,
    })
    const stopped = normalizeContainerDetails({
      State: { Running: false },
      HostConfig: {
        NetworkMode: 'host',
        PortBindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }] },
      },
      Config: { Healthcheck: { Test: ['NONE'] } },
    })
    expect(stopped.published).toEqual([
      { port: 8080, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 8080 },
    ])
    expect(stopped.healthcheck).toBe(false)
  })

  it('State.FinishedAt as given, null when never stopped; SizeRw only when computed', () => {
    const stopped = normalizeContainerDetails({
      State: { Running: false, FinishedAt: '2026-12-01T10:00:00.123456789Z' },
      SizeRw: 4096,
    })
    expect(stopped.finishedAt).toBe('2026-12-01T10:00:00.123456789Z')
    expect(stopped.sizeRwBytes).toBe(4096)
    const fresh = normalizeContainerDetails({ State: { FinishedAt: '0001-01-01T00:00:00Z' } })
    expect(fresh.finishedAt).toBe(null)
    expect(fresh.sizeRwBytes).toBe(null)
    expect(normalizeContainerDetails({ SizeRw: -1 }).sizeRwBytes).toBe(null)
  })
})

describe('normalizeVersion / normalizeEngineInfo', () => {
  it('speaks the newest API both sides know; reads /info', () => {
    const v = normalizeVersion({
      Version: '26.1.5',
      ApiVersion: '1.45',
      Os: 'linux',
      Arch: 'amd64',
    })
    expect(v).toEqual({
      version: '26.1.5',
      apiVersion: '1.45',
      engineApiVersion: '1.45',
      os: 'linux',
      arch: 'amd64',
    })
    expect(normalizeVersion({ Version: '28.0.1', ApiVersion: '1.48' }).apiVersion).toBe('1.45')
    const info = normalizeEngineInfo('unix:///x.sock', v, {
      Driver: 'overlayfs',
      DockerRootDir: '/var/lib/docker',
      DriverStatus: [['driver-type', 'io.containerd.snapshotter.v1']],
    })
    expect(info).toMatchObject({
      address: 'unix:///x.sock',
      storageDriver: 'overlayfs',
      dockerRootDir: '/var/lib/docker',
      imageStore: 'containerd',
    })
  })
})
