/**
 * `shipshape doctor`: every check of checks.ts, run a few at a time, each with its own time limit
 * (a stalled FUSE mount or a mute engine becomes a failed check, not a hung command), collected in
 * one fixed order. Read-only: the one write is a probe file in stateDir/backupDir, removed again.
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
import { ConfigError } from '../errors.js'
import {
  checkAsset,
  checkCompose,
  checkConfig,
  checkDir,
  checkEngine,
  checkEngineDisk,
  checkJournals,
  checkLock,
  checkRclone,
  checkSystemd,
  readLock,
  type Check,
  type CheckContext,
  type ConfigOutcome,
  type LockFinding,
} from './checks.js'
import { hostPorts, type DoctorPorts } from './ports.js'
import type { Engine } from '../docker/engine.js'
import type { MountEntry } from '../host/mountinfo.js'

export type { Check, CheckStatus } from './checks.js'

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

interface Task {
  id: string
  title: string
  needsEngine?: boolean
  /** what to look at when it does not finish in time */
  hangFix?: string
  run(ctx: CheckContext): Promise<Check[]>
}

function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined
  return () => (p ??= fn())
}

/** Resolves to the task's checks, or to one failed check when it throws or runs out of time. */
async function runTask(task: Task, ctx: CheckContext, timeoutMs: number): Promise<Check[]> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<Check[]>((resolve) => {
    timer = setTimeout(
      () =>
        resolve([
          {
            id: task.id,
            title: task.title,
            status: 'fail',
            detail: `no answer within ${timeoutMs / 1000} s`,
            fix:
              task.hangFix ?? 'find what hangs (a stalled mount, a busy disk) and run doctor again',
          },
        ]),
      timeoutMs,
    )
  })
  const work = task.run(ctx).catch((err: unknown): Check[] => [
    {
      id: task.id,
      title: task.title,
      status: 'fail',
      detail: `could not be checked: ${err instanceof Error ? err.message : String(err)}`,
      fix:
        (err as { remedy?: string } | null)?.remedy ??
        'fix what the message names, then run doctor again',
    },
  ])
  try {
    return await Promise.race([work, late])
  } finally {
    clearTimeout(timer)
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
  const limit = pLimit(Math.max(1, o.concurrency ?? 6))
  const generatedAt = ports.now().toISOString()

  o.progress?.('Reading the config')
  const loaded = await loadForDoctor(o, env)
  // the engine, compose and rclone are checked even without a valid config
  const config =
    loaded.config ??
    (await loadConfigFrom({ source: EMBEDDED_DEFAULT, origin: 'default' }, o.hostname)).config

  let engine: Engine | null = null
  let connecting: Promise<Engine> | undefined
  const ctx: CheckContext = {
    config,
    configFlag: loaded.source?.origin === 'flag' ? loaded.source.source : null,
    get engine() {
      return engine
    },
    env,
    ports,
    mounts: once<MountEntry[]>(() => ports.readMountinfo()),
    lock: once<LockFinding>(() => readLock(config.stateDir, ports)),
  }

  const engineTask: Task = {
    id: 'engine',
    title: 'Docker engine',
    hangFix: 'check the engine answers (`docker version`), then run doctor again',
    async run() {
      const t0 = Date.now()
      try {
        connecting = ports.connect({ dockerHost: o.dockerHost, env, config })
        const connected = await connecting
        // too late: the engine check has failed already, so no other check uses this engine
        if (Date.now() - t0 >= timeoutMs) return []
        engine = connected
        return checkEngine({ info: connected.info })
      } catch (error) {
        return checkEngine({ error })
      }
    },
  }

  const tasks: Task[] = [
    { id: 'engine-disk', title: 'Engine disk', needsEngine: true, run: checkEngineDisk },
    { id: 'compose', title: 'Docker Compose', needsEngine: true, run: checkCompose },
    { id: 'rclone', title: 'rclone', run: checkRclone },
  ]
  if (loaded.config) {
    for (const [name, asset] of Object.entries(loaded.config.assets)) {
      tasks.push({
        id: `asset-mount:${name}`,
        title: `Asset ${name}: mount`,
        needsEngine: true,
        hangFix: `${asset.mount} does not answer: check its rclone process and remote; if it is dead, fusermount3 -uz ${asset.mount} and start the mount again`,
        run: (c) => checkAsset(c, name, asset),
      })
    }
    tasks.push(
      { id: 'state-dir', title: 'State directory', run: (c) => checkDir(c, 'stateDir') },
      { id: 'backup-dir', title: 'Backup directory', run: (c) => checkDir(c, 'backupDir') },
      { id: 'lock', title: 'Host lock', run: checkLock },
      { id: 'journals', title: 'Unfinished runs', run: checkJournals },
      { id: 'systemd', title: 'systemd', run: checkSystemd },
    )
  }

  o.progress?.('Checking the host')
  const engineDone = limit(() => runTask(engineTask, ctx, timeoutMs))
  const pending = tasks.map(async (t) => {
    if (t.needsEngine) await engineDone
    return limit(() => runTask(t, ctx, timeoutMs))
  })
  try {
    const groups = await Promise.all([engineDone, ...pending])
    const checks = [...checkConfig(loaded.outcome), ...groups.flat()]
    return {
      schema: DOCTOR_SCHEMA,
      generatedAt,
      ok: !checks.some((c) => c.status === 'fail'),
      checks,
    }
  } finally {
    // also a connection that completes after its time ran out: it must not keep the process alive
    connecting?.then(
      (e) => e.close(),
      () => {},
    )
  }
}

/** One line for the exit-1 error: how many failed, and which. */
export function failedSummary(r: DoctorResult): string {
  const failed = r.checks.filter((c) => c.status === 'fail')
  const shown = failed.slice(0, 5).map((c) => c.title)
  return `${failed.length} of ${r.checks.length} checks failed: ${shown.join(', ')}${failed.length > 5 ? ', …' : ''}`
}
