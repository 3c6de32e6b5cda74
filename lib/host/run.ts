/**
 * Running a CLI (docker build, docker compose) whose output is for a log file, not for parsing.
 *
 * The child gets an argv array (never a shell) and its own process group: a Ctrl-C on the
 * terminal reaches shipshape only (the runbook finishes the current step, then rolls back), and
 * a timeout or an abort stops the whole tree — compose v1 runs `docker build` as a child, the
 * docker CLI runs the compose plugin as one, and a SIGTERM to the first alone leaves the others
 * holding the output pipes.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir, stat } from 'node:fs/promises'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { UnavailableError } from '../errors.js'

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
}

export interface RunLoggedResult {
  exitCode: number | null
  signal: string | null
  timedOut: boolean
  /** the last 20 output lines (stdout and stderr, in order) */
  tail: string[]
  ms: number
}

export const KILL_GRACE_MS = 10_000
const TAIL_LINES = 20
/** a "line" without a newline this long goes to the log as it is; its last KEEP_CHARS are kept */
const MAX_LINE_CHARS = 64 * 1024
const KEEP_CHARS = 4096
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

interface Started {
  child: ChildProcess
  /** settles when the child has exited and its pipes are closed (or given up on) */
  closed: Promise<{ exitCode: number | null; signal: string | null }>
  /** SIGTERM the group now, SIGKILL it KILL_GRACE_MS later (idempotent) */
  stop(): void
  dispose(): void
}

function missingExecutable(file: string, err: NodeJS.ErrnoException): UnavailableError {
  const why = err.code === 'ENOENT' ? 'not found' : 'not executable'
  return new UnavailableError(
    `${file} is not available (${why}${file.includes('/') ? '' : ' on PATH'})`,
    `install ${path.basename(file)} or fix the command in the host config`,
  )
}

async function checkCwd(cwd: string | undefined): Promise<void> {
  if (cwd === undefined) return
  // spawn() reports a missing cwd as ENOENT of the executable: say what really is missing
  const st = await stat(cwd).catch(() => null)
  if (!st?.isDirectory()) throw new Error(`working directory ${cwd} does not exist`)
}

/** Spawns argv in its own process group; rejects (UnavailableError) when it cannot start. */
async function start(
  argv: string[],
  o: { cwd?: string; env: NodeJS.ProcessEnv },
): Promise<Started> {
  const [file, ...args] = argv
  if (!file) throw new Error('run: empty argv')
  await checkCwd(o.cwd)
  const child = spawn(file, args, {
    cwd: o.cwd,
    env: o.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve)
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'ENOENT' || err.code === 'EACCES' ? missingExecutable(file, err) : err),
    )
  })
  let killTimer: NodeJS.Timeout | undefined
  let drainTimer: NodeJS.Timeout | undefined
  let exited = false
  const signalGroup = (sig: NodeJS.Signals) => {
    if (child.pid === undefined) return
    try {
      process.kill(-child.pid, sig)
    } catch {
      // the group is gone already
    }
  }
  const stop = () => {
    if (killTimer) return
    signalGroup('SIGTERM')
    killTimer = setTimeout(() => signalGroup('SIGKILL'), KILL_GRACE_MS)
  }
  const closed = new Promise<{ exitCode: number | null; signal: string | null }>((resolve) => {
    child.once('exit', () => {
      exited = true
      drainTimer = setTimeout(() => {
        child.stdout?.destroy()
        child.stderr?.destroy()
      }, PIPE_DRAIN_MS)
    })
    child.once('close', (code, sig) => resolve({ exitCode: code, signal: sig }))
  })
  const dispose = () => {
    if (killTimer) clearTimeout(killTimer)
    if (drainTimer) clearTimeout(drainTimer)
    // a stop that began must end: what is left of the group gets its SIGKILL now
    if (killTimer && exited) signalGroup('SIGKILL')
  }
  return { child, closed, stop, dispose }
}

// --- lines ----------------------------------------------------------------------------------

/**
 * Cuts one output stream into lines. Complete lines (and the last one, at the end) go to
 * `line` with their terminator; a line longer than MAX_LINE_CHARS goes out in pieces through
 * `raw` and only its last KEEP_CHARS reach `line`.
 */
class LineCutter {
  private buf = ''
  /** chars at the start of buf already written out through raw */
  private written = 0
  private cut = false

  constructor(
    private readonly raw: (text: string) => void,
    private readonly line: (text: string, line: string) => void,
  ) {}

  push(chunk: string): void {
    this.buf += chunk
    let nl: number
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const text = this.buf.slice(this.written, nl + 1)
      const line = this.buf.slice(0, nl).replace(/\r$/, '')
      this.line(text, this.cut ? `…${line.slice(-KEEP_CHARS)}` : line)
      this.buf = this.buf.slice(nl + 1)
      this.written = 0
      this.cut = false
    }
    if (this.buf.length > MAX_LINE_CHARS) {
      this.raw(this.buf.slice(this.written))
      this.buf = this.buf.slice(-KEEP_CHARS)
      this.written = this.buf.length
      this.cut = true
    }
  }

  end(): void {
    if (this.buf === '' && !this.cut) return
    this.push('\n')
  }
}

/** What a terminal would show of a line: the part after its last carriage return. */
const shown = (line: string) => line.slice(line.lastIndexOf('\r') + 1)

function openLog(file: string): Promise<WriteStream> {
  return mkdir(path.dirname(file), { recursive: true, mode: 0o700 }).then(
    () =>
      new Promise<WriteStream>((resolve, reject) => {
        const ws = createWriteStream(file, { flags: 'a', mode: 0o600 })
        ws.once('open', () => {
          ws.off('error', reject)
          resolve(ws)
        })
        ws.once('error', reject)
      }),
  )
}

function closeLog(ws: WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (ws.destroyed) return resolve()
    ws.end(() => resolve())
    ws.once('error', () => resolve())
  })
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
  const log = await openLog(o.log)
  let failure: { error: unknown } | undefined
  let run: Started | undefined
  log.on('error', (error) => {
    failure ??= { error: new Error(`cannot write ${o.log}: ${error.message}`, { cause: error }) }
    run?.stop()
  })
  const tail: string[] = []
  const cwd = o.cwd ?? process.cwd()
  log.write(`--- ${new Date().toISOString()} cwd=${cwd}: ${showArgv(argv)}\n`)

  try {
    run = await start(argv, o)
  } catch (err) {
    log.write(`--- could not start: ${(err as Error).message}\n`)
    await closeLog(log)
    throw err
  }
  const started = run
  let timedOut = false
  const timer =
    o.timeoutMs !== undefined && o.timeoutMs > 0
      ? setTimeout(() => {
          timedOut = true
          started.stop()
        }, o.timeoutMs)
      : undefined
  const onAbort = () => {
    failure ??= { error: o.signal?.reason }
    started.stop()
  }
  o.signal?.addEventListener('abort', onAbort, { once: true })
  if (o.signal?.aborted) onAbort()

  const onLine = o.onLine
  const deliver = (text: string, line: string) => {
    log.write(text)
    tail.push(shown(line))
    if (tail.length > TAIL_LINES) tail.shift()
    if (!onLine || failure) return
    try {
      onLine(line)
    } catch (error) {
      failure = { error }
      started.stop()
    }
  }
  const follow = (stream: Readable | null) => {
    if (!stream) return
    const cutter = new LineCutter((t) => log.write(t), deliver)
    stream.setEncoding('utf8')
    stream.on('data', (d: string) => cutter.push(d))
    stream.once('end', () => cutter.end())
    stream.once('close', () => cutter.end())
    // end() twice is harmless: the buffer is empty after the first
  }
  follow(started.child.stdout)
  follow(started.child.stderr)

  try {
    const { exitCode, signal } = await started.closed
    const ms = Math.round(performance.now() - t0)
    const how =
      exitCode !== null
        ? `exit ${exitCode}`
        : `killed by ${signal ?? 'a signal'}${timedOut ? ` (timeout ${o.timeoutMs} ms)` : ''}`
    log.write(`--- ${how} after ${(ms / 1000).toFixed(1)} s\n`)
    await closeLog(log)
    if (failure) throw failure.error
    return { exitCode, signal, timedOut, tail, ms }
  } finally {
    if (timer) clearTimeout(timer)
    o.signal?.removeEventListener('abort', onAbort)
    started.dispose()
  }
}

// --- short calls whose stdout is the answer -------------------------------------------------

export interface RunCapturedResult {
  exitCode: number | null
  signal: string | null
  timedOut: boolean
  stdout: string
  stderr: string
}

/**
 * Runs argv and collects its output (for `compose version`, `compose config`): no log. Same
 * process-group handling as runLogged; more than `maxBytes` of stdout stops the child and rejects.
 */
export async function runCaptured(
  argv: string[],
  o: { cwd?: string; env: NodeJS.ProcessEnv; timeoutMs: number; maxBytes?: number },
): Promise<RunCapturedResult> {
  const max = o.maxBytes ?? 16 * 1024 * 1024
  const run = await start(argv, o)
  let timedOut = false
  let tooMuch = false
  const out: Buffer[] = []
  const err: Buffer[] = []
  let outBytes = 0
  let errBytes = 0
  run.child.stdout?.on('data', (c: Buffer) => {
    outBytes += c.length
    if (outBytes > max) {
      tooMuch = true
      run.stop()
    } else out.push(c)
  })
  run.child.stderr?.on('data', (c: Buffer) => {
    if ((errBytes += c.length) <= 64 * 1024) err.push(c)
  })
  const timer = setTimeout(() => {
    timedOut = true
    run.stop()
  }, o.timeoutMs)
  try {
    const { exitCode, signal } = await run.closed
    if (tooMuch) throw new Error(`${showArgv(argv)}: more than ${max} bytes of output`)
    return {
      exitCode,
      signal,
      timedOut,
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
    }
  } finally {
    clearTimeout(timer)
    run.dispose()
  }
}
