/**
 * `shipshape doctor`: every check of checks/index.ts, run a few at a time, each with its own time
 * limit (a stalled FUSE mount or a mute engine becomes a failed check, not a hung command),
 * collected in one fixed order. Read-only: the one write is a probe file in stateDir/backupDir, removed again.
 *
 * An invalid config is a failed check, not the end: the engine, compose and rclone are still
 * checked (with the embedded default's engine settings); what needs the config is not.
 */
import pLimit from 'p-limit'
import {
  EMBEDDED_DEFAULT,
  loadConfigFrom,
  resolveConfigSource,
  type Config,
  type ConfigSource,
} from '../config/index.js'
import type { Engine } from '../docker/engine.js'
import { ConfigError } from '../errors.js'
import type { MountEntry } from '../host/mountinfo.js'
import {
  collect,
  type AnyCheck,
  type Check,
  type CheckContext,
  type EngineFacts,
  type LockFinding,
} from './check.js'
import type { ConfigOutcome } from './checks/config.js'
import { doctorChecks } from './checks/index.js'
import { readLock } from './checks/lock.js'
import { hostPorts, type DoctorPorts } from './ports.js'

export type { Check, CheckStatus } from './check.js'

export const DOCTOR_SCHEMA = 'shipshape.doctor/1'

export interface DoctorResult {
  schema: typeof DOCTOR_SCHEMA
  generatedAt: string
  /** no check failed (warnings allowed) */
  ok: boolean
  checks: Check[]
}

export interface DoctorOptions {
  /** --config */
  configFile?: string
  /** --docker-host */
  dockerHost?: string
  env?: NodeJS.ProcessEnv
  hostname?: string
  packageRoot?: string
  /** fakes for the host (tests) */
  ports?: Partial<DoctorPorts>
  /** checks running at once (default 6) */
  concurrency?: number
  /** time one check may take (default 10 s); past it the check fails */
  checkTimeoutMs?: number
  progress?: (text: string) => void
}

export const DEFAULT_CHECK_TIMEOUT_MS = 10_000

function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined
  return () => (p ??= fn())
}

/** Resolves to the check's findings, or to one failed check when it throws or runs out of time. */
async function runTask(check: AnyCheck, ctx: CheckContext, timeoutMs: number): Promise<Check[]> {
  const failed = (detail: string, fix: string): Check[] => [
    { id: check.id, title: check.title, status: 'fail', detail, fix },
  ]
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<Check[]>((resolve) => {
    timer = setTimeout(
      () =>
        resolve(
          failed(
            `no answer within ${timeoutMs / 1000} s`,
            check.hangFix ?? 'find what hangs (a stalled mount, a busy disk) and run doctor again',
          ),
        ),
      timeoutMs,
    )
  })
  const work = collect(check, ctx).catch((err: unknown) =>
    failed(
      `could not be checked: ${err instanceof Error ? err.message : String(err)}`,
      (err as { remedy?: string } | null)?.remedy ??
        'fix what the message names, then run doctor again',
    ),
  )
  try {
    return await Promise.race([work, late])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Runs the checks a few at a time, each under its time limit; those that need the engine wait for
 * the engine check. The findings come back in the list's order.
 */
async function runChecks(
  list: AnyCheck[],
  ctx: CheckContext,
  o: { concurrency: number; timeoutMs: number },
): Promise<Check[]> {
  const limit = pLimit(Math.max(1, o.concurrency))
  const run = (c: AnyCheck) => limit(() => runTask(c, ctx, o.timeoutMs))
  const started = new Map<AnyCheck, Promise<Check[]>>()
  for (const c of list) if (c.providesEngine) started.set(c, run(c))
  const engineDone = Promise.all(started.values())
  const groups = await Promise.all(
    list.map(
      (c) =>
        started.get(c) ??
        (async () => {
          if (c.needsEngine) await engineDone
          return run(c)
        })(),
    ),
  )
  return groups.flat()
}

/**
 * The engine the checks share: opened by the engine check's gather. One that answers after that
 * check's time ran out is not used (the check has failed already), and is closed once it comes.
 */
function engineConnection(
  connect: () => Promise<Engine>,
  timeoutMs: number,
): { engine(): Engine | null; connect(): Promise<EngineFacts>; close(): void } {
  let engine: Engine | null = null
  let connecting: Promise<Engine> | undefined
  return {
    engine: () => engine,
    async connect() {
      const t0 = Date.now()
      try {
        connecting = connect()
        const connected = await connecting
        if (Date.now() - t0 >= timeoutMs) return { late: true }
        engine = connected
        return { info: connected.info }
      } catch (error) {
        return { error }
      }
    },
    close() {
      connecting?.then(
        (e) => e.close(),
        () => {},
      )
    },
  }
}

async function loadForDoctor(
  o: DoctorOptions,
  env: NodeJS.ProcessEnv,
): Promise<{ outcome: ConfigOutcome; config: Config | null; source: ConfigSource | null }> {
  let source: ConfigSource
  try {
    source = await resolveConfigSource({
      file: o.configFile,
      env,
      hostname: o.hostname,
      packageRoot: o.packageRoot,
    })
  } catch (err) {
    const outcome: ConfigOutcome = {
      source: o.configFile ?? '?',
      origin: o.configFile ? 'flag' : 'default',
      problems: [],
      error: (err as Error).message,
    }
    return { outcome, config: null, source: null }
  }
  try {
    const loaded = await loadConfigFrom(source, o.hostname)
    return { outcome: { ...source, problems: [] }, config: loaded.config, source }
  } catch (err) {
    if (err instanceof ConfigError) {
      const problems = err.problems.length
        ? err.problems
        : [{ file: source.source, key: '', message: err.message }]
      return { outcome: { ...source, problems }, config: null, source }
    }
    return {
      outcome: { ...source, problems: [], error: (err as Error).message },
      config: null,
      source,
    }
  }
}

export async function runDoctor(o: DoctorOptions = {}): Promise<DoctorResult> {
  const env = o.env ?? process.env
  const ports = hostPorts(o.ports)
  const timeoutMs = o.checkTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS
  const generatedAt = ports.now().toISOString()

  o.progress?.('Reading the config')
  const loaded = await loadForDoctor(o, env)
  // the engine, compose and rclone are checked even without a valid config
  const config =
    loaded.config ??
    (await loadConfigFrom({ source: EMBEDDED_DEFAULT, origin: 'default' }, o.hostname)).config
  const conn = engineConnection(
    () => ports.connect({ dockerHost: o.dockerHost, env, config }),
    timeoutMs,
  )
  const ctx: CheckContext = {
    config,
    configFlag: loaded.source?.origin === 'flag' ? loaded.source.source : null,
    configOutcome: loaded.outcome,
    get engine() {
      return conn.engine()
    },
    env,
    ports,
    mounts: once<MountEntry[]>(() => ports.readMountinfo()),
    lock: once<LockFinding>(() => readLock(config.stateDir, ports)),
    connect: () => conn.connect(),
  }

  o.progress?.('Checking the host')
  try {
    const checks = await runChecks(doctorChecks(loaded.config), ctx, {
      concurrency: o.concurrency ?? 6,
      timeoutMs,
    })
    return {
      schema: DOCTOR_SCHEMA,
      generatedAt,
      ok: !checks.some((c) => c.status === 'fail'),
      checks,
    }
  } finally {
    // also a connection that completes after its time ran out: it must not keep the process alive
    conn.close()
  }
}

/** One line for the exit-1 error: how many failed, and which. */
export function failedSummary(r: DoctorResult): string {
  const failed = r.checks.filter((c) => c.status === 'fail')
  const shown = failed.slice(0, 5).map((c) => c.title)
  return `${failed.length} of ${r.checks.length} checks failed: ${shown.join(', ')}${failed.length > 5 ? ', …' : ''}`
}
