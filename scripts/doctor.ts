import { Command } from 'commander'
import { withCommand } from '../lib/cli/command.js'
import { DOCTOR_SCHEMA, failedSummary, runDoctor } from '../lib/doctor/index.js'
import { renderDoctor } from '../lib/doctor/render.js'
import { ChecksFailedError } from '../lib/errors.js'

export function doctorCommand(): Command {
  return new Command('doctor')
    .description(
      'Check the host (read-only): engine and its disk, compose, rclone, asset mounts, stateDir/backupDir, config, host lock, unfinished runs, systemd units; each finding with its fix',
    )
    .addHelpText(
      'after',
      `\nExit codes: 0 nothing failed (warnings allowed), 1 a check failed, 2 bad usage.\nJSON shape: { "schema": "${DOCTOR_SCHEMA}", "generatedAt", "ok", "checks": [{ "id", "title", "status": "ok|warn|fail", "detail", "fix" }] }.`,
    )
    .action(
      withCommand(
        ({ g, spin }) =>
          spin('Checking', (progress) =>
            runDoctor({ configFile: g.config, dockerHost: g.dockerHost, progress }),
          ),
        {
          // doctor reads the config itself: an invalid one is a failed check, not the end
          config: 'none',
          human: (r, { out }) => {
            const width = out.interactive ? process.stderr.columns || 120 : undefined
            out.human(renderDoctor(r, { color: out.interactive, width }))
          },
          verdict: (r) =>
            r.ok
              ? null
              : new ChecksFailedError(failedSummary(r), 'each failed check names its fix'),
        },
      ),
    )
}
