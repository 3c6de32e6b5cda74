import { fstatSync } from 'node:fs'
import ora, { type Ora } from 'ora'

/**
 * Where a command writes: human text to stderr, machine output (JSON, Markdown) to stdout.
 * Spinners only on a TTY and never with --json or --quiet.
 */
export interface Output {
  readonly json: boolean
  readonly quiet: boolean
  readonly interactive: boolean
  /** Human progress/info line (stderr); silenced by --quiet. */
  info(line: string): void
  /** Warning (stderr); shown even with --quiet. */
  warn(line: string): void
  /** Human report body (stderr); silenced by --quiet. */
  human(text: string): void
  /** Machine output on stdout (JSON or Markdown). */
  data(text: string): void
  spinner(text: string): Spinner
}

export interface Spinner {
  update(text: string): void
  succeed(text?: string): void
  fail(text?: string): void
  stop(): void
}

export interface OutputOptions {
  json?: boolean
  quiet?: boolean
  stdout?: NodeJS.WritableStream
  stderr?: NodeJS.WritableStream & { isTTY?: boolean }
}

/**
 * Whether stderr is the systemd journal: $JOURNAL_STREAM ("DEV:INODE", set by systemd for a unit's
 * stdout/stderr) names the very stream fd 2 is (systemd.exec(5)); a child that inherited the
 * variable but writes elsewhere is not.
 */
export function stderrIsJournal(
  env: NodeJS.ProcessEnv = process.env,
  stat: () => { dev: number | bigint; ino: number | bigint } = () => fstatSync(2),
): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '')
  if (!m) return false
  try {
    const st = stat()
    return String(st.dev) === m[1] && String(st.ino) === m[2]
  } catch {
    return false
  }
}

/** The syslog priority prefix the journal reads from a line (sd-daemon(3)): warning 4, error 3. */
export function priorityPrefix(level: 'warning' | 'error', journal: boolean): string {
  return journal ? (level === 'warning' ? '<4>' : '<3>') : ''
}

const noSpinner: Spinner = { update() {}, succeed() {}, fail() {}, stop() {} }

export function createOutput(opts: OutputOptions = {}): Output {
  const stdout = opts.stdout ?? process.stdout
  const stderr = opts.stderr ?? process.stderr
  const json = Boolean(opts.json)
  const quiet = Boolean(opts.quiet)
  // a pseudo-terminal with no size (columns 0) makes ora redraw endlessly: no spinner there
  const columns = (stderr as { columns?: number }).columns
  const interactive = Boolean(stderr.isTTY) && !process.env.CI && columns !== 0
  const line = (s: string) => stderr.write(s.endsWith('\n') ? s : s + '\n')
  // only the process's own stderr can be the journal
  const warning = priorityPrefix('warning', !opts.stderr && stderrIsJournal())
  return {
    json,
    quiet,
    interactive,
    info: (s) => {
      if (!quiet) line(s)
    },
    warn: (s) => line(`${warning}warning: ${s}`),
    human: (s) => {
      if (!quiet) line(s)
    },
    data: (s) => {
      stdout.write(s.endsWith('\n') ? s : s + '\n')
    },
    spinner(text) {
      if (!interactive || json || quiet) return noSpinner
      const s: Ora = ora({ text, stream: stderr as NodeJS.WriteStream }).start()
      return {
        update: (t) => {
          s.text = t
        },
        succeed: (t) => {
          s.succeed(t)
        },
        fail: (t) => {
          s.fail(t)
        },
        stop: () => {
          s.stop()
        },
      }
    },
  }
}
