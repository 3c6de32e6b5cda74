/**
 * runRunbook(): a run of a list of steps, owned from the first look to the last record.
 *
 *   1. the flags (--resume and --rollback exclude each other: runMode(), the one place);
 *   2. the journals of this operation and of those that block it on the same target are read
 *      ONCE, the host lock is checked ONCE: a new run is refused while another holds the lock or
 *      an unfinished journal of the same target exists (dry-run: the refusal is a warning — the
 *      one place dry-run is decided besides "return after the plan");
 *   3. makeContext(prior) builds the command's context from what the journal noted (the prior
 *      run a --resume/--rollback continues), or stops with the command's own result;
 *   4. the plan, the confirmation; the lock taken; the journals read again under it (the only
 *      second read: another run may have started or finished while a person read the plan),
 *      the command's recheck; the journal opened; the steps run (execution.ts);
 *   5. a typed result: the summary, and the failure (exit 1 or 5) for the command to raise
 *      after it has built its own result from the summary.
 *
 * Semantics and step contracts: types.ts. Nothing here knows what a step does.
 */
import type { Output } from '../cli/output.js'
import { RefusedError, UsageError } from '../errors.js'
import { acquireLock, assertLockFree } from '../host/lock.js'
import { ttyConfirm } from './confirm.js'
import {
  Execution,
  openJournal,
  plannedSummary,
  RunbookNeedsPersonError,
  RunbookRolledBackError,
  trapSignals,
} from './execution.js'
import { checkOperation, findUnfinishedJournals, journalDir, type JournalState } from './journal.js'
import { confirmQuestion, planRunbook, renderPlan, type RunMode } from './render.js'
import type { RunSummary, Step } from './types.js'

export { RunbookNeedsPersonError, RunbookRolledBackError } from './execution.js'
export type { RunSummary, Step, StepJournal } from './types.js'

/** The flags every runbook command takes. */
export interface RunFlags {
  dryRun?: boolean
  yes?: boolean
  resume?: boolean
  rollback?: boolean
}

export interface RunOptions extends RunFlags {
  stateDir: string
  /** Names the lock holder and the journal file: letters, digits, '.', '_', '-'. */
  operation: string
  /**
   * What identifies this run (e.g. {asset: 'impro-music'}), recorded in the journal: --resume and
   * --rollback pick only a journal with the same args, and a new run is refused only by one.
   * Not the flags (--yes, --resume…). Secret-looking keys are redacted anyway.
   */
  args?: Record<string, unknown>
  /** Other operations whose unfinished run with the same args blocks this one (e.g. a rollback). */
  blockedBy?: string[]
  /** The command line a person runs to continue an operation, e.g. 'shipshape rebuild web'. */
  command?: (operation: string) => string
  /** The target as people name it, in messages ("an unfinished rebuild run of web"). */
  target?: string
  out: Output
  /**
   * A new run takes over an unfinished run of this operation and args instead of refusing: its
   * steps run again on what is there now (for an operation whose context plans afresh, as prune).
   */
  takeOverUnfinished?: boolean
  /** false: the command shows its own plan (default: the runner prints the steps and previews) */
  showPlan?: boolean
  /** Asks the question; default: y/N on the terminal, RefusedError without one. */
  confirm?: (question: string) => Promise<boolean>
  now?: () => Date
}

/** What the command builds once the prior run is known: its context, or its result without a run. */
export type Made<C, R> = { ctx: C; steps?: Step<C>[] } | { stop: R }

export interface RunbookSpec<C, R = never> extends RunOptions {
  steps: Step<C>[]
  /** The context of this run, from the run a --resume/--rollback continues (undefined: none). */
  makeContext(prior: JournalState | undefined): Promise<Made<C, R>>
  /**
   * Called under the lock, before the journal opens: what was read before the confirmation may
   * have changed while a person read the plan (another command ran). Throw (RefusedError) to stop
   * with nothing changed.
   */
  recheck?: (ctx: C) => Promise<void>
  /** At the first SIGINT/SIGTERM of the run: stop what runs now (e.g. a build's process group). */
  interrupt?: (ctx: C) => void
}

/** Exit 1 (rolled back) or 5 (a person is needed): for the command to throw. */
export type RunFailure = RunbookRolledBackError | RunbookNeedsPersonError

/** A run's end: its summary; a failure when it did not succeed (the summary says how far it got). */
export interface RunResult {
  summary: RunSummary
  failure?: RunFailure
}

/** --resume and --rollback exclude each other: the one place that says so. */
export function runMode(flags: RunFlags): RunMode {
  if (flags.resume && flags.rollback) {
    throw new UsageError('--resume and --rollback exclude each other')
  }
  return flags.rollback ? 'rollback' : flags.resume ? 'resume' : 'run'
}

/** The whole run: open → makeContext(prior) → plan, confirm, lock, recheck, steps. */
export async function runRunbook<C, R = never>(
  spec: RunbookSpec<C, R>,
): Promise<({ ctx: C } & RunResult) | { stopped: R }> {
  const run = await openRun(spec)
  const made = await spec.makeContext(run.prior)
  if ('stop' in made) return { stopped: made.stop }
  const { ctx } = made
  const result = await run.execute(made.steps ?? spec.steps, ctx, {
    recheck: spec.recheck && (() => spec.recheck!(ctx)),
    interrupt: spec.interrupt && (() => spec.interrupt!(ctx)),
  })
  return { ctx, ...result }
}

/**
 * The first half of a run, for a command that builds its context between the two: the journals
 * read and the lock checked once; `prior` is the run a --resume/--rollback continues.
 */
export async function openRun(opts: RunOptions): Promise<RunSession> {
  const mode = runMode(opts)
  const ops = [opts.operation, ...(opts.blockedBy ?? [])]
  for (const op of ops) checkOperation(op)
  const args = redactArgs(opts.args ?? {})
  const session = new RunSession(opts, mode, args)
  // a journal directory others could write: refused (a dry run says a real run would be)
  const open = await findUnfinishedJournals(opts.stateDir, ops).catch((e: unknown) => {
    if (!(e instanceof RefusedError)) throw e
    session.refuse(e)
    return []
  })
  // who else is at it comes before what the host looks like: a running operation changes it
  await assertLockFree(opts.stateDir).catch((e: RefusedError) => session.refuse(e))
  const own = session.judge(open)
  if (mode !== 'run') session.prior = own
  else if (own && opts.takeOverUnfinished) session.takeOver(own)
  return session
}

export class RunSession {
  /** The unfinished run of this operation and args that --resume/--rollback continues. */
  prior: JournalState | undefined
  /** Unfinished runs of this operation for other args (named when there is nothing to resume). */
  private others: JournalState[] = []
  private readonly key: string

  constructor(
    private readonly opts: RunOptions,
    public mode: RunMode,
    private readonly args: Record<string, unknown>,
  ) {
    this.key = stableJson(args)
  }

  /** A refusal: thrown, or with --dry-run a warning ("a real run would be refused now"). */
  refuse(e: RefusedError): void {
    if (!this.opts.dryRun) throw e
    this.opts.out.warn(
      `a real run would be refused now: ${e.message}${e.remedy ? ` (${e.remedy})` : ''}`,
    )
  }

  /** An unfinished run of this operation and args, continued by this one (takeOverUnfinished). */
  takeOver(own: JournalState): void {
    this.mode = 'resume'
    this.prior = own
    this.opts.out.warn(
      `an unfinished ${this.opts.operation} run (started ${own.startedAt} by pid ${own.pid}, ${own.file}) ${this.opts.dryRun ? 'would be' : 'is'} finished by this one`,
    )
  }

  /**
   * Sorts the unfinished journals: a blocking one refuses; the own one (returned) refuses a new
   * run and is what a --resume/--rollback continues.
   */
  judge(open: JournalState[]): JournalState | undefined {
    const { operation: op, target } = this.opts
    const same = open.filter((j) => stableJson(j.args) === this.key)
    const of = target ? ` of ${target}` : ''
    const other = same.find((j) => j.operation !== op)
    if (other) {
      const how = this.opts.command?.(other.operation)
      this.refuse(
        new RefusedError(
          `an unfinished ${other.operation} run${of} (started ${other.startedAt} by pid ${other.pid}) is in ${other.file}`,
          how
            ? `finish it first: ${how} --resume, or undo it with --rollback`
            : 'finish it first with --resume, or undo it with --rollback',
        ),
      )
    }
    const own = same.find((j) => j.operation === op)
    this.others = open.filter((j) => j.operation === op && stableJson(j.args) !== this.key)
    if (own && this.mode === 'run' && !this.opts.takeOverUnfinished) {
      this.refuse(
        new RefusedError(
          `an unfinished ${op} run${of} (started ${own.startedAt} by pid ${own.pid}) is in ${own.file}`,
          'run it again with --resume to finish it, or with --rollback to undo it',
        ),
      )
    }
    return own
  }

  /** The journal --resume/--rollback continue, checked against these steps. */
  private continued<C>(steps: Step<C>[]): JournalState | undefined {
    if (this.mode === 'run') return undefined
    const { operation: op, stateDir } = this.opts
    const j = this.prior
    if (!j) {
      const list = this.others.map((o) => `${o.file} ${stableJson(o.args)}`)
      throw new UsageError(
        `nothing to ${this.mode === 'resume' ? 'resume' : 'roll back'}: no unfinished ${op} journal` +
          `${Object.keys(this.args).length ? ` for ${this.key}` : ''} in ${journalDir(stateDir)}`,
        list.length
          ? `unfinished ${op} journals for other arguments: ${list.join('; ')}`
          : undefined,
      )
    }
    const known = new Set(steps.map((s) => s.id))
    const unknown = [...j.steps.keys()].filter((id) => !known.has(id))
    if (unknown.length) {
      throw new RefusedError(
        `${j.file} has steps this version of ${op} does not know: ${unknown.join(', ')}`,
        'finish it with the shipshape version that started it, or read the journal and undo by hand',
      )
    }
    return j
  }

  /** The second half: plan, confirm, lock, look again, run. */
  async execute<C>(
    steps: Step<C>[],
    ctx: C,
    o: { recheck?: () => Promise<void>; interrupt?: () => void } = {},
  ): Promise<RunResult> {
    checkSteps(steps)
    const { opts, mode } = this
    const out = opts.out
    const seen = this.continued(steps)
    const plan = planRunbook(mode, steps, ctx, seen ?? null)
    if (opts.showPlan !== false) {
      out.human(renderPlan(opts.operation, mode, plan, seen ?? null).join('\n'))
    }
    if (opts.dryRun) return { summary: plannedSummary(opts.operation, plan, 'dry-run', true) }
    if (!opts.yes) {
      const ask = opts.confirm ?? ((q: string) => ttyConfirm(q))
      if (!(await ask(confirmQuestion(opts.operation, mode, plan)))) {
        out.info(`${opts.operation}: cancelled, nothing changed`)
        return { summary: plannedSummary(opts.operation, plan, 'cancelled', false) }
      }
    }
    const lock = await acquireLock({
      stateDir: opts.stateDir,
      operation: opts.operation,
      warn: (l) => out.warn(l),
      now: opts.now,
    })
    const trap = trapSignals(lock, out, o.interrupt)
    let journal: Awaited<ReturnType<typeof openJournal>> | undefined
    try {
      const current = await this.lookAgain(seen)
      await o.recheck?.()
      journal = await openJournal(mode, steps, opts, this.args, current)
      const exec = new Execution(steps, ctx, journal, opts, trap)
      return { summary: mode === 'rollback' ? await exec.rollback() : await exec.forward() }
    } catch (e) {
      if (e instanceof RunbookRolledBackError || e instanceof RunbookNeedsPersonError) {
        return { summary: e.summary, failure: e }
      }
      throw e
    } finally {
      trap.dispose()
      await journal?.close().catch(() => {})
      await lock.release()
    }
  }

  /**
   * Under the lock, the journals again (the one second read): another run may have started,
   * crashed or finished meanwhile. Returns the journal to continue, as it is now.
   */
  private async lookAgain(seen: JournalState | undefined): Promise<JournalState | undefined> {
    const ops = [this.opts.operation, ...(this.opts.blockedBy ?? [])]
    const open = await findUnfinishedJournals(this.opts.stateDir, ops)
    const current = open.find(
      (j) => j.operation === this.opts.operation && stableJson(j.args) === this.key,
    )
    if (seen) {
      if (current?.file !== seen.file || current.records !== seen.records) {
        throw new RefusedError(
          `the journal ${seen.file} changed while waiting for the confirmation`,
          'run the command again',
        )
      }
      this.judge(open.filter((j) => j.operation !== this.opts.operation))
      return current
    }
    this.judge(open)
    return undefined
  }
}

function checkSteps<C>(steps: Step<C>[]): void {
  const ids = new Set<string>()
  for (const s of steps) {
    if (!s.id || ids.has(s.id)) throw new Error(`runbook step ids must be unique: "${s.id}"`)
    ids.add(s.id)
  }
}

const SECRET_KEY = /passw|secret|token|credential|api[-_]?key|private[-_]?key/i

/** A JSON copy of the args with secret-looking keys' values replaced. */
export function redactArgs(args: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(
    JSON.stringify(args, (k, v: unknown) => (k && SECRET_KEY.test(k) ? '[redacted]' : v)),
  ) as Record<string, unknown>
}

/** JSON with sorted keys: equal args → equal strings. */
function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b)))
      : x,
  )
}
