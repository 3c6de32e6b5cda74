import { fileURLToPath } from 'node:url'
import { Command } from 'commander'
import { withCommand, type CommandContext } from '../lib/cli/command.js'
import { EMBEDDED_DEFAULT, type Config } from '../lib/config/index.js'
import { openEngine } from '../lib/docker/open.js'
import { UsageError } from '../lib/errors.js'
import { checkStateDirs } from '../lib/host/private.js'
import { watchStarts } from '../lib/schedule/events.js'
import { lastUsedPath } from '../lib/state/last-used.js'
import { childEnv, cliJob, jobCommand, summarizePrune, type JobName } from '../lib/schedule/jobs.js'
import { hostLock, runJob, startScheduler, type Job } from '../lib/schedule/scheduler.js'

const JOB_NAMES: readonly JobName[] = ['report', 'prune', 'update']

/** One line per event on stdout: journald adds the time and keeps it. */
const log = (line: string) => {
  process.stdout.write(line + '\n')
}

function makeJob(
  name: JobName,
  config: Config,
  source: string,
  dockerHost: string | undefined,
): Job {
  return {
    name,
    cron: config.schedule[name] ?? '',
    // prune and update take the host lock themselves: here it only has to be free; the report
    // (read-only) takes none, so the scheduler holds it for the run
    lock: name === 'report' ? 'hold' : 'check',
    // past schedule.timeout the child's process group is killed and the next job may run
    timeoutMs: config.schedule.timeout,
    run: cliJob({
      name,
      argv: jobCommand(name, {
        execPath: process.execPath,
        cliPath: fileURLToPath(new URL('./shipshape.js', import.meta.url)),
        config,
        configFile: source === EMBEDDED_DEFAULT ? undefined : source,
        dockerHost,
      }),
      env: childEnv(name, config),
      log,
      ...(name === 'prune' ? { summarize: summarizePrune } : {}),
    }),
  }
}

/**
 * SIGTERM/SIGINT: `onStop` once (the caller stops cleanly); a second one: the locks this process
 * holds are released and that signal is re-raised with its default action — gone at once (a job's
 * child, in its own process group, is left to finish).
 */
function trapStop(onStop: (sig: NodeJS.Signals) => void, releaseSync: () => void): () => void {
  let first: NodeJS.Signals | null = null
  const handler = (sig: NodeJS.Signals) => {
    if (!first) {
      first = sig
      log(`schedule: ${sig}: stopping (${sig} again exits at once)`)
      onStop(sig)
      return
    }
    log(`schedule: ${sig} again: exiting now`)
    dispose()
    releaseSync()
    process.kill(process.pid, sig)
  }
  const dispose = () => {
    process.off('SIGTERM', handler)
    process.off('SIGINT', handler)
  }
  process.on('SIGTERM', handler)
  process.on('SIGINT', handler)
  return dispose
}

export function scheduleCommand(): Command {
  return new Command('schedule')
    .description(
      'Run the configured jobs (schedule.report, schedule.prune, schedule.update) on their cron expressions until stopped, and record container starts for prune’s least-recently-used rule',
    )
    .option(
      '--once <job>',
      `run one job now (${JOB_NAMES.join(' or ')}) and exit with its exit code`,
    )
    .addHelpText(
      'after',
      [
        '',
        'Jobs (what the systemd timers run, as child processes): report = `shipshape --quiet report',
        '--out <stateDir>/reports --notify`; prune = `shipshape prune --json` (applies with prune.apply: true);',
        'update = `shipshape --quiet update --auto --yes` (services with update: apply).',
        'A firing is skipped while a job (this one or the other) still runs or another shipshape run holds the host lock.',
        'A job running longer than schedule.timeout (default 2h) is killed (its process group: SIGTERM, then SIGKILL)',
        'and the lock it held is freed; the next firings run as usual.',
        'Log: one line per event on stdout (journald adds the time).',
        'Exit codes: 0 stopped by SIGTERM/SIGINT, 2 bad usage or config (no job configured),',
        '4 refused (stateDir/backupDir writable by other users, a symlink, or not owned by this user);',
        'with --once: the job’s own (0 ok, 1 failed, 3 engine unavailable, 4 lock held, …).',
      ].join('\n'),
    )
    .action(withCommand((ctx, opts: { once?: string }) => schedule(ctx, opts)))
}

async function schedule(ctx: CommandContext, opts: { once?: string }): Promise<void> {
  const { config } = ctx
  // it writes last-used.json and takes the lock in stateDir: refused (exit 4) when others
  // could write stateDir or backupDir, before any job runs
  await checkStateDirs(config)
  const lock = hostLock(config.stateDir, (w) => log(`schedule: warning: ${w}`))
  if (opts.once !== undefined) return runOnce(ctx, opts.once, lock)
  const { source } = ctx.loaded
  const jobs = JOB_NAMES.filter((n) => config.schedule[n] !== undefined).map((n) =>
    makeJob(n, config, source, ctx.g.dockerHost),
  )
  if (!jobs.length) {
    throw new UsageError(
      `no job is scheduled in ${source}: schedule.report and schedule.prune are both unset`,
      'set schedule.report and/or schedule.prune to a cron expression, e.g. schedule: { report: "0 2 * * *", prune: "30 3 * * 0" }',
    )
  }
  let stop!: () => void
  const stopped = new Promise<void>((resolve) => (stop = resolve))
  const dispose = trapStop(() => stop(), lock.releaseSync)
  try {
    const scheduler = startScheduler({ jobs, timezone: config.schedule.timezone, lock, log })
    const watching = new AbortController()
    const watcher = watchStarts(
      () =>
        openEngine({
          config,
          dockerHost: ctx.g.dockerHost,
          warn: (w) => log(`events: warning: ${w}`),
        }),
      { file: lastUsedPath(config.stateDir), log, signal: watching.signal },
    )
    const tz = config.schedule.timezone ? ` (time zone ${config.schedule.timezone})` : ''
    log(
      `schedule: started (pid ${process.pid}, config ${source}): ${jobs
        .map((j) => `${j.name} "${j.cron}"`)
        .join(', ')}${tz}`,
    )
    await stopped
    await scheduler.stop()
    watching.abort()
    await watcher
    log('schedule: stopped')
  } finally {
    dispose()
  }
}

/** --once JOB: that job now, its exit code the command's. */
async function runOnce(
  ctx: CommandContext,
  once: string,
  lock: ReturnType<typeof hostLock>,
): Promise<void> {
  const name = JOB_NAMES.find((n) => n === once)
  if (!name) {
    throw new UsageError(`--once: no job '${once}'`, `name one of: ${JOB_NAMES.join(', ')}`)
  }
  const controller = new AbortController()
  const dispose = trapStop(() => controller.abort(), lock.releaseSync)
  try {
    const job = makeJob(name, ctx.config, ctx.loaded.source, ctx.g.dockerHost)
    const outcome = await runJob(job, { lock, log, signal: controller.signal })
    process.exitCode = outcome.exitCode
  } finally {
    dispose()
  }
}
