import { Command } from 'commander'
import { withCommand } from '../lib/cli/command.js'
import { UsageError } from '../lib/errors.js'
import { runMigrateCommand, type MigrateCommandOptions } from '../lib/migrate-assets/index.js'
import { renderFinalize, renderMigrate } from '../lib/migrate-assets/render.js'
import { runMode } from '../lib/runbook/index.js'

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
      withCommand(
        (ctx, name: string, opts: MigrateCommandOptions) => runMigrateCommand(ctx, name, opts),
        {
          before: (_g, _name, opts) => usage(opts),
          json: (done) => done.result,
          // a failed --finalize shows what it removed; a failed run or revert only its error
          human: (done, { out }, _name, opts) => {
            if (opts.finalize) out.human(renderFinalize(done.result))
            else if (!done.error) out.human(renderMigrate(done.result))
          },
          verdict: (done) => done.error ?? null,
        },
      ),
    )
}

/** Flags that do not go together: usage errors (exit 2) before the config is read. */
function usage(opts: MigrateCommandOptions): void {
  if (opts.revert && opts.finalize) {
    throw new UsageError('--revert and --finalize exclude each other')
  }
  if (opts.removeCopy && !opts.revert) {
    throw new UsageError('--remove-copy goes with --revert')
  }
  runMode(opts) // --resume with --rollback
}
