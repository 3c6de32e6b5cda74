import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { HealthConfig } from '../../../lib/config/index.js'
import { healthSchema } from '../../../lib/config/schema.js'
import type { ExecOptions, ExecResult } from '../../../lib/docker/engine.js'
import type { ContainerDetails } from '../../../lib/docker/types.js'
import {
  backoffWaits,
  describeFailure,
  describeHold,
  lifeChanged,
  displayHealthUrl,
  type HealthContext,
  type HealthResult,
  waitHealthy,
} from '../../../lib/health/check.js'

/** A health config; the first pass decides unless a case sets stableFor (the hold has its own cases). */
const health = (input: Record<string, unknown>): HealthConfig =>
  healthSchema.parse({ stableFor: '0s', ...input })

/** Everything a result could show a human. */
const shown = (r: HealthResult) =>
  [describeFailure(r), ...r.checks.flatMap((c) => [c.target, c.detail])].join('\n')

// ---------------------------------------------------------------------------------------------
// a fake engine and a fake clock

const ok = (stdout = ''): ExecResult => ({ exitCode: 0, stdout, stderr: '', timedOut: false })
const fail = (exitCode: number, stderr = '', stdout = ''): ExecResult => ({
  exitCode,
  stdout,
  stderr,
  timedOut: false,
})

function details(over: Partial<ContainerDetails>): ContainerDetails {
  return {
    id: 'abc123',
    name: 'web',
    image: 'web:latest',
    imageId: 'sha256:0',
    running: true,
    status: 'running',
    runtime: 'runc',
    deviceRequests: [],
    env: [],
    workingDir: '/',
    labels: {},
    mounts: [],
    user: '',
    health: 'healthy',
    restartCount: 0,
    startedAt: '2026-12-07T10:00:00Z',
    composeProject: null,
    composeService: null,
    finishedAt: null,
    sizeRwBytes: null,
    networkMode: 'bridge',
    published: [],
    exposed: [],
    healthcheck: true,
    ...over,
  }
}

interface Fake {
  ctx: HealthContext
  clock: { t: number }
  sleeps: number[]
  execCalls: { container: string; argv: string[]; opts: ExecOptions | undefined }[]
  inspectCalls: string[]
}

/**
 * `exec` answers from `execs` in turn (the last one repeats); a function answer runs with the
 * clock, so a check can take time. `sleep` only advances the clock.
 */
function fake(opts: {
  execs?: (ExecResult | Error | ((clock: { t: number }) => ExecResult))[]
  inspect?: (name: string, call: number) => ContainerDetails | null
  containers?: string[]
}): Fake {
  const clock = { t: 1_000_000 }
  const sleeps: number[] = []
  const execCalls: Fake['execCalls'] = []
  const inspectCalls: string[] = []
  const execs = opts.execs ?? [ok()]
  const ctx: HealthContext = {
    containers: opts.containers ?? ['web'],
    env: {},
    now: () => clock.t,
    sleep: async (ms) => {
      expect(ms).toBeGreaterThanOrEqual(0)
      sleeps.push(ms)
      clock.t += ms
    },
    engine: {
      exec: async (container, argv, o) => {
        execCalls.push({ container, argv, opts: o })
        const next = execs[Math.min(execCalls.length, execs.length) - 1]
        if (next instanceof Error) throw next
        if (typeof next === 'function') return next(clock)
        if (!next) throw new Error('no canned exec result')
        return next
      },
      inspectContainer: async (name) => {
        inspectCalls.push(name)
        return (opts.inspect ?? ((n) => details({ name: n })))(name, inspectCalls.length)
      },
    },
  }
  return { ctx, clock, sleeps, execCalls, inspectCalls }
}

describe('waitHealthy: command', () => {
  const h = health({ command: ['curl', '-fsS', 'http://localhost/health'] })

  it('passes on the first try without sleeping', async () => {
    const f = fake({ execs: [ok('fine')] })
    const r = await waitHealthy(h, f.ctx)
    expect(r.ok).toBe(true)
    expect(r.attempts).toBe(1)
    expect(r.checks).toEqual([{ kind: 'command', target: 'web', ok: true, detail: 'exit 0' }])
    expect(f.sleeps).toEqual([])
    expect(f.execCalls).toHaveLength(1)
    expect(f.execCalls[0]?.container).toBe('web')
    expect(f.execCalls[0]?.argv).toEqual(['curl', '-fsS', 'http://localhost/health'])
    expect(f.execCalls[0]?.opts?.timeoutMs).toBeGreaterThan(0)
    expect(describeFailure(r)).toBe('')
  })

  it('runs the command in the first container only', async () => {
    const f = fake({ execs: [ok()], containers: ['db', 'web'] })
    const r = await waitHealthy(h, f.ctx)
    expect(r.ok).toBe(true)
    expect(f.execCalls.map((c) => c.container)).toEqual(['db'])
  })

  it('fails, sleeps, then passes on attempt 2', async () => {
    const f = fake({ execs: [fail(7, 'connection refused\n'), ok()] })
    const r = await waitHealthy(h, f.ctx)
    expect(r.ok).toBe(true)
    expect(r.attempts).toBe(2)
    expect(f.execCalls).toHaveLength(2)
    // the first of 5 doubling waits that add up to 60 s: 60 / 31
    expect(f.sleeps).toEqual([Math.round(h.timeout / 31)])
    expect(r.checks[0]?.ok).toBe(true)
  })

  it('gives up after retries + 1 attempts, naming the container, exit code and stderr', async () => {
    const hh = health({ command: ['check'], retries: 2, timeout: '60s' })
    const f = fake({ execs: [fail(3, 'db down\nsecond line\n', 'stdout text')] })
    const start = f.clock.t
    const r = await waitHealthy(hh, f.ctx)
    expect(r.ok).toBe(false)
    expect(r.attempts).toBe(3)
    expect(f.execCalls).toHaveLength(3)
    expect(f.sleeps).toHaveLength(2)
    expect(f.clock.t - start).toBeLessThanOrEqual(hh.timeout)
    expect(r.checks).toEqual([
      { kind: 'command', target: 'web', ok: false, detail: 'exit 3: db down' },
    ])
    const d = describeFailure(r)
    expect(d).toContain('command web')
    expect(d).toContain('exit 3')
    expect(d).toContain('db down')
    expect(d).not.toContain('second line')
    expect(d).not.toContain('stdout text')
  })

  it('falls back to the first stdout line when stderr is empty', async () => {
    const hh = health({ command: ['check'], retries: 0 })
    const f = fake({ execs: [fail(1, '', '  not ready yet\nmore\n')] })
    const r = await waitHealthy(hh, f.ctx)
    expect(r.checks[0]?.detail).toBe('exit 1: not ready yet')
  })

  it('reports an exit code alone when the command said nothing', async () => {
    const hh = health({ command: ['check'], retries: 0 })
    const r = await waitHealthy(hh, fake({ execs: [fail(2)] }).ctx)
    expect(r.checks[0]?.detail).toBe('exit 2')
  })

  it('reports a timed-out exec', async () => {
    const hh = health({ command: ['sleep', '100'], retries: 0, timeout: '5s' })
    const f = fake({ execs: [{ exitCode: null, stdout: '', stderr: '', timedOut: true }] })
    const r = await waitHealthy(hh, f.ctx)
    expect(r.ok).toBe(false)
    expect(r.checks[0]?.ok).toBe(false)
    expect(r.checks[0]?.detail).toContain('timed out')
    expect(r.checks[0]?.detail).toContain(`${f.execCalls[0]?.opts?.timeoutMs} ms`)
    expect(describeFailure(r)).toContain('timed out')
  })

  it('reports an engine error as a failed check', async () => {
    const hh = health({ command: ['check'], retries: 0 })
    const r = await waitHealthy(
      hh,
      fake({ execs: [new Error('container web is not running')] }).ctx,
    )
    expect(r.ok).toBe(false)
    expect(r.checks[0]?.detail).toBe('container web is not running')
  })

  it('fails without a container to run the command in', async () => {
    const hh = health({ command: ['check'], retries: 0 })
    const f = fake({ containers: [] })
    const r = await waitHealthy(hh, f.ctx)
    expect(r.ok).toBe(false)
    expect(r.checks[0]).toMatchObject({ target: '(none)', ok: false })
    expect(f.execCalls).toEqual([])
  })

  it('stops at the deadline even with attempts left', async () => {
    const hh = health({ command: ['check'], retries: 100, timeout: '10s' })
    const f = fake({ execs: [fail(1)] })
    const start = f.clock.t
    const r = await waitHealthy(hh, f.ctx)
    expect(r.ok).toBe(false)
    expect(r.attempts).toBeLessThan(101)
    expect(r.attempts).toBe(f.execCalls.length)
    expect(f.clock.t - start).toBeLessThanOrEqual(hh.timeout)
    expect(f.clock.t - start).toBeGreaterThanOrEqual(hh.timeout - 250)
  })

  it('tries again after a check slower than the spacing while time is left', async () => {
    // the first wait is 1.9 s; the first try takes 15 s
    const slow = (result: ExecResult) => (clock: { t: number }) => {
      clock.t += 15_000
      return result
    }
    const f = fake({ execs: [slow(fail(1, 'starting')), slow(ok())] })
    const r = await waitHealthy(h, f.ctx)
    expect(r.ok).toBe(true)
    expect(r.attempts).toBe(2)
  })
})

describe('waitHealthy: container', () => {
  const h = health({ container: true, retries: 0 })

  it('passes a healthy container', async () => {
    const f = fake({})
    const r = await waitHealthy(h, f.ctx)
    expect(r).toEqual({
      ok: true,
      attempts: 1,
      checks: [{ kind: 'container', target: 'web', ok: true, detail: 'healthy' }],
      heldMs: 0,
    })
    expect(f.inspectCalls).toEqual(['web'])
    expect(f.execCalls).toEqual([])
  })

  it('fails an unhealthy container', async () => {
    const f = fake({ inspect: (n) => details({ name: n, health: 'unhealthy' }) })
    const r = await waitHealthy(h, f.ctx)
    expect(r.ok).toBe(false)
    expect(r.checks[0]).toEqual({
      kind: 'container',
      target: 'web',
      ok: false,
      detail: 'unhealthy',
    })
    expect(describeFailure(r)).toBe('container web: unhealthy')
  })

  it('waits through starting to healthy', async () => {
    const hh = health({ container: true })
    const f = fake({
      inspect: (n, call) => details({ name: n, health: call < 3 ? 'starting' : 'healthy' }),
    })
    const r = await waitHealthy(hh, f.ctx)
    expect(r.ok).toBe(true)
    expect(r.attempts).toBe(3)
    expect(f.sleeps).toHaveLength(2)
  })

  it('fails a container without HEALTHCHECK, saying how to turn the check off', async () => {
    const f = fake({ inspect: (n) => details({ name: n, health: null }) })
    const r = await waitHealthy(h, f.ctx)
    expect(r.ok).toBe(false)
    expect(r.checks[0]?.detail).toContain('no HEALTHCHECK')
    expect(r.checks[0]?.detail).toContain('health.container: false')
  })

  it('fails a stopped container with its status', async () => {
    const f = fake({
      inspect: (n) => details({ name: n, running: false, status: 'exited', health: 'healthy' }),
    })
    const r = await waitHealthy(h, f.ctx)
    expect(r.ok).toBe(false)
    expect(r.checks[0]?.detail).toBe('not running (exited)')
  })

  it('fails a container that does not exist', async () => {
    const f = fake({ inspect: () => null, containers: ['ghost'] })
    const r = await waitHealthy(h, f.ctx)
    expect(r.ok).toBe(false)
    expect(r.checks[0]).toEqual({
      kind: 'container',
      target: 'ghost',
      ok: false,
      detail: 'no such container',
    })
    expect(describeFailure(r)).toContain('ghost')
  })

  it('checks every container and passes only when all pass', async () => {
    const f = fake({
      containers: ['web', 'worker'],
      inspect: (n) => details({ name: n, health: n === 'worker' ? 'unhealthy' : 'healthy' }),
    })
    const r = await waitHealthy(h, f.ctx)
    expect(r.ok).toBe(false)
    expect(r.checks.map((c) => `${c.target}:${c.ok}`)).toEqual(['web:true', 'worker:false'])
    expect(describeFailure(r)).toBe('container worker: unhealthy')
  })

  it('runs the command and the container check together', async () => {
    const hh = health({ command: ['check'], container: true, retries: 0 })
    const f = fake({ execs: [fail(1, 'no')] })
    const r = await waitHealthy(hh, f.ctx)
    expect(r.ok).toBe(false)
    expect(r.checks.map((c) => `${c.kind}:${c.ok}`)).toEqual(['command:false', 'container:true'])
    expect(describeFailure(r)).toBe('command web: exit 1: no')
  })
})

// ---------------------------------------------------------------------------------------------
// URL checks against a real server on 127.0.0.1

describe('displayHealthUrl', () => {
  it('drops userinfo and query values', () => {
    const d = displayHealthUrl('http://u:secret@127.0.0.1:8080/health?token=abc&x=1')
    expect(d).not.toContain('secret')
    expect(d).not.toContain('abc')
    expect(d).not.toContain('u:')
    expect(d).not.toContain('@')
    expect(d).toContain('127.0.0.1:8080/health')
    expect(d).toContain('token=')
  })

  it('keeps a plain URL', () => {
    expect(displayHealthUrl('http://127.0.0.1:8080/health')).toBe('http://127.0.0.1:8080/health')
  })

  it('refuses to echo an invalid URL', () => {
    expect(displayHealthUrl('not a url secret')).toBe('(invalid URL)')
  })
})

describe('waitHealthy: url', () => {
  interface Seen {
    url: string
    authorization: string | undefined
  }
  const seen: Seen[] = []
  let status = 200
  let base = ''
  let silentBase = ''
  let tmp = ''
  const server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', authorization: req.headers.authorization })
    res.writeHead(status, { 'content-type': 'text/plain' })
    res.end('body')
  })
  // accepts the connection and never answers
  const silent = http.createServer(() => {})

  const listen = (s: http.Server) =>
    new Promise<string>((resolve) =>
      s.listen(0, '127.0.0.1', () => {
        resolve(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)
      }),
    )
  const close = (s: http.Server) =>
    new Promise<void>((resolve) => {
      s.closeAllConnections()
      s.close(() => resolve())
    })

  beforeAll(async () => {
    base = await listen(server)
    silentBase = await listen(silent)
    tmp = await mkdtemp(path.join(os.tmpdir(), 'shipshape-health-'))
  })
  afterAll(async () => {
    await close(server)
    await close(silent)
    await rm(tmp, { recursive: true, force: true })
  })
  afterEach(() => {
    seen.length = 0
    status = 200
  })

  /** real fetch and real time; sleeps recorded, not waited */
  const ctx = (env: NodeJS.ProcessEnv = {}): HealthContext => ({
    engine: {
      exec: async () => {
        throw new Error('no exec expected')
      },
      inspectContainer: async () => {
        throw new Error('no inspect expected')
      },
    },
    containers: ['web'],
    env,
    sleep: async () => {},
  })

  const basicOf = (user: string, password: string) =>
    `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

  it('passes when the status matches', async () => {
    const h = health({ url: `${base}/health`, retries: 0 })
    const r = await waitHealthy(h, ctx())
    expect(r.ok).toBe(true)
    expect(r.checks).toEqual([
      { kind: 'url', target: `${base}/health`, ok: true, detail: 'HTTP 200' },
    ])
    expect(seen).toEqual([{ url: '/health', authorization: undefined }])
  })

  it('passes a configured non-200 status', async () => {
    status = 204
    const h = health({ url: `${base}/health`, expectStatus: 204, retries: 0 })
    expect((await waitHealthy(h, ctx())).ok).toBe(true)
  })

  it('fails on another status, naming both', async () => {
    status = 503
    const h = health({ url: `${base}/health`, retries: 2 })
    const r = await waitHealthy(h, ctx())
    expect(r.ok).toBe(false)
    expect(r.attempts).toBe(3)
    expect(seen).toHaveLength(3)
    expect(r.checks[0]?.detail).toBe('HTTP 503 (expected 200)')
    expect(describeFailure(r)).toBe(`url ${base}/health: HTTP 503 (expected 200)`)
  })

  it('does not follow a redirect', async () => {
    status = 302
    const h = health({ url: `${base}/health`, retries: 0 })
    const r = await waitHealthy(h, ctx())
    expect(r.checks[0]?.detail).toBe('HTTP 302 (expected 200)')
    expect(seen).toHaveLength(1)
  })

  it('sends basic auth from userEnv/passwordEnv and never shows the password', async () => {
    const password = 'pw-Zq81!x'
    const h = health({
      url: `${base}/health`,
      userEnv: 'HC_USER',
      passwordEnv: 'HC_PASS',
      retries: 0,
    })
    status = 401
    const r = await waitHealthy(h, ctx({ HC_USER: 'monitor', HC_PASS: password }))
    expect(seen[0]?.authorization).toBe(basicOf('monitor', password))
    expect(r.ok).toBe(false)
    const text = shown(r)
    expect(text).toContain('HTTP 401')
    expect(text).not.toContain(password)
    expect(text).not.toContain(Buffer.from(`monitor:${password}`).toString('base64'))
  })

  it('sends basic auth with a password only', async () => {
    const h = health({ url: `${base}/health`, passwordEnv: 'HC_PASS', retries: 0 })
    const r = await waitHealthy(h, ctx({ HC_PASS: 's3cr3t' }))
    expect(r.ok).toBe(true)
    expect(seen[0]?.authorization).toBe(basicOf('', 's3cr3t'))
  })

  it('reads the password from passwordFile (one trailing newline dropped)', async () => {
    const password = 'file-pw-7Yc'
    const file = path.join(tmp, 'pw')
    await writeFile(file, `${password}\n`, { mode: 0o600 })
    const h = health({
      url: `${base}/health`,
      userEnv: 'HC_USER',
      passwordFile: file,
      retries: 0,
    })
    status = 500
    const r = await waitHealthy(h, ctx({ HC_USER: 'monitor' }))
    expect(seen[0]?.authorization).toBe(basicOf('monitor', password))
    expect(shown(r)).not.toContain(password)
    expect(shown(r)).toContain('HTTP 500')
  })

  it('fails, without a request, when an auth variable is unset, naming it but no value', async () => {
    const h = health({
      url: `${base}/health`,
      userEnv: 'HC_USER',
      passwordEnv: 'HC_PASS',
      retries: 0,
    })
    const r = await waitHealthy(h, ctx({ HC_USER: 'monitor-xyz' }))
    expect(r.ok).toBe(false)
    expect(r.checks[0]?.detail).toContain('HC_PASS')
    expect(r.checks[0]?.detail).toContain('not set')
    expect(shown(r)).not.toContain('monitor-xyz')
    expect(seen).toEqual([])

    const r2 = await waitHealthy(h, ctx({ HC_PASS: 'pw-abc-123' }))
    expect(r2.ok).toBe(false)
    expect(r2.checks[0]?.detail).toContain('HC_USER')
    expect(shown(r2)).not.toContain('pw-abc-123')
    expect(seen).toEqual([])
  })

  it('fails when the password file cannot be read', async () => {
    const h = health({ url: `${base}/health`, passwordFile: path.join(tmp, 'nope'), retries: 0 })
    const r = await waitHealthy(h, ctx())
    expect(r.ok).toBe(false)
    expect(r.checks[0]?.detail).toContain('ENOENT')
    expect(seen).toEqual([])
  })

  it('shows a URL with userinfo and a query without the secret or the token', async () => {
    const port = new URL(base).port
    // the schema refuses a password in the URL; the check must not leak one anyway
    const h: HealthConfig = {
      ...health({ url: `${base}/health`, retries: 0 }),
      url: `http://u:secret@127.0.0.1:${port}/health?token=abc`,
    }
    const r = await waitHealthy(h, ctx())
    expect(r.checks[0]?.target).toBe(`http://127.0.0.1:${port}/health?token=%E2%80%A6`)
    expect(r.checks[0]?.target).not.toContain('secret')
    expect(r.checks[0]?.target).not.toContain('abc')
  })

  // fetch refuses a URL with userinfo with a TypeError that repeats the whole URL
  it('never shows the userinfo or the query of the URL in a detail', async () => {
    const port = new URL(base).port
    // a user without a password passes the schema
    const h = health({ url: `http://monitor@127.0.0.1:${port}/health?token=abc`, retries: 0 })
    const r = await waitHealthy(h, ctx())
    expect(r.checks[0]?.target).not.toContain('token=abc')
    expect(shown(r)).not.toContain('monitor@')
    expect(shown(r)).not.toContain('token=abc')
  })

  it('reports a refused connection by its code', async () => {
    const probe = http.createServer()
    const url = await listen(probe)
    await close(probe)
    const h = health({ url: `${url}/health`, retries: 0 })
    const r = await waitHealthy(h, ctx())
    expect(r.ok).toBe(false)
    expect(r.checks[0]?.detail).toBe('ECONNREFUSED')
  })

  it('gives up on a server that never answers', async () => {
    const h = health({ url: `${silentBase}/health`, timeout: '1s', retries: 0 })
    const started = Date.now()
    const r = await waitHealthy(h, ctx())
    expect(r.ok).toBe(false)
    expect(r.checks[0]?.detail).toMatch(/^no answer within \d+ ms$/)
    expect(describeFailure(r)).toContain('no answer within')
    expect(Date.now() - started).toBeLessThan(5000)
  })
})

describe('backoffWaits', () => {
  it('doubles and adds up to the timeout', () => {
    const w = backoffWaits(60_000, 5)
    expect(w).toEqual([1935, 3871, 7742, 15484, 30968])
    expect(Math.abs(w.reduce((a, b) => a + b, 0) - 60_000)).toBeLessThan(5)
  })
  it('never waits less than 250 ms, and not at all without retries', () => {
    expect(backoffWaits(1000, 3)).toEqual([250, 286, 571])
    expect(backoffWaits(60_000, 0)).toEqual([])
    expect(backoffWaits(10_000, 100).slice(0, 3)).toEqual([250, 250, 250])
  })
})

describe('waitHealthy: the hold (stableFor)', () => {
  const h = (o: Record<string, unknown> = {}) =>
    health({ command: ['check'], stableFor: '10s', ...o })

  it('passes once the checks held for stableFor, polled every second, and says how long', async () => {
    const f = fake({ execs: [ok()] })
    const start = f.clock.t
    const r = await waitHealthy(h(), f.ctx)
    expect(r.ok).toBe(true)
    expect(r.attempts).toBe(1)
    expect(r.heldMs).toBe(10_000)
    expect(f.sleeps).toEqual(Array(10).fill(1000))
    // the first pass and one run per poll
    expect(f.execCalls).toHaveLength(11)
    expect(f.clock.t - start).toBe(10_000)
    expect(describeHold(r)).toBe(', held 10.0 s')
  })

  it('a check that passes once and then fails is unhealthy, saying after how long', async () => {
    const f = fake({ execs: [ok(), ok(), ok(), fail(7, 'connection refused')] })
    const r = await waitHealthy(h(), f.ctx)
    expect(r.ok).toBe(false)
    expect(r.heldMs).toBe(3000)
    expect(r.broke).toBe('passed, then failed 3.0 s later')
    expect(describeFailure(r)).toBe(
      'passed, then failed 3.0 s later; command web: exit 7: connection refused',
    )
    // no retry after the hold broke: a crash after start-up is the answer
    expect(f.execCalls).toHaveLength(4)
  })

  it('a container the engine restarted is unhealthy even when the checks pass again', async () => {
    const f = fake({
      execs: [ok()],
      inspect: (n, call) => details({ name: n, restartCount: call >= 3 ? 1 : 0 }),
    })
    const r = await waitHealthy(h(), f.ctx)
    expect(r.ok).toBe(false)
    expect(r.broke).toBe('web restarted (restart count 0 → 1) 2.0 s after passing')
  })

  it('a container started again (same count: a dockerd restart) or replaced is unhealthy', async () => {
    const again = await waitHealthy(
      h(),
      fake({
        execs: [ok()],
        inspect: (n, call) =>
          details({
            name: n,
            startedAt: call >= 2 ? '2026-12-07T10:00:05Z' : '2026-12-07T10:00:00Z',
          }),
      }).ctx,
    )
    expect(again.broke).toBe('web restarted (started again) 1.0 s after passing')
    const replaced = await waitHealthy(
      h(),
      fake({
        execs: [ok()],
        inspect: (n, call) => details({ name: n, id: call >= 4 ? 'new' : 'abc' }),
      }).ctx,
    )
    expect(replaced.broke).toBe('web was replaced by another container 3.0 s after passing')
  })

  it('a container that stops or goes is unhealthy', async () => {
    const stopped = await waitHealthy(
      h(),
      fake({
        execs: [ok()],
        inspect: (n, call) =>
          details({ name: n, running: call < 2, status: call < 2 ? 'running' : 'exited' }),
      }).ctx,
    )
    expect(stopped.broke).toBe('web stopped (exited) 1.0 s after passing')
    const gone = await waitHealthy(
      h(),
      fake({ execs: [ok()], inspect: (n, call) => (call < 5 ? details({ name: n }) : null) }).ctx,
    )
    expect(gone.broke).toBe('web is gone 4.0 s after passing')
  })

  it('every container of the service is held, not only the first', async () => {
    const f = fake({
      execs: [ok()],
      containers: ['web-1', 'web-2'],
      inspect: (n, call) => details({ name: n, restartCount: n === 'web-2' && call > 6 ? 3 : 0 }),
    })
    const r = await waitHealthy(h(), f.ctx)
    expect(r.broke).toMatch(/^web-2 restarted \(restart count 0 → 3\)/)
  })

  it('stableFor 0s: the first pass decides, no container is looked at', async () => {
    const f = fake({ execs: [ok()] })
    const r = await waitHealthy(h({ stableFor: '0s' }), f.ctx)
    expect(r).toMatchObject({ ok: true, heldMs: 0 })
    expect(f.sleeps).toEqual([])
    expect(f.inspectCalls).toEqual([])
    expect(describeHold(r)).toBe('')
  })

  it('lifeChanged compares id, restart count and start time', () => {
    const b = { name: 'web', id: 'a', startedAt: 't0', restartCount: 0 }
    expect(lifeChanged(b, { ...b })).toBeNull()
    expect(lifeChanged(b, 'web is gone')).toBe('web is gone')
    expect(lifeChanged(b, { ...b, restartCount: 2 })).toContain('restart count 0 → 2')
  })
})
