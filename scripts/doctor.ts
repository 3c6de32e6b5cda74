import { Command } from 'commander'
import { globalOptions } from '../lib/cli/global.js'
import { createOutput } from '../lib/cli/output.js'
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
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globalOptions(cmd)
      const out = createOutput({ json: g.json, quiet: g.quiet })
      const spinner = out.spinner('Checking')
      let r
      try {
        r = await runDoctor({
          configFile: g.config,
          dockerHost: g.dockerHost,
          progress: (t) => spinner.update(t),
        })
      } finally {
        spinner.stop()
      }
      if (g.json) out.data(JSON.stringify(r, null, 2))
      else {
        const width = out.interactive ? process.stderr.columns || 120 : undefined
        out.human(renderDoctor(r, { color: out.interactive, width }))
      }
      if (!r.ok) {
        throw new ChecksFailedError(failedSummary(r), 'each failed check names its fix')
      }
    })
}
