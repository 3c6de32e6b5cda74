/**
 * The health gate of every mutating command (rebuild, rollback, migrate-assets): the configured
 * checks (`health.url`, `health.command`, `health.container`) pass together within
 * `health.timeout`, tried `retries + 1` times — and then keep passing for `health.stableFor`,
 * polled every second, while the containers stay running, with the same id, start time and
 * restart count. A service that answers once and then crashes (a crash loop under a restart
 * policy, a model that fails to load after the server came up) is unhealthy. Credentials come
 * from the environment or a file named in the config and never appear in a result, a log or an
 * error.
 */
import { readFile } from 'node:fs/promises'
import type { Engine } from '../docker/engine.js'
import type { HealthConfig } from '../config/index.js'

export interface HealthCheckResult {
  kind: 'url' | 'command' | 'container'
  /** the URL without credentials, the container name */
  target: string
  ok: boolean
  detail: string
}

export interface HealthResult {
  ok: boolean
  attempts: number
  /** the last attempt's checks */
  checks: HealthCheckResult[]
  /** ms the checks kept passing after they first did (ok: at least stableFor) */
  heldMs: number
  /** the checks passed, then this went wrong within stableFor */
  broke?: string
}

/** how often the checks run again while the gate waits for them to hold */
export const STABLE_POLL_MS = 1000

export interface HealthContext {
  engine: Pick<Engine, 'exec' | 'inspectContainer'>
  /** containers the checks are about: `command` runs in the first, `container` waits for each */
  containers: string[]
  env?: NodeJS.ProcessEnv
  fetch?: typeof fetch
  sleep?: (ms: number) => Promise<void>
  now?: () => number
}

const sleepMs = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/**
 * A health URL safe to print: userinfo and query values dropped, the path kept (a health URL comes
 * from the config, which holds no secrets; a webhook URL goes through lib/cli/url.ts displayUrl()).
 */
export function displayHealthUrl(url: string): string {
  try {
    const u = new URL(url)
    u.username = ''
    u.password = ''
    for (const k of [...u.searchParams.keys()]) u.searchParams.set(k, '…')
    return u.toString()
  } catch {
    return '(invalid URL)'
  }
}

/** fetch's errors repeat the URL as given (userinfo, query tokens): show the safe form. */
function withoutUrl(text: string, url: string, safe: string): string {
  let out = text.split(url).join(safe)
  try {
    out = out.split(new URL(url).href).join(safe)
  } catch {
    // not a URL: nothing more to hide
  }
  return out
}

async function authHeader(h: HealthConfig, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (!h.userEnv && !h.passwordEnv && !h.passwordFile) return undefined
  const user = h.userEnv ? env[h.userEnv] : ''
  if (h.userEnv && user === undefined)
    throw new Error(`environment variable ${h.userEnv} is not set`)
  let password = ''
  if (h.passwordEnv) {
    const v = env[h.passwordEnv]
    if (v === undefined) throw new Error(`environment variable ${h.passwordEnv} is not set`)
    password = v
  } else if (h.passwordFile) {
    password = (await readFile(h.passwordFile, 'utf8')).replace(/\r?\n$/, '')
  }
  return `Basic ${Buffer.from(`${user ?? ''}:${password}`).toString('base64')}`
}

async function checkUrl(
  h: HealthConfig & { url: string },
  ctx: HealthContext,
  timeoutMs: number,
): Promise<HealthCheckResult> {
  const target = displayHealthUrl(h.url)
  try {
    const auth = await authHeader(h, ctx.env ?? process.env)
    const res = await (ctx.fetch ?? fetch)(h.url, {
      headers: auth ? { authorization: auth } : {},
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    })
    await res.body?.cancel().catch(() => {})
    const ok = res.status === h.expectStatus
    return {
      kind: 'url',
      target,
      ok,
      detail: `HTTP ${res.status}${ok ? '' : ` (expected ${h.expectStatus})`}`,
    }
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } }
    const why =
      e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.message)
    return { kind: 'url', target, ok: false, detail: withoutUrl(why, h.url, target) }
  }
}

async function checkCommand(
  argv: string[],
  ctx: HealthContext,
  timeoutMs: number,
): Promise<HealthCheckResult> {
  const container = ctx.containers[0]
  if (!container) {
    return {
      kind: 'command',
      target: '(none)',
      ok: false,
      detail: 'no container to run the command in',
    }
  }
  try {
    const r = await ctx.engine.exec(container, argv, { timeoutMs, maxOutputBytes: 4096 })
    if (r.timedOut)
      return {
        kind: 'command',
        target: container,
        ok: false,
        detail: `timed out after ${timeoutMs} ms`,
      }
    const ok = r.exitCode === 0
    const said = (r.stderr || r.stdout).trim().split('\n')[0]?.slice(0, 200) ?? ''
    return {
      kind: 'command',
      target: container,
      ok,
      detail: `exit ${r.exitCode ?? '?'}${ok || !said ? '' : `: ${said}`}`,
    }
  } catch (err) {
    return { kind: 'command', target: container, ok: false, detail: (err as Error).message }
  }
}

async function checkContainer(name: string, ctx: HealthContext): Promise<HealthCheckResult> {
  const c = await ctx.engine.inspectContainer(name)
  if (!c) return { kind: 'container', target: name, ok: false, detail: 'no such container' }
  if (!c.running)
    return { kind: 'container', target: name, ok: false, detail: `not running (${c.status})` }
  if (c.health === null) {
    return {
      kind: 'container',
      target: name,
      ok: false,
      detail: 'has no HEALTHCHECK (set health.container: false)',
    }
  }
  return { kind: 'container', target: name, ok: c.health === 'healthy', detail: c.health }
}

/**
 * The waits between the `retries + 1` attempts: they double each time and add up to the timeout
 * (60 s, 5 retries → 1.9, 3.9, 7.7, 15.5, 31 s), never shorter than 250 ms. A service that is up
 * at once passes the first check; one that needs a second passes within about two.
 */
export function backoffWaits(timeoutMs: number, retries: number): number[] {
  const first = retries > 0 ? timeoutMs / (2 ** retries - 1) : 0
  return Array.from({ length: retries }, (_, k) => Math.max(250, Math.round(first * 2 ** k)))
}

async function runChecks(
  h: HealthConfig,
  ctx: HealthContext,
  budget: number,
): Promise<HealthCheckResult[]> {
  const checks: HealthCheckResult[] = []
  if (h.url) checks.push(await checkUrl({ ...h, url: h.url }, ctx, budget))
  if (h.command) checks.push(await checkCommand(h.command, ctx, budget))
  if (h.container) for (const c of ctx.containers) checks.push(await checkContainer(c, ctx))
  return checks
}

interface Life {
  name: string
  id: string
  startedAt: string
  restartCount: number
}

/** The containers' lives now: id, start time, restart count (null entry: gone or not running). */
async function lives(ctx: HealthContext): Promise<(Life | string)[]> {
  return Promise.all(
    ctx.containers.map(async (name): Promise<Life | string> => {
      let c
      try {
        c = await ctx.engine.inspectContainer(name)
      } catch (err) {
        return `the engine did not answer about ${name} (${(err as Error).message.split('\n')[0]})`
      }
      if (!c) return `${name} is gone`
      if (!c.running) return `${name} stopped (${c.status})`
      return { name, id: c.id, startedAt: c.startedAt, restartCount: c.restartCount }
    }),
  )
}

/** What changed in a container's life since the checks first passed, or null. */
export function lifeChanged(before: Life, now: Life | string): string | null {
  if (typeof now === 'string') return now
  if (now.id !== before.id) return `${before.name} was replaced by another container`
  if (now.restartCount !== before.restartCount) {
    return `${before.name} restarted (restart count ${before.restartCount} → ${now.restartCount})`
  }
  if (now.startedAt !== before.startedAt) return `${before.name} restarted (started again)`
  return null
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`

/**
 * Runs the checks until they all pass together, or the time or the attempts run out; then, for
 * `stableFor`, again every second while the containers must not stop, restart or be replaced.
 */
export async function waitHealthy(h: HealthConfig, ctx: HealthContext): Promise<HealthResult> {
  const sleep = ctx.sleep ?? sleepMs
  const now = ctx.now ?? Date.now
  const deadline = now() + h.timeout
  const attempts = h.retries + 1
  const waits = backoffWaits(h.timeout, h.retries)
  let checks: HealthCheckResult[] = []
  let i = 1
  for (; ; i++) {
    const started = now()
    const budget = Math.max(1000, Math.min(30_000, deadline - started))
    checks = await runChecks(h, ctx, budget)
    if (checks.every((c) => c.ok)) break
    if (i >= attempts || now() >= deadline) return { ok: false, attempts: i, checks, heldMs: 0 }
    const wait = Math.min((waits[i - 1] ?? 250) - (now() - started), deadline - now())
    await sleep(Math.max(0, wait))
  }
  const stableFor = h.stableFor ?? 0
  if (stableFor <= 0) return { ok: true, attempts: i, checks, heldMs: 0 }
  // the first pass: from here the checks must hold, the containers keep the life they have
  const passedAt = now()
  const first = await lives(ctx)
  const gone = first.find((l): l is string => typeof l === 'string')
  if (gone) return { ok: false, attempts: i, checks, heldMs: 0, broke: gone }
  const before = first as Life[]
  const budget = Math.max(2000, Math.min(10_000, h.timeout))
  for (;;) {
    const held = now() - passedAt
    if (held >= stableFor) return { ok: true, attempts: i, checks, heldMs: held }
    await sleep(Math.min(STABLE_POLL_MS, stableFor - held))
    const lifeNow = await lives(ctx)
    const changed = before.map((b, k) => lifeChanged(b, lifeNow[k] ?? `${b.name} is gone`))
    const why = changed.find((c): c is string => c !== null)
    const at = now() - passedAt
    if (why)
      return {
        ok: false,
        attempts: i,
        checks,
        heldMs: at,
        broke: `${why} ${secs(at)} after passing`,
      }
    checks = await runChecks(h, ctx, budget)
    if (!checks.every((c) => c.ok)) {
      const held2 = now() - passedAt
      return {
        ok: false,
        attempts: i,
        checks,
        heldMs: held2,
        broke: `passed, then failed ${secs(held2)} later`,
      }
    }
  }
}

/** How long the checks held, for a success line: "held 10.0 s". */
export function describeHold(r: HealthResult): string {
  return r.heldMs > 0 ? `, held ${secs(r.heldMs)}` : ''
}

/** One line for messages: what broke the hold, and the failing checks. */
export function describeFailure(r: HealthResult): string {
  return [
    ...(r.broke ? [r.broke] : []),
    ...r.checks.filter((c) => !c.ok).map((c) => `${c.kind} ${c.target}: ${c.detail}`),
  ].join('; ')
}
