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
 *
 * Every run is bounded (issue 17): past the job's timeoutMs (schedule.timeout) its signal aborts —
 * a CLI job's child is killed as a process group, SIGTERM then SIGKILL — the outcome is one line
 * ("prune: timed out after 2h: killed"), and the host lock is left free: ours is released, and a
 * lock the killed child took itself (prune) is recovered at once, its holder being dead. A child
 * that does not even die of SIGKILL is left behind after killWaitMs: the scheduler goes on.
 */
import { createTask, type Logger, type ScheduledTask } from 'node-cron'
import {
  describeFailure,
  exitCodeOf,
  oneLine,
  RefusedError,
  UsageError,
  ExitCode,
} from '../errors.js'
import { formatDuration } from '../config/units.js'
import { acquireLock, assertLockFree, type HostLock } from '../host/lock.js'
import { KILL_GRACE_MS } from '../host/run.js'

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
  /** the longest run (schedule.timeout); past it the run is aborted. None: unbounded. */
  timeoutMs?: number
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
  status: 'ok' | 'failed' | 'skipped' | 'stopped' | 'timed-out'
  /** what `shipshape <job>` would exit with: 0 ok, 4 lock held, the error's class otherwise */
  exitCode: number
  ms: number
}

export interface RunJobOptions {
  lock: JobLock
  log: (line: string) => void
  signal: AbortSignal
  now?: () => Date
  /**
   * after a timeout's abort, how long to wait for the job to end (its child's SIGTERM, the
   * SIGKILL after the grace, the exit) before going on without it; default the grace + 5 s
   */
  killWaitMs?: number
}

/** A job's run passed its timeout (the abort reason its signal carries). */
export class JobTimeoutError extends Error {
  constructor(
    readonly job: string,
    readonly timeoutMs: number,
  ) {
    super(`${job} timed out after ${formatDuration(timeoutMs)}`)
    this.name = 'JobTimeoutError'
  }
}

/** Seconds for a log line: "2.1 s", "3 min 12 s". */
export function formatElapsed(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  const s = Math.round(ms / 1000)
  return `${Math.floor(s / 60)} min ${s % 60} s`
}

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
  // the job's own signal: aborted by the caller's (stop) or by the timeout
  const controller = new AbortController()
  const onStop = () => controller.abort(o.signal.reason)
  o.signal.addEventListener('abort', onStop, { once: true })
  let timedOut: JobTimeoutError | undefined
  let leftBehind = false
  const killWaitMs = o.killWaitMs ?? KILL_GRACE_MS + 5_000
  const timer =
    job.timeoutMs !== undefined && job.timeoutMs > 0
      ? setTimeout(() => {
          timedOut = new JobTimeoutError(job.name, job.timeoutMs ?? 0)
          controller.abort(timedOut)
        }, job.timeoutMs)
      : undefined
  try {
    o.signal.throwIfAborted()
    const note = await untilGivenUp(
      job.run(controller.signal),
      controller.signal,
      killWaitMs,
      () => (leftBehind = true),
    )
    return done(
      'ok',
      ExitCode.ok,
      `ok in ${formatElapsed(elapsed())}${note ? `: ${oneLine(note)}` : ''}`,
    )
  } catch (err) {
    if (timedOut) {
      if (job.lock === 'check' && !leftBehind) await freeLockOf(job, o)
      return done(
        'timed-out',
        ExitCode.rolledBack,
        `timed out after ${formatDuration(timedOut.timeoutMs)}: ${
          leftBehind
            ? `killed, but it has not ended ${formatElapsed(killWaitMs)} later: left behind`
            : 'killed'
        }`,
      )
    }
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
    clearTimeout(timer)
    o.signal.removeEventListener('abort', onStop)
    await lock?.release().catch((err: unknown) => {
      o.log(`${job.name}: could not release the host lock: ${describeFailure(err)}`)
    })
  }
}

/**
 * The job's promise, or — once its signal is aborted and it has not ended waitMs later — a
 * rejection with the abort reason (after onGiveUp): a child stuck beyond SIGKILL must not hold
 * the scheduler.
 */
function untilGivenUp<T>(
  work: Promise<T>,
  signal: AbortSignal,
  waitMs: number,
  onGiveUp: () => void,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  const givenUp = new Promise<never>((_, reject) => {
    onAbort = () => {
      timer = setTimeout(() => {
        work.catch(() => {}) // it may still end; nobody waits for it any more
        onGiveUp()
        reject(signal.reason as Error)
      }, waitMs)
    }
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
  })
  return Promise.race([work, givenUp]).finally(() => {
    clearTimeout(timer)
    if (onAbort) signal.removeEventListener('abort', onAbort)
  })
}

/**
 * After a timeout: a job that takes the lock itself (its child, killed now) may have left it
 * behind. Taken and released at once: a dead holder's lock is recovered (the lock's warn says
 * so); a live holder is named in one line and left alone.
 */
async function freeLockOf(job: Job, o: RunJobOptions): Promise<void> {
  try {
    const l = await o.lock.acquire(`schedule ${job.name} (after its timeout)`)
    await l.release()
  } catch (err) {
    o.log(`${job.name}: the host lock is still held after the timeout: ${describeFailure(err)}`)
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
