/**
 * The jobs `shipshape schedule` runs: the same commands as the systemd units (lib/systemd's
 * jobArgv — `shipshape --quiet report --out <stateDir>/reports --notify`, `shipshape prune
 * --json`, which applies only with prune.apply: true), each as a child of the built CLI. The report command composes more than lib/report
 * offers (report.keep, the webhook notice) and prune takes the host lock and writes its own record:
 * a child is exactly what a timer would run, can be stopped (its process group gets SIGTERM), and
 * gives its memory back after each run of a process that lives for months.
 */
import { formatBytes, type Config } from '../config/index.js'
import { KILL_GRACE_MS, LineCutter, spawnChild, type Child } from '../host/run.js'
import { jobArgv } from '../config/jobs.js'
import { oneLine } from '../errors.js'

export type JobName = 'report' | 'prune' | 'update'

/** Most warning lines one run passes on to the log (the rest are counted). */
const MAX_WARNINGS = 20

function warningLog(job: string, log: (line: string) => void) {
  let n = 0
  return {
    warn(w: string) {
      if (++n <= MAX_WARNINGS) log(`${job}: warning: ${oneLine(w)}`)
    },
    end() {
      if (n > MAX_WARNINGS) log(`${job}: … and ${n - MAX_WARNINGS} more warning(s)`)
    },
  }
}

/** A CLI child that failed: its exit code is the job's exit-code class. */
export class ChildExitError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message)
    this.name = 'ChildExitError'
  }
}

export interface CliJobOptions {
  /** the job's name, for its lines */
  name: string
  /** [file, ...args]: never a shell string */
  argv: string[]
  env?: NodeJS.ProcessEnv
  log: (line: string) => void
  /** a short note from the child's stdout for the "ok" line */
  summarize?: (stdout: string) => string | undefined
  /** after the abort's SIGTERM, SIGKILL this much later (default 10 s) */
  killGraceMs?: number
}

/**
 * What a job runs: the systemd unit's argv, with this run's --config and --docker-host (the child
 * must see the same config and engine as the scheduler).
 */
export function jobCommand(
  job: JobName,
  o: {
    execPath: string
    cliPath: string
    config: Config
    configFile?: string | undefined
    dockerHost?: string | undefined
  },
): string[] {
  const [node = o.execPath, cli = o.cliPath, ...rest] = jobArgv(job, {
    nodePath: o.execPath,
    cliPath: o.cliPath,
    config: o.config,
  })
  return [
    node,
    cli,
    ...(o.configFile ? ['--config', o.configFile] : []),
    ...(o.dockerHost ? ['--docker-host', o.dockerHost] : []),
    ...rest,
  ]
}

/**
 * The environment for a job's child: this process's, minus the secrets the config names that the
 * job has no use for — health-check passwords always, the webhook URL except for the report (its
 * notice); update keeps the health-check passwords (it runs the checks). PITFALLS: every child
 * inherits the environment.
 */
export function childEnv(
  job: JobName,
  config: Config,
  base: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  const env = { ...base }
  if (job !== 'report') delete env[config.notify.webhookEnv]
  // update runs the services' health checks: their passwords stay for it
  if (job === 'update') return env
  for (const c of [...Object.values(config.services), ...Object.values(config.assets)]) {
    if (c.health?.passwordEnv) delete env[c.health.passwordEnv]
  }
  return env
}

/** "pruned, 4 candidate(s), 1.2 GB reclaimed" from prune's JSON; undefined when it is not that. */
export function summarizePrune(stdout: string): string | undefined {
  let r: {
    outcome?: unknown
    totals?: { count?: unknown }
    reclaimedBytes?: unknown
    failures?: unknown[]
  }
  try {
    r = JSON.parse(stdout) as typeof r
  } catch {
    return undefined
  }
  if (!r || typeof r.outcome !== 'string') return undefined
  const parts: string[] = [r.outcome]
  if (typeof r.totals?.count === 'number' && r.outcome !== 'nothing-to-do') {
    parts.push(`${r.totals.count} candidate(s)`)
  }
  if (typeof r.reclaimedBytes === 'number') parts.push(`${formatBytes(r.reclaimedBytes)} reclaimed`)
  if (Array.isArray(r.failures) && r.failures.length) parts.push(`${r.failures.length} failed`)
  return parts.join(', ')
}

/** What the child said last on stderr: its error line (shipshape's, else commander's), else any. */
function lastWords(o: CliJobOptions) {
  const warnings = warningLog(o.name, o.log)
  let lastError = ''
  let usageError = ''
  let lastLine = ''
  const take = (line: string) => {
    const l = line.trim()
    if (!l) return
    if (l.startsWith('shipshape: ')) lastError = l.slice('shipshape: '.length)
    else if (l.startsWith('error: ')) usageError = l
    else if (l.startsWith('warning: ')) warnings.warn(l.slice('warning: '.length))
    else lastLine = l
  }
  return {
    cutter: new LineCutter(
      () => {},
      (_text, line) => take(line),
    ),
    end(): string {
      warnings.end()
      return lastError || usageError || lastLine
    },
  }
}

/**
 * Runs argv through the process runner (host/run.ts: its own process group; an abort stops the
 * whole tree, SIGTERM then SIGKILL killGraceMs later) and resolves with its note, or rejects
 * with ChildExitError naming what it said last.
 */
export function cliJob(o: CliJobOptions): (signal: AbortSignal) => Promise<string | undefined> {
  return async (signal) => {
    signal.throwIfAborted()
    if (!o.argv[0]) throw new Error('cliJob: empty argv')
    const child: Child = await spawnChild(o.argv, {
      env: o.env ?? process.env,
      killGraceMs: o.killGraceMs ?? KILL_GRACE_MS,
    })
    const said = lastWords(o)
    const stdout: Buffer[] = []
    let stdoutBytes = 0
    child.stdout?.on('data', (c: Buffer) => {
      stdoutBytes += c.length
      if (stdoutBytes <= 16 * 1024 * 1024) stdout.push(c)
    })
    child.stderr?.setEncoding('utf8')
    child.stderr?.on('data', (c: string) => said.cutter.push(c))
    const onAbort = () => child.stop()
    signal.addEventListener('abort', onAbort, { once: true })
    if (signal.aborted) onAbort()
    let ended: Awaited<Child['closed']>
    try {
      ended = await child.closed
    } finally {
      signal.removeEventListener('abort', onAbort)
      child.dispose()
    }
    said.cutter.end()
    const last = said.end()
    if (signal.aborted) throw signal.reason
    const { exitCode: code, signal: sig } = ended
    if (code === 0) return o.summarize?.(Buffer.concat(stdout).toString('utf8'))
    const how = code === null ? `killed by ${sig ?? 'a signal'}` : `exit ${code}`
    throw new ChildExitError(last ? oneLine(last) : `${o.name} ended (${how})`, code ?? 1)
  }
}
