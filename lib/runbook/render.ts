import type { JournalState, JournalStepStatus } from './journal.js'
import type { RunSummary, Step, StepOutcome } from './types.js'

export type RunMode = 'run' | 'resume' | 'rollback'

/** What a run would do with each step. Pure data: printed for dry-run and the confirmation. */
export interface PlannedStep {
  id: string
  title: string
  /**
   * run · rerun: begun before a crash, runs again · skip: done before, skipped if verify agrees ·
   * undo · keep: nothing to do (--rollback: never begun, already undone, or no undo)
   */
  action: 'run' | 'rerun' | 'skip' | 'undo' | 'keep'
  preview: string[]
  /** The journal's word for it (resume/rollback). */
  journal?: JournalStepStatus
}

/** Steps the rollback undoes, in runbook order: every step with a record that is not undone. */
export function stepsToUndo<C>(steps: Step<C>[], state: JournalState): Step<C>[] {
  return steps.filter((s) => {
    const st = state.steps.get(s.id)
    return st !== undefined && st.status !== 'undone'
  })
}

export function planRunbook<C>(
  mode: RunMode,
  steps: Step<C>[],
  ctx: C,
  state: JournalState | null,
): PlannedStep[] {
  const undo = new Set(
    state && mode === 'rollback' ? stepsToUndo(steps, state).map((s) => s.id) : [],
  )
  return steps.map((s) => {
    const journal = state?.steps.get(s.id)?.status
    let action: PlannedStep['action'] = 'run'
    if (mode === 'rollback') action = undo.has(s.id) && s.undo ? 'undo' : 'keep'
    else if (journal === 'done') action = 'skip'
    else if (journal !== undefined) action = 'rerun'
    return {
      id: s.id,
      title: s.title,
      action,
      preview: s.preview(ctx),
      ...(journal && { journal }),
    }
  })
}

const NOTE: Record<PlannedStep['action'], string> = {
  run: '',
  rerun: ' (interrupted before: runs again)',
  skip: ' (done before: skipped if it checks out)',
  undo: '',
  keep: ' (nothing to undo)',
}

export function renderPlan(
  operation: string,
  mode: RunMode,
  plan: PlannedStep[],
  state: JournalState | null,
): string[] {
  const lines: string[] = []
  if (mode === 'rollback') {
    const undo = plan.filter((p) => p.action === 'undo').reverse()
    lines.push(`Roll back ${operation} (journal ${state?.file}): ${count(undo.length)} to undo`)
    undo.forEach((p, i) => {
      lines.push(`  ${i + 1}. Undo: ${p.title}${p.journal === 'done' ? '' : ` (${p.journal})`}`)
      for (const t of p.preview) lines.push(`       ${t}`)
    })
    return lines
  }
  const todo = plan.filter((p) => p.action !== 'skip').length
  lines.push(
    mode === 'resume'
      ? `Resume ${operation} (journal ${state?.file}, started ${state?.startedAt}): ${todo} of ${count(plan.length)} left`
      : `${operation}: ${count(plan.length)}`,
  )
  plan.forEach((p, i) => {
    lines.push(`  ${i + 1}. ${p.title}${NOTE[p.action]}`)
    for (const t of p.preview) lines.push(`       ${t}`)
  })
  return lines
}

export function confirmQuestion(operation: string, mode: RunMode, plan: PlannedStep[]): string {
  if (mode === 'rollback') {
    return `Undo ${count(plan.filter((p) => p.action === 'undo').length)} of ${operation}?`
  }
  const todo = plan.filter((p) => p.action !== 'skip').length
  return mode === 'resume'
    ? `Resume ${operation} (${count(todo)} left)?`
    : `Run ${operation} (${count(todo)})?`
}

function count(n: number): string {
  return `${n} step${n === 1 ? '' : 's'}`
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`
}

const MARK: Record<StepOutcome, string> = {
  done: '✔',
  skipped: '↷',
  undone: '↺',
  pending: '·',
  failed: '✖',
  'undo-failed': '✖',
}

const WORD: Record<StepOutcome, string> = {
  done: '',
  skipped: 'done before',
  undone: 'undone',
  pending: 'not run',
  failed: 'failed',
  'undo-failed': 'undo failed',
}

export function renderSummary(summary: RunSummary): string[] {
  const lines = [
    `${summary.operation}: ${summary.outcome}${summary.journal ? ` (journal ${summary.journal})` : ''}`,
  ]
  for (const s of summary.steps) {
    const bits = [WORD[s.status], s.ms === undefined ? '' : formatMs(s.ms), s.error ?? '']
      .filter(Boolean)
      .join(', ')
    lines.push(`  ${MARK[s.status]} ${s.title}${bits ? ` (${bits})` : ''}`)
  }
  return lines
}
