// lib/schedule/events.ts against a real engine: the container start events reach last-used.json
// with the image's id (not its tag) and the engine's start time; a later start moves the time on;
// the abort ends the stream and the last write lands; a quiet stream outlives docker.callTimeout.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, expect } from 'vitest'
import { parseEngineAddress } from '../../lib/shared/address.js'
import { connectEngine, type Engine } from '../../lib/docker/engine.js'
import { watchStarts } from '../../lib/schedule/events.js'
import { LAST_USED_SCHEMA } from '../../lib/state/last-used.js'
import { CLI, runCli } from '../cli/run.js'
import type { PrivateEngine } from '../harness/engine.js'
import { BUSYBOX_TAG, buildImage, busyboxImage, docker, dockerOk } from '../harness/fixtures.js'
import { describeEngine, engineTest as test } from '../harness/suite.js'

const RUN = `sst-ev-${process.pid}`
const TAG = `sst-events/short-${process.pid}:1`
// PID 1 ignores SIGTERM unless it traps it: without this every stop waits 10 s
const IDLE = ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait']

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function waitFor<T>(what: string, get: () => Promise<T | undefined>, ms = 20_000) {
  const until = Date.now() + ms
  for (;;) {
    const v = await get()
    if (v !== undefined) return v
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

describeEngine('schedule: container starts → last-used.json', (getEngine) => {
  let engine: PrivateEngine
  let api: Engine
  let tmp: string
  let busyboxId: string
  let shortId: string

  beforeAll(async () => {
    engine = getEngine()
    // inside the engine's directory: its watchdog removes it even after a crash
    tmp = await fs.mkdtemp(path.join(engine.root, 'fx-events-'))
    busyboxId = await busyboxImage(engine)
    shortId = await buildImage(engine, {
      tag: TAG,
      dockerfile: `FROM ${BUSYBOX_TAG}\nLABEL sst.events=${process.pid}\n`,
    })
    api = await connectEngine(parseEngineAddress(engine.dockerHost))
  })

  afterAll(async () => {
    api?.close()
    if (!engine) return
    const ids = (await dockerOk(engine, ['ps', '-aq', '--filter', `name=${RUN}`])).split(/\s+/)
    if (ids.some(Boolean)) await docker(engine, ['rm', '-f', ...ids.filter(Boolean)])
    await docker(engine, ['rmi', '-f', TAG])
    await fs.rm(tmp, { recursive: true, force: true })
  })

  test('records each start with the image id and the start time; the abort ends the stream', async () => {
    const file = path.join(tmp, 'state', 'last-used.json')
    const lines: string[] = []
    const controller = new AbortController()
    // every other call gives up on a socket silent for callTimeout: the event stream must not
    // (not too short: under a loaded CI machine the seed's image list itself took over 1 s)
    const quiet = await connectEngine(parseEngineAddress(engine.dockerHost), {
      callTimeoutMs: 2500,
    })
    const watching = watchStarts(quiet, {
      file,
      log: (l) => lines.push(l),
      signal: controller.signal,
      debounceMs: 100,
    })
    const images = async () => {
      try {
        const doc = JSON.parse(await fs.readFile(file, 'utf8')) as {
          schema: string
          images: Record<string, string>
        }
        expect(doc.schema).toBe(LAST_USED_SCHEMA)
        return doc.images
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || err instanceof SyntaxError)
          return {}
        throw err
      }
    }
    try {
      await waitFor('the stream', async () =>
        lines.some((l) => l.startsWith('events: following container starts')) ? true : undefined,
      )

      await sleep(3000) // silent for longer than callTimeout

      // a start by tag: recorded under the image's id
      const t0 = Date.now()
      await dockerOk(engine, [
        'run',
        '-d',
        '--name',
        `${RUN}-a`,
        '--network',
        'none',
        BUSYBOX_TAG,
        ...IDLE,
      ])
      const t1 = Date.now()
      // the image may have been started before by another suite (seeded from its StartedAt):
      // wait for this start's time
      const first = await waitFor('the first start', async () => {
        const at = (await images())[busyboxId]
        return at !== undefined && Date.parse(at) >= t0 - 50 ? at : undefined
      })
      expect(Date.parse(first)).toBeGreaterThanOrEqual(t0 - 50)
      expect(Date.parse(first)).toBeLessThanOrEqual(t1 + 50)
      expect(Object.keys(await images())).not.toContain(BUSYBOX_TAG)

      // a second start of the same container moves the time on
      await dockerOk(engine, ['stop', '-t', '5', `${RUN}-a`])
      const t2 = Date.now()
      await dockerOk(engine, ['start', `${RUN}-a`])
      const t3 = Date.now()
      const second = await waitFor('the second start', async () => {
        const at = (await images())[busyboxId]
        return at !== undefined && at !== first ? at : undefined
      })
      expect(Date.parse(second)).toBeGreaterThanOrEqual(t2 - 50)
      expect(Date.parse(second)).toBeLessThanOrEqual(t3 + 50)

      // a container gone before its start is looked at (--rm, exits at once): still its image's id
      const t4 = Date.now()
      await dockerOk(engine, [
        'run',
        '--rm',
        '--name',
        `${RUN}-b`,
        '--network',
        'none',
        TAG,
        'true',
      ])
      const short = await waitFor('the short-lived start', async () => (await images())[shortId])
      expect(Date.parse(short)).toBeGreaterThanOrEqual(t4 - 50)
    } finally {
      controller.abort()
    }
    const t = Date.now()
    await watching
    expect(Date.now() - t).toBeLessThan(2000)
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600)
    expect(lines.filter((l) => !l.startsWith('events: following'))).toEqual([])
  })

  test('seeds from the containers the engine knows, with their own start time', async () => {
    const file = path.join(tmp, 'seed', 'last-used.json')
    await dockerOk(engine, ['run', '-d', '--name', `${RUN}-c`, '--network', 'none', TAG, ...IDLE])
    const startedAt = (
      await dockerOk(engine, [
        'inspect',
        '--type',
        'container',
        '-f',
        '{{.State.StartedAt}}',
        `${RUN}-c`,
      ])
    ).trim()
    // a record of an image the engine no longer has is dropped
    await fs.mkdir(path.dirname(file), { recursive: true })
    await fs.writeFile(
      file,
      JSON.stringify({
        schema: LAST_USED_SCHEMA,
        images: { [`sha256:${'0'.repeat(64)}`]: '2020-01-01T00:00:00.000Z' },
      }),
    )
    await sleep(1100) // "now" would differ from the start time by a second or more
    const controller = new AbortController()
    const lines: string[] = []
    const watching = watchStarts(api, {
      file,
      log: (l) => lines.push(l),
      signal: controller.signal,
      debounceMs: 100,
    })
    try {
      const doc = await waitFor('the seed', async () => {
        const d = JSON.parse(await fs.readFile(file, 'utf8')) as { images: Record<string, string> }
        return d.images[shortId] ? d.images : undefined
      })
      expect(Date.parse(doc[shortId]!)).toBe(Math.floor(Date.parse(startedAt)))
      expect(Object.keys(doc)).not.toContain(`sha256:${'0'.repeat(64)}`)
    } finally {
      controller.abort()
      await watching
    }
  })
})

describeEngine('shipshape schedule (the built CLI) against an engine', (getEngine) => {
  let engine: PrivateEngine
  let tmp: string

  beforeAll(async () => {
    engine = getEngine()
    tmp = await fs.mkdtemp(path.join(engine.root, 'fx-schedule-'))
    await busyboxImage(engine)
  })

  afterAll(async () => {
    if (!engine) return
    const ids = (await dockerOk(engine, ['ps', '-aq', '--filter', `name=${RUN}-cli`])).split(/\s+/)
    if (ids.some(Boolean)) await docker(engine, ['rm', '-f', ...ids.filter(Boolean)])
    await fs.rm(tmp, { recursive: true, force: true })
  })

  test('runs the report job on its cron, records starts, stops on SIGTERM', async () => {
    const state = path.join(tmp, 'state')
    const config = path.join(tmp, 'host.yaml')
    await fs.writeFile(
      config,
      [`stateDir: ${JSON.stringify(state)}`, 'schedule: { report: "* * * * * *" }'].join('\n'),
    )
    const child = spawn(
      process.execPath,
      [CLI, '--config', config, '--docker-host', engine.dockerHost, 'schedule'],
      {
        env: { PATH: process.env.PATH, HOME: process.env.HOME },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (out += d.toString()))
    const exited = once(child, 'exit')
    const seen = (re: RegExp) =>
      waitFor(`${re} in\n${out}`, async () => (re.test(out) ? true : undefined))
    try {
      await seen(/^events: following container starts on unix:/m)
      await seen(/^report: ok in \d+\.\d s$/m)
      const busyboxId = await busyboxImage(engine)
      await dockerOk(engine, [
        'run',
        '-d',
        '--name',
        `${RUN}-cli`,
        '--network',
        'none',
        BUSYBOX_TAG,
        ...IDLE,
      ])
      const file = path.join(state, 'last-used.json')
      await waitFor('the start in last-used.json', async () => {
        const text = await fs.readFile(file, 'utf8').catch(() => '{}')
        return (JSON.parse(text) as { images?: Record<string, string> }).images?.[busyboxId]
      })
      child.kill('SIGTERM')
      const [code] = (await exited) as [number | null]
      expect(code, out).toBe(0)
      expect(out).toMatch(/^schedule: stopped$/m)
      expect(out).not.toMatch(/failed|warning/)
      expect((await fs.readdir(path.join(state, 'reports'))).some((n) => n.endsWith('.md'))).toBe(
        true,
      )
      expect(await fs.readdir(state)).not.toContain('shipshape.lock')
    } finally {
      child.kill('SIGKILL')
    }
  })

  test('--once prune runs `shipshape prune --json` as a child and logs its failure', async () => {
    // never a real `prune --yes` here: this engine is shared with the other suites, and prune
    // removes dangling images whatever the policy. An engine that is not there: the child fails
    // with exit 3, the scheduler logs it and --once exits with it.
    const state = path.join(tmp, 'prune-state')
    const config = path.join(tmp, 'prune.yaml')
    await fs.writeFile(config, `stateDir: ${JSON.stringify(state)}\ndocker: { timeout: 1s }\n`)
    const r = await runCli([
      '--config',
      config,
      '--docker-host',
      `unix://${path.join(tmp, 'no-engine.sock')}`,
      'schedule',
      '--once',
      'prune',
    ])
    expect(r.code, r.stdout + r.stderr).toBe(3)
    expect(r.stdout).toMatch(
      /^prune: started\nprune: failed \(exit 3\) after \d+\.\d s: .*unreachable/m,
    )
    expect(await fs.readdir(state).catch(() => [])).not.toContain('shipshape.lock')
  })
})
