import { Command } from 'commander'
import { formatBytes } from '../lib/config/units.js'
import { loadConfig } from '../lib/config/index.js'
import { globalOptions } from '../lib/cli/global.js'
import { createOutput } from '../lib/cli/output.js'
import { openEngine } from '../lib/docker/open.js'
import {
  runMigrateAssets,
  runMigrateFinalize,
  type MigrateResult,
} from '../lib/migrate-assets/index.js'
import { runMigrateRevert } from '../lib/migrate-assets/revert.js'
import { checkStateDirs } from '../lib/host/private.js'
import { UsageError } from '../lib/errors.js'

function render(r: MigrateResult): string {
  const lines = [`${r.asset}: ${r.outcome}`]
  if (r.files) lines.push(`  files      ${r.files} (${formatBytes(r.bytes)})`)
  if (r.backup)
    lines.push(
      `  backup     ${r.backup.archive ?? r.backup.dir}${r.backup.archiveBytes !== null ? ` (${formatBytes(r.backup.archiveBytes)}, ${r.backup.compression})` : ''}`,
    )
  if (r.verified) lines.push(`  verified   ${r.verified.files} files: ${r.verified.by}`)
  if (r.original) lines.push(`  original   ${r.original.path} (kept until ${r.original.keepUntil})`)
  if (r.revert) {
    if (r.revert.from) lines.push(`  from       the ${r.revert.from}`)
    const c = r.revert.copy
    lines.push(
      `  copy       ${c.path} (${c.files} files, ${formatBytes(c.bytes)}): ${c.removed ? 'removed' : c.remove && r.outcome === 'dry-run' ? 'removed last (--remove-copy)' : 'left on the mount'}`,
    )
    if (r.revert.originalLeft) lines.push(`  original   ${r.revert.originalLeft}`)
    if (r.revert.health) lines.push(`  health     ${r.revert.health}`)
  }
  if (r.containers.length) lines.push(`  containers ${r.containers.join(', ')}`)
  if (r.journal) lines.push(`  journal    ${r.journal}`)
  return lines.join('\n')
}

export function migrateAssetsCommand(): Command {
  return new Command('migrate-assets')
    .description(
      'Move a configured asset directory onto an rclone mount: preflight, verified backup, verified copy, upload checked on the remote, atomic swap to a symlink, container restart and health check; rolled back on failure',
    )
    .argument('<name>', 'the asset, as named under assets: in the host config')
    .option('--dry-run', 'print the plan and what each step would touch; change nothing')
    .option('-y, --yes', 'do not ask for confirmation (needed without a TTY)')
    .option('--resume', 'finish an interrupted run (or --finalize) from its journal')
    .option(
      '--rollback',
      'undo an interrupted run from its journal (with --finalize: close it; removals stay)',
    )
    .option(
      '--revert',
      'undo a finished migration: the files back as a local directory (from the kept original, or copied back from the destination and checked), containers restarted, health gate; with --resume/--rollback: an interrupted revert',
    )
    .option(
      '--remove-copy',
      'with --revert: remove the copy on the mount once everything is healthy (the last step; left otherwise)',
    )
    .option(
      '--finalize',
      'remove the originals kept aside whose keepOriginal has passed (while the migration stands)',
    )
    .addHelpText(
      'after',
      '\nExit codes: 0 migrated (or already migrated, or reverted), 1 failed and rolled back (nothing lost), 2 bad usage/config,\n3 Docker engine or rclone unavailable, 4 refused before anything changed (lock held, mount not live,\nno space, path not allowed, unfinished run), 5 could not fully roll back: the journal says where.\nJSON shape: "schema": "shipshape.migrate-assets/1" (see README).',
    )
    .action(
      async (
        name: string,
        opts: {
          dryRun?: boolean
          yes?: boolean
          resume?: boolean
          rollback?: boolean
          finalize?: boolean
          revert?: boolean
          removeCopy?: boolean
        },
        cmd: Command,
      ) => {
        const g = globalOptions(cmd)
        if (opts.revert && opts.finalize) {
          throw new UsageError('--revert and --finalize exclude each other')
        }
        if (opts.removeCopy && !opts.revert) {
          throw new UsageError('--remove-copy goes with --revert')
        }
        if (opts.revert && opts.resume && opts.rollback) {
          throw new UsageError('--resume and --rollback exclude each other')
        }
        const out = createOutput({ json: g.json, quiet: g.quiet })
        const { config } = await loadConfig({ file: g.config })
        // nothing is trusted from a stateDir/backupDir others can write (a planted journal,
        // an original.json naming /etc): refused before the engine is touched
        if (!opts.dryRun) await checkStateDirs(config)
        if (opts.finalize) {
          if (opts.resume && opts.rollback) {
            throw new UsageError('--resume and --rollback exclude each other')
          }
          // with --resume/--rollback: an interrupted --finalize (removals cannot be undone:
          // --rollback only closes its journal)
          const show = (r: MigrateResult) =>
            g.json
              ? out.data(JSON.stringify(r, null, 2))
              : out.human(
                  `${r.asset}: ${r.outcome}${r.finalize?.removed.length ? `\n  removed ${r.finalize.removed.join(', ')}` : ''}`,
                )
          try {
            show(await runMigrateFinalize({ config, out }, name, opts))
          } catch (err) {
            const partial = (err as { result?: MigrateResult }).result
            if (partial) show(partial)
            throw err
          }
          return
        }
        const engine = await openEngine({
          config,
          dockerHost: g.dockerHost,
          warn: (w) => out.warn(w),
        })
        let result: MigrateResult
        try {
          result = opts.revert
            ? await runMigrateRevert({ config, engine, out }, name, opts)
            : await runMigrateAssets({ config, engine, out }, name, opts)
        } catch (err) {
          const partial = (err as { result?: MigrateResult }).result
          if (partial && g.json) out.data(JSON.stringify(partial, null, 2))
          throw err
        } finally {
          engine.close()
        }
        if (g.json) out.data(JSON.stringify(result, null, 2))
        else out.human(render(result))
      },
    )
}
