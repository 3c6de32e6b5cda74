import { Command } from 'commander'
import { globalOptions } from '../lib/cli/global.js'
import { createOutput } from '../lib/cli/output.js'
import { table } from '../lib/cli/table.js'
import { formatBytes, loadConfig } from '../lib/config/index.js'
import { openEngine } from '../lib/docker/open.js'
import {
  NeedsPersonError,
  RefusedError,
  RolledBackError,
  UnavailableError,
  UsageError,
} from '../lib/errors.js'
import { checkStateDirs } from '../lib/host/private.js'
import {
  runListBackups,
  runRebuild,
  runRollback,
  runUpdate,
  runUpdateCheck,
  type RebuildOptions,
  type RebuildOutcome,
  type RebuildResult,
} from '../lib/rebuild/index.js'
import { runMode } from '../lib/runbook/index.js'

const short = (id: string | null) => (id ? id.replace(/^sha256:/, '').slice(0, 12) : '-')

export function renderRebuild(r: RebuildResult): string {
  if (r.outcome === 'listed') {
    const parts: string[] = []
    if (!r.backups.length) parts.push(`${r.service}: no backups`)
    else {
      const t = table(['TAG', 'KIND', 'CREATED', 'SIZE', 'ID', 'BUILD FILES'], false)
      for (const b of r.backups as {
        tag: string
        id: string
        kind: string
        created?: string
        sizeBytes?: number
        files?: { origin: string } | null
      }[]) {
        t.push([
          b.tag,
          b.kind,
          b.created?.slice(0, 19).replace('T', ' ') ?? '',
          b.sizeBytes !== undefined ? formatBytes(b.sizeBytes) : '',
          short(b.id),
          b.files ? b.files.origin : '-',
        ])
      }
      parts.push(t.toString())
    }
    if (r.buildFiles?.length) {
      const t = table(['BUILD FILES OF', 'SAVED', 'HOW', 'FILES'], false)
      for (const f of r.buildFiles) {
        t.push([
          short(f.imageId),
          f.savedAt.slice(0, 19).replace('T', ' '),
          f.origin,
          f.files.map((x) => x.split('/').pop()).join(', '),
        ])
      }
      parts.push(t.toString())
    }
    return parts.join('\n')
  }
  if (r.outcome === 'checked') {
    const checks = r.checks ?? []
    if (!checks.length)
      return 'no service has update: notify or apply (name one: shipshape update --check SERVICE)'
    const t = table(['SERVICE', 'UPDATE', 'IMAGE', 'RUNS', 'REGISTRY', 'NEWER', 'DONE'], false)
    for (const c of checks) {
      t.push([
        c.service,
        c.mode,
        c.ref ?? '-',
        short(c.runs),
        c.remoteDigest ? c.remoteDigest.slice(0, 19) : c.error ? `? ${c.error.slice(0, 60)}` : '-',
        c.newer === null ? '?' : c.newer ? 'yes' : 'no',
        c.outcome ?? '',
      ])
    }
    return t.toString()
  }
  const lines = [`${r.service}: ${r.outcome}`]
  if (r.image.ref)
    lines.push(`  image      ${r.image.ref}: ${short(r.image.from)} → ${short(r.image.to)}`)
  if (r.update)
    lines.push(
      `  registry   ${r.update.ref} ${r.update.remoteDigest ? r.update.remoteDigest.slice(0, 19) : '(not asked)'}${r.update.newer === null ? '' : r.update.newer ? ' (newer)' : ' (what runs)'}`,
    )
  for (const b of r.backups) lines.push(`  backup     ${b.tag} (${b.kind}, ${short(b.id)})`)
  if (r.containers.length) lines.push(`  containers ${r.containers.join(', ')}`)
  if (r.health)
    lines.push(
      `  health     ${r.health.ok ? 'ok' : 'failed'} after ${r.health.attempts} ${r.health.attempts === 1 ? 'try' : 'tries'}${r.health.heldMs ? `, held ${(r.health.heldMs / 1000).toFixed(1)} s` : ''}${r.timings.gateMs !== null ? ` (${(r.timings.gateMs / 1000).toFixed(1)} s)` : ''}`,
    )
  if (r.size)
    lines.push(
      `  size       ${formatBytes(r.size.beforeBytes)} → ${r.size.afterBytes === null ? '?' : formatBytes(r.size.afterBytes)}${r.size.savedBytes === null ? '' : r.size.savedBytes >= 0 ? ` (${formatBytes(r.size.savedBytes)} saved)` : ` (${formatBytes(-r.size.savedBytes)} more)`}`,
    )
  if (r.files) {
    const changed = r.files.diff.filter((d) => d.state !== 'same')
    lines.push(
      `  files      ${r.files.origin === null ? 'none saved with this image' : changed.length ? `${changed.map((d) => `${d.path} (${d.state})`).join(', ')} differ from the saved ones` : 'as saved with this image'}`,
    )
    if (r.files.restored.length)
      lines.push(
        `  restored   ${r.files.restored.join(', ')} (replaced files in ${r.files.replacedSavedIn})`,
      )
  }
  if (r.failedImage)
    lines.push(`  failed     image ${short(r.failedImage)} left untagged for a look`)
  if (r.log) lines.push(`  log        ${r.log}`)
  if (r.journal) lines.push(`  journal    ${r.journal}`)
  return lines.join('\n')
}

const EXIT_HELP = (what: string) =>
  `\nExit codes: 0 ${what}, 1 failed and rolled back (the service is back on its image), 2 bad usage/config,\n3 Docker engine or compose unavailable, 4 refused before anything changed (lock held, no health check,\nno space, unfinished run, stateDir/backupDir writable by others), 5 could not fully roll back: the journal says where.`

type Opts = RebuildOptions & { list?: boolean; check?: boolean; auto?: boolean }

async function act(
  kind: 'rebuild' | 'rollback' | 'update',
  name: string,
  opts: Opts,
  cmd: Command,
): Promise<void> {
  const g = globalOptions(cmd)
  const out = createOutput({ json: g.json, quiet: g.quiet })
  runMode(opts) // --resume with --rollback: bad usage before the config is read
  if (opts.list && (opts.resume || opts.rollback || opts.to || opts.dryRun || opts.restoreFiles))
    throw new UsageError('--list only lists: no other option goes with it')
  if ((opts.check || opts.auto) && (opts.resume || opts.rollback || opts.to || opts.dryRun))
    throw new UsageError('--check and --auto go with no other option but --yes')
  if (opts.check && opts.auto)
    throw new UsageError('--check only looks; --auto also updates: one of them')
  const { config } = await loadConfig({ file: g.config })
  // journals drive --resume as root: a stateDir/backupDir others could write is refused (exit 4)
  // before the engine is asked anything; --list and --dry-run act on nothing
  if (!opts.list && !opts.dryRun && !opts.check) await checkStateDirs(config)
  const engine = await openEngine({ config, dockerHost: g.dockerHost, warn: (w) => out.warn(w) })
  let done: RebuildOutcome
  try {
    const c = { config, engine, out }
    done =
      opts.check || opts.auto
        ? {
            result: await runUpdateCheck(c, name ? [name] : [], {
              auto: opts.auto,
              yes: opts.yes,
            }),
          }
        : opts.list
          ? { result: await runListBackups(c, name) }
          : kind === 'rebuild'
            ? await runRebuild(c, name, opts)
            : kind === 'update'
              ? await runUpdate(c, name, opts)
              : await runRollback(c, name, opts)
  } finally {
    engine.close()
  }
  const { result, error } = done
  if (error) {
    // the result of a run that failed or was refused: for --json, then the exit code
    if (g.json) out.data(JSON.stringify(result, null, 2))
    throw error
  }
  if (g.json) out.data(JSON.stringify(result, null, 2))
  else out.human(renderRebuild(result))
  // --auto: the worst of its updates decides the exit code
  const failed = (result.checks ?? []).filter((c) => (c.exitCode ?? 0) !== 0)
  if (failed.length) {
    // by severity, not by number: a person needed, then a rollback, the engine, a refusal, usage
    const order = [5, 1, 3, 4, 2]
    const rank = (code: number) => (order.includes(code) ? order.indexOf(code) : 1)
    const worst = failed.map((c) => c.exitCode ?? 1).sort((a, b) => rank(a) - rank(b))[0] as number
    const what = `update --auto: ${failed.map((c) => `${c.service}: ${c.outcome} (${c.error ?? ''})`).join('; ')}`
    if (worst === 5) throw new NeedsPersonError(what)
    if (worst === 3) throw new UnavailableError(what)
    if (worst === 4) throw new RefusedError(what)
    if (worst === 2) throw new UsageError(what)
    throw new RolledBackError(what)
  }
}

export function rebuildCommand(): Command {
  return new Command('rebuild')
    .description(
      'Guarded rebuild of a configured service: back up its image (tag) and container (commit), build, recreate, health-check; rolled back on failure',
    )
    .argument('<service>', 'the service, as named under services: in the host config')
    .option('--no-cache', 'build every layer again (docker build --no-cache)')
    .option('--dry-run', 'print the plan and what each step would touch; change nothing')
    .option('-y, --yes', 'do not ask for confirmation (needed without a TTY)')
    .option('--resume', 'finish an interrupted rebuild from its journal')
    .option('--rollback', 'undo an interrupted rebuild from its journal')
    .addHelpText(
      'after',
      `${EXIT_HELP('rebuilt and healthy')}\nJSON shape: "schema": "shipshape.rebuild/1" (see README).`,
    )
    .action(async (name: string, opts: RebuildOptions & { cache?: boolean }, cmd: Command) => {
      await act('rebuild', name, { ...opts, noCache: opts.cache === false }, cmd)
    })
}

export function rollbackCommand(): Command {
  return new Command('rollback')
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
    .option('--dry-run', 'print the plan and what each step would touch; change nothing')
    .option('-y, --yes', 'do not ask for confirmation (needed without a TTY)')
    .option('--resume', 'finish an interrupted rollback from its journal')
    .option('--rollback', 'undo an interrupted rollback from its journal')
    .addHelpText(
      'after',
      `${EXIT_HELP('on the backup and healthy (or already on it)')}\nJSON shape: "schema": "shipshape.rollback/1" (see README).`,
    )
    .action(async (name: string, opts: Opts, cmd: Command) => {
      await act('rollback', name, opts, cmd)
    })
}

export function updateCommand(): Command {
  return new Command('update')
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
    .option('--dry-run', 'print the plan and what each step would touch; change nothing')
    .option('-y, --yes', 'do not ask for confirmation (needed without a TTY)')
    .option('--resume', 'finish an interrupted update from its journal')
    .option('--rollback', 'undo an interrupted update from its journal')
    .addHelpText(
      'after',
      `${EXIT_HELP('updated and healthy, or already up to date')}\nJSON shape: "schema": "shipshape.update/1" (see README).`,
    )
    .action(async (name: string | undefined, opts: Opts, cmd: Command) => {
      if (!name && !opts.check && !opts.auto) {
        throw new UsageError('name a service (or --check / --auto for all of them)')
      }
      await act('update', name ?? '', opts, cmd)
    })
}
