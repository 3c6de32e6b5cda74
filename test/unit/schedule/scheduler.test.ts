import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseConfigText } from '../../../lib/config/index.js'
import { ExitCode, UnavailableError, UsageError } from '../../../lib/errors.js'
import { lockPath, parseProcStat, type LockInfo } from '../../../lib/host/lock.js'
import type { Engine } from '../../../lib/docker/engine.js'
import { parseContainerStart } from '../../../lib/docker/events.js'
import { INTERNALS } from '../../../lib/docker/internal.js'
import { watchStarts } from '../../../lib/schedule/events.js'
import { LAST_USED_SCHEMA, readLastUsed, writeLastUsed } from '../../../lib/state/last-used.js'
import {
  ChildExitError,
  childEnv,
  cliJob,
  jobCommand,
  summarizePrune,
} from '../../../lib/schedule/jobs.js'
import {
  hostLock,
  runJob,
  startScheduler,
  type Job,
  type JobLock,
  type Scheduler,
} from '../../../lib/schedule/scheduler.js'

const EVERY_SECOND = '* * * * * *'
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** No host lock: for the tests about firing, overlap and failures (the lock has its own). */
const noLock: JobLock = {
  acquire: () => Promise.resolve({ release: () => Promise.resolve() }),
  check: () => Promise.resolve(),
}

async function waitFor(what: string, cond: () => boolean, ms = 4000): Promise<void> {
  const until = Date.now() + ms
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

let tmp: string
const children: ChildProcess[] = []
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ss-sched-'))
})
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL')
  await rm(tmp, { recursive: true, force: true })
})

/** A scheduler whose log lines are kept; stopped in `finally` by the caller. */
function start(jobs: Job[], lock: JobLock = noLock, stopTimeoutMs?: number) {
  const lines: string[] = []
  const s: Scheduler = startScheduler({
    jobs,
    lock,
    log: (l) => lines.push(l),
    ...(stopTimeoutMs ? { stopTimeoutMs } : {}),
  })
  return { s, lines }
}

describe('scheduler on a real per-second cron', () => {
  it.concurrent('runs a job on every firing, each on one line', async () => {
    let runs = 0
    const { s, lines } = start([
      {
        name: 'tick',
        cron: EVERY_SECOND,
        run: async () => {
          runs++
        },
      },
    ])
    try {
      await sleep(2500)
    } finally {
      await s.stop()
    }
    expect(runs).toBeGreaterThanOrEqual(2)
    expect(lines.filter((l) => /^tick: ok in \d+\.\d s$/.test(l)).length).toBe(runs)
    expect(lines.every((l) => !l.includes('\n'))).toBe(true)
  })

  it.concurrent(
    'does not overlap a job slower than its interval; the jobs take turns: skips are logged',
    async () => {
      let now = 0
      let most = 0
      let runs = 0
      const { s, lines } = start([
        {
          name: 'slow',
          cron: EVERY_SECOND,
          run: async () => {
            runs++
            most = Math.max(most, ++now)
            await sleep(2200)
            now--
          },
        },
        { name: 'quick', cron: EVERY_SECOND, run: async () => {} },
      ])
      try {
        await waitFor('a skipped firing', () => lines.some((l) => l.startsWith('slow: skipped')))
        expect(s.running()).toEqual(['slow'])
        await waitFor('a turn', () => lines.some((l) => l.startsWith('quick: skipped')))
      } finally {
        await s.stop()
      }
      expect(most).toBe(1)
      expect(runs).toBe(1)
      expect(lines).toContainEqual(
        expect.stringMatching(
          /^slow: skipped: the previous run is still going \(started \d+\.\d s ago\)$/,
        ),
      )
      // the jobs take turns: the other one waits for its next firing
      expect(lines).toContain('quick: skipped: slow is running (the jobs take turns)')
    },
  )

  it.concurrent(
    'a throwing job is logged with its exit-code class; the other job keeps running',
    async () => {
      let good = 0
      let bad = 0
      const { s, lines } = start([
        {
          name: 'bad',
          cron: EVERY_SECOND,
          run: async () => {
            bad++
            throw new UnavailableError(
              'Docker engine unreachable at unix:///x.sock: no such socket',
            )
          },
        },
        {
          name: 'good',
          cron: EVERY_SECOND,
          run: async () => {
            good++
            return 'fine'
          },
        },
      ])
      try {
        await sleep(2500)
      } finally {
        await s.stop()
      }
      expect(bad).toBeGreaterThanOrEqual(2) // the scheduler goes on after a failure, too
      expect(good).toBeGreaterThanOrEqual(2)
      expect(lines).toContainEqual(
        expect.stringMatching(
          /^bad: failed \(exit 3\) after \d+\.\d s: Docker engine unreachable at unix:\/\/\/x\.sock: no such socket$/,
        ),
      )
      expect(lines).toContainEqual(expect.stringMatching(/^good: ok in \d+\.\d s: fine$/))
    },
  )

  it.concurrent(
    'a lock held by another process skips the firing and names the holder',
    async () => {
      const dir = await mkdtemp(path.join(tmp, 'lock-'))
      const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], {
        stdio: 'ignore',
      })
      children.push(holder)
      await once(holder, 'spawn')
      const pid = holder.pid!
      const st = parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8'))
      const info: LockInfo = {
        pid,
        startTime: st!.startTime,
        bootId: (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim(),
        operation: 'rebuild',
        since: '2026-05-06T07:08:09.000Z',
        host: os.hostname(),
      }
      await writeFile(lockPath(dir), JSON.stringify(info) + '\n')
      let runs = 0
      const run = async () => {
        runs++
      }
      // two schedulers: the jobs of one take turns, and this is about the lock
      const a = start([{ name: 'held', cron: EVERY_SECOND, run }], hostLock(dir))
      const b = start([{ name: 'checked', cron: EVERY_SECOND, run, lock: 'check' }], hostLock(dir))
      const lines = () => [...a.lines, ...b.lines]
      try {
        await waitFor('both skips', () =>
          ['held', 'checked'].every((n) => lines().some((l) => l.startsWith(`${n}: skipped`))),
        )
      } finally {
        await a.s.stop()
        await b.s.stop()
        holder.kill('SIGKILL')
      }
      expect(runs).toBe(0)
      for (const n of ['held', 'checked']) {
        expect(lines()).toContain(
          `${n}: skipped: another shipshape run holds the lock: rebuild (pid ${pid}) since 2026-05-06T07:08:09.000Z`,
        )
      }
      // the holder's lock is untouched
      expect(JSON.parse(await readFile(lockPath(dir), 'utf8'))).toEqual(info)
    },
  )

  it.concurrent('holds the host lock while a job runs and releases it after', async () => {
    const dir = await mkdtemp(path.join(tmp, 'hold-'))
    let seen: LockInfo | null = null
    const { s } = start(
      [
        {
          name: 'report',
          cron: EVERY_SECOND,
          run: async () => {
            seen ??= JSON.parse(await readFile(lockPath(dir), 'utf8')) as LockInfo
          },
        },
      ],
      hostLock(dir),
    )
    try {
      await waitFor('a run', () => seen !== null)
    } finally {
      await s.stop()
    }
    expect(seen).toMatchObject({ pid: process.pid, operation: 'schedule report' })
    expect(await readdir(dir)).toEqual([])
  })

  it.concurrent(
    'stop() aborts a running job through its signal, waits for it, and nothing runs after',
    async () => {
      let runs = 0
      let reason: unknown
      const { s, lines } = start([
        {
          name: 'long',
          cron: EVERY_SECOND,
          run: (signal) =>
            new Promise((_, reject) => {
              runs++
              signal.addEventListener('abort', () => {
                reason = signal.reason
                setTimeout(() => reject(new Error('aborted')), 100)
              })
            }),
        },
      ])
      await waitFor('the job to start', () => s.running().includes('long'))
      const t0 = Date.now()
      await s.stop()
      expect(Date.now() - t0).toBeLessThan(2000)
      expect(reason).toBeInstanceOf(Error)
      expect(s.running()).toEqual([])
      expect(lines).toContainEqual(expect.stringMatching(/^long: stopped after \d+\.\d s$/))
      const after = lines.length
      await sleep(1500)
      expect(runs).toBe(1)
      expect(lines.length).toBe(after)
    },
  )

  it.concurrent(
    'stop() gives up on a job that ignores its signal after stopTimeoutMs',
    async () => {
      const { s, lines } = start(
        [{ name: 'stubborn', cron: EVERY_SECOND, run: () => sleep(3000).then(() => {}) }],
        noLock,
        300,
      )
      await waitFor('the job to start', () => s.running().includes('stubborn'))
      const t0 = Date.now()
      await s.stop()
      expect(Date.now() - t0).toBeLessThan(1500)
      expect(lines).toContain('schedule: stubborn still running 0.3 s after the stop; leaving it')
    },
  )
})

describe('scheduler setup', () => {
  it('refuses an unknown time zone and a bad cron expression (exit 2) without starting', () => {
    const job: Job = { name: 'report', cron: EVERY_SECOND, run: async () => {} }
    const bad = (o: Partial<Parameters<typeof startScheduler>[0]>) => () =>
      startScheduler({ jobs: [job], lock: noLock, log: () => {}, ...o })
    expect(bad({ timezone: 'Mars/Olympus' })).toThrow(UsageError)
    expect(bad({ timezone: 'Mars/Olympus' })).toThrow(/schedule\.timezone: 'Mars\/Olympus'/)
    expect(bad({ jobs: [{ ...job, cron: '61 * * * *' }] })).toThrow(/schedule\.report: '61/)
  })

  it('accepts a time zone', async () => {
    const s = startScheduler({
      jobs: [{ name: 'report', cron: '0 2 * * *', run: async () => {} }],
      timezone: 'Europe/Berlin',
      lock: noLock,
      log: () => {},
    })
    await s.stop()
  })
})

describe('runJob (one run: schedule --once)', () => {
  const signal = new AbortController().signal

  it('ok → exit 0; failure → its class; lock held → 4 (skipped)', async () => {
    const lines: string[] = []
    const log = (l: string) => lines.push(l)
    const ok = await runJob(
      { name: 'a', cron: '', run: async () => {} },
      { lock: noLock, log, signal },
    )
    expect(ok).toMatchObject({ status: 'ok', exitCode: 0 })
    const failed = await runJob(
      { name: 'b', cron: '', run: () => Promise.reject(new ChildExitError('x', 5)) },
      { lock: noLock, log, signal },
    )
    expect(failed).toMatchObject({ status: 'failed', exitCode: 5 })
    const plain = await runJob(
      { name: 'c', cron: '', run: () => Promise.reject(new Error('a\nb')) },
      { lock: noLock, log, signal },
    )
    expect(plain).toMatchObject({ status: 'failed', exitCode: ExitCode.rolledBack })
    expect(lines).toContainEqual(expect.stringMatching(/^c: failed \(exit 1\) after .*: a \| b$/))
    const usage = await runJob(
      { name: 'd', cron: '', run: () => Promise.reject(new UsageError('bad', 'do this')) },
      { lock: noLock, log, signal },
    )
    expect(usage.exitCode).toBe(2)
    expect(lines).toContainEqual(
      expect.stringMatching(/^d: failed \(exit 2\) after .*: bad \(fix: do this\)$/),
    )

    const dir = await mkdtemp(path.join(tmp, 'once-'))
    const lock = hostLock(dir)
    const mine = await lock.acquire('rebuild')
    const skipped = await runJob(
      { name: 'e', cron: '', run: async () => {} },
      { lock, log, signal },
    )
    await mine.release()
    expect(skipped).toMatchObject({ status: 'skipped', exitCode: ExitCode.refused })
    expect(lines).toContainEqual(expect.stringMatching(/^e: skipped: .*rebuild \(pid \d+\)/))
  })
})

describe('the jobs: the CLI as a child, as the systemd units run it', () => {
  const node = (code: string) => [process.execPath, '-e', code]
  const config = parseConfigText(
    [
      'stateDir: /srv/state',
      'services:',
      '  app:',
      '    container: app',
      '    health: { url: "http://127.0.0.1/", userEnv: APP_USER, passwordEnv: APP_PASSWORD }',
    ].join('\n'),
    'host.yaml',
  )

  it('runs what the units run, with the same config file and engine', () => {
    const o = {
      execPath: '/usr/bin/node',
      cliPath: '/opt/shipshape/dist/scripts/shipshape.js',
      config,
      configFile: '/etc/shipshape/host.yaml',
      dockerHost: 'unix:///run/docker.sock',
    }
    const globals = [
      '/usr/bin/node',
      '/opt/shipshape/dist/scripts/shipshape.js',
      '--config',
      '/etc/shipshape/host.yaml',
      '--docker-host',
      'unix:///run/docker.sock',
    ]
    expect(jobCommand('report', o)).toEqual([
      ...globals,
      '--quiet',
      'report',
      '--out',
      '/srv/state/reports',
      '--notify',
    ])
    expect(jobCommand('prune', o)).toEqual([...globals, 'prune', '--json'])
    expect(jobCommand('prune', { ...o, configFile: undefined, dockerHost: undefined })).toEqual([
      '/usr/bin/node',
      '/opt/shipshape/dist/scripts/shipshape.js',
      'prune',
      '--json',
    ])
  })

  it('gives a child no secret it has no use for', () => {
    const base = {
      PATH: '/bin',
      SHIPSHAPE_WEBHOOK_URL: 'https://hooks.example/secret',
      APP_PASSWORD: 'pw',
      APP_USER: 'me',
    }
    expect(childEnv('prune', config, base)).toEqual({ PATH: '/bin', APP_USER: 'me' })
    // the report sends the webhook notice
    expect(childEnv('report', config, base)).toEqual({
      PATH: '/bin',
      SHIPSHAPE_WEBHOOK_URL: 'https://hooks.example/secret',
      APP_USER: 'me',
    })
    // update runs the services' health checks: their passwords, not the webhook
    expect(childEnv('update', config, base)).toEqual({
      PATH: '/bin',
      APP_PASSWORD: 'pw',
      APP_USER: 'me',
    })
  })

  it('summarizes prune JSON; passes warnings on; a failure carries the exit code and message', async () => {
    const lines: string[] = []
    const json = JSON.stringify({
      schema: 'shipshape.prune/1',
      outcome: 'pruned',
      totals: { count: 4 },
      reclaimedBytes: 1_200_000_000,
      failures: [],
    })
    const ok = cliJob({
      name: 'prune',
      argv: node(
        `console.error('warning: one'); console.log(${JSON.stringify(json)}); process.exit(0)`,
      ),
      log: (l) => lines.push(l),
      summarize: summarizePrune,
    })
    expect(await ok(new AbortController().signal)).toBe('pruned, 4 candidate(s), 1.2 GB reclaimed')
    expect(lines).toEqual(['prune: warning: one'])

    const failing = cliJob({
      name: 'prune',
      argv: node(
        `console.error('shipshape: Docker engine unreachable at unix:///x (fix: start it)'); process.exit(3)`,
      ),
      log: () => {},
    })
    const err = await failing(new AbortController().signal).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ChildExitError)
    expect(err).toMatchObject({
      exitCode: 3,
      message: 'Docker engine unreachable at unix:///x (fix: start it)',
    })
  })

  it('an abort stops the child (SIGTERM to its group) and rejects', async () => {
    const job = cliJob({ name: 'prune', argv: node('setTimeout(() => {}, 60000)'), log: () => {} })
    const c = new AbortController()
    const t0 = Date.now()
    const p = job(c.signal)
    await sleep(300)
    c.abort(new Error('stopping'))
    await expect(p).rejects.toThrow('stopping')
    expect(Date.now() - t0).toBeLessThan(3000)
  })
})

describe('last-used.json', () => {
  it('missing → {}; corrupt → {} with a warning; bad entries dropped', async () => {
    const dir = await mkdtemp(path.join(tmp, 'lu-'))
    const file = path.join(dir, 'last-used.json')
    const warnings: string[] = []
    const warn = (w: string) => warnings.push(w)
    expect(await readLastUsed(file, warn)).toEqual({})
    expect(warnings).toEqual([])
    await writeFile(file, '{"schema": "shipshape.last-used/1", "images": {')
    expect(await readLastUsed(file, warn)).toEqual({})
    expect(warnings.pop()).toMatch(/not JSON/)
    await writeFile(file, JSON.stringify({ schema: 'other/1', images: {} }))
    expect(await readLastUsed(file, warn)).toEqual({})
    expect(warnings.pop()).toMatch(/not a shipshape\.last-used\/1 file/)
    await writeFile(
      file,
      JSON.stringify({
        schema: LAST_USED_SCHEMA,
        images: { 'sha256:a': '2026-05-06T07:08:09Z', 'sha256:b': 'yesterday', 'sha256:c': 3 },
      }),
    )
    expect(await readLastUsed(file, warn)).toEqual({ 'sha256:a': '2026-05-06T07:08:09.000Z' })
    expect(warnings.pop()).toMatch(/2 entries without a valid time ignored/)
  })

  it('is written atomically with mode 0600 and read back', async () => {
    const dir = await mkdtemp(path.join(tmp, 'lu-'))
    const file = path.join(dir, 'state', 'last-used.json')
    await writeLastUsed(file, { 'sha256:b': '2026-01-01T00:00:00.000Z' })
    await writeLastUsed(file, { 'sha256:a': '2026-02-01T00:00:00.000Z' })
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    expect(await readdir(path.dirname(file))).toEqual(['last-used.json'])
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({
      schema: LAST_USED_SCHEMA,
      images: { 'sha256:a': '2026-02-01T00:00:00.000Z' },
    })
    expect(await readLastUsed(file)).toEqual({ 'sha256:a': '2026-02-01T00:00:00.000Z' })
  })
})

describe('container start events (a fake engine)', () => {
  it('reads both event spellings; other events are not starts', () => {
    const t = 1_778_000_000
    expect(
      parseContainerStart({
        status: 'start',
        id: 'c1',
        from: 'app:1',
        Type: 'container',
        Action: 'start',
        Actor: { ID: 'c1', Attributes: { image: 'app:1', name: 'web' } },
        time: t,
        timeNano: t * 1e9 + 123_456_789,
      }),
    ).toEqual({ image: 'app:1', containerId: 'c1', time: new Date(t * 1000 + 123) })
    // API ≥ 1.52: no status/id/from; an image given by id is the id
    const id = `sha256:${'ab'.repeat(32)}`
    expect(
      parseContainerStart({
        Type: 'container',
        Action: 'start',
        Actor: { ID: 'c2', Attributes: { image: id } },
        time: t,
      }),
    ).toEqual({ image: id, imageId: id, containerId: 'c2', time: new Date(t * 1000) })
    expect(parseContainerStart({ Type: 'container', Action: 'die', Actor: { ID: 'c' } })).toBe(null)
    expect(parseContainerStart({ Type: 'image', Action: 'start' })).toBe(null)
    expect(parseContainerStart('start')).toBe(null)
  })

  it('retries an engine that is down (one line per outage), resolves image ids, reconnects', async () => {
    const dir = await mkdtemp(path.join(tmp, 'ev-'))
    const file = path.join(dir, 'last-used.json')
    const streams: PassThrough[] = []
    const fake = {
      info: { address: 'unix:///fake.sock' },
      [INTERNALS]: {
        api: {
          getEvents: async (opts: { filters: string }) => {
            expect(JSON.parse(opts.filters)).toEqual({ type: ['container'], event: ['start'] })
            const s = new PassThrough()
            streams.push(s)
            return s
          },
        },
      },
      listContainers: async () => [{ id: 'c0', imageId: 'sha256:ccc' }],
      inspectContainer: async (id: string) =>
        id === 'c0'
          ? { imageId: 'sha256:ccc', startedAt: '2026-01-01T00:00:00.5Z', finishedAt: null }
          : id === 'c1'
            ? { imageId: 'sha256:aaa' }
            : null,
      inspectImage: async (ref: string) => (ref === 'old:2' ? { id: 'sha256:bbb' } : null),
      listImages: async () => ['aaa', 'bbb', 'ccc'].map((x) => ({ id: `sha256:${x}` })),
    } as unknown as Engine
    await writeLastUsed(file, { 'sha256:gone': '2020-01-01T00:00:00.000Z' })
    let tries = 0
    const lines: string[] = []
    const controller = new AbortController()
    const watching = watchStarts(
      async () => {
        if (++tries <= 2)
          throw new UnavailableError('Docker engine unreachable at unix:///fake.sock')
        return fake
      },
      {
        file,
        log: (l) => lines.push(l),
        signal: controller.signal,
        debounceMs: 20,
        retryMs: { first: 20, max: 40 },
      },
    )
    const event = (id: string, image: string, secs: number) =>
      JSON.stringify({
        Type: 'container',
        Action: 'start',
        Actor: { ID: id, Attributes: { image } },
        time: secs,
      }) + '\n'
    try {
      await waitFor('the stream', () => streams.length === 1)
      const first = event('c1', 'app:1', 1_778_000_000)
      streams[0]!.write(first.slice(0, 10)) // an event split across chunks
      streams[0]!.write(first.slice(10) + 'not json\n')
      streams[0]!.write(event('c2', 'old:2', 1_778_000_001))
      streams[0]!.write(event('c3', 'nothing:1', 1_778_000_002))
      streams[0]!.end() // the engine went away
      await waitFor('the reconnection', () => streams.length === 2)
      streams[1]!.write(event('c1', 'app:1', 1_778_000_010))
      await waitFor('the write', () => lines.some((l) => l.includes('nothing:1')))
      await sleep(100)
    } finally {
      controller.abort()
    }
    await watching
    expect(tries).toBe(3)
    expect(lines).toEqual([
      'events: engine unreachable (Docker engine unreachable at unix:///fake.sock); retrying with backoff',
      expect.stringMatching(
        /^events: following container starts on unix:\/\/\/fake\.sock \(after \d+\.\d s\)$/,
      ),
      'events: start of container c3: image nothing:1 is gone; not recorded',
      'events: the engine closed the event stream; reconnecting with backoff',
      expect.stringMatching(/^events: following container starts again \(after \d+\.\d s\)$/),
    ])
    expect(await readLastUsed(file)).toEqual({
      'sha256:aaa': new Date(1_778_000_010_000).toISOString(),
      'sha256:bbb': new Date(1_778_000_001_000).toISOString(),
      'sha256:ccc': '2026-01-01T00:00:00.500Z',
    })
  })
})
