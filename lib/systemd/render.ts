/**
 * The systemd units of this install, rendered from the templates in the package's systemd/
 * directory (see templates.ts). Pure once the templates are read: paths and config in, unit
 * texts out (the default templates are read from the package once, then cached).
 *
 * Values go into the unit files escaped for systemd.syntax(7)/systemd.service(5): `%` → `%%`
 * everywhere (specifiers); in quoted words `\` and `"` backslash-escaped (C-style unescaping);
 * in ExecStart= arguments also `$` → `$$` (variable expansion). EnvironmentFile= and
 * OnCalendar= take the rest of the line as it is (no unquoting), so there only `%` is escaped.
 * A value a unit file cannot hold (a control character, a trailing backslash on an unquoted
 * line) is refused.
 */
import path from 'node:path'
import type { Config } from '../config/index.js'
import { durationSetting } from '../config/units.js'
import { jobArgv, type Job } from '../config/jobs.js'
import { checkSourcePath } from '../assets/policy.js'
import { DEFAULT_DOCKER_HOST, parseEngineAddress } from '../shared/address.js'
import { UsageError } from '../errors.js'
import { loadTemplates, UNIT_NAMES, type Templates, type UnitName } from './templates.js'

export { UNIT_NAMES, type Templates, type UnitName }

export interface RenderOptions {
  /** absolute path of node (process.execPath) */
  nodePath: string
  /** absolute path of the built CLI (dist/scripts/shipshape.js) */
  cliPath: string
  /** the config file the units must use (SHIPSHAPE_CONFIG=), or null: the units look it up */
  configPath: string | null
  config: Config
  /** default: the package's systemd/ templates */
  templates?: Templates
}

export interface RenderedUnit {
  name: UnitName
  text: string
}

/**
 * The nightly update run of services with `update: apply` (after the report, in its unit):
 * `update --auto --yes` — newer registry images pulled, gated and rolled back on failure. Null
 * when no service asks for it.
 */
export function updateArgv(
  o: Pick<RenderOptions, 'nodePath' | 'cliPath' | 'config'>,
): string[] | null {
  if (!Object.values(o.config.services).some((s) => s.update === 'apply')) return null
  return jobArgv('update', o)
}

const HOME_DIRS = ['/home', '/root', '/run/user'] as const
const TMP_DIRS = ['/tmp', '/var/tmp'] as const

const under = (p: string, dir: string) => p === dir || p.startsWith(dir + '/')

export interface SandboxPlan {
  /** stateDir, backupDir: written by every job, created by install */
  readWritePaths: string[]
  /**
   * The directories the kept originals of migrate-assets sit in (`<source>.shipshape-<stamp>`
   * next to each asset's source): prune removes them, so they are writable for prune and
   * schedule (with `-`: a missing one does not stop the unit).
   */
  originalDirs: string[]
  /**
   * The mounts prune writes the backup archives onto (`backupTo: remote`, under
   * `<mount>/.shipshape-archives/`): writable for prune and schedule (optional: `-`).
   */
  archiveMounts: string[]
  protectHome: 'yes' | 'read-only'
  /** why ProtectHome is read-only: "<path> (<what>)" */
  homeUsedBy: string[]
  privateTmp: boolean
  /** why PrivateTmp is off */
  tmpUsedBy: string[]
}

/**
 * What the sandbox must leave reachable. Written to: stateDir, backupDir. Read: node, the CLI
 * (and so its package), the config file, report.paths, a unix engine socket. ProtectHome=yes
 * would hide any of them under /home, /root or /run/user (a rootless engine's socket), and
 * PrivateTmp=yes any under /tmp or /var/tmp (a forwarded socket): those settings give way then.
 */
export function planSandbox(
  o: Pick<RenderOptions, 'nodePath' | 'cliPath' | 'configPath' | 'config'>,
): SandboxPlan {
  const c = o.config
  const readWritePaths = [...new Set([c.stateDir, c.backupDir])]
  const originalDirs = originalDirsOf(c)
  const archiveMounts = [
    ...new Set(
      Object.values(c.assets)
        .filter((a) => a.backupTo === 'remote')
        .map((a) => a.mount),
    ),
  ].sort()
  const hasAssets = Object.keys(c.assets).length > 0
  const used: [string, string][] = [
    [c.stateDir, 'stateDir'],
    [c.backupDir, 'backupDir'],
    [o.nodePath, 'node'],
    [o.cliPath, 'the shipshape CLI'],
    ...(o.configPath ? [[o.configPath, 'the config file'] as [string, string]] : []),
    ...c.report.paths.map((p): [string, string] => [p, 'report.paths']),
    ...originalDirs.map((p): [string, string] => [p, 'kept originals']),
    ...archiveMounts.map((p): [string, string] => [p, 'backup archives (backupTo: remote)']),
    // prune verifies a migration's destination on the remote (rclone, root's rclone.conf) before
    // a backup archive goes
    ...(hasAssets
      ? [
          ['/root/.config/rclone', 'rclone config (prune checks the remote of assets)'] as [
            string,
            string,
          ],
        ]
      : []),
  ]
  if (c.docker.host) {
    const a = parseEngineAddress(c.docker.host)
    if (a.kind === 'unix') used.push([a.socketPath, 'docker.host'])
  }
  const show = ([p, what]: [string, string]) => `${p} (${what})`
  const homeUsedBy = used.filter(([p]) => HOME_DIRS.some((d) => under(p, d))).map(show)
  const tmpUsedBy = used.filter(([p]) => TMP_DIRS.some((d) => under(p, d))).map(show)
  return {
    readWritePaths,
    originalDirs,
    archiveMounts,
    protectHome: homeUsedBy.length ? 'read-only' : 'yes',
    homeUsedBy: [...new Set(homeUsedBy)],
    privateTmp: tmpUsedBy.length === 0,
    tmpUsedBy: [...new Set(tmpUsedBy)],
  }
}

/**
 * The parent directory of each asset's source, where migrate-assets keeps the original: only
 * for a source the allowed-roots policy accepts (prune re-checks that before any removal), and
 * never `/` (that would make the whole host writable: such an original is left to
 * `migrate-assets --finalize`). Under ProtectSystem=strict a directory not listed stays
 * read-only, and prune's removal of the original would fail with EROFS.
 */
function originalDirsOf(c: Config): string[] {
  const dirs = Object.values(c.assets)
    .filter((a) => checkSourcePath(a.source, c).length === 0)
    .map((a) => path.posix.dirname(path.posix.normalize(a.source).replace(/(.)\/+$/, '$1')))
    .filter((d) => d !== '/')
  return [...new Set(dirs)].sort()
}

/** The default engine sockets: root's own (root:docker, 0660). */
const ROOT_SOCKETS = ['/var/run/docker.sock', '/run/docker.sock']

export interface JobSandbox {
  /** CapabilityBoundingSet=: all a root job keeps (sorted) */
  capabilities: string[]
  /** why each capability is kept: "CAP_X: reason" */
  capabilityWhy: string[]
  /** 'none': PrivateNetwork=yes, AF_UNIX only, IPAddressDeny=any; 'ip': AF_UNIX AF_INET AF_INET6 */
  network: 'none' | 'ip'
  networkWhy: string
  /** ReadWritePaths= words (unquoted), `-` before an optional one */
  readWritePaths: string[]
}

/**
 * What differs between the three services' sandboxes, from the job and the config:
 *
 * - report reads report.paths with du -x whatever their owner and mode: CAP_DAC_READ_SEARCH.
 *   Its writes are in stateDir, which install makes sure root owns. An engine socket other than
 *   the default one may belong to another user (a rootless engine's): connect(2) needs write
 *   permission on it, so CAP_DAC_OVERRIDE then.
 * - prune removes the kept originals: other users' files and directories, read and unlinked
 *   whatever their mode (CAP_DAC_OVERRIDE, which also covers reading and searching), and
 *   another user's file in a sticky directory in there (CAP_FOWNER). Images and the rest go
 *   through the engine socket, which needs no capability of root's own socket.
 * - schedule runs both as its children: the union.
 *
 * None needs CAP_CHOWN, CAP_FSETID, CAP_KILL (root signals its own children and checks lock
 * holders of the same uid), CAP_SYS_PTRACE, CAP_SYS_ADMIN… The network: report posts the
 * webhook (any address: IP is open); prune talks only to the engine, so with a unix socket it
 * gets none at all — an engine over TCP must be docker.host in the config (DOCKER_HOST in the
 * environment file would find no network: install warns).
 */
export function jobSandbox(
  job: Job,
  o: Pick<RenderOptions, 'config'>,
  sandbox: SandboxPlan,
): JobSandbox {
  const c = o.config
  const engine = parseEngineAddress(c.docker.host ?? DEFAULT_DOCKER_HOST)
  const socket = engine.kind === 'unix' ? engine.socketPath : null
  const why = new Map<string, string>()
  if (job === 'report' || job === 'schedule') {
    why.set('CAP_DAC_READ_SEARCH', 'du -x reads report.paths whatever their owner and mode')
    if (socket && !ROOT_SOCKETS.includes(socket)) {
      why.set(
        'CAP_DAC_OVERRIDE',
        `connect(2) to ${socket} (docker.host), which root may not own, needs write permission on it`,
      )
    }
  }
  if (job === 'prune' || job === 'schedule') {
    why.set(
      'CAP_DAC_OVERRIDE',
      "rm -r of the kept originals: other users' files and directories, whatever their mode",
    )
    why.set('CAP_FOWNER', "unlinking another user's file in a sticky directory among them")
  }
  const capabilities = [...why.keys()].sort()
  // with assets, prune asks their remotes (rclone) before a migration's archive goes
  const assets = Object.keys(c.assets).length > 0
  const network: JobSandbox['network'] = job === 'prune' && socket && !assets ? 'none' : 'ip'
  const networkWhy =
    job === 'prune'
      ? assets
        ? 'prune checks the remotes behind the assets’ mounts with rclone before a backup archive goes'
        : socket
          ? `prune talks only to the engine, over ${socket}: no IP network at all`
          : `prune talks to the engine over TCP (${c.docker.host}), wherever that is`
      : job === 'report'
        ? 'the --notify webhook posts to wherever its URL points'
        : 'the report job posts the --notify webhook to wherever its URL points'
  // the nightly report's metrics textfile (report.metricsFile): its directory, when it exists
  const metrics =
    job !== 'prune' && c.report.metricsFile ? [`-${path.posix.dirname(c.report.metricsFile)}`] : []
  const readWritePaths = [
    ...sandbox.readWritePaths,
    ...(job === 'report'
      ? []
      : [...sandbox.originalDirs, ...sandbox.archiveMounts].map((d) => `-${d}`)),
    ...metrics,
  ]
  return {
    capabilities,
    capabilityWhy: capabilities.map((k) => `${k}: ${why.get(k)}`),
    network,
    networkWhy,
    readWritePaths,
  }
}

/** TimeoutStartSec= for `runs` runs of `ms` each: the config's spelling (2h, 90m: systemd reads both). */
export function timeoutStart(ms: number, runs: number): string {
  const total = ms * runs
  if (!Number.isSafeInteger(total) || total < 1000) {
    throw new UsageError(`schedule.timeout: ${ms} ms is not a time limit for a unit`)
  }
  return durationSetting(Math.ceil(total / 1000) * 1000)
}

/** Refuses what no unit-file spelling can carry: control characters (newline, tab, NUL…). */
function checkValue(value: string, what: string): void {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(value)) {
    throw new UsageError(
      `${what} ${JSON.stringify(value)} cannot be written into a systemd unit (control character)`,
      'use a path without newlines, tabs or other control characters',
    )
  }
}

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/

/**
 * One word of a space-separated unit setting (ReadWritePaths=, Environment=): quoted when it
 * holds anything but plain characters, `%` doubled.
 */
export function quoteWord(value: string, what = 'value'): string {
  checkValue(value, what)
  const escaped = value.replace(/%/g, '%%')
  if (SAFE_WORD.test(value)) return escaped
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
}

/** One argument of ExecStart=: as quoteWord(), and `$` doubled (no variable expansion). */
export function quoteExecArg(value: string, what = 'argument'): string {
  return quoteWord(value, what).replace(/\$/g, '$$$$')
}

/** A setting that takes the rest of its line verbatim (EnvironmentFile=, OnCalendar=). */
export function rawValue(value: string, what = 'value'): string {
  checkValue(value, what)
  if (value !== value.trim() || value.endsWith('\\')) {
    throw new UsageError(
      `${what} ${JSON.stringify(value)} cannot be written into a systemd unit (leading/trailing blank or backslash)`,
    )
  }
  return value.replace(/%/g, '%%')
}

/**
 * The text of ExecStart= for an argument array (the first one an absolute path). The arguments
 * after it get `$$` for `$` (systemd expands $VAR / ${VAR} there); the executable path does not,
 * systemd uses it verbatim (checked with systemd-analyze verify).
 */
export function execStart(argv: string[]): string {
  const [exe] = argv
  if (!exe || !path.posix.isAbsolute(exe)) {
    throw new UsageError(`ExecStart needs an absolute executable path, not ${JSON.stringify(exe)}`)
  }
  // systemd takes the executable path as it is: no $VAR expansion there, so no `$$` either
  return [quoteWord(exe, 'executable path'), ...argv.slice(1).map((a) => quoteExecArg(a))].join(' ')
}

const PLACEHOLDER = /@([A-Z_]+)@/g

/**
 * Fills a template's @NAME@ placeholders (one pass: a value is never scanned again). A
 * placeholder alone on its line with an empty value drops the line. An unknown placeholder is a
 * bug in the template: thrown.
 */
export function fillTemplate(name: string, template: string, values: Record<string, string>) {
  const out: string[] = []
  for (const line of template.split('\n')) {
    const alone = /^@([A-Z_]+)@$/.exec(line.trim())
    if (alone && values[alone[1]!] === '') continue
    out.push(
      line.replace(PLACEHOLDER, (_m, key: string) => {
        const v = values[key]
        if (v === undefined) throw new Error(`template ${name}: unknown placeholder @${key}@`)
        return v
      }),
    )
  }
  return out.join('\n')
}

// eslint-disable-next-line no-control-regex
const comment = (text: string) => `# ${text.replace(/[\x00-\x1f\x7f]/g, '?')}`

function serviceValues(job: Job, o: RenderOptions, sandbox: SandboxPlan): Record<string, string> {
  const js = jobSandbox(job, o, sandbox)
  return {
    EXEC_START: execStart(jobArgv(job, o)),
    // schedule.timeout per run: the report unit runs update after it (two runs), prune one
    ...(job === 'prune' ? { TIMEOUT_START: timeoutStart(o.config.schedule.timeout, 1) } : {}),
    ...(job === 'report'
      ? {
          TIMEOUT_START: timeoutStart(o.config.schedule.timeout, updateArgv(o) ? 2 : 1),
          EXEC_START_UPDATE: ((argv) =>
            argv
              ? `# services with update: apply get the registry's newer image (gated, rolled back on failure)\nExecStart=${execStart(argv)}`
              : '# no service has update: apply: no update run after the report')(updateArgv(o)),
        }
      : {}),
    CONFIG_ENVIRONMENT: o.configPath
      ? `Environment=${quoteWord(`SHIPSHAPE_CONFIG=${o.configPath}`, 'config path')}`
      : '',
    ENVIRONMENT_FILE: rawValue(o.config.systemd.environmentFile, 'systemd.environmentFile'),
    READ_WRITE_PATHS: js.readWritePaths
      .map((p) => quoteWord(p, 'stateDir/backupDir/asset source'))
      .join(' '),
    READ_WRITE_PATHS_NOTE: sandbox.originalDirs.length
      ? job === 'report'
        ? comment('not the directories of the kept originals: only prune removes them')
        : comment(`${sandbox.originalDirs.join(', ')}: where migrate-assets keeps the originals`)
      : '',
    CAPABILITIES: js.capabilities.join(' '),
    CAPABILITIES_NOTE: js.capabilityWhy.map(comment).join('\n'),
    NETWORK_NOTE: comment(js.networkWhy),
    PRIVATE_NETWORK: js.network === 'none' ? 'yes' : 'no',
    ADDRESS_FAMILIES: js.network === 'none' ? 'AF_UNIX' : 'AF_UNIX AF_INET AF_INET6',
    IP_ADDRESS_DENY: js.network === 'none' ? 'IPAddressDeny=any' : '',
    PROTECT_HOME: sandbox.protectHome,
    PROTECT_HOME_NOTE: sandbox.homeUsedBy.length
      ? comment(`read-only here, for ${sandbox.homeUsedBy.join(', ')}`)
      : '',
    PRIVATE_TMP: sandbox.privateTmp ? 'yes' : 'no',
    PRIVATE_TMP_NOTE: sandbox.tmpUsedBy.length
      ? comment(`no private /tmp: it would hide ${sandbox.tmpUsedBy.join(', ')}`)
      : '',
  }
}

/** The five units for this install, in UNIT_NAMES order. */
export function renderUnits(o: RenderOptions): RenderedUnit[] {
  for (const [p, what] of [
    [o.nodePath, 'node path'],
    [o.cliPath, 'CLI path'],
    ...(o.configPath ? [[o.configPath, 'config path']] : []),
  ] as [string, string][]) {
    checkValue(p, what)
    if (!path.posix.isAbsolute(p)) {
      throw new UsageError(`${what} must be absolute for a systemd unit: ${p}`)
    }
  }
  const templates = o.templates ?? loadTemplates()
  const sandbox = planSandbox(o)
  const values: Record<UnitName, Record<string, string>> = {
    'shipshape-report.service': serviceValues('report', o, sandbox),
    'shipshape-prune.service': serviceValues('prune', o, sandbox),
    'shipshape-schedule.service': serviceValues('schedule', o, sandbox),
    'shipshape-report.timer': {
      ON_CALENDAR: rawValue(o.config.systemd.reportCalendar, 'systemd.reportCalendar'),
    },
    'shipshape-prune.timer': {
      ON_CALENDAR: rawValue(o.config.systemd.pruneCalendar, 'systemd.pruneCalendar'),
    },
  }
  return UNIT_NAMES.map((name) => {
    const body = fillTemplate(name, templates[name], values[name])
    const header = `# Rendered by \`shipshape systemd\` from the package's systemd/${name}: change the host\n# config and install again rather than editing this file.\n`
    return { name, text: header + (body.endsWith('\n') ? body : body + '\n') }
  })
}
