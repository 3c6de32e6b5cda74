/**
 * The import rules of shipshape's layers (ARCHITECTURE.md "Layers"), checked by `npm run deps`
 * in `npm run check` and CI. From the bottom up:
 *   lib/shared/      vocabulary: labels, tag prefixes, stamps, Refusal, manifest types — imports
 *                    nothing of lib/ but itself and lib/errors.ts
 *   core             lib/errors.ts, lib/cli/, lib/config/, lib/runbook/
 *   adapters         lib/docker/, lib/host/ (the engine, the process runner, files, rclone,
 *                    compose, locks)
 *   libraries        lib/assets/, lib/health/, lib/scan/, lib/state/: used by several commands
 *   commands         one folder per command, named as the command
 *   scripts/         entry points: parse, build the command context, wire ports, render
 */
const COMMANDS = [
  'report',
  'inspect',
  'migrate-assets',
  'rebuild',
  'prune',
  'config-init',
  'doctor',
  'schedule',
  'systemd',
  'torch-check',
]
const commands = `^lib/(${COMMANDS.join('|')})/`
const adapters = '^lib/(docker|host)/'
const libraries = '^lib/(assets|health|scan|state)/'

module.exports = {
  forbidden: [
    {
      name: 'command-imports-command',
      comment:
        'a command never imports another command: share through lib/shared, a library, or a port the entry point wires',
      severity: 'error',
      from: { path: `^lib/(${COMMANDS.join('|')})/` },
      to: { path: commands, pathNot: '^lib/$1/' },
    },
    {
      name: 'adapter-imports-upward',
      comment: 'adapters (docker, host) know no command, library or runbook',
      severity: 'error',
      from: { path: adapters },
      to: { path: [commands, libraries, '^lib/runbook/'] },
    },
    {
      name: 'library-imports-command',
      comment: 'libraries (assets, health, scan, state) serve commands and know none',
      severity: 'error',
      from: { path: libraries },
      to: { path: commands },
    },
    {
      name: 'config-imports-adapter',
      comment: 'the config is pure: schema, loader, units; no engine, no host',
      severity: 'error',
      from: { path: '^lib/config/' },
      to: { path: [adapters, libraries, commands, '^lib/runbook/'] },
    },
    {
      name: 'core-imports-command',
      comment: 'core (errors, cli, config, runbook) knows no command or library',
      severity: 'error',
      from: { path: '^lib/(errors\\.ts|cli/|config/|runbook/)' },
      to: { path: [commands, libraries] },
    },
    {
      name: 'shared-is-the-bottom',
      comment: 'lib/shared is vocabulary: it imports nothing of lib/ but itself and the errors',
      severity: 'error',
      from: { path: '^lib/shared/' },
      to: { path: '^lib/', pathNot: '^lib/(shared/|errors\\.ts$)' },
    },
    {
      name: 'lib-imports-script',
      comment: 'scripts/ are entry points; lib/ never imports them',
      severity: 'error',
      from: { path: '^lib/' },
      to: { path: '^scripts/' },
    },
    {
      name: 'child-process-outside-runner',
      comment: 'every child process goes through the one runner, lib/host/run.ts',
      severity: 'error',
      from: { path: '^(lib|scripts)/', pathNot: '^lib/host/run\\.ts$' },
      to: { path: '^(node:)?child_process$' },
    },
    {
      name: 'no-circular',
      comment: 'no import cycles (a type-only import is not one: it is gone at run time)',
      severity: 'error',
      from: { path: '^(lib|scripts)/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^(lib|scripts)/|^(node:)?child_process$',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
}
