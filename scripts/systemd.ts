import { Command } from 'commander'
import { withCommand, type CommandContext } from '../lib/cli/command.js'
import type { GlobalOptions } from '../lib/cli/global.js'
import { UsageError } from '../lib/errors.js'
import {
  formatUnits,
  installUnits,
  locateInstall,
  printUnits,
  SYSTEMD_SCHEMA,
  type InstallOptions,
  type SystemdContext,
} from '../lib/systemd/index.js'

function refuseDockerHost(g: GlobalOptions): void {
  if (g.dockerHost) {
    throw new UsageError(
      '--docker-host is not carried into the units',
      'set docker.host in the config file the units use (the prune unit gets an IP network only for a tcp:// docker.host)',
    )
  }
}

const context = ({ out, loaded }: CommandContext): SystemdContext => ({
  config: loaded.config,
  out,
  ...locateInstall(loaded),
})

export function systemdCommand(): Command {
  const print = new Command('print')
    .description(
      'Print the units for this install (node, CLI and config paths, the config’s systemd: section) on stdout, or write them into DIR',
    )
    .option('--out <dir>', 'write the unit files into DIR instead of printing them')
    .addHelpText(
      'after',
      `\nExit codes: 0 printed (with a warning for each path others can change, which install refuses), 2 bad usage\nor config, 3 the CLI is not built.\nJSON shape: "schema": "${SYSTEMD_SCHEMA}", "action": "print", "units": [{name, path, changed, text}].`,
    )
    .action(
      withCommand((ctx, opts: { out?: string }) => printUnits(context(ctx), { outDir: opts.out }), {
        before: (g) => refuseDockerHost(g),
        human: (r, { out }, opts) => {
          if (!opts.out) return out.data(formatUnits(r.units))
          for (const u of r.units) out.info(`${u.changed ? 'wrote' : 'same '} ${u.path}`)
        },
      }),
    )
    .exitOverride()

  const install = new Command('install')
    .description(
      'Write the units into systemd.unitDir, create the directories they write to, and run systemctl daemon-reload; enables nothing',
    )
    .option('--dry-run', 'show what would be written; change nothing')
    .option('-y, --yes', 'do not ask for confirmation (needed without a TTY)')
    .option('--force', 'replace unit files that exist there with other content')
    .option('--resume', 'finish an install that was interrupted (its journal in stateDir)')
    .option('--rollback', 'undo an install that was interrupted: the unit files as they were')
    .addHelpText(
      'after',
      `\nExit codes: 0 installed (or up to date, or cancelled), 1 a step failed and the install was undone\n(e.g. systemctl daemon-reload failed: the unit files are as they were), 2 bad usage or config,\n3 the CLI is not built, 4 refused (root would run from a path others can change: node,\nthe package, the config or environment file, or a directory above one; a unit file there differs and no --force;\nno --yes without a TTY; cannot write; another run holds the lock or an install is unfinished),\n5 the undo failed too (the journal says where).\nJSON shape: "schema": "${SYSTEMD_SCHEMA}", "action": "install", "units": [{name, path, changed}].`,
    )
    .action(
      withCommand((ctx, opts: InstallOptions) => installUnits(context(ctx), opts), {
        before: (g) => refuseDockerHost(g),
      }),
    )
    .exitOverride()

  return new Command('systemd')
    .description('Render the report/prune timers and the schedule service for this install')
    .addCommand(print)
    .addCommand(install)
}
