/**
 * The runbook engine: every mutating command (migrate-assets, rebuild, rollback, prune) is a typed
 * list of steps run by runRunbook() (runner.ts). A command composes its steps in one place and
 * hands the runner a context that carries every side effect (exec, engine, fs, clock, output), so
 * unit tests pass fakes (STYLE.md 1, 4).
 *
 *   dry-run   prints the plan (titles + what each step would touch) and returns: no lock, no
 *             journal, nothing written. Steps never test `if (dryRun)` (STYLE.md 3).
 *   confirm   on a TTY unless --yes; no TTY and no --yes → RefusedError, exit 4.
 *   lock      one host-wide lock (lib/host/lock.ts): a second mutating run → exit 4 naming the
 *             holder; a dead holder's lock is recovered. Released on every way out: normal end,
 *             thrown error, SIGINT/SIGTERM.
 *   journal   <stateDir>/journal/<operation>-<UTC stamp>-<pid>.jsonl (journal.ts), append-only,
 *             each record fsync'ed before the step's side effects start. A new run refuses while
 *             an unfinished journal of the same operation and args exists; --resume continues it
 *             (done steps skipped when verify() agrees, up to the first step that runs again:
 *             every step after it runs again too), --rollback undoes it.
 *   failure   a step throws, its verify() says false, or SIGINT/SIGTERM arrives (the current step
 *             finishes first; a second signal stops at once, leaving the journal to
 *             --resume/--rollback): the failed step and then the finished ones are undone in
 *             reverse. All undone → RolledBackError (exit 1); an undo fails → the rollback stops
 *             there (earlier steps may hold what a person needs, e.g. the backup) and
 *             NeedsPersonError (exit 5) names the journal. The original error leads the message.
 *
 * Contracts for a step:
 *   - run() is idempotent: after a crash mid-way it runs again on --resume, and must finish the
 *     job from whatever it left (journal.data() holds the facts it noted before the crash).
 *   - undo() checks real state first and undoes only what happened: it is called for the failed or
 *     crash-interrupted step too, whose run may have done none, some or all of its work.
 *   - verify() only reads. It is asked after run() (false → failure) and, on --resume, before a
 *     step the journal says is done is skipped (false → it runs again).
 */

export interface Step<C> {
  /** Stable and unique in the runbook: the journal's key. Never rename a shipped step's id. */
  id: string
  /** Short imperative: "Back up the music directory". */
  title: string
  /** What it would touch, one line each (dry-run, confirmation). */
  preview(ctx: C): string[]
  /** Idempotent: safe to run again after a crash mid-way. */
  run(ctx: C, journal: StepJournal): Promise<void>
  /** Did it really happen? Read-only. Used after run and, on --resume, before skipping. */
  verify?(ctx: C): Promise<boolean>
  /** Checks real state first; undoes only what happened. */
  undo?(ctx: C, journal: StepJournal): Promise<void>
}

/**
 * A step's own corner of the journal: facts its undo (or its re-run after a crash) needs, such as
 * the backup path. note() is shallow-merged into data() and on disk (fsync'ed) when it resolves;
 * note before the side effect the fact describes, e.g. the backup's path before writing it.
 * Values must be JSON (no secrets: the journal is a plain file).
 */
export interface StepJournal {
  note(data: Record<string, unknown>): Promise<void>
  data(): Record<string, unknown>
}

export type StepOutcome = 'done' | 'skipped' | 'undone' | 'pending' | 'failed' | 'undo-failed'

export interface StepSummary {
  id: string
  title: string
  /**
   * done: ran (or was done before and has no undo) · skipped: done in an earlier run, verified ·
   * undone · pending: not reached · failed: this step failed (its undo, if any, succeeded) ·
   * undo-failed: its undo failed; the rollback stopped here.
   */
  status: StepOutcome
  ms?: number
  error?: string
  /** Dry-run only: what it would touch. */
  preview?: string[]
}

export interface RunSummary {
  operation: string
  /** needs-person only appears on the summary carried by a NeedsPersonError. */
  outcome: 'ok' | 'dry-run' | 'rolled-back' | 'cancelled' | 'needs-person'
  journal: string | null
  steps: StepSummary[]
}
