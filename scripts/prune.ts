import { Command } from 'commander'
import { withCommand, type CommandContext } from '../lib/cli/command.js'
import { clip, table } from '../lib/cli/table.js'
import { formatBytes } from '../lib/config/index.js'
import { RefusedError, RolledBackError, UsageError } from '../lib/errors.js'
import { ttyConfirm } from '../lib/runbook/confirm.js'
import { checkStateDirs } from '../lib/host/private.js'
import { pruneApplies, runPrune, type PruneResult } from '../lib/prune/index.js'

export function renderPrune(r: PruneResult, color: boolean): string {
  const stale = r.kept.filter((k) => r.planFile && k.reason.startsWith(`in ${r.planFile}, kept`))
  const staleLines = stale.map((k) => `kept: ${k.kind} ${k.name} — ${k.reason}`)
  if (!r.candidates.length) return [...staleLines, 'Nothing to prune.'].join('\n')
  const t = table(['KIND', 'NAME', 'SIZE', 'WHY', ...(r.applied ? ['RESULT'] : [])], color)
  for (const c of r.candidates) {
    t.push([
      c.kind,
      clip(c.name, 48),
      formatBytes(c.sizeBytes),
      clip(c.reason, 70),
      ...(r.applied
        ? [c.status === 'failed' ? `failed: ${clip(c.error ?? '', 40)}` : (c.status ?? '')]
        : []),
    ])
  }
  const lines = [t.toString(), ...staleLines, '']
  const by = Object.entries(r.totals.byKind)
    .map(([k, v]) => `${v.count} ${k}${v.count === 1 ? '' : 's'} ${formatBytes(v.bytes)}`)
    .join(', ')
  lines.push(`Total: ${r.totals.count} (${by}) — about ${formatBytes(r.totals.bytes)}`)
  if (r.applied) {
    lines.push(
      `Reclaimed: ${formatBytes(r.reclaimedBytes ?? 0)} (engine accounting)${r.freedFilesBytes ? ` + ${formatBytes(r.freedFilesBytes)} of files (kept originals, backup archives)` : ''}${r.disk.before !== null && r.disk.after !== null ? `; disk used ${formatBytes(r.disk.before)} → ${formatBytes(r.disk.after)}` : ''}`,
    )
    if (r.failures.length) lines.push(`${r.failures.length} removal(s) failed: see RESULT`)
    if (r.record) lines.push(`Record: ${r.record}`)
  } else if (r.outcome === 'cancelled') {
    lines.push('Cancelled: nothing removed.')
  } else if (r.planFile) {
    lines.push(
      `Plan written to ${r.planFile}: nothing removed. \`shipshape prune --apply ${r.planFile}\` removes exactly it (each item checked again).`,
    )
  } else {
    lines.push(
      'Dry run: nothing removed. Run with --yes to apply (or set prune.apply: true for timers).',
    )
  }
  return lines.join('\n')
}

export function pruneCommand(): Command {
  return new Command('prune')
    .description(
      'Plan what to remove (stopped containers, dangling and unused images, old tags and backups, build cache, kept originals; LRU images under disk pressure), then remove it with --yes',
    )
    .option('--dry-run', 'only show the plan (the default without --yes or prune.apply: true)')
    .option('-y, --yes', 'apply the plan without asking')
    .option('--plan-out <file>', 'write the plan to FILE (JSON, 0600) and remove nothing')
    .option(
      '--apply <file>',
      'remove exactly the plan saved in FILE, each item checked again (gone, now in use, newly protected → kept)',
    )
    .addHelpText(
      'after',
      '\nExit codes: 0 planned or pruned, 1 some removals failed (the rest went on; nothing else changed),\n2 bad usage/config, 3 Docker engine unavailable, 4 refused (another run holds the lock, or stateDir/backupDir\nis writable by others, a symlink or not owned by the user running shipshape).\nJSON shape: "schema": "shipshape.prune/1" (see README).',
    )
    .action(
      withCommand((ctx, opts: PruneOptions) => prune(ctx, opts), {
        before: (_g, opts) => {
          if (opts.planOut && opts.apply)
            throw new UsageError('--plan-out and --apply exclude each other')
          if (opts.dryRun && opts.apply)
            throw new UsageError('--dry-run and --apply exclude each other')
        },
        human: (r, { out }) => {
          if (r.outcome !== 'cancelled' || !interactive()) out.human(renderPrune(r, color()))
          else out.human('Cancelled: nothing removed.')
        },
        verdict: (r) =>
          r.outcome !== 'partial'
            ? null
            : new RolledBackError(
                `${r.failures.length} of ${r.candidates.length} removals failed: ${r.failures
                  .slice(0, 3)
                  .map((f) => `${f.kind} ${f.name}: ${f.error}`)
                  .join('; ')}`,
                'the rest were removed; run prune again to see what is left',
              ),
      }),
    )
}

interface PruneOptions {
  dryRun?: boolean
  yes?: boolean
  planOut?: string
  apply?: string
}

const interactive = () => Boolean(process.stdin.isTTY)
const color = () => Boolean(process.stderr.isTTY) && !process.env.NO_COLOR

async function prune(ctx: CommandContext, opts: PruneOptions): Promise<PruneResult> {
  const { config, out } = ctx
  // --apply FILE from a script or timer: it has to say --yes (as every mutating command)
  if (opts.apply && !opts.yes && !interactive()) {
    throw new RefusedError(
      'confirmation needed: run with --yes',
      `read the plan in ${opts.apply}, then \`shipshape prune --apply ${opts.apply} --yes\``,
    )
  }
  // a stateDir/backupDir others could write is refused before the engine is asked anything
  if (pruneApplies(config, { ...opts, applyFile: opts.apply })) await checkStateDirs(config)
  return runPrune(
    { config, engine: await ctx.engine(), out },
    {
      ...opts,
      ...(opts.apply ? { applyFile: opts.apply } : {}),
      interactive: interactive(),
      confirm: async (planned) => {
        out.human(renderPrune(planned, color()))
        return ttyConfirm(
          `Remove these ${planned.totals.count} things (about ${formatBytes(planned.totals.bytes)})?`,
        )
      },
    },
  )
}
