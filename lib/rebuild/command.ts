/**
 * `rebuild`, `rollback` and `update` as commands: the state directories checked when a run may
 * act on them, then what was asked (a run, rollback --list, update --check/--auto), and the exit
 * code of update --auto (the worst of its updates). scripts/rebuild.ts renders the result.
 */
import type { CommandContext } from '../cli/command.js'
import {
  NeedsPersonError,
  RefusedError,
  RolledBackError,
  UnavailableError,
  UsageError,
} from '../errors.js'
import { checkStateDirs } from '../host/private.js'
import { runUpdateCheck } from './check-updates.js'
import { runListBackups } from './list.js'
import { runRebuild } from './rebuild.js'
import type { RebuildOptions, RebuildOutcome, RebuildResult } from './result.js'
import { runRollback } from './rollback.js'
import { runUpdate } from './update.js'

export type RebuildKind = 'rebuild' | 'rollback' | 'update'

export type RebuildCommandOptions = RebuildOptions & {
  list?: boolean
  check?: boolean
  auto?: boolean
}

/** The command asked for; `name` '' with update --check/--auto: every service. */
export async function rebuildCommandRun(
  ctx: Pick<CommandContext, 'config' | 'out' | 'engine'>,
  kind: RebuildKind,
  name: string,
  opts: RebuildCommandOptions,
): Promise<RebuildOutcome> {
  const { config, out } = ctx
  // journals drive --resume as root: a stateDir/backupDir others could write is refused (exit 4)
  // before the engine is asked anything; --list and --dry-run act on nothing
  if (!opts.list && !opts.dryRun && !opts.check) await checkStateDirs(config)
  const c = { config, engine: await ctx.engine(), out }
  if (opts.check || opts.auto) {
    const names = name ? [name] : []
    return { result: await runUpdateCheck(c, names, { auto: opts.auto, yes: opts.yes }) }
  }
  if (opts.list) return { result: await runListBackups(c, name) }
  const run = kind === 'rebuild' ? runRebuild : kind === 'update' ? runUpdate : runRollback
  return run(c, name, opts)
}

/** update --auto: the worst of its updates decides the exit code (null: all went well). */
export function updateAutoError(result: RebuildResult): Error | null {
  const failed = (result.checks ?? []).filter((c) => (c.exitCode ?? 0) !== 0)
  if (!failed.length) return null
  // by severity, not by number: a person needed, then a rollback, the engine, a refusal, usage
  const order = [5, 1, 3, 4, 2]
  const rank = (code: number) => (order.includes(code) ? order.indexOf(code) : 1)
  const worst = failed.map((c) => c.exitCode ?? 1).sort((a, b) => rank(a) - rank(b))[0] as number
  const what = `update --auto: ${failed.map((c) => `${c.service}: ${c.outcome} (${c.error ?? ''})`).join('; ')}`
  if (worst === 5) return new NeedsPersonError(what)
  if (worst === 3) return new UnavailableError(what)
  if (worst === 4) return new RefusedError(what)
  if (worst === 2) return new UsageError(what)
  return new RolledBackError(what)
}
