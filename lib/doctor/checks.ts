/**
 * The checks of `shipshape doctor`. Each check is a function of a CheckContext returning
 * Check[]; it reads the host only through the context's ports (ports.ts) and leaves the verdict
 * to a pure judge exported here (unit-tested). Nothing here changes the host but the probe file
 * checkDir creates and removes again.
 */
import path from 'node:path'
import pLimit from 'p-limit'
import { judgeContainers, judgeMount, type ContainerBinding } from '../assets/policy.js'
import {
  formatBytes,
  formatDuration,
  type AssetConfig,
  type Config,
  type ConfigOrigin,
} from '../config/index.js'
import { formatProblem } from '../config/problems.js'
import type { ComposeCli } from '../docker/compose.js'
import type { Engine } from '../docker/engine.js'
import { compareApiVersions } from '../docker/normalize.js'
import type { EngineInfo } from '../docker/types.js'
import type { ConfigProblem } from '../errors.js'
import { lockPath, parseLockInfo, type HolderState, type LockInfo } from '../host/lock.js'
import { isUnder, type MountEntry } from '../host/mountinfo.js'
import { judgePrivate } from '../host/private.js'
import { displayRemote } from '../host/rclone.js'
import { showArgv } from '../host/run.js'
import {
  isUnfinished,
  JournalError,
  journalDir,
  parseJournal,
  type JournalState,
} from '../runbook/journal.js'
import { ENABLE_SCHEDULE, ENABLE_TIMERS } from '../systemd/render.js'
import type { DiskSpace, DoctorPorts, PathKind } from './ports.js'

export type CheckStatus = 'ok' | 'warn' | 'fail'

export interface Check {
  /** stable, e.g. `engine`, `asset-mount:music`, `journal:rebuild-….jsonl` */
  id: string
  title: string
  status: CheckStatus
  /** one line: what was found */
  detail: string
  /** one line: what to do; null when there is nothing to do */
  fix: string | null
}

/** The lock as found: none, unreadable, or its holder and whether that one is alive. */
export type LockFinding =
  | { kind: 'free' }
  | { kind: 'unreadable'; file: string; why: string }
  | { kind: 'held'; file: string; info: LockInfo; state: HolderState }

export interface CheckContext {
  config: Config
  /** the file given by --config: repeated in the commands doctor suggests */
  configFlag: string | null
  /** null when the engine could not be reached (the engine check says why) */
  engine: Engine | null
  env: NodeJS.ProcessEnv
  ports: DoctorPorts
  /** /proc/self/mountinfo, read once */
  mounts(): Promise<MountEntry[]>
  /** the host lock, read once */
  lock(): Promise<LockFinding>
}

const RANK: Record<CheckStatus, number> = { ok: 0, warn: 1, fail: 2 }

export function worst(statuses: CheckStatus[]): CheckStatus {
  return statuses.reduce<CheckStatus>((a, b) => (RANK[b] > RANK[a] ? b : a), 'ok')
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err))
const remedyOf = (err: unknown) => (err as { remedy?: string } | null)?.remedy ?? null

// --- config ------------------------------------------------------------------------------------

export interface ConfigOutcome {
  source: string
  origin: ConfigOrigin
  /** every problem `config check` reports; empty when valid */
  problems: ConfigProblem[]
  /** a failure that is not a config problem */
  error?: string
}

const ORIGIN_TEXT: Record<ConfigOrigin, string> = {
  flag: 'given by --config',
  env: 'given by $SHIPSHAPE_CONFIG',
  host: 'found for this hostname',
  default: 'no host config found',
}

/** The checks that need a valid config and are skipped without one. */
export const NEEDS_CONFIG = 'asset mounts, directories, lock, journals, systemd units'

export function checkConfig(o: ConfigOutcome): Check[] {
  const where =
    o.origin === 'default'
      ? `the embedded default (${ORIGIN_TEXT.default})`
      : `${o.source} (${ORIGIN_TEXT[o.origin]})`
  const base = { id: 'config', title: 'Config' }
  if (!o.problems.length && !o.error) {
    return [{ ...base, status: 'ok', detail: `valid: ${where}`, fix: null }]
  }
  const shown = o.problems.slice(0, 3).map(formatProblem)
  const what = o.error
    ? o.error
    : `${o.problems.length} problem${o.problems.length === 1 ? '' : 's'}: ${shown.join('; ')}${o.problems.length > 3 ? '; …' : ''}`
  const check = `shipshape${o.origin === 'flag' ? ` --config ${showArgv([o.source])}` : ''} config check`
  return [
    {
      ...base,
      status: 'fail',
      detail: `${where} is not valid: ${what} (not checked without it: ${NEEDS_CONFIG})`,
      fix: `fix the lines named; \`${check}\` lists every problem`,
    },
  ]
}

// --- engine ------------------------------------------------------------------------------------

export const MIN_ENGINE_VERSION: readonly [number, number] = [20, 10]
export const MIN_ENGINE_API = '1.41'

/** What is too old about an engine; empty when nothing is. Pure. */
export function engineAgeProblems(version: string, engineApi: string): string[] {
  const out: string[] = []
  const m = /^v?(\d+)\.(\d+)/.exec(version.trim())
  if (!m) out.push(`the engine's version "${version}" is not understood`)
  else {
    const [maj, min] = [Number(m[1]), Number(m[2])]
    const [wantMaj, wantMin] = MIN_ENGINE_VERSION
    if (maj < wantMaj || (maj === wantMaj && min < wantMin)) {
      out.push(`Docker ${version} is older than ${wantMaj}.${wantMin}`)
    }
  }
  if (!/^\d+\.\d+$/.test(engineApi) || compareApiVersions(engineApi, MIN_ENGINE_API) < 0) {
    out.push(`API ${engineApi} is older than ${MIN_ENGINE_API}`)
  }
  return out
}

/** The engine check from what connecting gave. Pure. */
export function checkEngine(r: { info: EngineInfo } | { error: unknown }): Check[] {
  const base = { id: 'engine', title: 'Docker engine' }
  if ('error' in r) {
    return [
      {
        ...base,
        status: 'fail',
        detail: errorText(r.error),
        fix:
          remedyOf(r.error) ??
          'start the engine, or point shipshape at it with --docker-host / DOCKER_HOST / docker.host',
      },
    ]
  }
  const i = r.info
  const detail = `Docker ${i.version} at ${i.address}, API ${i.engineApiVersion} (shipshape speaks ${i.apiVersion}), ${i.os}/${i.arch}`
  const old = engineAgeProblems(i.version, i.engineApiVersion)
  if (old.length) {
    return [
      {
        ...base,
        status: 'warn',
        detail: `${detail}: ${old.join('; ')}, results may be incomplete`,
        fix: 'upgrade the engine to Docker 20.10 (API 1.41) or newer',
      },
    ]
  }
  return [{ ...base, status: 'ok', detail, fix: null }]
}

export const DISK_WARN_BELOW = 0.15
export const DISK_FAIL_BELOW = 0.05

/** The engine's disk: warn under 15 % free, fail under 5 %. Pure. */
export function judgeDiskFree(space: DiskSpace): CheckStatus {
  if (!(space.total > 0)) return 'ok'
  const f = space.free / space.total
  return f < DISK_FAIL_BELOW ? 'fail' : f < DISK_WARN_BELOW ? 'warn' : 'ok'
}

const percent = (space: DiskSpace) =>
  space.total > 0 ? `${Math.floor((space.free / space.total) * 1000) / 10} %` : '? %'

/** The mount holding p: the deepest mount point above it (the last one mounted wins). */
export function mountOf(mounts: MountEntry[], p: string): MountEntry | null {
  let best: MountEntry | null = null
  for (const m of mounts) {
    if (isUnder(p, m.mountPoint) && (!best || m.mountPoint.length >= best.mountPoint.length)) {
      best = m
    }
  }
  return best
}

export async function checkEngineDisk(ctx: CheckContext): Promise<Check[]> {
  const engine = ctx.engine
  if (!engine) return []
  const base = { id: 'engine-disk', title: 'Engine disk' }
  const { address, storageDriver, dockerRootDir } = engine.info
  const driver = storageDriver || 'unknown storage driver'
  const notMeasured = (why: string): Check[] => [
    {
      ...base,
      status: 'warn',
      detail: `${driver}; free space not measured: ${why}`,
      fix: "run shipshape doctor on the engine's own host",
    },
  ]
  if (!address.startsWith('unix:')) return notMeasured(`the engine at ${address} is remote`)
  if (!dockerRootDir) return notMeasured('the engine did not say where its data root is')
  let space: DiskSpace
  try {
    space = await ctx.ports.statfs(dockerRootDir)
  } catch (err) {
    return notMeasured(
      `its data root ${dockerRootDir} is not readable here (${errorText(err)}): a socket forwarded from another host?`,
    )
  }
  const disk = mountOf(await ctx.mounts().catch(() => []), dockerRootDir)
  const on = disk ? ` on ${disk.source} (${disk.fsType} at ${disk.mountPoint})` : ''
  const status = judgeDiskFree(space)
  return [
    {
      ...base,
      status,
      detail: `${driver}, data root ${dockerRootDir}${on}: ${formatBytes(space.free)} free of ${formatBytes(space.total)} (${percent(space)})${status === 'ok' ? '' : `, below ${(status === 'fail' ? DISK_FAIL_BELOW : DISK_WARN_BELOW) * 100} %`}`,
      fix:
        status === 'ok'
          ? null
          : '`shipshape prune` shows what can go (`--yes` removes it); `shipshape report` shows what uses the space',
    },
  ]
}

// --- compose and rclone ---------------------------------------------------------------------------

/** From API 1.45 on, image inspect has no ContainerConfig, which compose v1 needs (compose#11742). */
export const COMPOSE_V1_API_CAP = '1.44'

const COMPOSE_INSTALL =
  'install compose v2: `apt-get install docker-compose` (Debian 13), Docker’s docker-compose-plugin, or the binary in ~/.docker/cli-plugins/docker-compose'

/** Pure: the compose check from what detection found. */
export function judgeCompose(
  found: { cli: ComposeCli } | { error: unknown },
  o: { engineApi: string | null; needed: boolean },
): Check {
  const base = { id: 'compose', title: 'Docker Compose' }
  if ('error' in found) {
    return {
      ...base,
      status: o.needed ? 'fail' : 'warn',
      detail: `${errorText(found.error)}${o.needed ? '' : ' (no configured service uses compose)'}`,
      fix: remedyOf(found.error) ?? COMPOSE_INSTALL,
    }
  }
  const { cli } = found
  const shown = `${cli.versionText} (\`${showArgv(cli.argv)}\`)`
  if (cli.version === 'v2') return { ...base, status: 'ok', detail: shown, fix: null }
  const pinned =
    o.engineApi && /^\d+\.\d+$/.test(o.engineApi) && compareApiVersions(o.engineApi, '1.45') >= 0
      ? `; the engine speaks API ${o.engineApi}, whose image inspect has no ContainerConfig, which compose v1 needs to recreate a container (compose#11742): shipshape pins COMPOSE_API_VERSION=${COMPOSE_V1_API_CAP} for its own compose calls, a docker-compose run by hand needs it too`
      : ''
  return {
    ...base,
    status: 'warn',
    detail: `only compose v1: ${shown}${pinned}`,
    fix: COMPOSE_INSTALL,
  }
}

export async function checkCompose(ctx: CheckContext): Promise<Check[]> {
  const configured = ctx.config.docker.compose
  const needed =
    configured !== undefined || Object.values(ctx.config.services).some((s) => s.compose)
  let found: { cli: ComposeCli } | { error: unknown }
  try {
    found = { cli: await ctx.ports.detectCompose({ configured, env: ctx.env }) }
  } catch (error) {
    found = { error }
  }
  return [judgeCompose(found, { engineApi: ctx.engine?.info.engineApiVersion ?? null, needed })]
}

export async function checkRclone(ctx: CheckContext): Promise<Check[]> {
  const assets = Object.keys(ctx.config.assets)
  const base = { id: 'rclone', title: 'rclone' }
  try {
    return [{ ...base, status: 'ok', detail: await ctx.ports.rcloneVersion(), fix: null }]
  } catch (err) {
    return [
      {
        ...base,
        status: assets.length ? 'fail' : 'warn',
        detail: `${errorText(err)}${assets.length ? `: migrate-assets needs it for ${assets.join(', ')}` : ' (no asset is configured: nothing needs it yet)'}`,
        fix: 'apt-get install rclone',
      },
    ]
  }
}

// --- asset mounts --------------------------------------------------------------------------------

export interface FuseConf {
  userAllowOther: boolean
  mountMax: number | null
}

/**
 * /etc/fuse.conf as fusermount3 reads it (libfuse util/fusermount.c): everything from `#` on is a
 * comment, the rest trimmed; `user_allow_other` must be the whole line. Pure.
 */
export function parseFuseConf(text: string): FuseConf {
  const out: FuseConf = { userAllowOther: false, mountMax: null }
  for (const raw of text.split('\n')) {
    const line = raw.split('#')[0]!.trim()
    if (line === 'user_allow_other') out.userAllowOther = true
    const max = /^mount_max\s*=\s*(\d+)$/.exec(line)
    if (max) out.mountMax = Number(max[1])
  }
  return out
}

const REMOUNT = 'remount it with --allow-other (rclone mount … --allow-other)'

/** Pure: the allow_other verdict for a live mount, given the containers that bind the source. */
export function judgeAllowOther(
  name: string,
  asset: Pick<AssetConfig, 'source' | 'mount' | 'mountType'>,
  mount: { allowOther: boolean; userId: number | null },
  bindings: ContainerBinding[] | null,
  /** why bindings is null */
  unchecked = 'no engine',
): Check {
  const base = { id: `asset-allow-other:${name}`, title: `Asset ${name}: allow_other` }
  if (mount.allowOther) {
    return {
      ...base,
      status: 'ok',
      detail: `${asset.mount} has allow_other: dockerd and every container user can read it`,
      fix: null,
    }
  }
  // a non-root mounter's mount without allow_other is closed even to root (dockerd)
  const owner = judgeMount(asset.mount, asset.mountType, {
    kind: 'live',
    fsType: asset.mountType,
    allowOther: false,
    userId: mount.userId,
  })[0]
  if (owner) return { ...base, status: 'fail', detail: owner.message, fix: owner.remedy ?? REMOUNT }
  if (bindings === null) {
    return {
      ...base,
      status: 'warn',
      detail: `${asset.mount} has no allow_other: only root can read it; the containers binding ${asset.source} were not checked (${unchecked})`,
      fix: REMOUNT,
    }
  }
  const seen = new Set<string>()
  const refusals = judgeContainers(asset.source, bindings, {
    path: asset.mount,
    allowOther: false,
  }).filter((r) => r.check === 'allow-other' && !seen.has(r.message) && seen.add(r.message))
  if (refusals.length) {
    return {
      ...base,
      status: 'fail',
      detail: refusals.map((r) => r.message).join('; '),
      fix: refusals[0]!.remedy ?? REMOUNT,
    }
  }
  return {
    ...base,
    status: 'warn',
    detail: `${asset.mount} has no allow_other: only root can read it (no container binding ${asset.source} runs as another user now)`,
    fix: REMOUNT,
  }
}

/** Pure: user_allow_other, needed when a non-root user mounts with --allow-other. */
export function judgeUserAllowOther(
  name: string,
  mount: string,
  o: { userId: number; allowOther: boolean; fuseConf: string; text: string | null },
): Check {
  const base = { id: `asset-fuse-conf:${name}`, title: `Asset ${name}: user_allow_other` }
  if (o.text !== null && parseFuseConf(o.text).userAllowOther) {
    return {
      ...base,
      status: 'ok',
      detail: `${o.fuseConf} has user_allow_other (uid ${o.userId} mounts ${mount})`,
      fix: null,
    }
  }
  const has = o.text === null ? 'does not exist' : 'has no user_allow_other line'
  return {
    ...base,
    status: o.allowOther ? 'warn' : 'fail',
    detail: `${mount} is mounted by uid ${o.userId} and ${o.fuseConf} ${has}: ${o.allowOther ? 'its next mount with --allow-other will be refused' : 'it cannot be remounted with --allow-other'}`,
    fix: `add the line user_allow_other to ${o.fuseConf}, then ${o.allowOther ? 'nothing else' : REMOUNT}`,
  }
}

export async function checkAsset(
  ctx: CheckContext,
  name: string,
  asset: AssetConfig,
): Promise<Check[]> {
  const base = { id: `asset-mount:${name}`, title: `Asset ${name}: mount` }
  const { state, entry } = await ctx.ports.mountState(
    asset.mount,
    asset.mountType,
    await ctx.mounts(),
  )
  if (state.kind !== 'live') {
    const r = judgeMount(asset.mount, asset.mountType, state)[0]
    return [
      {
        ...base,
        status: 'fail',
        detail: r?.message ?? `${asset.mount} is not usable (${state.kind})`,
        fix: r?.remedy ?? `check the mount: findmnt ${asset.mount}`,
      },
    ]
  }
  const from = entry ? ` from ${displayRemote(entry.source)}` : ''
  const by = state.userId === null ? '' : `, mounted by uid ${state.userId}`
  const out: Check[] = [
    {
      ...base,
      status: 'ok',
      detail: `${asset.mount} is live: ${state.fsType}${from}${by}`,
      fix: null,
    },
  ]
  let bindings: ContainerBinding[] | null = null
  let unchecked: string | undefined
  if (!state.allowOther && ctx.engine) {
    try {
      bindings = await ctx.ports.findBindings(ctx.engine, asset.source, asset.mount)
    } catch (err) {
      unchecked = errorText(err)
    }
  }
  out.push(judgeAllowOther(name, asset, state, bindings, unchecked))
  if (state.userId !== null && state.userId !== 0) {
    out.push(
      judgeUserAllowOther(name, asset.mount, {
        userId: state.userId,
        allowOther: state.allowOther,
        fuseConf: ctx.ports.fuseConf,
        text: await ctx.ports.readText(ctx.ports.fuseConf),
      }),
    )
  }
  return out
}

// --- directories ---------------------------------------------------------------------------------

export const DIR_WARN_BELOW = 1024 ** 3

/** stateDir/backupDir: warn under 1 GiB free. Pure. */
export function judgeDirFree(freeBytes: number): CheckStatus {
  return freeBytes < DIR_WARN_BELOW ? 'warn' : 'ok'
}

const DIR_TITLES = { stateDir: 'State directory', backupDir: 'Backup directory' } as const

export async function checkDir(ctx: CheckContext, key: 'stateDir' | 'backupDir'): Promise<Check[]> {
  const dir = ctx.config[key]
  const base = { id: key === 'stateDir' ? 'state-dir' : 'backup-dir', title: DIR_TITLES[key] }
  const fail = (detail: string, fix: string): Check[] => [{ ...base, status: 'fail', detail, fix }]
  const elsewhere = `or set ${key} in the host config to another directory`
  // the same judgment the commands refuse by (lib/host/private.ts): a symlink, another owner,
  // writable by group or others
  const facts = await ctx.ports.pathFacts(dir).catch(() => null)
  const unsafe = facts
    ? judgePrivate(dir, facts, { kind: 'dir', uid: ctx.ports.uid(), what: key })
    : null
  if (unsafe) {
    return fail(
      `${unsafe.problem}; every mutating or resuming command refuses to act on it (exit 4)`,
      unsafe.fix,
    )
  }
  const kind = await ctx.ports.pathKind(dir)
  let measured = dir
  let found: string
  if (kind.kind === 'dir') {
    const err = await ctx.ports.probeDir(dir)
    if (err) {
      return fail(
        `${dir} is not writable: ${err}`,
        err.startsWith('EROFS')
          ? `it is on a read-only filesystem: remount it read-write, ${elsewhere}`
          : `make it writable for the user shipshape runs as (usually root), ${elsewhere}`,
      )
    }
    found = `${dir} is writable`
  } else if (kind.kind === 'missing') {
    let parent = dir
    let pk: PathKind = kind
    while (pk.kind === 'missing' && parent !== '/') {
      parent = path.dirname(parent)
      pk = await ctx.ports.pathKind(parent)
    }
    if (pk.kind !== 'dir') {
      const what =
        pk.kind === 'error' ? `cannot be read (${pk.code})` : `is a ${pk.kind}, not a directory`
      return fail(
        `${dir} does not exist and cannot be created: ${parent} ${what}`,
        `set ${key} in the host config to a directory that can be created`,
      )
    }
    const err = await ctx.ports.canWrite(parent)
    if (err) {
      return fail(
        `${dir} does not exist and cannot be created: ${parent} is not writable (${err})`,
        err.startsWith('EROFS')
          ? `${parent} is on a read-only filesystem: set ${key} in the host config to a directory on a writable disk`
          : `create ${dir} as root, ${elsewhere}`,
      )
    }
    measured = parent
    found = `${dir} does not exist yet; it will be created in ${parent} (writable)`
  } else if (kind.kind === 'error') {
    return fail(
      `${dir} cannot be read: ${kind.code} ${kind.message}`,
      `check the path, ${elsewhere}`,
    )
  } else {
    return fail(`${dir} exists and is not a directory`, `move it away, ${elsewhere}`)
  }
  let space: DiskSpace
  try {
    space = await ctx.ports.statfs(measured)
  } catch (err) {
    return [
      {
        ...base,
        status: 'warn',
        detail: `${found}; free space unknown (${errorText(err)})`,
        fix: null,
      },
    ]
  }
  const status = judgeDirFree(space.free)
  return [
    {
      ...base,
      status,
      detail: `${found}; ${formatBytes(space.free)} free${status === 'ok' ? '' : ' (less than 1 GiB)'}`,
      fix:
        status === 'ok'
          ? null
          : key === 'backupDir'
            ? 'backups need room: free space on that disk, or set backupDir to a bigger one'
            : 'journals, reports and logs need room: free space on that disk, or set stateDir elsewhere',
    },
  ]
}

// --- lock ----------------------------------------------------------------------------------------

/** A lock held this long by a live process is worth a look. */
export const LOCK_LONG_MS = 6 * 3600_000

export async function readLock(stateDir: string, ports: DoctorPorts): Promise<LockFinding> {
  const file = lockPath(stateDir)
  let text: string | null
  try {
    text = await ports.readText(file)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOTDIR') return { kind: 'free' }
    return { kind: 'unreadable', file, why: errorText(err) }
  }
  if (text === null) return { kind: 'free' }
  const info = parseLockInfo(text)
  if (!info) return { kind: 'unreadable', file, why: 'not a shipshape lock (unreadable content)' }
  return { kind: 'held', file, info, state: await ports.holderState(info) }
}

function holderText(info: LockInfo, hostname: string): string {
  return `${info.operation} (pid ${info.pid}${info.host === hostname ? '' : ` on ${info.host}`}) since ${info.since}`
}

/** Pure: the lock check. */
export function judgeLock(lock: LockFinding, now: Date, hostname: string): Check {
  const base = { id: 'lock', title: 'Host lock' }
  switch (lock.kind) {
    case 'free':
      return { ...base, status: 'ok', detail: 'free: no shipshape run holds it', fix: null }
    case 'unreadable':
      return {
        ...base,
        status: 'warn',
        detail: `${lock.file}: ${lock.why}; every mutating command is refused while it is there`,
        fix: `if no shipshape run is active on this host, remove ${lock.file}`,
      }
    case 'held': {
      const who = holderText(lock.info, hostname)
      const age = now.getTime() - Date.parse(lock.info.since)
      const ageText = Number.isFinite(age) && age >= 0 ? ` (${formatDuration(age)})` : ''
      if (lock.state.alive === true) {
        const long = Number.isFinite(age) && age > LOCK_LONG_MS
        return {
          ...base,
          status: long ? 'warn' : 'ok',
          detail: `held by ${who}${ageText}: a run is in progress${long ? ', for a long time' : ''}`,
          fix: long
            ? `check pid ${lock.info.pid} still makes progress (its log in the state directory); stopping it releases the lock`
            : null,
        }
      }
      if (lock.state.alive === false) {
        return {
          ...base,
          status: 'warn',
          detail: `stale: held by ${who}${ageText}, but ${lock.state.why}`,
          fix: `nothing needed: the next mutating run recovers it (or remove ${lock.file})`,
        }
      }
      return {
        ...base,
        status: 'warn',
        detail: `held by ${who}${ageText}; its holder cannot be checked from here (${lock.state.why})`,
        fix: `if no shipshape run is active on ${lock.info.host}, remove ${lock.file}`,
      }
    }
  }
}

export async function checkLock(ctx: CheckContext): Promise<Check[]> {
  return [judgeLock(await ctx.lock(), ctx.ports.now(), ctx.ports.hostname())]
}

// --- journals ------------------------------------------------------------------------------------

/** Runbook operations a person continues with --resume/--rollback, and the arg naming the target. */
export const RESUMABLE: Record<string, { key: string; command?: string; flags?: string[] }> = {
  'migrate-assets': { key: 'asset' },
  // `migrate-assets NAME --revert`: continued with --revert --resume / --revert --rollback
  'migrate-assets-revert': { key: 'asset', command: 'migrate-assets', flags: ['--revert'] },
  rebuild: { key: 'service' },
  rollback: { key: 'service' },
}

export interface JournalCommands {
  resume: string | null
  rollback: string | null
  /** one line for a person */
  fix: string
}

/** Pure: the command lines that finish or undo an unfinished run. */
export function journalCommands(
  j: Pick<JournalState, 'file' | 'operation' | 'args' | 'steps'>,
  o: { configFile?: string | null } = {},
): JournalCommands {
  const known = RESUMABLE[j.operation]
  const target = known ? j.args[known.key] : undefined
  if (j.operation === 'migrate-assets-finalize') {
    const asset = typeof j.args.asset === 'string' ? j.args.asset : 'NAME'
    return {
      resume: null,
      rollback: null,
      fix: `no command finishes it (\`migrate-assets ${asset} --finalize\` takes no --resume and is refused while it is there): check the originals it names in ${j.file} are gone (their removal cannot be undone; the backups stay), then move the journal out of ${path.dirname(j.file)}`,
    }
  }
  if (!known || typeof target !== 'string' || target === '') {
    return {
      resume: null,
      rollback: null,
      fix: `read ${j.file}: this shipshape version does not know how ${j.operation} runs are continued`,
    }
  }
  const cmd = (flag: string) =>
    showArgv([
      'shipshape',
      ...(o.configFile ? ['--config', o.configFile] : []),
      known.command ?? j.operation,
      target,
      ...(known.flags ?? []),
      flag,
    ])
  const resume = cmd('--resume')
  // rebuild/rollback refuse --rollback once the health gate passed: only finishing is left
  const healthy =
    (j.operation === 'rebuild' || j.operation === 'rollback') &&
    j.steps.get('health')?.status === 'done'
  if (healthy) {
    return {
      resume,
      rollback: null,
      fix: `\`${resume}\` to finish it (it had passed its health check: there is nothing to undo)`,
    }
  }
  const rollback = cmd('--rollback')
  return {
    resume,
    rollback,
    fix: `\`${resume}\` to finish it, or \`${rollback}\` to undo it`,
  }
}

/** Pure: where an unfinished run stopped, for a person. */
export function journalProgress(j: Pick<JournalState, 'steps' | 'outcome' | 'plan'>): string {
  const steps = [...j.steps.entries()]
  const title = (id: string) => j.plan.find((s) => s.id === id)?.title ?? id
  const broken = steps.filter(([, s]) => s.status === 'undo-failed' || s.status === 'failed')
  if (j.outcome === 'needs-person') {
    const u = steps.find(([, s]) => s.status === 'undo-failed') ?? broken.at(-1)
    return `failed and could not fully roll back${u ? `: ${u[1].status === 'undo-failed' ? 'undo of' : 'step'} "${title(u[0])}" failed${u[1].error ? ` (${u[1].error})` : ''}` : ''}`
  }
  const open = steps.filter(([, s]) => s.status !== 'done' && s.status !== 'undone').at(-1)
  const done = steps.filter(([, s]) => s.status === 'done').length
  if (open) {
    const what = open[1].status === 'undoing' ? 'while undoing' : 'in'
    return `interrupted ${what} step "${title(open[0])}" (${done} of ${j.plan.length} steps done)`
  }
  return `interrupted after ${done} of ${j.plan.length} steps`
}

export async function checkJournals(ctx: CheckContext): Promise<Check[]> {
  const dir = journalDir(ctx.config.stateDir)
  const listed = await ctx.ports.listDir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOTDIR') return null
    throw err
  })
  const names = (listed ?? []).filter((n) => n.endsWith('.jsonl'))
  // a journal drives --resume as root: one another user could have written is refused by every
  // command that lists journals (lib/host/private.ts), so it is a failure here too
  const uid = ctx.ports.uid()
  const unsafe: Check[] = []
  const judge = async (p: string, kind: 'dir' | 'file', what: string) => {
    const facts = await ctx.ports.pathFacts(p).catch(() => null)
    const bad = facts ? judgePrivate(p, facts, { kind, uid, what }) : null
    if (bad) {
      unsafe.push({
        id: `journal-private:${path.basename(p)}`,
        title: kind === 'dir' ? 'Journal directory' : `Journal ${path.basename(p)}`,
        status: 'fail',
        detail: `${bad.problem}; mutating and resuming commands refuse to run (exit 4)`,
        fix: bad.fix,
      })
    }
    return !bad
  }
  if (listed && !(await judge(dir, 'dir', 'journal directory'))) return unsafe
  const limit = pLimit(8)
  const read = await Promise.all(
    names.map((n) =>
      limit(async () => {
        const file = path.join(dir, n)
        if (!(await judge(file, 'file', 'journal'))) return null
        const text = await ctx.ports.readText(file)
        if (text === null) return null
        try {
          return parseJournal(file, text)
        } catch (err) {
          if (err instanceof JournalError) return null // not a journal: not ours to judge
          throw err
        }
      }),
    ),
  )
  const unfinished = read
    .filter((j): j is JournalState => j !== null && isUnfinished(j))
    .sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.file.localeCompare(b.file))
  if (!unfinished.length) {
    const finished = read.filter((j) => j !== null).length
    if (unsafe.length) return unsafe
    return [
      {
        id: 'journals',
        title: 'Unfinished runs',
        status: 'ok',
        detail: `none in ${dir}${finished ? ` (${finished} finished)` : ''}`,
        fix: null,
      },
    ]
  }
  const lock = await ctx.lock()
  const hostname = ctx.ports.hostname()
  const found = unfinished.map((j): Check => {
    const known = RESUMABLE[j.operation]
    const target = known ? j.args[known.key] : (j.args.asset ?? j.args.service)
    const of = typeof target === 'string' ? ` of ${target}` : ''
    const cmds = journalCommands(j, { configFile: ctx.configFlag })
    const running =
      lock.kind === 'held' && lock.state.alive === true && lock.info.operation === j.operation
    const where = j.host === hostname ? '' : ` on ${j.host}`
    return {
      id: `journal:${path.basename(j.file)}`,
      title: `Unfinished ${j.operation}${of}`,
      status: running ? 'warn' : 'fail',
      detail: running
        ? `${j.operation}${of} started ${j.startedAt}: a ${j.operation} run (pid ${lock.info.pid}) holds the lock now, this may be it; journal ${j.file}`
        : `${j.operation}${of} started ${j.startedAt} by pid ${j.pid}${where}: ${journalProgress(j)}; journal ${j.file}`,
      fix: running
        ? `wait for pid ${lock.info.pid} to finish, then run doctor again; if it does not: ${cmds.fix}`
        : cmds.fix,
    }
  })
  return [...unsafe, ...found]
}

// --- systemd -------------------------------------------------------------------------------------

export const DOCTOR_UNITS = [
  'shipshape-report.timer',
  'shipshape-prune.timer',
  'shipshape-schedule.service',
] as const

export const SHOW_PROPERTIES = [
  'LoadState',
  'ActiveState',
  'Result',
  'ExecMainStatus',
  'LastTriggerUSec',
] as const

export function systemctlShowArgv(unit: string): string[] {
  return ['show', '-p', SHOW_PROPERTIES.join(','), unit]
}

/** `systemctl show` output (Key=Value lines) → a map. Pure. */
export function parseSystemctlShow(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=')
    if (eq <= 0) continue
    out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim()
  }
  return out
}

const never = (v: string | undefined) => !v || v === 'n/a' || v === '0'

/**
 * Pure: one unit's check. `props` is the unit's `systemctl show`; for a timer, `service` is its
 * service's (whose Result and ExecMainStatus say how the last run went).
 */
export function judgeUnit(
  unit: string,
  o: { installed: boolean; unitDir: string },
  props: Record<string, string>,
  service: Record<string, string> | null,
): Check {
  const base = { id: `systemd-unit:${unit}`, title: `Unit ${unit}` }
  const isTimer = unit.endsWith('.timer')
  const enable = unit === 'shipshape-schedule.service' ? ENABLE_SCHEDULE : ENABLE_TIMERS
  if (props.LoadState !== 'loaded') {
    return o.installed
      ? {
          ...base,
          status: 'warn',
          detail: `${path.join(o.unitDir, unit)} is there but systemd has not loaded it (LoadState=${props.LoadState || '?'})`,
          fix: 'systemctl daemon-reload (and check systemd.unitDir is a directory systemd loads units from)',
        }
      : {
          ...base,
          status: 'warn',
          detail: `not installed (no ${path.join(o.unitDir, unit)})`,
          fix: `shipshape systemd install, then ${enable}`,
        }
  }
  const svcName = isTimer ? unit.replace(/\.timer$/, '.service') : unit
  const svc = service ?? props
  const last = isTimer ? (never(props.LastTriggerUSec) ? 'never' : props.LastTriggerUSec) : null
  const result = svc.Result || 'success'
  const status = svc.ExecMainStatus || '0'
  if (svc.ActiveState === 'failed' || result !== 'success' || status !== '0') {
    return {
      ...base,
      status: 'fail',
      detail: `the last run of ${svcName} failed: Result=${result}, exit status ${status}${last ? `, triggered ${last}` : ''}`,
      fix: `journalctl -u ${svcName} -n 50 shows why; once fixed: systemctl reset-failed ${svcName}`,
    }
  }
  const where = o.installed ? '' : ` (loaded from outside ${o.unitDir})`
  if (isTimer) {
    return {
      ...base,
      status: 'ok',
      detail:
        props.ActiveState === 'active'
          ? `enabled${where}; last run: ${last}${last === 'never' ? '' : ', succeeded'}`
          : `installed${where}, not enabled (${props.ActiveState || '?'})`,
      fix: null,
    }
  }
  return {
    ...base,
    status: 'ok',
    detail:
      props.ActiveState === 'active'
        ? `running${where}`
        : `installed${where}, not running (${props.ActiveState || '?'})`,
    fix: null,
  }
}

/** Pure: are the jobs run by exactly one of the two ways? */
export function judgeJobs(active: Record<(typeof DOCTOR_UNITS)[number], boolean>): Check {
  const base = { id: 'systemd-jobs', title: 'Scheduled jobs' }
  const timers = active['shipshape-report.timer'] || active['shipshape-prune.timer']
  const schedule = active['shipshape-schedule.service']
  if (timers && schedule) {
    return {
      ...base,
      status: 'warn',
      detail: 'both the timers and the schedule service run the report and prune jobs',
      fix: 'keep one: systemctl disable --now shipshape-schedule.service (or the timers)',
    }
  }
  if (!timers && !schedule) {
    return {
      ...base,
      status: 'warn',
      detail:
        'neither the timers nor the schedule service is enabled: no nightly report, no weekly prune',
      fix: `${ENABLE_TIMERS} (or ${ENABLE_SCHEDULE})`,
    }
  }
  const which = timers
    ? `the timers (${DOCTOR_UNITS.filter((u) => u.endsWith('.timer') && active[u]).join(', ')})`
    : 'the schedule service'
  return { ...base, status: 'ok', detail: `run by ${which}`, fix: null }
}

export async function checkSystemd(ctx: CheckContext): Promise<Check[]> {
  const unitDir = ctx.config.systemd.unitDir
  const { ports } = ctx
  const installed = await Promise.all(
    DOCTOR_UNITS.map(async (u) => (await ports.pathKind(path.join(unitDir, u))).kind === 'file'),
  )
  if (!(await ports.systemdRunning())) {
    return [
      {
        id: 'systemd',
        title: 'systemd',
        status: 'warn',
        detail:
          'systemd not running here (no /run/systemd/system): the units’ last results cannot be read',
        fix: 'nothing on a host without systemd: run `shipshape schedule` under its own supervisor instead',
      },
      ...DOCTOR_UNITS.map((u, i): Check => ({
        id: `systemd-unit:${u}`,
        title: `Unit ${u}`,
        status: installed[i] ? 'ok' : 'warn',
        detail: installed[i]
          ? `installed in ${unitDir}`
          : `not installed (no ${path.join(unitDir, u)})`,
        fix: installed[i] ? null : 'shipshape systemd install',
      })),
    ]
  }
  const show = async (unit: string): Promise<Record<string, string> | string> => {
    const r = await ports.systemctl(systemctlShowArgv(unit))
    if (r.exitCode !== 0) {
      return `systemctl show ${unit} failed (exit ${r.exitCode ?? '?'})${r.stderr.trim() ? `: ${r.stderr.trim().split('\n')[0]}` : ''}`
    }
    return parseSystemctlShow(r.stdout)
  }
  const out: Check[] = []
  const active = {} as Record<(typeof DOCTOR_UNITS)[number], boolean>
  for (const [i, unit] of DOCTOR_UNITS.entries()) {
    const props = await show(unit)
    const service = unit.endsWith('.timer')
      ? await show(unit.replace(/\.timer$/, '.service'))
      : null
    const failed = [props, service].find((p): p is string => typeof p === 'string')
    if (failed || typeof props === 'string') {
      out.push({
        id: `systemd-unit:${unit}`,
        title: `Unit ${unit}`,
        status: 'warn',
        detail: failed ?? String(props),
        fix: `systemctl status ${unit}`,
      })
      active[unit] = false
      continue
    }
    active[unit] = props.LoadState === 'loaded' && props.ActiveState === 'active'
    out.push(
      judgeUnit(
        unit,
        { installed: installed[i] ?? false, unitDir },
        props,
        typeof service === 'string' ? null : service,
      ),
    )
  }
  out.push(judgeJobs(active))
  return out
}
