/**
 * The one registry of runbook operations: for each, the journal arg naming its target, which
 * unfinished runs block a new one, how a person continues an unfinished run (--resume/--rollback
 * command lines) and when --rollback is barred. Pure; read by doctor (its journal check), prune
 * (what an unfinished run still needs stays, with the command that finishes it) and the commands
 * (what blocks them).
 */
import path from 'node:path'
import { showArgv } from '../host/run.js'
import type { JournalState } from './journal.js'

type JournalFacts = Pick<JournalState, 'file' | 'operation' | 'args' | 'steps'>

export interface OperationSpec {
  /** the journal's args key naming the target; null for a host-wide operation */
  key: 'asset' | 'service' | null
  /** unfinished runs of these operations on the same target refuse a new run */
  blockedBy: readonly string[]
  /** continued with `<command> TARGET [flags] --resume|--rollback` */
  resume?: {
    /** the command a person runs when it is not the operation's own name */
    command?: string
    flags?: readonly string[]
    /** --rollback is refused once this step is done: only finishing is left */
    rollbackBarredAfter?: string
    /** why there is nothing to undo, for a person, once rollbackBarredAfter is done */
    barredBecause?: string
  }
  /** not continued by any command: what a person does instead */
  manual?: (j: JournalFacts) => string
}

const SERVICE_OPS = ['rebuild', 'rollback', 'update'] as const
const HEALTHY = {
  rollbackBarredAfter: 'health',
  barredBecause: 'it had passed its health check: there is nothing to undo',
}

export const OPERATIONS: Readonly<Record<string, OperationSpec>> = {
  'migrate-assets': { key: 'asset', blockedBy: ['migrate-assets-revert'], resume: {} },
  // `migrate-assets NAME --revert`: continued with --revert --resume / --revert --rollback
  'migrate-assets-revert': {
    key: 'asset',
    blockedBy: ['migrate-assets', 'migrate-assets-finalize'],
    resume: { command: 'migrate-assets', flags: ['--revert'] },
  },
  // `migrate-assets NAME --finalize` takes no --resume: a person clears it
  'migrate-assets-finalize': {
    key: 'asset',
    blockedBy: ['migrate-assets-revert'],
    manual: (j) => {
      const asset = typeof j.args.asset === 'string' ? j.args.asset : 'NAME'
      return `no command finishes it (\`migrate-assets ${asset} --finalize\` takes no --resume and is refused while it is there): check the originals it names in ${j.file} are gone (their removal cannot be undone; the backups stay), then move the journal out of ${path.dirname(j.file)}`
    },
  },
  // rebuild/rollback refuse --rollback once the health gate passed: only finishing is left
  rebuild: { key: 'service', blockedBy: ['rollback', 'update'], resume: HEALTHY },
  rollback: { key: 'service', blockedBy: ['rebuild', 'update'], resume: HEALTHY },
  update: { key: 'service', blockedBy: ['rebuild', 'rollback'] },
  // host-wide: only the host lock stands in its way; the next applying prune plans again and
  // finishes an unfinished one (what it removed is gone; nothing to undo: removals are final)
  prune: {
    key: null,
    blockedBy: [],
    manual: (j) =>
      `the next \`shipshape prune --yes\` finishes it: it plans again from what is there (removals cannot be undone; ${j.file} says what had begun)`,
  },
  // host-wide (one journal per unitDir): `systemd install --resume|--rollback` with the same config
  'systemd-install': {
    key: null,
    blockedBy: [],
    manual: (j) => {
      const cmd = 'shipshape systemd install'
      const dir = typeof j.args.unitDir === 'string' ? ` (systemd.unitDir ${j.args.unitDir})` : ''
      return `\`${cmd} --resume\` to finish it, or \`${cmd} --rollback\` to put the unit files back as they were, with the config it ran with${dir}`
    },
  },
}

/** The operations whose unfinished runs on the same target refuse a new one: itself first. */
export function blockingOperations(operation: string): string[] {
  return [operation, ...(OPERATIONS[operation]?.blockedBy ?? [])]
}

/** The operations that act on one service's containers and images. */
export const SERVICE_OPERATIONS: readonly string[] = SERVICE_OPS

/** The target an unfinished run names (asset or service), if any. */
export function journalTarget(j: Pick<JournalState, 'operation' | 'args'>): string | undefined {
  const spec = OPERATIONS[j.operation]
  const target = spec?.key ? j.args[spec.key] : (j.args.asset ?? j.args.service)
  return typeof target === 'string' ? target : undefined
}

/** Pure: why --rollback is refused for this journal (null when it is not). */
export function rollbackBarred(j: Pick<JournalState, 'operation' | 'steps'>): string | null {
  const r = OPERATIONS[j.operation]?.resume
  if (!r?.rollbackBarredAfter) return null
  return j.steps.get(r.rollbackBarredAfter)?.status === 'done' ? (r.barredBecause ?? '') : null
}

export interface JournalCommands {
  resume: string | null
  rollback: string | null
  /** one line for a person */
  fix: string
}

/** Pure: the command lines that finish or undo an unfinished run. */
export function journalCommands(
  j: JournalFacts,
  o: { configFile?: string | null } = {},
): JournalCommands {
  const spec = OPERATIONS[j.operation]
  if (spec?.manual) return { resume: null, rollback: null, fix: spec.manual(j) }
  const target = spec?.key ? j.args[spec.key] : undefined
  if (!spec?.resume || typeof target !== 'string' || target === '') {
    return {
      resume: null,
      rollback: null,
      fix: `read ${j.file}: this shipshape version does not know how ${j.operation} runs are continued`,
    }
  }
  const known = spec.resume
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
  const barred = rollbackBarred(j)
  if (barred !== null) {
    return { resume, rollback: null, fix: `\`${resume}\` to finish it (${barred})` }
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
