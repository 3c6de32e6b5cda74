/**
 * One run's execution once the lock is held and the journal chosen: the steps forward (or the
 * undo of a --rollback), each journaled before it starts, undone in reverse on failure; signals
 * trapped for the run. runner.ts decides what runs; this file runs it.
 */
import os from 'node:os'
import { performance } from 'node:perf_hooks'
import type { Output } from '../cli/output.js'
import { NeedsPersonError, RefusedError, RolledBackError, type ShipshapeError } from '../errors.js'
import type { HostLock } from '../host/lock.js'
import { journalDir, JournalWriter, type JournalRecord, type JournalState } from './journal.js'
import { formatMs, renderSummary, stepsToUndo, type PlannedStep, type RunMode } from './render.js'
import type { RunSummary, Step, StepJournal, StepSummary } from './types.js'

/** What the execution needs to know of the run: its name, where people read, its clock. */
export interface RunInfo {
  stateDir: string
  operation: string
  out: Output
  now?: () => Date
}

/** A failure class of `Base` that also carries the run's summary (for --json renderers) and cause. */
function carryingSummary(Base: new (message: string, remedy?: string) => ShipshapeError) {
  return class extends Base {
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
}

/** Exit 1: failed and rolled back cleanly. Carries the summary for --json renderers. */
export class RunbookRolledBackError extends carryingSummary(RolledBackError) {}

/** Exit 5: could not fully roll back; the journal says where. Carries the summary. */
export class RunbookNeedsPersonError extends carryingSummary(NeedsPersonError) {}

/** The journal of this run: a new one, or the unfinished one it continues. Refused when unwritable. */
export async function openJournal<C>(
  mode: RunMode,
  steps: Step<C>[],
  opts: RunInfo,
  args: Record<string, unknown>,
  current: JournalState | undefined,
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

export interface Trap {
  /** The first SIGINT/SIGTERM received, if any. */
  readonly signal: NodeJS.Signals | null
  dispose(): void
}

/**
 * First SIGINT/SIGTERM: finish the current step, then roll back. Second: release the lock and die
 * by the signal at once (the journal stays unfinished for --resume/--rollback). 'exit' releases
 * the lock too (synchronously: nothing async may run there). `interrupt` is called at the first
 * signal: the command stops a long child (a build) at once rather than after it, then undoes.
 */
export function trapSignals(lock: HostLock, out: Output, interrupt?: () => void): Trap {
  let signal: NodeJS.Signals | null = null
  const onSignal = (sig: NodeJS.Signals) => {
    if (!signal) {
      signal = sig
      interrupt?.()
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

export class Execution<C> {
  private readonly results = new Map<string, StepSummary>()
  private readonly now: () => Date
  private readonly out: Output
  private closeError: unknown = null

  constructor(
    private readonly steps: Step<C>[],
    private readonly ctx: C,
    private readonly journal: JournalWriter,
    private readonly opts: RunInfo,
    private readonly trap: Trap,
  ) {
    this.now = opts.now ?? (() => new Date())
    this.out = opts.out
  }

  private at(): string {
    return this.now().toISOString()
  }

  /** Journals a step's or undo's failure, best effort: the run is failing already. */
  private recordFailure(t: 'step-failed' | 'undo-failed', id: string, e: unknown): Promise<void> {
    return this.record({ t, id, error: message(e), at: this.at() }).catch(() => {})
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
        await this.recordFailure('step-failed', step.id, e)
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
      throw await this.needsPerson(
        `${op}: ${what}; undoing "${undo.step.title}" failed too: ${message(undo.error)}`,
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
      throw await this.needsPerson(
        `${this.opts.operation}: undoing "${undo.step.title}" failed: ${message(undo.error)}`,
        undo.error,
      )
    }
    await this.end('rolled-back')
    return this.finish('rolled-back')
  }

  /** Ends the run as needing a person (journal, summary printed) and gives the error to throw. */
  private async needsPerson(msg: string, cause: unknown): Promise<RunbookNeedsPersonError> {
    await this.end('needs-person')
    const summary = this.summary('needs-person')
    this.printSummary(summary)
    const remedy =
      `the journal ${this.journal.file} says where it stopped: fix what blocked the undo, then run ` +
      'again with --rollback to finish undoing, or with --resume to carry on'
    return new RunbookNeedsPersonError(msg, remedy, summary, cause)
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
        await this.recordFailure('undo-failed', step.id, e)
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

export function plannedSummary(
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
