// planRecreate over inspect JSON as the engines send it (test/fixtures/recreate/, captured from
// private engines 20.10 / API 1.41 and 26.1 / API 1.45 with the docker CLI):
//   container-*-running/stopped: `docker run --network ssnet1 --network-alias web -p … -e … -v …
//     --mount type=volume,dst=/anon3 --hostname myhost --user nobody -w /work --init …` on
//     rc/app:1, then `network connect` to ssnet2 (alias) and ssnet3 (--ip); 26.1 with --mac-address
//   container-20.10-hostnet: --network host --entrypoint /bin/echo --no-healthcheck … hello world
//   container-26.1-netns: --network container:rich3 --entrypoint "" … sleep 9
//   image-*: rc/app:1 (ENV APP_MODE=prod GREETING=hello, LABELs, VOLUME /data, EXPOSE, WORKDIR,
//     HEALTHCHECK, STOPSIGNAL, ENTRYPOINT ["sh","-c"], CMD [...])
import fs from 'node:fs'
import type Docker from 'dockerode'
import { describe, expect, it } from 'vitest'
import { asideName } from '../../../lib/docker/recreate.js'
import { findDependents, planRecreate, restartPolicyOf } from '../../../lib/docker/recreate-plan.js'
import { RefusedError } from '../../../lib/errors.js'

type Raw = Record<string, unknown>
const load = (name: string): Raw =>
  JSON.parse(
    fs.readFileSync(new URL(`../../fixtures/recreate/${name}.json`, import.meta.url), 'utf8'),
  )

const fixtures = {
  c20: load('container-20.10-running'),
  c20host: load('container-20.10-hostnet'),
  i20: load('image-20.10'),
  c26: load('container-26.1-running'),
  c26stopped: load('container-26.1-stopped'),
  c26netns: load('container-26.1-netns'),
  i26: load('image-26.1'),
}

/** A deep copy of a fixture with `change` applied to it. */
function variant(base: Raw, change: (c: Raw) => void = () => {}): Raw {
  const copy = structuredClone(base)
  change(copy)
  return copy
}
const cfgOf = (c: Raw) => c.Config as Raw
const hostOf = (c: Raw) => c.HostConfig as Raw
const netsOf = (c: Raw) => (c.NetworkSettings as Raw).Networks as Record<string, Raw>

const plan = (c: Raw, img: Raw, to = 'rc/app:2') =>
  planRecreate(
    c as unknown as Docker.ContainerInspectInfo,
    img as unknown as Docker.ImageInspectInfo,
    to,
  )

const vol = (c: Raw, dest: string): string => {
  const m = (c.Mounts as Raw[]).find((x) => x.Destination === dest)
  if (!m || typeof m.Name !== 'string') throw new Error(`fixture has no volume at ${dest}`)
  return m.Name
}

const RUNTIME_ENDPOINT_FIELDS = [
  'NetworkID',
  'EndpointID',
  'Gateway',
  'IPAddress',
  'IPPrefixLen',
  'IPv6Gateway',
  'GlobalIPv6Address',
  'GlobalIPv6PrefixLen',
  'DNSNames',
]

describe('planRecreate on the rich container of each engine', () => {
  const rows = [
    {
      engine: '20.10 running',
      c: fixtures.c20,
      img: fixtures.i20,
      name: 'rich',
      wasRunning: true,
      mac: undefined,
      connect: [
        { network: 'ssnet2', endpoint: { Aliases: ['other'] } },
        { network: 'ssnet3', endpoint: { IPAMConfig: { IPv4Address: '10.231.1.50' } } },
      ],
    },
    {
      engine: '26.1 running',
      c: fixtures.c26,
      img: fixtures.i26,
      name: 'rich3',
      wasRunning: true,
      mac: '02:42:ac:11:00:99',
      connect: [
        { network: 'ssnet2', endpoint: { Aliases: ['other2'] } },
        {
          network: 'ssnet3',
          endpoint: { Aliases: ['other'], IPAMConfig: { IPv4Address: '10.231.2.51' } },
        },
      ],
    },
    {
      engine: '26.1 stopped',
      c: fixtures.c26stopped,
      img: fixtures.i26,
      name: 'rich3',
      wasRunning: false,
      mac: '02:42:ac:11:00:99',
      connect: [
        { network: 'ssnet2', endpoint: { Aliases: ['other2'] } },
        {
          network: 'ssnet3',
          endpoint: { Aliases: ['other'], IPAMConfig: { IPv4Address: '10.231.2.51' } },
        },
      ],
    },
  ]

  it.each(rows)('$engine: name, image, running state', (row) => {
    const p = plan(row.c, row.img, 'rc/app:2')
    expect(p.name).toBe(row.name)
    expect(p.create.name).toBe(row.name)
    expect(p.create.Image).toBe('rc/app:2')
    expect(p.wasRunning).toBe(row.wasRunning)
  })

  it.each(rows)('$engine: only the env the operator set', ({ c, img }) => {
    // GREETING=hi overrides the image's GREETING=hello; APP_MODE=prod and PATH are the image's
    expect(plan(c, img).create.Env?.slice().sort()).toEqual(['EXTRA=1', 'GREETING=hi'])
  })

  it.each(rows)(
    '$engine: Config fields that differ from the image, and those always copied',
    (row) => {
      const cr = plan(row.c, row.img).create
      expect(cr).toMatchObject({
        Hostname: 'myhost',
        Domainname: 'example.org',
        User: 'nobody',
        WorkingDir: '/work',
        StopSignal: 'SIGINT',
        StopTimeout: 7,
        Tty: true,
        OpenStdin: true,
        StdinOnce: false,
        AttachStdin: false,
        // the image's HEALTHCHECK CMD true with the operator's --health-interval 5s only
        Healthcheck: { Interval: 5_000_000_000 },
        // VOLUME /data and both EXPOSEd ports come from the image
        Volumes: { '/anon2': {} },
        // org.example.tier=web is the image's own; org.example.app=other overrides demo
        Labels: { own: '1', 'org.example.app': 'other' },
      })
      expect(cr.Healthcheck).toEqual({ Interval: 5_000_000_000 })
      expect(cr.Labels).toEqual({ own: '1', 'org.example.app': 'other' })
      expect(cr.Volumes).toEqual({ '/anon2': {} })
      // same as the image: left to the new image
      for (const k of ['Cmd', 'Entrypoint', 'ExposedPorts', 'Shell', 'OnBuild', 'ArgsEscaped']) {
        expect(cr, k).not.toHaveProperty(k)
      }
      expect(cr.MacAddress).toBe(row.mac)
    },
  )

  it.each(rows)('$engine: HostConfig copied whole but the engine default masks', ({ c, img }) => {
    const hc = { ...(plan(c, img).create.HostConfig as Raw) }
    const src = { ...hostOf(c) }
    expect(hc.Mounts).toBeDefined()
    for (const k of ['Mounts', 'MaskedPaths', 'ReadonlyPaths']) {
      delete hc[k]
      delete src[k]
    }
    expect(hc).toEqual(src)
    const out = plan(c, img).create.HostConfig as Raw
    expect(out).not.toHaveProperty('MaskedPaths')
    expect(out).not.toHaveProperty('ReadonlyPaths')
    expect((out.Binds as string[]).slice().sort()).toEqual([
      '/tmp/rc-explore/bindsrc:/bind:ro',
      'rcnamed:/named',
    ])
    expect(out).toMatchObject({
      PortBindings: {
        '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }],
        '9000/udp': [{ HostIp: '', HostPort: expect.stringMatching(/^900\d$/) }],
      },
      RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 },
      NetworkMode: 'ssnet1',
      CapAdd: ['CAP_NET_ADMIN'],
      Init: true,
      Memory: 64 * 1024 * 1024,
      NanoCpus: 500_000_000,
      Ulimits: [{ Name: 'nofile', Hard: 2048, Soft: 1024 }],
      LogConfig: { Type: 'json-file', Config: { 'max-size': '1m' } },
    })
  })

  it.each(rows)(
    '$engine: anonymous volumes mounted by name, binds and named ones untouched',
    ({ c, img }) => {
      const mounts = (plan(c, img).create.HostConfig as Raw).Mounts as Raw[]
      expect(mounts).toEqual([
        { Type: 'tmpfs', Target: '/tm' },
        // --mount type=volume,dst=/anon3 (no source): the volume it got
        { Type: 'volume', Target: '/anon3', Source: vol(c, '/anon3') },
        // -v /anon2 and the image's VOLUME /data (order: as the engine lists the mounts)
        ...(c.Mounts as Raw[])
          .filter((m) => m.Destination === '/anon2' || m.Destination === '/data')
          .map((m) => ({ Type: 'volume', Source: m.Name, Target: m.Destination })),
      ])
      expect(mounts.map((m) => m.Target).sort()).toEqual(['/anon2', '/anon3', '/data', '/tm'])
    },
  )

  it.each(rows)('$engine: networks without runtime fields or engine-made aliases', (row) => {
    const p = plan(row.c, row.img)
    const eps = p.create.NetworkingConfig?.EndpointsConfig ?? {}
    expect(Object.keys(eps)).toEqual(['ssnet1'])
    expect(eps.ssnet1).toEqual(
      row.mac ? { Aliases: ['web'], MacAddress: row.mac } : { Aliases: ['web'] },
    )
    expect(p.connect).toEqual(row.connect)
    for (const ep of [eps.ssnet1, ...p.connect.map((x) => x.endpoint)]) {
      for (const k of RUNTIME_ENDPOINT_FIELDS) expect(ep, k).not.toHaveProperty(k)
    }
  })

  it.each(rows)('$engine: the inputs are left as they were', ({ c, img }) => {
    const before = structuredClone([c, img])
    plan(c, img)
    expect([c, img]).toEqual(before)
  })
})

describe('planRecreate: Env', () => {
  it.each([
    { name: 'operator PATH kept', env: ['PATH=/opt/bin:/bin'], want: ['PATH=/opt/bin:/bin'] },
    {
      name: 'image PATH dropped',
      env: [(cfgOf(fixtures.i20).Env as string[]).find((e) => e.startsWith('PATH='))!],
      want: undefined,
    },
    { name: 'variable without value kept', env: ['FLAG'], want: ['FLAG'] },
    { name: 'override of an image value kept', env: ['APP_MODE=dev'], want: ['APP_MODE=dev'] },
    { name: 'no env at all', env: null, want: undefined },
  ])('$name', ({ env, want }) => {
    const c = variant(fixtures.c20, (x) => (cfgOf(x).Env = env))
    expect(plan(c, fixtures.i20).create.Env).toEqual(want)
  })
})

describe('planRecreate: Cmd and Entrypoint', () => {
  const rows: { name: string; entry: unknown; cmd: unknown; want: Raw }[] = [
    {
      name: 'both the image’s',
      entry: ['sh', '-c'],
      cmd: ["trap 'exit 0' TERM; sleep 3600 & wait"],
      want: {},
    },
    { name: 'own Cmd only', entry: ['sh', '-c'], cmd: ['echo hi'], want: { Cmd: ['echo hi'] } },
    // the engine took no Cmd from the image once an Entrypoint was given: keep it with it
    {
      name: 'own Entrypoint, Cmd equal to the image’s',
      entry: ['/bin/app'],
      cmd: ["trap 'exit 0' TERM; sleep 3600 & wait"],
      want: { Entrypoint: ['/bin/app'], Cmd: ["trap 'exit 0' TERM; sleep 3600 & wait"] },
    },
    {
      name: 'own Entrypoint, no Cmd',
      entry: ['/bin/app'],
      cmd: null,
      want: { Entrypoint: ['/bin/app'] },
    },
    // `--entrypoint ""`: inspect shows null; [''] resets it again on create
    {
      name: 'Entrypoint reset',
      entry: null,
      cmd: ['sleep', '9'],
      want: { Entrypoint: [''], Cmd: ['sleep', '9'] },
    },
  ]
  it.each(rows)('$name', ({ entry, cmd, want }) => {
    const c = variant(fixtures.c20, (x) => {
      cfgOf(x).Entrypoint = entry
      cfgOf(x).Cmd = cmd
    })
    const cr = plan(c, fixtures.i20).create
    expect({ Entrypoint: cr.Entrypoint, Cmd: cr.Cmd }).toEqual({
      Entrypoint: want.Entrypoint,
      Cmd: want.Cmd,
    })
  })

  it('captured: --entrypoint /bin/echo … hello world (20.10)', () => {
    const cr = plan(fixtures.c20host, fixtures.i20).create
    expect(cr.Entrypoint).toEqual(['/bin/echo'])
    expect(cr.Cmd).toEqual(['hello', 'world'])
  })
  it('captured: --entrypoint "" … sleep 9 (26.1)', () => {
    const cr = plan(fixtures.c26netns, fixtures.i26).create
    expect(cr.Entrypoint).toEqual([''])
    expect(cr.Cmd).toEqual(['sleep', '9'])
  })
})

describe('planRecreate: Hostname', () => {
  it('drops docker’s default (the short id)', () => {
    const c = variant(fixtures.c26, (x) => (cfgOf(x).Hostname = String(x.Id).slice(0, 12)))
    expect(plan(c, fixtures.i26).create).not.toHaveProperty('Hostname')
  })
  it('keeps another container’s short id (set by the operator)', () => {
    const c = variant(fixtures.c26, (x) => (cfgOf(x).Hostname = '00beb4da67ec'))
    expect(plan(c, fixtures.i26).create.Hostname).toBe('00beb4da67ec')
  })
  it('keeps the host’s name with --network host', () => {
    expect(plan(fixtures.c20host, fixtures.i20).create.Hostname).toBe('vm')
  })
  it('drops hostname and domain copied in from the container whose network it shares', () => {
    const cr = plan(fixtures.c26netns, fixtures.i26).create
    expect(cfgOf(fixtures.c26netns).Hostname).toBe('myhost') // what the engine copied in
    expect(cr).not.toHaveProperty('Hostname')
    expect(cr).not.toHaveProperty('Domainname')
    expect(cr).not.toHaveProperty('ExposedPorts')
  })
})

describe('planRecreate: other Config fields against the image', () => {
  const rows: { name: string; change: (cfg: Raw) => void; want: Raw }[] = [
    {
      name: 'WorkingDir same as image',
      change: (c) => (c.WorkingDir = '/srv'),
      want: { WorkingDir: undefined },
    },
    { name: 'User same as image (empty)', change: (c) => (c.User = ''), want: { User: undefined } },
    {
      name: 'StopSignal same as image',
      change: (c) => (c.StopSignal = 'SIGTERM'),
      want: { StopSignal: undefined },
    },
    {
      name: 'Healthcheck same as image',
      change: (c) => (c.Healthcheck = { Test: ['CMD-SHELL', 'true'], Interval: 30_000_000_000 }),
      want: { Healthcheck: undefined },
    },
    {
      name: '--no-healthcheck',
      change: (c) => (c.Healthcheck = { Test: ['NONE'], Interval: 30_000_000_000 }),
      want: { Healthcheck: { Test: ['NONE'] } },
    },
    {
      name: 'Healthcheck own test, image interval',
      change: (c) => (c.Healthcheck = { Test: ['CMD', '/bin/check'], Interval: 30_000_000_000 }),
      want: { Healthcheck: { Test: ['CMD', '/bin/check'] } },
    },
    {
      name: 'an extra exposed port',
      change: (c) => (c.ExposedPorts = { '80/tcp': {}, '9000/udp': {}, '8443/tcp': {} }),
      want: { ExposedPorts: { '8443/tcp': {} } },
    },
    {
      name: 'all labels the image’s',
      change: (c) => (c.Labels = { 'org.example.app': 'demo', 'org.example.tier': 'web' }),
      want: { Labels: undefined },
    },
    {
      name: 'Shell set',
      change: (c) => (c.Shell = ['/bin/ash', '-c']),
      want: { Shell: ['/bin/ash', '-c'] },
    },
    {
      name: 'StopTimeout unset',
      change: (c) => delete c.StopTimeout,
      want: { StopTimeout: undefined },
    },
  ]
  it.each(rows)('$name', ({ change, want }) => {
    const c = variant(fixtures.c20, (x) => change(cfgOf(x)))
    const cr = plan(c, fixtures.i20).create as Raw
    for (const [k, v] of Object.entries(want)) expect(cr[k], k).toEqual(v)
  })
})

describe('planRecreate: HostConfig', () => {
  it('keeps an empty mask list (systempaths=unconfined)', () => {
    const c = variant(fixtures.c26, (x) => {
      hostOf(x).MaskedPaths = []
      hostOf(x).ReadonlyPaths = []
    })
    const hc = plan(c, fixtures.i26).create.HostConfig as Raw
    expect(hc.MaskedPaths).toEqual([])
    expect(hc.ReadonlyPaths).toEqual([])
  })
  it('turns legacy links as inspect shows them into create’s name:alias', () => {
    const c = variant(
      fixtures.c20,
      (x) => (hostOf(x).Links = ['/db:/rich/db', '/cache-1:/rich/cache']),
    )
    expect((plan(c, fixtures.i20).create.HostConfig as Raw).Links).toEqual([
      'db:db',
      'cache-1:cache',
    ])
  })
  it('copies fields of newer engines it does not know', () => {
    const c = variant(fixtures.c26, (x) => (hostOf(x).Annotations = { 'io.example': 'x' }))
    expect((plan(c, fixtures.i26).create.HostConfig as Raw).Annotations).toEqual({
      'io.example': 'x',
    })
  })
  it('keeps DeviceRequests, Runtime, Privileged as they are', () => {
    const req = [
      { Driver: 'nvidia', Count: -1, DeviceIDs: null, Capabilities: [['gpu']], Options: {} },
    ]
    const c = variant(fixtures.c26, (x) => {
      hostOf(x).DeviceRequests = req
      hostOf(x).Runtime = 'nvidia'
      hostOf(x).Privileged = true
    })
    expect(plan(c, fixtures.i26).create.HostConfig).toMatchObject({
      DeviceRequests: req,
      Runtime: 'nvidia',
      Privileged: true,
    })
  })
  it('refuses a --rm container: stopping it would remove it and its anonymous volumes', () => {
    const c = variant(fixtures.c20, (x) => (hostOf(x).AutoRemove = true))
    expect(() => plan(c, fixtures.i20)).toThrow(RefusedError)
    expect(() => plan(c, fixtures.i20)).toThrow(/rich.*--rm/)
  })
  it.each(['IpcMode', 'PidMode'])('refuses %s naming the container itself', (key) => {
    const c = variant(fixtures.c20, (x) => (hostOf(x)[key] = `container:${String(x.Id)}`))
    expect(() => plan(c, fixtures.i20)).toThrow(RefusedError)
  })
  it('keeps container: references to other containers', () => {
    const c = variant(fixtures.c20, (x) => (hostOf(x).IpcMode = 'container:db'))
    expect((plan(c, fixtures.i20).create.HostConfig as Raw).IpcMode).toBe('container:db')
  })
})

describe('planRecreate: anonymous volumes', () => {
  it('keeps read-only and the driver of a volume that came another way (e.g. --volumes-from x:ro)', () => {
    const c = variant(fixtures.c20, (x) => {
      ;(x.Mounts as Raw[]).push({
        Type: 'volume',
        Name: 'shared-cache',
        Source: '/var/lib/docker/volumes/shared-cache/_data',
        Destination: '/cache/',
        Driver: 'rclone',
        Mode: '',
        RW: false,
        Propagation: '',
      })
      hostOf(x).VolumesFrom = ['x:ro']
    })
    const hc = plan(c, fixtures.i20).create.HostConfig as Raw
    expect(hc.VolumesFrom).toEqual(['x:ro'])
    expect(hc.Mounts).toContainEqual({
      Type: 'volume',
      Source: 'shared-cache',
      Target: '/cache/',
      ReadOnly: true,
      VolumeOptions: { DriverConfig: { Name: 'rclone' } },
    })
  })
  it('adds none where a bind or a mount already gives the destination (trailing slash too)', () => {
    const c = variant(fixtures.c20, (x) => {
      hostOf(x).Binds = ['/srv/data:/data/', 'rcnamed:/named']
      hostOf(x).Mounts = [{ Type: 'bind', Source: '/srv/a2', Target: '/anon2' }]
    })
    const mounts = (plan(c, fixtures.i20).create.HostConfig as Raw).Mounts as Raw[]
    expect(mounts).toEqual([
      { Type: 'bind', Source: '/srv/a2', Target: '/anon2' },
      { Type: 'volume', Source: vol(fixtures.c20, '/anon3'), Target: '/anon3' },
    ])
  })
  it('no Mounts at all without volumes', () => {
    const c = variant(fixtures.c20, (x) => {
      x.Mounts = []
      hostOf(x).Mounts = null
    })
    expect((plan(c, fixtures.i20).create.HostConfig as Raw).Mounts).toBeNull()
  })
})

describe('planRecreate: networks', () => {
  it.each([
    { name: 'host', c: fixtures.c20host, img: fixtures.i20 },
    { name: 'container:', c: fixtures.c26netns, img: fixtures.i26 },
    {
      name: 'none',
      c: variant(fixtures.c20, (x) => {
        hostOf(x).NetworkMode = 'none'
        ;(x.NetworkSettings as Raw).Networks = { none: {} }
      }),
      img: fixtures.i20,
    },
  ])('$name: no endpoint, nothing to connect', ({ c, img }) => {
    const p = plan(c, img)
    expect(p.create).not.toHaveProperty('NetworkingConfig')
    expect(p.connect).toEqual([])
    expect((p.create.HostConfig as Raw).NetworkMode).toBe(hostOf(c).NetworkMode)
  })

  it('NetworkMode given as a network id: that network is the create’s', () => {
    const c = variant(fixtures.c20, (x) => {
      hostOf(x).NetworkMode = String(netsOf(x).ssnet2!.NetworkID)
    })
    const p = plan(c, fixtures.i20)
    expect(Object.keys(p.create.NetworkingConfig?.EndpointsConfig ?? {})).toEqual(['ssnet2'])
    expect(p.connect.map((x) => x.network)).toEqual(['ssnet1', 'ssnet3'])
  })

  it('NetworkMode default: the bridge endpoint', () => {
    const c = variant(fixtures.c20, (x) => {
      hostOf(x).NetworkMode = 'default'
      const eps = netsOf(x)
      ;(x.NetworkSettings as Raw).Networks = { bridge: { ...eps.ssnet1, Aliases: null } }
    })
    const p = plan(c, fixtures.i20)
    expect(p.create.NetworkingConfig).toEqual({ EndpointsConfig: { bridge: {} } })
    expect(p.connect).toEqual([])
  })

  it('the short id alias comes off on 26.1 read with API < 1.45 too', () => {
    const c = variant(fixtures.c26, (x) => {
      netsOf(x).ssnet1!.Aliases = ['web', String(x.Id).slice(0, 12)]
    })
    expect(plan(c, fixtures.i26).create.NetworkingConfig?.EndpointsConfig?.ssnet1?.Aliases).toEqual(
      ['web'],
    )
  })

  it('keeps links, driver options, IPv6 and an operator MAC of a further network', () => {
    const c = variant(fixtures.c26, (x) => {
      Object.assign(netsOf(x).ssnet2!, {
        Links: ['db:database'],
        DriverOpts: { 'com.example.opt': '1' },
        IPAMConfig: { IPv6Address: 'fd00::5' },
        MacAddress: '12:34:56:78:9a:bc',
      })
    })
    expect(plan(c, fixtures.i26).connect[0]).toEqual({
      network: 'ssnet2',
      endpoint: {
        Aliases: ['other2'],
        Links: ['db:database'],
        DriverOpts: { 'com.example.opt': '1' },
        IPAMConfig: { IPv6Address: 'fd00::5' },
        MacAddress: '12:34:56:78:9a:bc',
      },
    })
  })

  it('drops the MAC docker derived from the IP on every network', () => {
    const p = plan(fixtures.c20, fixtures.i20)
    const all = [
      p.create.NetworkingConfig?.EndpointsConfig?.ssnet1,
      ...p.connect.map((x) => x.endpoint),
    ]
    expect(all.map((e) => e?.MacAddress)).toEqual([undefined, undefined, undefined])
    expect(netsOf(fixtures.c20).ssnet3!.MacAddress).toBe('02:42:0a:e7:01:32') // 10.231.1.50
  })

  it('no MacAddress with --network host even if one is stored', () => {
    const c = variant(fixtures.c20host, (x) => (cfgOf(x).MacAddress = '12:34:56:78:9a:bc'))
    expect(plan(c, fixtures.i20).create).not.toHaveProperty('MacAddress')
  })
})

describe('asideName', () => {
  it.each([
    ['app', '20260101T120000Z', 'app-shipshape-old-20260101T120000Z'],
    ['my_app.1', '2026-01-01T12:00:00.000Z', 'my_app.1-shipshape-old-2026-01-01T12-00-00.000Z'],
    ['app', 'a+b c', 'app-shipshape-old-a-b-c'],
  ])('%s + %s → %s', (name, stamp, want) => {
    expect(asideName(name, stamp)).toBe(want)
    expect(asideName(name, stamp)).toMatch(/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/)
  })
})

describe('findDependents', () => {
  const c = (o: Record<string, unknown>) => o as unknown as Docker.ContainerInspectInfo
  const target = { id: 'a'.repeat(64), name: 'web' }
  it('names containers that hold the target by id or name, and how', () => {
    const deps = findDependents(target, [
      c({ Id: 'b', Name: '/side', HostConfig: { NetworkMode: `container:${'a'.repeat(64)}` } }),
      c({ Id: 'c', Name: '/vols', HostConfig: { NetworkMode: 'bridge', VolumesFrom: ['web:ro'] } }),
      c({ Id: 'd', Name: '/old', HostConfig: { Links: ['/web:/old/db'] } }),
      c({ Id: 'e', Name: '/pid', HostConfig: { PidMode: `container:${'a'.repeat(12)}` } }),
      c({
        Id: 'f',
        Name: '/free',
        HostConfig: { NetworkMode: 'container:other', VolumesFrom: ['webby'] },
      }),
      c({ Id: 'a'.repeat(64), Name: '/web', HostConfig: { NetworkMode: 'host' } }),
    ])
    expect(deps).toEqual([
      { name: 'side', how: '--network container:web' },
      { name: 'vols', how: '--volumes-from web' },
      { name: 'old', how: '--link web' },
      { name: 'pid', how: '--pid container:web' },
    ])
  })
  it('nothing holds a container alone', () => {
    expect(findDependents(target, [])).toEqual([])
  })
})

describe('restartPolicyOf', () => {
  it('reads the policy, with the retry count for on-failure only', () => {
    const raw = (p: unknown) =>
      ({ HostConfig: { RestartPolicy: p } }) as unknown as Docker.ContainerInspectInfo
    expect(restartPolicyOf(raw({ Name: 'always', MaximumRetryCount: 0 }))).toEqual({
      Name: 'always',
    })
    expect(restartPolicyOf(raw({ Name: 'on-failure', MaximumRetryCount: 3 }))).toEqual({
      Name: 'on-failure',
      MaximumRetryCount: 3,
    })
    expect(restartPolicyOf(raw(undefined))).toEqual({ Name: '' })
  })
})
