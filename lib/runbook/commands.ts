/**
 * How an unfinished runbook run is continued, for a person: the --resume / --rollback command
 * lines of its journal and where it stopped. Pure; read by doctor (its checks) and prune (what an
 * unfinished run still needs stays, with the command that finishes it).
 */
import path from 'node:path'
import { showArgv } from '../host/run.js'
import type { JournalState } from './journal.js'

/** Runbook operations a person continues with --resume/--rollback, and the arg naming the target. */
export const RESUMABLE: Record<string, { key: string; command?: string; flags?: string[] }> = {
  'migrate-assets': { key: 'asset' },
  // `migrate-assets NAME --revert`: continued with --revert --resume / --revert --rollback
  'migrate-assets-revert': { key: 'asset', command: 'migrate-assets', flags: ['--revert'] },
  rebuild: { key: 'service' },
  rollback: { key: 'service' },
}

export interface JournalCommands {
  resume: string | null
  rollback: string | null
  /** one line for a person */
  fix: string
}

/** Pure: the command lines that finish or undo an unfinished run. */
export function journalCommands(
  j: Pick<JournalState, 'file' | 'operation' | 'args' | 'steps'>,
  o: { configFile?: string | null } = {},
): JournalCommands {
  const known = RESUMABLE[j.operation]
  const target = known ? j.args[known.key] : undefined
  if (j.operation === 'migrate-assets-finalize') {
    const asset = typeof j.args.asset === 'string' ? j.args.asset : 'NAME'
    return {
      resume: null,
      rollback: null,
      fix: `no command finishes it (\`migrate-assets ${asset} --finalize\` takes no --resume and is refused while it is there): check the originals it names in ${j.file} are gone (their removal cannot be undone; the backups stay), then move the journal out of ${path.dirname(j.file)}`,
    }
  }
  if (!known || typeof target !== 'string' || target === '') {
    return {
      resume: null,
      rollback: null,
      fix: `read ${j.file}: this shipshape version does not know how ${j.operation} runs are continued`,
    }
  }
  const cmd = (flag: string) =>
    showArgv([
      'shipshape',
      ...(o.configFile ? ['--config', o.configFile] : []),
      known.command ?? j.operation,
      target,
      ...(known.flags ?? []),
      flag,
    ])
  const resume = cmd('--resume')
  // rebuild/rollback refuse --rollback once the health gate passed: only finishing is left
  const healthy =
    (j.operation === 'rebuild' || j.operation === 'rollback') &&
    j.steps.get('health')?.status === 'done'
  if (healthy) {
    return {
      resume,
      rollback: null,
      fix: `\`${resume}\` to finish it (it had passed its health check: there is nothing to undo)`,
    }
  }
  const rollback = cmd('--rollback')
  return {
    resume,
    rollback,
    fix: `\`${resume}\` to finish it, or \`${rollback}\` to undo it`,
  }
}

/** Pure: where an unfinished run stopped, for a person. */
export function journalProgress(j: Pick<JournalState, 'steps' | 'outcome' | 'plan'>): string {
  const steps = [...j.steps.entries()]
  const title = (id: string) => j.plan.find((s) => s.id === id)?.title ?? id
  const broken = steps.filter(([, s]) => s.status === 'undo-failed' || s.status === 'failed')
  if (j.outcome === 'needs-person') {
    const u = steps.find(([, s]) => s.status === 'undo-failed') ?? broken.at(-1)
    return `failed and could not fully roll back${u ? `: ${u[1].status === 'undo-failed' ? 'undo of' : 'step'} "${title(u[0])}" failed${u[1].error ? ` (${u[1].error})` : ''}` : ''}`
  }
  const open = steps.filter(([, s]) => s.status !== 'done' && s.status !== 'undone').at(-1)
  const done = steps.filter(([, s]) => s.status === 'done').length
  if (open) {
    const what = open[1].status === 'undoing' ? 'while undoing' : 'in'
    return `interrupted ${what} step "${title(open[0])}" (${done} of ${j.plan.length} steps done)`
  }
  return `interrupted after ${done} of ${j.plan.length} steps`
}
