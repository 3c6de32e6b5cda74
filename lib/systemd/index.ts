/**
 * `shipshape systemd print|install`: render the units for this install (render.ts) and print
 * them, write them into a directory, or install them into systemd.unitDir (install.ts) and have
 * systemd reload. Nothing is enabled: the person picks the timers or the schedule service.
 */
import { realpathSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import type { Output } from '../cli/output.js'
import { findPackageRoot, type Config, type ConfigSource } from '../config/index.js'
import { UnavailableError } from '../errors.js'
import { runMode, runRunbook, type RunFlags } from '../runbook/runner.js'
import { ENABLE_SCHEDULE, ENABLE_TIMERS } from '../shared/systemd.js'
import { hostInstallFs, hostSystemd } from './host.js'
import {
  checkWritableDir,
  missingDirs,
  planUnitFiles,
  readUnitFiles,
  refuseReplacing,
  writeUnitFile,
  type PlannedUnit,
} from './install.js'
import { jobSandbox, planSandbox, renderUnits, UNIT_NAMES, type RenderedUnit } from './render.js'
import {
  installSteps,
  unitStep,
  type InstallContext,
  type InstallFs,
  type SystemdPort,
} from './steps.js'
import {
  checkInstallPaths,
  describeProblems,
  installTargets,
  refuseUntrusted,
  type TrustProblem,
  type TrustTarget,
} from './trust.js'

export { renderUnits, UNIT_NAMES } from './render.js'

export const SYSTEMD_SCHEMA = 'shipshape.systemd/1'

export interface SystemdUnitResult {
  name: string
  /** the file written (or that would be, with --dry-run); null when printed to stdout */
  path: string | null
  /** the file's content changed (or would) */
  changed: boolean
  /** print only: the unit text */
  text?: string
}

export interface SystemdResult {
  schema: typeof SYSTEMD_SCHEMA
  action: 'print' | 'install'
  units: SystemdUnitResult[]
  /** install only (rolled-back: --rollback undid an unfinished install) */
  outcome?: 'installed' | 'unchanged' | 'dry-run' | 'cancelled' | 'rolled-back'
  unitDir?: string
  /** install only: the ReadWritePaths= directories, created 0700 when missing */
  directories?: { path: string; created: boolean }[]
  /** install only: `systemctl daemon-reload` was run */
  daemonReload?: boolean
  /** install only: what to run next (nothing is enabled by install) */
  next?: string[]
}

/** The ports install writes through (steps.ts); the host's by default (host.ts). */
export type { InstallFs, SystemdPort }

export interface SystemdContext {
  config: Config
  nodePath: string
  cliPath: string
  configPath: string | null
  /** the package the CLI belongs to (its root: package.json), resolved */
  packageRoot: string
  /** the config file the units read: configPath, or one found by hostname in the package */
  configFile: string | null
  out: Output
  /** y/N question; default: on the terminal, RefusedError without one */
  confirm?: (question: string) => Promise<boolean>
  systemd?: SystemdPort
  /** the unit files and directories install writes; default: the host's (host.ts) */
  fs?: InstallFs
  /** reads and judges the paths the units run from; default: checkInstallPaths (trust.ts) */
  checkPaths?: (targets: TrustTarget[]) => TrustProblem[]
}

/**
 * Where the units point: this node binary and the built CLI of this package, both resolved
 * through symlinks (the sandbox decisions depend on where they really are), and the config file
 * when one was given (--config or $SHIPSHAPE_CONFIG); a config found by hostname or the
 * embedded default is found the same way by the units. Also what install checks root may run
 * from (trust.ts): the package root and the config file the units will read.
 */
export function locateInstall(source: ConfigSource): {
  nodePath: string
  cliPath: string
  configPath: string | null
  packageRoot: string
  configFile: string | null
} {
  const root = findPackageRoot(import.meta.url)
  const cli = path.join(root, 'dist', 'scripts', 'shipshape.js')
  let cliPath: string
  try {
    cliPath = realpathSync(cli)
  } catch {
    throw new UnavailableError(
      `the built CLI ${cli} is missing`,
      'build it first: npm ci (or npm run build) in the shipshape directory',
    )
  }
  // the units name the file they read: given, or found in /etc/shipshape (not left to a lookup
  // by hostname at run time)
  const given = source.origin === 'flag' || source.origin === 'env' || source.origin === 'etc'
  const configPath = given ? realpathSync(source.source) : null
  return {
    nodePath: realpathSync(process.execPath),
    cliPath,
    configPath,
    packageRoot: realpathSync(root),
    configFile: configPath ?? (source.origin === 'host' ? realpathSync(source.source) : null),
  }
}

/** What is wrong with the paths the units would run from as root ([] when nothing is). */
export function untrustedPaths(ctx: SystemdContext): TrustProblem[] {
  const c = ctx.config
  const targets = installTargets({
    nodePath: ctx.nodePath,
    packageRoot: ctx.packageRoot,
    cliPath: ctx.cliPath,
    configFile: ctx.configFile,
    stateDir: c.stateDir,
    backupDir: c.backupDir,
    environmentFile: c.systemd.environmentFile,
    unitDir: c.systemd.unitDir,
  })
  return (ctx.checkPaths ?? checkInstallPaths)(targets)
}

function render(ctx: SystemdContext): RenderedUnit[] {
  return renderUnits({
    nodePath: ctx.nodePath,
    cliPath: ctx.cliPath,
    configPath: ctx.configPath,
    config: ctx.config,
  })
}

/** The units on stdout (each after `# ===== <name>`), or written into `outDir`. */
export async function printUnits(
  ctx: SystemdContext,
  opts: { outDir?: string },
): Promise<SystemdResult> {
  const units = render(ctx)
  // print only shows: it warns about what install would refuse
  const problems = untrustedPaths(ctx)
  if (problems.length) {
    ctx.out.warn(
      '`systemd install` would refuse these units: root would run from paths others can change:',
    )
    for (const line of describeProblems(problems)) ctx.out.warn(`  ${line}`)
  }
  if (!opts.outDir) {
    return {
      schema: SYSTEMD_SCHEMA,
      action: 'print',
      units: units.map((u) => ({ name: u.name, path: null, changed: false, text: u.text })),
    }
  }
  const dir = path.resolve(opts.outDir)
  const plan = planUnitFiles(units, dir, await readUnitFiles(dir, UNIT_NAMES))
  for (const u of plan) if (u.action !== 'unchanged') await writeUnitFile(u.path, u.text)
  return {
    schema: SYSTEMD_SCHEMA,
    action: 'print',
    units: plan.map((u) => ({
      name: u.name,
      path: u.path,
      changed: u.action !== 'unchanged',
      text: u.text,
    })),
  }
}

/** `# ===== <name>` then the unit, for each: what `print` shows on stdout. */
export function formatUnits(units: { name: string; text?: string }[]): string {
  return units.map((u) => `# ===== ${u.name}\n${u.text ?? ''}`).join('\n')
}

const ACTION_WORD: Record<PlannedUnit['action'], string> = {
  create: 'create ',
  replace: 'replace',
  unchanged: 'same   ',
}

/** The runbook operation of `systemd install` (lib/runbook/operations.ts): one journal per unitDir. */
export const SYSTEMD_INSTALL = 'systemd-install'

export interface InstallOptions extends RunFlags {
  force?: boolean
}

/**
 * Writes the units into systemd.unitDir. Refused before the run (exit 4) when root would run from
 * a path that others can change (trust.ts: node, the package, the config file, the environment
 * file, the directories the units write to, each with every directory above it), when a file
 * there has other content unless `force`, or when a directory cannot be written. Nothing to write:
 * "unchanged", no journal. Otherwise a runbook (steps.ts) run by the runner, which owns dry-run,
 * the confirmation (--yes without a terminal), the host lock and the journal: the ReadWritePaths=
 * directories (they must exist for the units to start), each unit file, then `systemctl
 * daemon-reload` when systemd runs here and loads units from that directory. A failed step undoes
 * the others (exit 1: the unit files as they were); --resume/--rollback continue a crashed run.
 */
export async function installUnits(
  ctx: SystemdContext,
  opts: InstallOptions,
): Promise<SystemdResult> {
  const { out, config } = ctx
  const mode = runMode(opts)
  const systemd = ctx.systemd ?? hostSystemd
  const unitDir = config.systemd.unitDir
  const units = render(ctx)
  // before anything else, --dry-run included: root must not run what others can change
  refuseUntrusted(untrustedPaths(ctx))
  const plan = planUnitFiles(units, unitDir, await readUnitFiles(unitDir, UNIT_NAMES))
  if (mode === 'run') refuseReplacing(plan, Boolean(opts.force))
  const dirs = [...new Set([config.stateDir, config.backupDir])]
  const toCreate = await missingDirs(dirs)
  const changes = plan.filter((u) => u.action !== 'unchanged')
  const loadsFromDir = systemd.unitPath.includes(unitDir)
  const reload = changes.length > 0 && loadsFromDir && (await systemd.running())
  // refused before anything changes, --dry-run included: not root, a read-only directory…
  if (changes.length) await checkWritableDir(unitDir)
  for (const d of toCreate) await checkWritableDir(d)

  const result = (
    outcome: NonNullable<SystemdResult['outcome']>,
    done: boolean,
  ): SystemdResult => ({
    schema: SYSTEMD_SCHEMA,
    action: 'install',
    outcome,
    unitDir,
    units: plan.map((u) => ({ name: u.name, path: u.path, changed: u.action !== 'unchanged' })),
    directories: dirs.map((d) => ({ path: d, created: done && toCreate.includes(d) })),
    daemonReload: done && reload,
    next: [ENABLE_TIMERS],
  })

  if (mode === 'run') {
    if (changes.length === 0 && toCreate.length === 0) {
      out.info(`all ${plan.length} units are up to date in ${unitDir}`)
      nextSteps(out)
      return result('unchanged', false)
    }
    out.human(planLines(unitDir, plan, toCreate, reload).join('\n'))
  }

  const r = await runRunbook<InstallContext>({
    ...opts,
    stateDir: config.stateDir,
    operation: SYSTEMD_INSTALL,
    args: { unitDir },
    out,
    confirm: ctx.confirm,
    steps: [],
    makeContext: async (prior) => {
      const had = new Set(prior?.steps.keys())
      // a unit file the crashed run had not planned is replaced only with --force, as in a new run
      if (mode === 'resume') {
        refuseReplacing(
          plan.filter((u) => !had.has(unitStep(u.name).id)),
          Boolean(opts.force),
        )
      }
      const fs = ctx.fs ?? hostInstallFs
      const makeUnitDir = changes.length > 0 && (await fs.kind(unitDir)) === 'missing'
      const ic: InstallContext = {
        fs,
        systemd,
        dirs: [
          ...dirs.map((d) => ({ path: d, mode: 0o700 })),
          ...(makeUnitDir ? [{ path: unitDir, mode: 0o755 }] : []),
        ],
        units: plan,
        reload,
      }
      const createDirs = toCreate.length > 0 || makeUnitDir
      const steps = installSteps({ ...ic, createDirs }, had)
      return { ctx: ic, steps: mode === 'rollback' ? steps.filter((s) => had.has(s.id)) : steps }
    },
  })
  if ('stopped' in r) return r.stopped
  if (r.failure) throw r.failure
  const { outcome } = r.summary
  if (outcome === 'dry-run') {
    out.info('dry run: nothing changed')
    return result('dry-run', false)
  }
  if (outcome === 'cancelled') return result('cancelled', false)
  if (outcome === 'rolled-back') return result('rolled-back', false)
  installed(out, unitDir, changes, reload ? 'done' : loadsFromDir ? 'not-running' : 'elsewhere')
  await warnEnvironmentFile(ctx, out)
  nextSteps(out)
  return result('installed', true)
}

/** What was written, and whether systemd has loaded it. */
function installed(
  out: Output,
  unitDir: string,
  changes: PlannedUnit[],
  reload: 'done' | 'not-running' | 'elsewhere',
): void {
  out.info(`wrote ${changes.map((u) => u.name).join(', ') || 'no unit files'}`)
  if (reload === 'done') {
    out.info('systemctl daemon-reload: done')
  } else if (changes.length && reload === 'elsewhere') {
    out.info(
      `${unitDir} is not a directory systemd loads units from: link or copy the units into /etc/systemd/system, then systemctl daemon-reload`,
    )
  } else if (changes.length) {
    out.info('systemd is not running here: run systemctl daemon-reload where it runs')
  }
}

/** What install will do, for a person (before the runner's numbered plan). */
function planLines(
  unitDir: string,
  plan: PlannedUnit[],
  toCreate: string[],
  reload: boolean,
): string[] {
  return [
    `systemd units in ${unitDir}:`,
    ...plan.map((u) => `  ${ACTION_WORD[u.action]}  ${u.name}`),
    ...(toCreate.length
      ? [
          'directories the units write to (ReadWritePaths=), created 0700:',
          ...toCreate.map((d) => `  create   ${d}`),
        ]
      : []),
    ...(reload ? ['then: systemctl daemon-reload'] : []),
  ]
}

function nextSteps(out: Output): void {
  out.info(`next (nothing was enabled): ${ENABLE_TIMERS}`)
  out.info(`  or, instead of the timers: ${ENABLE_SCHEDULE}`)
}

/**
 * The environment file holds secrets: say so when others can read it. A DOCKER_HOST= there
 * pointing over the network wins over docker.host, and the prune unit, rendered from docker.host,
 * may have no IP network: say that too (never the value).
 */
async function warnEnvironmentFile(ctx: SystemdContext, out: Output): Promise<void> {
  const file = ctx.config.systemd.environmentFile
  const st = await stat(file).catch(() => undefined)
  if (!st) {
    out.info(`secrets (webhook URL, health-check passwords) go in ${file}, mode 0600 (optional)`)
    return
  }
  if (st.mode & 0o077) {
    out.warn(
      `${file} holds secrets and is readable by others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 ${file}`,
    )
  }
  const text = await readFile(file, 'utf8').catch(() => '')
  const remote = /^[ \t]*(?:export[ \t]+)?DOCKER_HOST[ \t]*=[ \t]*["']?(?:tcp|https?|ssh):/m.test(
    text,
  )
  if (remote && !pruneHasNetwork(ctx)) {
    out.warn(
      `${file} sets DOCKER_HOST to an engine over the network, which wins over docker.host; the prune unit has no IP network (docker.host is a unix socket or unset): set docker.host in the config instead, and install again`,
    )
  }
}

function pruneHasNetwork(ctx: SystemdContext): boolean {
  return jobSandbox('prune', ctx, planSandbox(ctx)).network !== 'none'
}
