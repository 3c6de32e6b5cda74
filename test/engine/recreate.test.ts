// lib/docker/recreate.ts against a real engine: a plain container recreated on a rebuilt image
// under the same tag keeps what the operator set (compared field by field in the engine's own
// inspect), the old one waits aside and comes back on undo, every call survives being repeated
// or resumed after a crash.
//
// The private engine runs with --bridge=none, so there is no default bridge; user-defined bridge
// networks still work (their bridges are made on demand), and -p publishes through docker-proxy
// (no iptables), so the networks and the port bindings are real here.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type Docker from 'dockerode'
import { afterAll, afterEach, beforeAll, expect } from 'vitest'
import { parseEngineAddress } from '../../lib/shared/address.js'
import { connectEngine, type Engine } from '../../lib/docker/engine.js'
import { internalsOf } from '../../lib/docker/internal.js'
import {
  asideName,
  dropAside,
  recreateContainer,
  restoreContainer,
  type RecreatePlan,
} from '../../lib/docker/recreate.js'
import { planRecreate } from '../../lib/docker/recreate-plan.js'
import type { PrivateEngine } from '../harness/engine.js'
import { buildImage, busyboxImage, docker, dockerOk } from '../harness/fixtures.js'
import { describeEngine, engineTest as test } from '../harness/suite.js'
import { freePort } from '../harness/net.js'

const RUN = `sst-rc-${process.pid}`
const TAG = `sst-recreate/app-${process.pid}:1`
const NET1 = `${RUN}-front`
const NET2 = `${RUN}-back`
// a benchmarking range (RFC 2544) no host routes to; the third octet varies per run
const SUBNET_OCTET = 1 + (process.pid % 250)
const NET2_SUBNET = `198.18.${SUBNET_OCTET}.0/24`
const STATIC_IP = `198.18.${SUBNET_OCTET}.50`
const OLD_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
const NEW_PATH = 'PATH=/new/bin:/usr/bin:/bin'
const MAC = '02:5e:00:00:00:42'

type Inspect = Docker.ContainerInspectInfo & Record<string, unknown>

const omit = (o: object, ...keys: string[]): Record<string, unknown> => {
  const copy: Record<string, unknown> = { ...o }
  for (const k of keys) delete copy[k]
  return copy
}

describeEngine('recreate', (getEngine) => {
  let engine: PrivateEngine
  let api: Engine
  let oldImageId: string
  let newImageId: string
  let seq = 0
  const dirs: string[] = []
  const volumes: string[] = []

  beforeAll(async () => {
    engine = getEngine()
    const base = await busyboxImage(engine)
    oldImageId = await buildImage(engine, {
      tag: TAG,
      dockerfile: [
        `FROM ${base}`,
        'ENV APP_MODE=prod GREETING=hello',
        'LABEL org.example.app=demo org.example.tier=web',
        'VOLUME /data',
        'EXPOSE 80',
        'WORKDIR /srv',
        `CMD ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]`,
      ].join('\n'),
    })
    // the rebuild: FROM the old one, under the same tag
    newImageId = await buildImage(engine, {
      tag: TAG,
      dockerfile: [
        `FROM ${oldImageId}`,
        `ENV NEWVAR=2 ${NEW_PATH}`,
        'LABEL org.example.version=2',
      ].join('\n'),
    })
    await dockerOk(engine, ['network', 'create', NET1])
    await dockerOk(engine, ['network', 'create', '--subnet', NET2_SUBNET, NET2])
    api = await connectEngine(parseEngineAddress(engine.dockerHost))
  })

  afterEach(async () => {
    const ids = (await dockerOk(engine, ['ps', '-aq', '--filter', `name=${RUN}-c`])).split(/\s+/)
    // -v: the anonymous volumes of the test containers go too
    if (ids.some(Boolean)) await docker(engine, ['rm', '-f', '-v', ...ids.filter(Boolean)])
    for (const v of volumes.splice(0)) await docker(engine, ['volume', 'rm', '-f', v])
    for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true })
  })

  afterAll(async () => {
    api?.close()
    if (!engine) return
    await docker(engine, ['network', 'rm', NET1, NET2])
    await docker(engine, ['rmi', '-f', TAG, oldImageId])
  })

  const inspect = async (ref: string): Promise<Inspect | null> => {
    try {
      return (await internalsOf(api).api.getContainer(ref).inspect()) as Inspect
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return null
      throw err
    }
  }
  const must = async (ref: string): Promise<Inspect> => {
    const c = await inspect(ref)
    if (!c) throw new Error(`no container ${ref}`)
    return c
  }
  const plan = async (name: string): Promise<RecreatePlan> => {
    const c = await must(name)
    return planRecreate(c, await internalsOf(api).api.getImage(c.Image).inspect(), TAG)
  }
  const cat = async (name: string, file: string, user?: string) =>
    (await dockerOk(engine, ['exec', ...(user ? ['-u', user] : []), name, 'cat', file])).trim()
  /** The container `name` and its aside copies. */
  const namesLike = async (name: string) =>
    (await dockerOk(engine, ['ps', '-a', '--format', '{{.Names}}']))
      .split('\n')
      .filter((n) => n === name || n.startsWith(`${name}-shipshape-old-`))
      .sort()

  /** A plain container on the old image, nothing special. */
  async function plainContainer(o: { running: boolean }): Promise<string> {
    const name = `${RUN}-c${++seq}`
    await dockerOk(engine, [
      o.running ? 'run' : 'create',
      ...(o.running ? ['-d'] : []),
      '--name',
      name,
      '--network',
      NET1,
      '-e',
      'EXTRA=1',
      '-v',
      '/anon',
      oldImageId,
    ])
    return name
  }

  test('keeps what the operator set, runs the new image, puts the very old one back', async () => {
    const name = `${RUN}-c${++seq}`
    const withMac = Number(engine.apiVersion.split('.')[1]) >= 44
    const port = await freePort()
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ss-rc-'))
    dirs.push(dir)
    await fs.writeFile(path.join(dir, 'bound.txt'), 'from the host\n')
    await fs.chmod(dir, 0o755) // the container runs as nobody
    const named = `${RUN}-named-${seq}`
    volumes.push(named)
    await dockerOk(engine, ['volume', 'create', named])
    await dockerOk(engine, [
      'run',
      '-d',
      '--name',
      name,
      '--network',
      NET1,
      '--network-alias',
      'web',
      '-p',
      `127.0.0.1:${port}:80`,
      '-e',
      'GREETING=hi', // overrides the image's GREETING=hello
      '-e',
      'EXTRA=1',
      '-v',
      `${dir}:/bind:ro`,
      '-v',
      `${named}:/named`,
      '-v',
      '/anon', // anonymous, besides the image's VOLUME /data
      '--label',
      'own=1',
      '--label',
      'org.example.app=other',
      '--restart',
      'unless-stopped',
      '--user',
      'nobody',
      '--workdir',
      '/work',
      '--hostname',
      'myhost',
      '--stop-timeout',
      '3',
      // the docker CLI (28.x) sets a MAC through the endpoint, which API 1.41 cannot carry
      ...(withMac ? ['--mac-address', MAC] : []),
      oldImageId, // the tag has moved on to the rebuilt image already
    ])
    await dockerOk(engine, [
      'network',
      'connect',
      '--alias',
      'other',
      '--ip',
      STATIC_IP,
      NET2,
      name,
    ])
    await dockerOk(engine, [
      'exec',
      '-u',
      '0',
      name,
      'sh',
      '-c',
      'echo anon > /anon/f; echo data > /data/f',
    ])
    // the published port answers (a listener inside would; here: docker-proxy takes the port)
    const before = await must(name)
    expect(before.Image).toBe(oldImageId)
    expect(before.NetworkSettings.Ports['80/tcp']).toEqual(
      expect.arrayContaining([{ HostIp: '127.0.0.1', HostPort: String(port) }]),
    )
    const p = planRecreate(before, await internalsOf(api).api.getImage(before.Image).inspect(), TAG)
    const aside = asideName(name, `t${seq}`)

    const { newId } = await recreateContainer(api, {
      name,
      oldId: before.Id,
      aside,
      plan: p,
      stopTimeoutS: 5,
    })

    const after = await must(name)
    expect(after.Id).toBe(newId)
    expect(newId).not.toBe(before.Id)
    expect(after.Image).toBe(newImageId)
    expect(after.State.Running).toBe(true)

    // env: the operator's kept, the new image's own ENV (a new PATH) in
    expect(after.Config.Env).toEqual(
      expect.arrayContaining(['GREETING=hi', 'EXTRA=1', 'APP_MODE=prod', 'NEWVAR=2', NEW_PATH]),
    )
    expect(before.Config.Env).toContain(OLD_PATH)
    expect(after.Config.Env).not.toContain(OLD_PATH)
    expect(after.Config.Env).not.toContain('GREETING=hello')
    // labels: the operator's and the new image's
    expect(after.Config.Labels).toEqual({ ...before.Config.Labels, 'org.example.version': '2' })
    expect(after.Config.Labels).toMatchObject({ own: '1', 'org.example.app': 'other' })
    // the rest of Config as the operator left it
    for (const k of [
      'User',
      'WorkingDir',
      'Hostname',
      'Domainname',
      'Cmd',
      'Entrypoint',
      'ExposedPorts',
      'Volumes',
      'Tty',
      'OpenStdin',
      'StopSignal',
      'StopTimeout',
    ] as const) {
      expect((after.Config as Record<string, unknown>)[k], k).toEqual(
        (before.Config as Record<string, unknown>)[k],
      )
    }
    expect(after.Config).toMatchObject({ User: 'nobody', WorkingDir: '/work', Hostname: 'myhost' })

    // HostConfig whole: only Mounts grew (the anonymous volumes, now by name)
    expect(omit(after.HostConfig, 'Mounts')).toEqual(omit(before.HostConfig, 'Mounts'))
    expect(after.HostConfig.RestartPolicy).toEqual({ Name: 'unless-stopped', MaximumRetryCount: 0 })
    expect(after.HostConfig.PortBindings).toEqual({
      '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }],
    })
    expect(after.NetworkSettings.Ports['80/tcp']).toEqual(
      expect.arrayContaining([{ HostIp: '127.0.0.1', HostPort: String(port) }]),
    )

    // mounts: the same sources at the same places, the anonymous volumes' data too
    const mountsOf = (c: Inspect) =>
      c.Mounts.map((m) => ({
        Type: m.Type,
        Name: m.Name ?? null,
        Source: m.Source,
        Destination: m.Destination,
        RW: m.RW,
      })).sort((a, b) => a.Destination.localeCompare(b.Destination))
    expect(mountsOf(after)).toEqual(mountsOf(before))
    expect(mountsOf(after).map((m) => m.Destination)).toEqual(['/anon', '/bind', '/data', '/named'])
    expect(await cat(name, '/anon/f')).toBe('anon')
    expect(await cat(name, '/data/f')).toBe('data')
    expect(await cat(name, '/bind/bound.txt')).toBe('from the host')

    // networks: the same ones, aliases and the static address kept, none of the old id's
    const nets = (c: Inspect) => c.NetworkSettings.Networks
    expect(Object.keys(nets(after)).sort()).toEqual([NET2, NET1].sort())
    expect(nets(after)[NET1]!.Aliases).toContain('web')
    expect(nets(after)[NET2]!.Aliases).toContain('other')
    expect(nets(after)[NET2]!.IPAMConfig).toEqual({ IPv4Address: STATIC_IP })
    expect(nets(after)[NET2]!.IPAddress).toBe(STATIC_IP)
    if (withMac) {
      expect((after.Config as { MacAddress?: string }).MacAddress).toBe(MAC)
      expect(nets(after)[NET1]!.MacAddress).toBe(MAC)
    }
    for (const n of [NET1, NET2]) {
      expect(nets(after)[n]!.Aliases ?? []).not.toContain(before.Id.slice(0, 12))
    }

    // the old one waits aside, stopped, untouched
    const old = await must(aside)
    expect(old.Id).toBe(before.Id)
    expect(old.State.Running).toBe(false)
    expect(old.Image).toBe(oldImageId)

    // a write through the new container lands in the volume the old one has too
    await dockerOk(engine, ['exec', '-u', '0', name, 'sh', '-c', 'echo new > /anon/g'])

    await restoreContainer(api, { name, oldId: before.Id, aside, wasRunning: true })
    const back = await must(name)
    expect(back.Id).toBe(before.Id)
    expect(back.State.Running).toBe(true)
    expect(back.Image).toBe(oldImageId)
    expect(await inspect(aside)).toBeNull()
    expect(await inspect(newId)).toBeNull()
    expect(await cat(name, '/anon/f')).toBe('anon')
    expect(await cat(name, '/anon/g')).toBe('new')
    expect(back.NetworkSettings.Ports['80/tcp']).toEqual(
      expect.arrayContaining([{ HostIp: '127.0.0.1', HostPort: String(port) }]),
    )
  })

  test('dropAside removes the old one only, its anonymous volumes stay with the new one', async () => {
    const name = await plainContainer({ running: true })
    await dockerOk(engine, ['exec', name, 'sh', '-c', 'echo kept > /anon/f'])
    const before = await must(name)
    const anon = before.Mounts.find((m) => m.Destination === '/anon')?.Name
    expect(anon).toBeTruthy()
    const aside = asideName(name, 'drop')
    const { newId } = await recreateContainer(api, {
      name,
      oldId: before.Id,
      aside,
      plan: await plan(name),
      stopTimeoutS: 5,
    })
    // a container under the aside name that is not the old one is left alone
    await expect(dropAside(api, { aside, oldId: newId })).rejects.toThrow(/not the old container/)
    expect((await must(aside)).Id).toBe(before.Id)

    await dropAside(api, { aside, oldId: before.Id })
    await dropAside(api, { aside, oldId: before.Id }) // again: nothing left to do
    expect(await inspect(before.Id)).toBeNull()
    expect((await must(name)).Id).toBe(newId)
    await dockerOk(engine, ['volume', 'inspect', anon!])
    expect(await cat(name, '/anon/f')).toBe('kept')
  })

  test('repeated calls change nothing more; a run resumed after a crash finishes', async () => {
    const name = await plainContainer({ running: true })
    await dockerOk(engine, ['network', 'connect', '--alias', 'other', NET2, name])
    const before = await must(name)
    const p = await plan(name) // computed before anything changed, kept by the caller
    const aside = asideName(name, 'idem')
    const o = { name, oldId: before.Id, aside, plan: p, stopTimeoutS: 5 }

    // recreate twice: the same new container
    const first = await recreateContainer(api, o)
    const second = await recreateContainer(api, o)
    expect(second.newId).toBe(first.newId)
    expect(await namesLike(name)).toEqual([name, aside].sort())
    expect((await must(name)).State.Running).toBe(true)

    // crash after the create, before the connect and the start
    await dockerOk(engine, ['stop', '-t', '1', name])
    await dockerOk(engine, ['network', 'disconnect', NET2, name])
    const third = await recreateContainer(api, o)
    expect(third.newId).toBe(first.newId)
    const now = await must(name)
    expect(now.State.Running).toBe(true)
    expect(Object.keys(now.NetworkSettings.Networks).sort()).toEqual([NET1, NET2].sort())
    expect(now.NetworkSettings.Networks[NET2]!.Aliases).toContain('other')

    // restore twice
    await restoreContainer(api, { name, oldId: before.Id, aside, wasRunning: true })
    await restoreContainer(api, { name, oldId: before.Id, aside, wasRunning: true })
    const back = await must(name)
    expect(back.Id).toBe(before.Id)
    expect(back.State.Running).toBe(true)
    expect(await namesLike(name)).toEqual([name])

    // crash after the stop and the rename (done by hand here): the same plan finishes the job
    await dockerOk(engine, ['stop', '-t', '1', name])
    await dockerOk(engine, ['rename', name, aside])
    const resumed = await recreateContainer(api, o)
    const after = await must(name)
    expect(after.Id).toBe(resumed.newId)
    expect(after.Id).not.toBe(before.Id)
    expect(after.State.Running).toBe(true)
    expect(after.Image).toBe(newImageId)
    expect((await must(aside)).Id).toBe(before.Id)

    // a rename by hand of a still running old one: it is stopped before the new one starts
    await restoreContainer(api, { name, oldId: before.Id, aside, wasRunning: true })
    await dockerOk(engine, ['rename', name, aside])
    expect((await must(aside)).State.Running).toBe(true)
    await recreateContainer(api, o)
    expect((await must(aside)).State.Running).toBe(false)
    expect((await must(name)).State.Running).toBe(true)

    // undo after a crash between the rename and the create
    await restoreContainer(api, { name, oldId: before.Id, aside, wasRunning: true })
    await dockerOk(engine, ['stop', '-t', '1', name])
    await dockerOk(engine, ['rename', name, aside])
    await restoreContainer(api, { name, oldId: before.Id, aside, wasRunning: true })
    expect((await must(name)).Id).toBe(before.Id)
    expect((await must(name)).State.Running).toBe(true)
    expect(await namesLike(name)).toEqual([name])
  })

  test('a container under the name not made by this recreate is neither used nor removed', async () => {
    const name = await plainContainer({ running: true })
    const before = await must(name)
    const p = await plan(name)
    const aside = asideName(name, 'stranger')
    await dockerOk(engine, ['stop', '-t', '1', name])
    await dockerOk(engine, ['rename', name, aside])
    // someone else takes the name meanwhile, on another image
    await dockerOk(engine, ['create', '--name', name, '--network', 'none', oldImageId])
    const stranger = await must(name)
    await expect(
      recreateContainer(api, { name, oldId: before.Id, aside, plan: p, stopTimeoutS: 5 }),
    ).rejects.toThrow(/not made by this recreate/)
    expect((await must(name)).Id).toBe(stranger.Id)
    expect((await must(aside)).Id).toBe(before.Id)
  })

  test('a stopped container stays stopped, and comes back stopped', async () => {
    const name = await plainContainer({ running: false })
    const before = await must(name)
    expect(before.State.Running).toBe(false)
    const p = await plan(name)
    expect(p.wasRunning).toBe(false)
    const aside = asideName(name, 'stopped')
    const { newId } = await recreateContainer(api, {
      name,
      oldId: before.Id,
      aside,
      plan: p,
      stopTimeoutS: 5,
    })
    const after = await must(name)
    expect(after.Id).toBe(newId)
    expect(after.Image).toBe(newImageId)
    expect(after.State.Status).toBe('created')
    expect((await must(aside)).State.Running).toBe(false)

    await restoreContainer(api, { name, oldId: before.Id, aside, wasRunning: p.wasRunning })
    const back = await must(name)
    expect(back.Id).toBe(before.Id)
    expect(back.State.Running).toBe(false)
    expect(await inspect(newId)).toBeNull()
  })
})
