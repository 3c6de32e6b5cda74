import { Command } from 'commander'
import { withCommand } from '../lib/cli/command.js'
import { UsageError } from '../lib/errors.js'
import {
  rebuildCommandRun,
  updateAutoError,
  type RebuildCommandOptions,
  type RebuildKind,
} from '../lib/rebuild/command.js'
import { renderRebuild } from '../lib/rebuild/render.js'
import { runMode } from '../lib/runbook/index.js'

const EXIT_HELP = (what: string) =>
  `\nExit codes: 0 ${what}, 1 failed and rolled back (the service is back on its image), 2 bad usage/config,\n3 Docker engine or compose unavailable, 4 refused before anything changed (lock held, no health check,\nno space, unfinished run, stateDir/backupDir writable by others), 5 could not fully roll back: the journal says where.`

/**
 * The action of rebuild, rollback and update: usage errors before the config is read; the result
 * printed (with --json also of a run that failed or was refused), then its exit code.
 */
function act(kind: RebuildKind, prepare: (opts: Opts) => RebuildCommandOptions = (o) => o) {
  return withCommand(
    (ctx, name: string | undefined, opts: Opts) =>
      rebuildCommandRun(ctx, kind, name ?? '', prepare(opts)),
    {
      before: (_g, name, opts) => usage(kind, name, opts),
      json: (done) => done.result,
      human: (done, { out }) => {
        if (!done.error) out.human(renderRebuild(done.result))
      },
      verdict: (done) => done.error ?? updateAutoError(done.result),
    },
  )
}

/** The flags of a run (a runbook) after the command's own, then the exit codes and JSON shape. */
function runFlags(cmd: Command, what: RebuildKind, done: string): Command {
  return cmd
    .option('--dry-run', 'print the plan and what each step would touch; change nothing')
    .option('-y, --yes', 'do not ask for confirmation (needed without a TTY)')
    .option('--resume', `finish an interrupted ${what} from its journal`)
    .option('--rollback', `undo an interrupted ${what} from its journal`)
    .addHelpText(
      'after',
      `${EXIT_HELP(done)}\nJSON shape: "schema": "shipshape.${what}/1" (see README).`,
    )
}

type Opts = RebuildCommandOptions & { cache?: boolean }

function usage(kind: RebuildKind, name: string | undefined, opts: Opts): void {
  if (kind === 'update' && !name && !opts.check && !opts.auto) {
    throw new UsageError('name a service (or --check / --auto for all of them)')
  }
  runMode(opts) // --resume with --rollback
  if (opts.list && (opts.resume || opts.rollback || opts.to || opts.dryRun || opts.restoreFiles))
    throw new UsageError('--list only lists: no other option goes with it')
  if ((opts.check || opts.auto) && (opts.resume || opts.rollback || opts.to || opts.dryRun))
    throw new UsageError('--check and --auto go with no other option but --yes')
  if (opts.check && opts.auto)
    throw new UsageError('--check only looks; --auto also updates: one of them')
}

export function rebuildCommand(): Command {
  const cmd = new Command('rebuild')
    .description(
      'Guarded rebuild of a configured service: back up its image (tag) and container (commit), build, recreate, health-check; rolled back on failure',
    )
    .argument('<service>', 'the service, as named under services: in the host config')
    .option('--no-cache', 'build every layer again (docker build --no-cache)')
  return runFlags(cmd, 'rebuild', 'rebuilt and healthy').action(
    act('rebuild', (opts) => ({ ...opts, noCache: opts.cache === false })),
  )
}

export function rollbackCommand(): Command {
  const cmd = new Command('rollback')
    .description(
      'Put a service back on a backup image (default: the newest shipshape-prev tag) and health-check it; undone if it fails',
    )
    .argument('<service>', 'the service, as named under services: in the host config')
    .option(
      '--to <tag>',
      'a backup tag (shipshape-prev-…, shipshape-backup-…, or repo:tag) or an image id',
    )
    .option('--list', 'list the service’s backups and saved build files; change nothing')
    .option(
      '--restore-files',
      'also write the build files saved with that image (compose files, .env, Dockerfile) back to disk; the files there now are saved aside first',
    )
  return runFlags(cmd, 'rollback', 'on the backup and healthy (or already on it)').action(
    act('rollback'),
  )
}

export function updateCommand(): Command {
  const cmd = new Command('update')
    .description(
      'Guarded update of a service that runs a registry image: back up, pull, recreate, health-check; rolled back on failure',
    )
    .argument('[service]', 'the service, as named under services: in the host config')
    .option(
      '--to <tag>',
      'a tag of the service’s repository, or a full reference (default: services.X.image, else what it runs)',
    )
    .option('--check', 'only ask the registry whether a newer image exists (read-only)')
    .option(
      '--auto',
      'the timer’s run: every service with update: apply that has a newer image is updated; notify ones are listed',
    )
  return runFlags(cmd, 'update', 'updated and healthy, or already up to date').action(act('update'))
}
