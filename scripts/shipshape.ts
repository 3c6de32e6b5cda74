#!/usr/bin/env node
import { Command, CommanderError } from 'commander'
import { ProcessOutput } from 'zx'
import { ShipshapeError, ExitCode } from '../lib/errors.js'
import { shipshapeVersion } from '../lib/cli/version.js'
import { priorityPrefix, stderrIsJournal } from '../lib/cli/output.js'
import { reportCommand } from './report.js'
import { configCommand } from './config.js'
import { inspectCommand } from './inspect.js'
import { torchCheckCommand } from './torch-check.js'
import { migrateAssetsCommand } from './migrate-assets.js'
import { rebuildCommand, rollbackCommand, updateCommand } from './rebuild.js'
import { pruneCommand } from './prune.js'
import { systemdCommand } from './systemd.js'
import { scheduleCommand } from './schedule.js'
import { doctorCommand } from './doctor.js'

function buildProgram(): Command {
  const program = new Command('shipshape')
    .description('Keep a Docker host lean and safe: measure, decide, act, verify, undo.')
    .version(shipshapeVersion(), '-V, --version', 'print the version and exit')
    .option(
      '-c, --config <file>',
      'host config file (default: $SHIPSHAPE_CONFIG, /etc/shipshape/<hostname>.yaml, /etc/shipshape/shipshape.yaml, a clone’s config/hosts/<hostname>.yaml, embedded default)',
    )
    .option(
      '-H, --docker-host <url>',
      'Docker engine address (default: $DOCKER_HOST, config docker.host, unix:///var/run/docker.sock)',
    )
    .option('--json', 'machine-readable output on stdout')
    .option('-q, --quiet', 'no progress or human output; warnings and errors only')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
  for (const make of [
    reportCommand,
    inspectCommand,
    torchCheckCommand,
    migrateAssetsCommand,
    rebuildCommand,
    rollbackCommand,
    updateCommand,
    pruneCommand,
    configCommand,
    systemdCommand,
    scheduleCommand,
    doctorCommand,
  ])
    program.addCommand(make())
  for (const cmd of program.commands) cmd.exitOverride().configureHelp({ showGlobalOptions: true })
  return program
}

/** The one place errors become exit codes (see lib/errors.ts and README "Exit codes"). */
function exitCodeFor(err: unknown): number {
  if (err instanceof ShipshapeError) return err.exitCode
  if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage
  return ExitCode.rolledBack
}

function describe(err: unknown): string | undefined {
  if (err instanceof CommanderError) return undefined // commander already printed it
  if (err instanceof ShipshapeError) {
    return err.remedy
      ? `shipshape: ${err.message} (fix: ${err.remedy})`
      : `shipshape: ${err.message}`
  }
  if (err instanceof ProcessOutput)
    return `shipshape: command failed (exit ${err.exitCode}): ${err.stderr.trim() || err.message}`
  if (err instanceof Error) {
    return process.env.SHIPSHAPE_DEBUG
      ? `shipshape: ${err.stack}`
      : `shipshape: unexpected error: ${err.message}`
  }
  return `shipshape: unexpected error: ${String(err)}`
}

async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv)
    return Number(process.exitCode ?? 0)
  } catch (err) {
    const text = describe(err)
    if (text) process.stderr.write(priorityPrefix('error', stderrIsJournal()) + text + '\n')
    return exitCodeFor(err)
  }
}

process.exitCode = await main(process.argv)
// Everything is done: if a stuck socket or child still holds the event loop, do not hang a
// timer's unit forever (unref'd: it never delays a normal exit).
setTimeout(() => process.exit(), 2000).unref()
