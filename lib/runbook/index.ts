export {
  openRun,
  runMode,
  runRunbook,
  RunbookNeedsPersonError,
  RunbookRolledBackError,
  redactArgs,
} from './runner.js'
export type {
  Made,
  RunbookSpec,
  RunFailure,
  RunFlags,
  RunOptions,
  RunResult,
  RunSession,
} from './runner.js'
export type { RunSummary, Step, StepJournal, StepOutcome, StepSummary } from './types.js'
export { ttyConfirm } from './confirm.js'
export { findUnfinishedJournals, readJournal, journalDir } from './journal.js'
export type { JournalRecord, JournalState } from './journal.js'
