/**
 * runRunbook(): runs a list of steps under the host lock and a journal, undoes on failure.
 * Semantics and step contracts: types.ts. Nothing here knows what a step does.
 */
import os from 'node:os'
import { performance } from 'node:perf_hooks'
import type { Output } from '../cli/output.js'
import { NeedsPersonError, RefusedError, RolledBackError, UsageError } from '../errors.js'
import { acquireLock, assertLockFree, type HostLock } from '../host/lock.js'
import { ttyConfirm } from './confirm.js'
import {
  checkOperation,
  findUnfinishedJournals,
  journalDir,
  JournalWriter,
  type JournalRecord,
  type JournalState,
} from './journal.js'
import {
  confirmQuestion,
  formatMs,
  planRunbook,
  renderPlan,
  renderSummary,
  stepsToUndo,
  type PlannedStep,
  type RunMode,
} from './render.js'
import type { RunSummary, Step, StepJournal, StepSummary } from './types.js'

export type { RunSummary, Step, StepJournal } from './types.js'

export interface RunOptions {
  dryRun?: boolean
  yes?: boolean
  resume?: boolean
  rollback?: boolean
  stateDir: string
  /** Names the lock holder and the journal file: letters, digits, '.', '_', '-'. */
  operation: string
  /**
   * What identifies this run (e.g. {asset: 'impro-music'}), recorded in the journal: --resume and
   * --rollback pick only a journal with the same args, and a new run is refused only by one.
   * Not the flags (--yes, --resume…). Secret-looking keys are redacted anyway.
   */
  args?: Record<string, unknown>
  out: Output
  /** Asks the question; default: y/N on the terminal, RefusedError without one. */
  confirm?: (question: string) => Promise<boolean>
  now?: () => Date
  /**
   * Called under the lock, before the journal opens: what was read before the confirmation may
   * have changed while a person read the plan (another command ran). Throw (RefusedError) to stop
   * with nothing changed.
   */
  recheck?: () => Promise<void>
}

/** Exit 1: failed and rolled back cleanly. Carries the summary for --json renderers. */
export class RunbookRolledBackError extends RolledBackError {
  constructor(
    message: string,
    remedy: string,
    readonly summary: RunSummary,
    cause: unknown,
  ) {
    super(message, remedy)
    this.cause = cause
  }
}

/** Exit 5: could not fully roll back; the journal says where. Carries the summary. */
export class RunbookNeedsPersonError extends NeedsPersonError {
  constructor(
    message: string,
    remedy: string,
    readonly summary: RunSummary,
    cause: unknown,
  ) {
    super(message, remedy)
    this.cause = cause
  }
}

export async function runRunbook<C>(
  steps: Step<C>[],
  ctx: C,
  opts: RunOptions,
): Promise<RunSummary> {
  checkSteps(steps)
  checkOperation(opts.operation)
  if (opts.resume && opts.rollback) {
    throw new UsageError('--resume and --rollback cannot be used together')
  }
  const mode: RunMode = opts.rollback ? 'rollback' : opts.resume ? 'resume' : 'run'
  const out = opts.out
  const args = redactArgs(opts.args ?? {})

  if (opts.dryRun) {
    await assertLockFree(opts.stateDir).catch((e: Error) =>
      out.warn(`a real run would be refused now: ${e.message}`),
    )
  } else {
    await assertLockFree(opts.stateDir)
  }
  // a first look without the lock: what to show and ask about, what to refuse before asking
  const seen = await pickJournal(mode, steps, opts, args)
  const plan = planRunbook(mode, steps, ctx, seen)
  out.human(renderPlan(opts.operation, mode, plan, seen).join('\n'))
  if (opts.dryRun) return plannedSummary(opts.operation, plan, 'dry-run', true)
  if (!opts.yes) {
    const ask = opts.confirm ?? ((q: string) => ttyConfirm(q))
    if (!(await ask(confirmQuestion(opts.operation, mode, plan)))) {
      out.info(`${opts.operation}: cancelled, nothing changed`)
      return plannedSummary(opts.operation, plan, 'cancelled', false)
    }
  }

  const lock = await acquireLock({
    stateDir: opts.stateDir,
    operation: opts.operation,
    warn: (l) => out.warn(l),
    now: opts.now,
  })
  const trap = trapSignals(lock, out)
  let journal: JournalWriter | undefined
  try {
    // again under the lock: another run may have started, crashed or finished meanwhile
    const current = await pickJournal(mode, steps, opts, args)
    if (seen && (current?.file !== seen.file || current.records !== seen.records)) {
      throw new RefusedError(
        `the journal ${seen.file} changed while waiting for the confirmation`,
        'run the command again',
      )
    }
    await opts.recheck?.()
    journal = await openJournal(mode, steps, opts, args, current)
    const exec = new Execution(steps, ctx, journal, opts, trap)
    return mode === 'rollback' ? await exec.rollback() : await exec.forward()
  } finally {
    trap.dispose()
    await journal?.close().catch(() => {})
    await lock.release()
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

async function pickJournal<C>(
  mode: RunMode,
  steps: Step<C>[],
  opts: RunOptions,
  args: Record<string, unknown>,
): Promise<JournalState | null> {
  const op = opts.operation
  const open = await findUnfinishedJournals(opts.stateDir, op)
  const key = stableJson(args)
  const mine = open.filter((j) => stableJson(j.args) === key)
  const j = mine[0]
  if (mode === 'run') {
    if (!j) return null
    const e = new RefusedError(
      `an unfinished ${op} run (started ${j.startedAt} by pid ${j.pid}) is in ${j.file}`,
      'run it again with --resume to finish it, or with --rollback to undo it',
    )
    if (!opts.dryRun) throw e
    opts.out.warn(`a real run would be refused now: ${e.message} (${e.remedy})`)
    return null
  }
  if (!j) {
    const others = open.map((o) => `${o.file} ${stableJson(o.args)}`)
    throw new UsageError(
      `nothing to ${mode === 'resume' ? 'resume' : 'roll back'}: no unfinished ${op} journal` +
        `${Object.keys(args).length ? ` for ${key}` : ''} in ${journalDir(opts.stateDir)}`,
      others.length
        ? `unfinished ${op} journals for other arguments: ${others.join('; ')}`
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

async function openJournal<C>(
  mode: RunMode,
  steps: Step<C>[],
  opts: RunOptions,
  args: Record<string, unknown>,
  current: JournalState | null,
): Promise<JournalWriter> {
  const at = (opts.now ?? (() => new Date()))().toISOString()
  try {
    if (!current) {
      return await JournalWriter.create(opts.stateDir, {
        operation: opts.operation,
        args,
        host: os.hostname(),
        pid: process.pid,
        at,
        steps: steps.map((s) => ({ id: s.id, title: s.title })),
      })
    }
    const w = await JournalWriter.open(current)
    try {
      await w.append({
        t: 'resume',
        mode: mode === 'rollback' ? 'rollback' : 'resume',
        pid: process.pid,
        at,
      })
    } catch (e) {
      await w.close().catch(() => {})
      throw e
    }
    return w
  } catch (e) {
    // nothing has changed yet: without a journal nothing may
    throw new RefusedError(
      `cannot write the journal in ${journalDir(opts.stateDir)}: ${(e as Error).message}`,
      `check the free space and permissions of ${opts.stateDir}`,
    )
  }
}

interface Trap {
  /** The first SIGINT/SIGTERM received, if any. */
  readonly signal: NodeJS.Signals | null
  dispose(): void
}

/**
 * First SIGINT/SIGTERM: finish the current step, then roll back. Second: release the lock and die
 * by the signal at once (the journal stays unfinished for --resume/--rollback). 'exit' releases
 * the lock too (synchronously: nothing async may run there).
 */
function trapSignals(lock: HostLock, out: Output): Trap {
  let signal: NodeJS.Signals | null = null
  const onSignal = (sig: NodeJS.Signals) => {
    if (!signal) {
      signal = sig
      out.warn(
        `${sig}: finishing the current step, then rolling back; ${sig} again stops at once ` +
          '(then --resume or --rollback continue from the journal)',
      )
      return
    }
    dispose()
    lock.releaseSync()
    process.kill(process.pid, sig)
  }
  const onExit = () => {
    lock.releaseSync()
  }
  const dispose = () => {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    process.off('exit', onExit)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  process.on('exit', onExit)
  return {
    get signal() {
      return signal
    },
    dispose,
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}

interface Progress {
  succeed(ms: number): void
  fail(why: string): void
}

class Execution<C> {
  private readonly results = new Map<string, StepSummary>()
  private readonly now: () => Date
  private readonly out: Output
  private closeError: unknown = null

  constructor(
    private readonly steps: Step<C>[],
    private readonly ctx: C,
    private readonly journal: JournalWriter,
    private readonly opts: RunOptions,
    private readonly trap: Trap,
  ) {
    this.now = opts.now ?? (() => new Date())
    this.out = opts.out
  }

  private at(): string {
    return this.now().toISOString()
  }

  private record(rec: JournalRecord): Promise<void> {
    return this.journal.append(rec)
  }

  private stepJournal(id: string): StepJournal {
    return {
      note: async (data) => {
        const clean = JSON.parse(JSON.stringify(data ?? {})) as Record<string, unknown>
        await this.record({ t: 'step-note', id, data: clean, at: this.at() })
      },
      data: () => structuredClone(this.journal.state.steps.get(id)?.notes ?? {}),
    }
  }

  private progress(label: string): Progress {
    if (!this.out.interactive) {
      this.out.info(label)
      return { succeed() {}, fail: (why) => this.out.warn(`${label}: ${why}`) }
    }
    const s = this.out.spinner(label)
    return {
      succeed: (ms) => s.succeed(`${label} (${formatMs(ms)})`),
      fail: (why) => s.fail(`${label}: ${why}`),
    }
  }

  private set(step: Step<C>, patch: Omit<StepSummary, 'id' | 'title'>): void {
    this.results.set(step.id, {
      id: step.id,
      title: step.title,
      ...this.results.get(step.id),
      ...patch,
    })
  }

  async forward(): Promise<RunSummary> {
    const n = this.steps.length
    let failed: { step: Step<C>; error: unknown; begun: boolean } | null = null
    // once a step runs again, what later steps did was done on an older state: they run too
    let reran = false
    for (const [i, step] of this.steps.entries()) {
      const label = `[${i + 1}/${n}] ${step.title}`
      if (this.trap.signal) {
        failed = { step, error: new Error(`interrupted by ${this.trap.signal}`), begun: false }
        break
      }
      if (!reran && this.journal.state.steps.get(step.id)?.status === 'done') {
        let ok: boolean
        try {
          ok = step.verify ? await step.verify(this.ctx) : true
        } catch (e) {
          failed = { step, error: e, begun: true }
          this.set(step, { status: 'failed', error: message(e) })
          break
        }
        if (ok) {
          this.set(step, { status: 'skipped' })
          if (!this.out.interactive) this.out.info(`${label}: done before, skipped`)
          continue
        }
        this.out.warn(
          `${step.title}: the journal says done but it does not check out: running it again`,
        )
      }
      reran = true
      const p = this.progress(label)
      const t0 = performance.now()
      try {
        await this.record({ t: 'step-begin', id: step.id, at: this.at() })
      } catch (e) {
        // not begun: the journal could not say so, so the step must not start
        failed = { step, error: new Error(`cannot write the journal: ${message(e)}`), begun: false }
        p.fail(message(failed.error))
        break
      }
      try {
        await step.run(this.ctx, this.stepJournal(step.id))
        if (step.verify && !(await step.verify(this.ctx))) {
          throw new Error('it did not take effect (verify failed)')
        }
        await this.record({ t: 'step-done', id: step.id, at: this.at() })
        const ms = performance.now() - t0
        this.set(step, { status: 'done', ms })
        p.succeed(ms)
      } catch (e) {
        this.set(step, { status: 'failed', ms: performance.now() - t0, error: message(e) })
        p.fail(message(e))
        failed = { step, error: e, begun: true }
        await this.record({
          t: 'step-failed',
          id: step.id,
          error: message(e),
          at: this.at(),
        }).catch(() => {})
        break
      }
    }

    if (!failed) {
      await this.end('ok')
      return this.finish('ok')
    }
    const op = this.opts.operation
    const what = failed.begun
      ? `"${failed.step.title}" failed: ${message(failed.error)}`
      : `${message(failed.error)} before "${failed.step.title}"`
    const undo = await this.undoAll()
    if (undo) {
      await this.end('needs-person')
      const summary = this.summary('needs-person')
      this.printSummary(summary)
      throw new RunbookNeedsPersonError(
        `${op}: ${what}; undoing "${undo.step.title}" failed too: ${message(undo.error)}`,
        this.needsPersonRemedy(),
        summary,
        failed.error,
      )
    }
    await this.end('rolled-back')
    const summary = this.summary('rolled-back')
    this.printSummary(summary)
    throw new RunbookRolledBackError(
      `${op}: ${what}; rolled back`,
      this.closeError
        ? `the journal ${this.journal.file} could not be closed (${message(this.closeError)}): run again with --rollback to close it`
        : failed.begun
          ? `run it again once the cause is fixed; the journal is ${this.journal.file}`
          : 'run it again when ready',
      summary,
      failed.error,
    )
  }

  async rollback(): Promise<RunSummary> {
    const undo = await this.undoAll()
    if (undo) {
      await this.end('needs-person')
      const summary = this.summary('needs-person')
      this.printSummary(summary)
      throw new RunbookNeedsPersonError(
        `${this.opts.operation}: undoing "${undo.step.title}" failed: ${message(undo.error)}`,
        this.needsPersonRemedy(),
        summary,
        undo.error,
      )
    }
    await this.end('rolled-back')
    return this.finish('rolled-back')
  }

  private needsPersonRemedy(): string {
    return (
      `the journal ${this.journal.file} says where it stopped: fix what blocked the undo, then run ` +
      'again with --rollback to finish undoing, or with --resume to carry on'
    )
  }

  /**
   * Undoes, in reverse, every step the journal has begun and not undone (the failed or interrupted
   * one included: undo checks real state). Stops at the first undo that fails: an earlier step may
   * hold what a person needs to recover (the backup), so it is left in place.
   */
  private async undoAll(): Promise<{ step: Step<C>; error: unknown } | null> {
    const todo = stepsToUndo(this.steps, this.journal.state).reverse()
    for (const step of todo) {
      if (!step.undo) continue
      const p = this.progress(`Undo: ${step.title}`)
      const t0 = performance.now()
      try {
        await this.record({ t: 'undo-begin', id: step.id, at: this.at() })
      } catch (e) {
        const error = new Error(`cannot write the journal: ${message(e)}`)
        p.fail(error.message)
        this.set(step, { status: 'undo-failed', error: error.message })
        return { step, error }
      }
      try {
        await step.undo(this.ctx, this.stepJournal(step.id))
      } catch (e) {
        p.fail(message(e))
        this.set(step, { status: 'undo-failed', error: message(e) })
        await this.record({
          t: 'undo-failed',
          id: step.id,
          error: message(e),
          at: this.at(),
        }).catch(() => {})
        return { step, error: e }
      }
      try {
        await this.record({ t: 'undo-done', id: step.id, at: this.at() })
      } catch (e) {
        // undone, but the journal cannot say so: a later --rollback re-checks it
        const error = new Error(`undone, but cannot write the journal: ${message(e)}`)
        p.fail(error.message)
        this.set(step, { status: 'undo-failed', error: error.message })
        return { step, error }
      }
      const ms = performance.now() - t0
      p.succeed(ms)
      if (this.results.get(step.id)?.status !== 'failed') this.set(step, { status: 'undone' })
    }
    return null
  }

  private async end(outcome: 'ok' | 'rolled-back' | 'needs-person'): Promise<void> {
    try {
      await this.record({ t: 'end', outcome, at: this.at() })
    } catch (e) {
      this.closeError = e
      this.out.warn(
        `the journal ${this.journal.file} could not be closed (${message(e)}): ` +
          'a later run will ask for --resume or --rollback to close it',
      )
    }
  }

  private summary(outcome: RunSummary['outcome']): RunSummary {
    const steps = this.steps.map((s): StepSummary => {
      const r = this.results.get(s.id)
      if (r) return r
      const st = this.journal.state.steps.get(s.id)?.status
      const status: StepSummary['status'] =
        st === undefined
          ? 'pending'
          : st === 'done'
            ? 'done'
            : st === 'undone'
              ? 'undone'
              : st === 'begun' || st === 'failed'
                ? 'failed'
                : 'undo-failed'
      return { id: s.id, title: s.title, status }
    })
    return { operation: this.opts.operation, outcome, journal: this.journal.file, steps }
  }

  private finish(outcome: RunSummary['outcome']): RunSummary {
    const summary = this.summary(outcome)
    this.printSummary(summary)
    return summary
  }

  private printSummary(summary: RunSummary): void {
    for (const line of renderSummary(summary)) this.out.info(line)
  }
}

function plannedSummary(
  operation: string,
  plan: PlannedStep[],
  outcome: 'dry-run' | 'cancelled',
  withPreview: boolean,
): RunSummary {
  return {
    operation,
    outcome,
    journal: null,
    steps: plan.map((p) => ({
      id: p.id,
      title: p.title,
      status: 'pending',
      ...(withPreview && { preview: p.preview }),
    })),
  }
}
