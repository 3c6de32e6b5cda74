/**
 * THE process runner: every child process shipshape starts goes through this module (an ESLint
 * rule forbids node:child_process elsewhere) — docker build, compose, rclone, zstd, du,
 * systemctl, the schedule's jobs.
 *
 * It runs on zx's `$`: the argv array is quoted by zx (never a shell string built by hand), the
 * child is `exec`ed by the shell so its pid is the command's own, output is not thrown on
 * (`nothrow`), and a stop signals the whole process tree (zx's `kill`: every descendant, then the
 * group). On top of zx, this module keeps what shipshape has promised since before it:
 *
 * - its own process group (`detached`): a Ctrl-C on the terminal reaches shipshape only (the
 *   runbook finishes the current step, then rolls back), and a timeout or an abort stops the
 *   whole tree — compose v1 runs `docker build` as a child, the docker CLI runs the compose
 *   plugin as one, and a SIGTERM to the first alone leaves the others holding the output pipes;
 * - SIGTERM, then SIGKILL after a grace (zx's timeout sends one signal only);
 * - a missing executable or working directory said as such (through a shell both would be
 *   exit 127), an UnavailableError for the executable;
 * - output to a 0600 log, cut into lines, the last 20 kept (runLogged); output collected with a
 *   cap (runCaptured); nothing kept in memory that nobody reads (zx's store is replaced);
 * - `redact`: every text the runner writes to a log or puts in an error passes through it
 *   (rclone's connection strings).
 *
 * Pipes (zstd reading or writing a file descriptor, a tar fed to its stdin) use spawnChild().
 */
import { stat } from 'node:fs/promises'
import path from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { $, ps, which, type Options, type ProcessOutput, type ProcessPromise } from 'zx'
import { UnavailableError } from '../errors.js'
import { closeLog, follow, LineCutter, openLog, shown, TAIL_LINES } from './run-output.js'

export { LineCutter } from './run-output.js'

export const KILL_GRACE_MS = 10_000
/** after the child exits, how long its output pipes may stay open (a grandchild holding them) */
const PIPE_DRAIN_MS = 5_000

/** `a b` → `'a b'`: argv shown in a log line, readable and unambiguous. */
export function showArgv(argv: string[]): string {
  return argv
    .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(' ')
}

/**
 * The environment for a docker/compose child talking to the engine at `address` (e.g.
 * unix:///run/docker.sock, tcp://h:2376, ssh://u@h): DOCKER_HOST set, DOCKER_CONTEXT removed, and
 * every variable named in `drop` removed (health-check secrets the child has no use for).
 */
export function dockerChildEnv(
  address: string,
  base: NodeJS.ProcessEnv,
  drop: string[] = [],
): NodeJS.ProcessEnv {
  if (!address) throw new Error('dockerChildEnv: no engine address')
  const env: NodeJS.ProcessEnv = { ...base }
  // a context would win over nothing but DOCKER_HOST; removed so no reader of the env doubts it
  delete env.DOCKER_CONTEXT
  for (const name of drop) delete env[name]
  // the docker CLI wants a scheme; shipshape also accepts a bare socket path
  env.DOCKER_HOST = address.startsWith('/') ? `unix://${address}` : address
  return env
}

// --- the child ------------------------------------------------------------------------------

/** The executable could not be started: missing, or not executable. */
export class MissingExecutableError extends UnavailableError {
  constructor(
    readonly file: string,
    readonly why: 'not found' | 'not executable',
  ) {
    super(
      `${file} is not available (${why}${file.includes('/') ? '' : ' on PATH'})`,
      `install ${path.basename(file)} or fix the command in the host config`,
    )
    this.name = 'MissingExecutableError'
  }
}

type StdioIn = 'ignore' | 'pipe' | number
type StdioOut = 'ignore' | 'pipe' | number

export interface SpawnOptions {
  cwd?: string
  /** the full child environment (default: this process's) */
  env?: NodeJS.ProcessEnv
  /** default 'ignore'; a number is a file descriptor the child reads */
  stdin?: StdioIn
  /** default 'pipe'; a number is a file descriptor the child writes */
  stdout?: StdioOut
  /** default 'pipe' */
  stderr?: 'ignore' | 'pipe'
  /** between stop()'s SIGTERM and its SIGKILL (default KILL_GRACE_MS) */
  killGraceMs?: number
}

export interface Ended {
  exitCode: number | null
  signal: string | null
}

export interface Child {
  pid: number
  stdin: Writable | null
  stdout: Readable | null
  stderr: Readable | null
  /** settles when the child has exited and its pipes are closed (or given up on) */
  closed: Promise<Ended>
  /** SIGTERM the tree and group now, SIGKILL it killGraceMs later (idempotent) */
  stop(): void
  /** after `closed`: timers cleared; a stop that began ends with SIGKILL to what is left */
  dispose(): void
}

/** zx keeps every chunk of output for its ProcessOutput; the runner reads the pipes itself. */
class Discard<T> extends Array<T> {
  override push(): number {
    return 0
  }
}

async function checkCwd(cwd: string | undefined): Promise<void> {
  if (cwd === undefined) return
  const st = await stat(cwd).catch(() => null)
  if (!st?.isDirectory()) throw new Error(`working directory ${cwd} does not exist`)
}

/** what execvp searches when the environment has no PATH */
const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin'

/** The executable as the child's PATH finds it; MissingExecutableError when there is none. */
async function resolveExecutable(file: string, env: NodeJS.ProcessEnv): Promise<string> {
  const found = await which(file, { path: env.PATH ?? DEFAULT_PATH, nothrow: true })
  if (found) return file.includes('/') ? file : found
  const exists = file.includes('/') && (await stat(file).catch(() => null))?.isFile()
  throw new MissingExecutableError(file, exists ? 'not executable' : 'not found')
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig)
  } catch {
    // the group is gone already
  }
}

/**
 * The whole tree: its descendants are listed first (zx's `ps.tree`, through their parents), then
 * the group is signalled at once (a shell whose child dies first would exit on its own, with
 * another status), then the descendants that left the group (a session of their own). Without
 * `ps`, the group alone.
 */
function signalTree(pid: number, sig: NodeJS.Signals): void {
  ps.tree({ pid, recursive: true }).then(
    (tree) => {
      signalGroup(pid, sig)
      for (const p of tree) {
        try {
          process.kill(Number(p.pid), sig)
        } catch {
          // gone with the group
        }
      }
    },
    () => signalGroup(pid, sig),
  )
}

/**
 * Starts argv (an array: zx quotes it, the shell execs it) in its own process group. Rejects
 * with MissingExecutableError when the executable is not there, an Error for a missing cwd.
 */
export async function spawnChild(argv: string[], o: SpawnOptions = {}): Promise<Child> {
  const [file, ...args] = argv
  if (!file) throw new Error('run: empty argv')
  // zx starts a bash that execs the command: a BASH_ENV/ENV in root's environment would be sourced
  // by that shell first, so neither reaches it (the command itself never needed them)
  const { BASH_ENV: _bashEnv, ENV: _env, ...env } = o.env ?? process.env
  await checkCwd(o.cwd)
  const exe = await resolveExecutable(file, env)
  const opts: Partial<Options> = {
    cwd: o.cwd ?? process.cwd(),
    env,
    nothrow: true,
    quiet: true,
    verbose: false,
    detached: true,
    prefix: 'exec ',
    postfix: '',
    stdio: [o.stdin ?? 'ignore', o.stdout ?? 'pipe', o.stderr ?? 'pipe'],
    store: { stdout: new Discard(), stderr: new Discard(), stdall: new Discard() },
    log: () => {},
  }
  const p: ProcessPromise = $(opts)`${[exe, ...args]}`
  const child = p.child
  if (!child?.pid) {
    const out = await p
    throw out.cause ?? new Error(`${showArgv(argv)}: could not start`)
  }
  const pid = child.pid
  const grace = o.killGraceMs ?? KILL_GRACE_MS
  let killTimer: NodeJS.Timeout | undefined
  let drainTimer: NodeJS.Timeout | undefined
  let exited = false
  child.once('exit', () => {
    exited = true
    drainTimer = setTimeout(() => {
      child.stdout?.destroy()
      child.stderr?.destroy()
    }, PIPE_DRAIN_MS)
  })
  const closed = p.then((out: ProcessOutput): Ended => {
    if (out.cause && out.exitCode === null && out.signal === null) throw out.cause
    return { exitCode: out.exitCode, signal: out.signal }
  })
  return {
    pid,
    stdin: child.stdin,
    stdout: child.stdout,
    stderr: child.stderr,
    closed,
    stop() {
      if (killTimer) return
      // the tree before the group: a descendant in a session of its own is found through its
      // parent, which must still be alive for that
      signalTree(pid, 'SIGTERM')
      killTimer = setTimeout(() => signalTree(pid, 'SIGKILL'), grace)
    },
    dispose() {
      if (killTimer) clearTimeout(killTimer)
      if (drainTimer) clearTimeout(drainTimer)
      // a stop that began must end: what is left of the group gets its SIGKILL now
      if (killTimer && exited) signalGroup(pid, 'SIGKILL')
    },
  }
}

/**
 * Bounds a started child: stop() at `timeoutMs`, and on `signal`'s abort (failure = its reason).
 * `fail(err)` stops it too and keeps the first failure; `done()` clears the timer and listener.
 */
function bound(
  child: Child,
  o: { timeoutMs?: number; signal?: AbortSignal },
): {
  timedOut(): boolean
  failure(): { error: unknown } | undefined
  fail(e: unknown): void
  done(): void
} {
  let timedOut = false
  let failure: { error: unknown } | undefined
  const timer =
    o.timeoutMs !== undefined && o.timeoutMs > 0
      ? setTimeout(() => {
          timedOut = true
          child.stop()
        }, o.timeoutMs)
      : undefined
  const fail = (error: unknown) => {
    failure ??= { error }
    child.stop()
  }
  const onAbort = () => fail(o.signal?.reason)
  o.signal?.addEventListener('abort', onAbort, { once: true })
  if (o.signal?.aborted) onAbort()
  return {
    timedOut: () => timedOut,
    failure: () => failure,
    fail,
    done() {
      if (timer) clearTimeout(timer)
      o.signal?.removeEventListener('abort', onAbort)
    },
  }
}

// --- runs whose output goes to a log --------------------------------------------------------

export interface RunLoggedOptions {
  cwd?: string
  /** the full child environment (the caller decides what it holds) */
  env: NodeJS.ProcessEnv
  /** append stdout+stderr, interleaved as they come, to this file (created 0600, parent dir created 0700) */
  log: string
  /** each complete output line (for a spinner on a TTY); never called with a partial line */
  onLine?: (line: string) => void
  /** SIGTERM, then SIGKILL 10 s later; result says timedOut */
  timeoutMs?: number
  /** same as timeout when aborted; runLogged then rejects with the signal's reason once the child is gone */
  signal?: AbortSignal
  /** applied to everything written to the log (the header's argv, the output) */
  redact?: (text: string) => string
}

export interface RunLoggedResult {
  exitCode: number | null
  signal: string | null
  timedOut: boolean
  /** the last 20 output lines (stdout and stderr, in order) */
  tail: string[]
  ms: number
}

/**
 * Runs argv with its output appended to `o.log` (a header line first: time, cwd, argv). Resolves
 * with how it ended, whatever the exit code; rejects when the executable is missing
 * (UnavailableError), the log cannot be written, `onLine` throws (the child is stopped first) or
 * the signal aborts (after the child is gone).
 */
export async function runLogged(argv: string[], o: RunLoggedOptions): Promise<RunLoggedResult> {
  o.signal?.throwIfAborted()
  const t0 = performance.now()
  const redact = o.redact ?? ((t: string) => t)
  const log = await openLog(o.log)
  let logError: Error | undefined
  let onLogError = (error: Error): void => {
    logError ??= error
  }
  log.on('error', (error) => onLogError(error))
  const write = (t: string) => log.write(redact(t))
  const tail: string[] = []
  write(`--- ${new Date().toISOString()} cwd=${o.cwd ?? process.cwd()}: ${showArgv(argv)}\n`)
  let child: Child
  try {
    child = await spawnChild(argv, { cwd: o.cwd, env: o.env })
  } catch (err) {
    write(`--- could not start: ${(err as Error).message}\n`)
    await closeLog(log)
    throw err
  }
  const b = bound(child, o)
  onLogError = (error) =>
    b.fail(new Error(`cannot write ${o.log}: ${error.message}`, { cause: error }))
  if (logError) onLogError(logError)
  const deliver = (text: string, line: string) => {
    write(text)
    tail.push(shown(line))
    if (tail.length > TAIL_LINES) tail.shift()
    if (!o.onLine || b.failure()) return
    try {
      o.onLine(line)
    } catch (error) {
      b.fail(error)
    }
  }
  follow(child.stdout, new LineCutter(write, deliver))
  follow(child.stderr, new LineCutter(write, deliver))
  try {
    const { exitCode, signal } = await child.closed
    const ms = Math.round(performance.now() - t0)
    const timedOut = b.timedOut()
    const how =
      exitCode !== null
        ? `exit ${exitCode}`
        : `killed by ${signal ?? 'a signal'}${timedOut ? ` (timeout ${o.timeoutMs} ms)` : ''}`
    write(`--- ${how} after ${(ms / 1000).toFixed(1)} s\n`)
    await closeLog(log)
    const failure = b.failure()
    if (failure) throw failure.error
    return { exitCode, signal, timedOut, tail, ms }
  } finally {
    b.done()
    child.dispose()
  }
}

// --- runs whose stdout is the answer --------------------------------------------------------

export interface RunCapturedOptions extends SpawnOptions {
  timeoutMs: number
  /** stdout beyond this stops the child and rejects (default 16 MiB) */
  maxBytes?: number
  /** stderr kept (default 64 KiB); the rest is dropped */
  maxStderrBytes?: number
  /** same as timeout when aborted; rejects with the signal's reason once the child is gone */
  signal?: AbortSignal
  /** stdout a line at a time instead of collected (stdout is '' then); a throw stops the child */
  onStdoutLine?: (line: string) => void
  /** how messages name the command (default: its argv) */
  show?: string
  /** applied to the stderr returned */
  redact?: (text: string) => string
}

export interface RunCapturedResult extends Ended {
  timedOut: boolean
  stdout: string
  stderr: string
}

/**
 * Runs argv and collects its output (`compose version`, `rclone lsjson`, `du`, `systemctl`): no
 * log. Same process-group handling as runLogged; more than `maxBytes` of stdout stops the child
 * and rejects, as do an abort and a throwing onStdoutLine (once the child is gone).
 */
export async function runCaptured(
  argv: string[],
  o: RunCapturedOptions,
): Promise<RunCapturedResult> {
  o.signal?.throwIfAborted()
  const max = o.maxBytes ?? 16 * 1024 * 1024
  const maxErr = o.maxStderrBytes ?? 64 * 1024
  const child = await spawnChild(argv, o)
  const b = bound(child, o)
  const out: Buffer[] = []
  const err: Buffer[] = []
  let outBytes = 0
  let errBytes = 0
  const onLine = o.onStdoutLine
  if (onLine) {
    const cutter = new LineCutter(
      () => {},
      (_text, line) => {
        if (b.failure()) return
        try {
          onLine(line)
        } catch (e) {
          b.fail(e)
        }
      },
    )
    follow(child.stdout, cutter)
  } else {
    child.stdout?.on('data', (c: Buffer) => {
      outBytes += c.length
      if (outBytes > max) {
        b.fail(new Error(`${o.show ?? showArgv(argv)}: more than ${max} bytes of output`))
      } else out.push(c)
    })
  }
  child.stderr?.on('data', (c: Buffer) => {
    if ((errBytes += c.length) <= maxErr) err.push(c)
  })
  try {
    const { exitCode, signal } = await child.closed
    const failure = b.failure()
    if (failure) throw failure.error
    const stderr = Buffer.concat(err).toString('utf8')
    return {
      exitCode,
      signal,
      timedOut: b.timedOut(),
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: o.redact ? o.redact(stderr) : stderr,
    }
  } finally {
    b.done()
    child.dispose()
  }
}
