/**
 * Every failure that should end the process with a documented exit code is one of these.
 * The CLI entry point (scripts/shipshape.ts) is the only place that maps them to exit codes.
 */
export const ExitCode = {
  ok: 0,
  rolledBack: 1,
  usage: 2,
  unavailable: 3,
  refused: 4,
  needsPerson: 5,
} as const
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

export class ShipshapeError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue,
    readonly remedy?: string,
  ) {
    super(message)
    this.name = new.target.name
  }
}

/** The base of a failure class that always ends with one exit code: (message, remedy?). */
function withExitCode(code: ExitCodeValue) {
  return class extends ShipshapeError {
    constructor(message: string, remedy?: string) {
      super(message, code, remedy)
    }
  }
}

/** Bad command-line usage. */
export class UsageError extends withExitCode(ExitCode.usage) {}

/** Invalid configuration; the message names the file, line and key. */
export class ConfigError extends ShipshapeError {
  constructor(
    message: string,
    readonly problems: ConfigProblem[] = [],
  ) {
    super(message, ExitCode.usage)
  }
}

export interface ConfigProblem {
  file: string
  line?: number
  column?: number
  key: string
  message: string
}

/** A required component (Docker engine, rclone, compose) is unavailable. */
export class UnavailableError extends withExitCode(ExitCode.unavailable) {}

/** The engine answered a call with an error, or stopped answering mid-way. */
export class EngineError extends ShipshapeError {
  constructor(
    message: string,
    readonly statusCode?: number,
  ) {
    super(message, ExitCode.unavailable)
  }
}

/** A safety check refused the operation before anything changed. */
export class RefusedError extends withExitCode(ExitCode.refused) {}

/** The operation failed and was rolled back cleanly. */
export class RolledBackError extends withExitCode(ExitCode.rolledBack) {}

/** The operation failed and could not be fully rolled back: a person must look. */
export class NeedsPersonError extends withExitCode(ExitCode.needsPerson) {}

/**
 * A read-only command ran to the end and found something failed (`doctor`: a check failed).
 * Exit 1 like a clean rollback: nothing was changed, nothing needs undoing.
 */
export class ChecksFailedError extends withExitCode(ExitCode.rolledBack) {}

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
