/**
 * `shipshape rebuild SERVICE`, `rollback SERVICE` and `update SERVICE`: resolve the service
 * (target.ts), judge it (policy.ts), then the runbook of steps/ under the host lock and a journal
 * (run.ts over lib/runbook). One file per command: rebuild.ts, rollback.ts, update.ts, list.ts
 * (rollback --list), check-updates.ts (update --check/--auto). The results are one JSON shape
 * each (result.ts): shipshape.rebuild/1, shipshape.rollback/1, shipshape.update/1.
 */
export * from './result.js'
export { chooseRollback, listBackups, runListBackups } from './list.js'
export { findService, secretVariables } from './prepare.js'
export { runRebuild } from './rebuild.js'
export { runRollback } from './rollback.js'
export { isNewer, pullRefFor, runUpdate } from './update.js'
export { checkUpdates, runUpdateCheck } from './check-updates.js'
