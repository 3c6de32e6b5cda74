/**
 * The long-running scheduler behind `shipshape schedule`: node-cron fires, this decides whether a
 * firing runs (not while the same job still runs; not while another shipshape run holds the host
 * lock) and turns every outcome into one log line. A job's failure is logged and forgotten: it
 * never stops the other jobs or the scheduler.
 *
 * Overlap is decided here, not with node-cron's noOverlap: the scheduler has to know what runs
 * anyway (running(), stop() aborts and waits), and the skip line names the job in our words. The
 * jobs also take turns with each other (one runs at a time), as the host lock makes them do with
 * every other shipshape run.
 */
import { createTask, type Logger, type ScheduledTask } from 'node-cron'
import { RefusedError, ShipshapeError, UsageError, ExitCode } from '../errors.js'
import { acquireLock, assertLockFree, type HostLock } from '../host/lock.js'

export interface Job {
  name: string
  cron: string
  /** Resolves with an optional short note for the outcome line ("pruned, 1.2 GB reclaimed"). */
  run: (signal: AbortSignal) => Promise<string | void>
  /**
   * hold (default): the job runs holding the host lock. check: the lock must be free when the job
   * starts, but the job takes it itself (a `shipshape prune` child: holding it here would make
   * the child refuse).
   */
  lock?: 'hold' | 'check'
}

/** The host lock as the scheduler uses it; both throw RefusedError naming the holder. */
export interface JobLock {
  acquire(operation: string): Promise<{ release(): Promise<unknown> }>
  check(): Promise<void>
}

/** The host-wide lock of lib/host/lock.ts in stateDir; releaseSync() for a hard exit. */
export function hostLock(
  stateDir: string,
  warn?: (line: string) => void,
): JobLock & { releaseSync(): void } {
  const held = new Set<HostLock>()
  return {
    async acquire(operation) {
      const lock = await acquireLock({ stateDir, operation, ...(warn ? { warn } : {}) })
      held.add(lock)
      return {
        release: async () => {
          held.delete(lock)
          return lock.release()
        },
      }
    },
    check: () => assertLockFree(stateDir),
    releaseSync() {
      for (const lock of held) lock.releaseSync()
      held.clear()
    },
  }
}

export interface SchedulerOptions {
  jobs: Job[]
  /** IANA zone of the cron expressions (default: the host's) */
  timezone?: string
  lock: JobLock
  /** one line per event, no time stamp (journald adds it) */
  log: (line: string) => void
  now?: () => Date
  /** how long stop() waits for running jobs after aborting them (default 30 s) */
  stopTimeoutMs?: number
}

export interface Scheduler {
  /** Stops the cron tasks, aborts the running jobs and waits for them (at most stopTimeoutMs). */
  stop(): Promise<void>
  /** Names of the jobs running now. */
  running(): string[]
}

export interface JobOutcome {
  job: string
  status: 'ok' | 'failed' | 'skipped' | 'stopped'
  /** what `shipshape <job>` would exit with: 0 ok, 4 lock held, the error's class otherwise */
  exitCode: number
  ms: number
}

export interface RunJobOptions {
  lock: JobLock
  log: (line: string) => void
  signal: AbortSignal
  now?: () => Date
}

/** Seconds for a log line: "2.1 s", "3 min 12 s". */
export function formatElapsed(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  const s = Math.round(ms / 1000)
  return `${Math.floor(s / 60)} min ${s % 60} s`
}

/** The exit-code class of a failure: a ShipshapeError's, a child's exit code, else 1. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof ShipshapeError) return err.exitCode
  const code = (err as { exitCode?: unknown } | null)?.exitCode
  if (typeof code === 'number' && Number.isInteger(code) && code > 0) return code
  return ExitCode.rolledBack
}

/** A failure as one line: message and remedy, newlines folded. */
export function describeFailure(err: unknown): string {
  const e = err as { message?: unknown; remedy?: unknown } | null
  const message = typeof e?.message === 'string' && e.message ? e.message : String(err)
  const remedy = err instanceof ShipshapeError && err.remedy ? ` (fix: ${err.remedy})` : ''
  return oneLine(message + remedy)
}

export const oneLine = (s: string) => s.replace(/\s*[\r\n]+\s*/g, ' | ').trim()

/**
 * One run of a job now: the lock (held or checked), the job, its outcome line. Never throws:
 * every failure becomes a JobOutcome (used by the scheduler's firings and `schedule --once`).
 */
export async function runJob(job: Job, o: RunJobOptions): Promise<JobOutcome> {
  const now = o.now ?? (() => new Date())
  const t0 = now().getTime()
  const elapsed = () => Math.max(0, now().getTime() - t0)
  const done = (status: JobOutcome['status'], exitCode: number, line: string): JobOutcome => {
    o.log(`${job.name}: ${line}`)
    return { job: job.name, status, exitCode, ms: elapsed() }
  }
  let lock: { release(): Promise<unknown> } | undefined
  try {
    if (job.lock === 'check') await o.lock.check()
    else lock = await o.lock.acquire(`schedule ${job.name}`)
  } catch (err) {
    // another run (a person's rebuild, the other job) has the host: this firing is skipped
    if (err instanceof RefusedError)
      return done('skipped', err.exitCode, `skipped: ${oneLine(err.message)}`)
    return done(
      'failed',
      exitCodeOf(err),
      `failed (exit ${exitCodeOf(err)}): ${describeFailure(err)}`,
    )
  }
  o.log(`${job.name}: started`)
  try {
    o.signal.throwIfAborted()
    const note = await job.run(o.signal)
    return done(
      'ok',
      ExitCode.ok,
      `ok in ${formatElapsed(elapsed())}${note ? `: ${oneLine(note)}` : ''}`,
    )
  } catch (err) {
    if (o.signal.aborted) {
      return done('stopped', exitCodeOf(err), `stopped after ${formatElapsed(elapsed())}`)
    }
    const code = exitCodeOf(err)
    return done(
      'failed',
      code,
      `failed (exit ${code}) after ${formatElapsed(elapsed())}: ${describeFailure(err)}`,
    )
  } finally {
    await lock?.release().catch((err: unknown) => {
      o.log(`${job.name}: could not release the host lock: ${describeFailure(err)}`)
    })
  }
}

/** Throws UsageError when the time zone is unknown to this Node (Intl). */
export function checkTimezone(timezone: string | undefined): void {
  if (timezone === undefined) return
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone })
  } catch {
    throw new UsageError(
      `schedule.timezone: '${timezone}' is not a time zone known here`,
      'use an IANA name such as Europe/Berlin or UTC',
    )
  }
}

/** Starts one cron task per job; see the module comment for what a firing does. */
export function startScheduler(o: SchedulerOptions): Scheduler {
  const now = o.now ?? (() => new Date())
  const stopTimeoutMs = o.stopTimeoutMs ?? 30_000
  checkTimezone(o.timezone)
  const names = new Set<string>()
  for (const job of o.jobs) {
    if (names.has(job.name)) throw new Error(`startScheduler: job ${job.name} listed twice`)
    names.add(job.name)
  }
  const active = new Map<
    string,
    { controller: AbortController; done: Promise<JobOutcome>; since: number }
  >()
  let stopped = false

  const fire = async (job: Job): Promise<void> => {
    if (stopped) return
    const current = active.get(job.name)
    if (current) {
      const since = formatElapsed(Math.max(0, now().getTime() - current.since))
      o.log(`${job.name}: skipped: the previous run is still going (started ${since} ago)`)
      return
    }
    // Our jobs take turns: the lock alone leaves a window — a job that only checks it (prune, whose
    // child takes it a moment later) and one that takes it here, fired in the same second.
    const other = [...active.keys()][0]
    if (other !== undefined) {
      o.log(`${job.name}: skipped: ${other} is running (the jobs take turns)`)
      return
    }
    const controller = new AbortController()
    const done = runJob(job, { lock: o.lock, log: o.log, signal: controller.signal, now })
    active.set(job.name, { controller, done, since: now().getTime() })
    try {
      await done
    } finally {
      active.delete(job.name)
    }
  }

  const tasks: ScheduledTask[] = []
  try {
    for (const job of o.jobs) {
      // node-cron's own messages (a missed firing, its errors) become our lines, never console
      const logger: Logger = {
        info: () => {},
        debug: () => {},
        warn: (m) => o.log(`${job.name}: ${oneLine(m)}`),
        error: (m, e) => o.log(`${job.name}: ${describeFailure(e ?? m)}`),
      }
      let task: ScheduledTask
      try {
        task = createTask(job.cron, () => fire(job), {
          name: `shipshape-${job.name}`,
          logger,
          ...(o.timezone ? { timezone: o.timezone } : {}),
        })
      } catch (err) {
        throw new UsageError(
          `schedule.${job.name}: '${job.cron}' is not a cron expression node-cron accepts: ${describeFailure(err)}`,
        )
      }
      task.on('execution:missed', (ctx) => {
        o.log(
          `${job.name}: missed the firing at ${ctx.date.toISOString()} (the process was busy or asleep)`,
        )
      })
      tasks.push(task)
    }
    for (const task of tasks) void task.start()
  } catch (err) {
    for (const task of tasks) void task.destroy()
    throw err
  }

  return {
    running: () => [...active.keys()],
    async stop() {
      if (stopped) return
      stopped = true
      for (const task of tasks) await task.destroy()
      const runs = [...active.entries()]
      for (const [, r] of runs) r.controller.abort(new Error('the scheduler is stopping'))
      if (!runs.length) return
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), stopTimeoutMs)
      })
      const all = Promise.allSettled(runs.map(([, r]) => r.done)).then(() => 'done' as const)
      const how = await Promise.race([all, timeout])
      clearTimeout(timer)
      if (how === 'timeout') {
        const left = [...active.keys()]
        if (left.length) {
          o.log(
            `schedule: ${left.join(', ')} still running ${formatElapsed(stopTimeoutMs)} after the stop; leaving it`,
          )
        }
      }
    },
  }
}
