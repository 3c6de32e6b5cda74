/**
 * The jobs a host runs unattended (systemd units or `shipshape schedule`), and each one's command
 * line: the one definition both the units (lib/systemd/render.ts) and the scheduler's children
 * (lib/schedule/jobs.ts) use.
 */
import path from 'node:path'
import type { Config } from './schema.js'

export type Job = 'report' | 'prune' | 'schedule' | 'update'

/** The command line of a job's service, as an argument array. */
export function jobArgv(
  job: Job,
  o: {
    nodePath: string
    cliPath: string
    config: Pick<Config, 'stateDir'> & { report?: Pick<Config['report'], 'metricsFile'> }
  },
): string[] {
  const base = [o.nodePath, o.cliPath]
  switch (job) {
    case 'report':
      // --quiet: the report is in the files; the journal gets warnings, the notify line, errors
      return [
        ...base,
        '--quiet',
        'report',
        '--out',
        path.posix.join(o.config.stateDir, 'reports'),
        '--notify',
        ...(o.config.report?.metricsFile ? ['--metrics', o.config.report.metricsFile] : []),
      ]
    case 'prune':
      // no --yes: the host config decides (prune.apply: true applies; false leaves a dry run)
      return [...base, 'prune', '--json']
    case 'schedule':
      return [...base, 'schedule']
    case 'update':
      // services with update: apply (the others are only listed); each update takes the lock
      return [...base, '--quiet', 'update', '--auto', '--yes']
  }
}
