/**
 * The I/O half of the migrate-assets preflight: reads the host (lstat, mountinfo, statfs, a
 * probe file on the mount, the engine's containers, rclone) and hands the facts to policy.ts.
 * Writes nothing but the probe file it removes again.
 */
import { randomBytes } from 'node:crypto'
import {
  lstat,
  readdir,
  readFile,
  readlink,
  stat,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises'
import path from 'node:path'
import type { AssetConfig, Config } from '../config/index.js'
import type { Engine } from '../docker/engine.js'
import { freeBytes } from '../host/space.js'
import { UnavailableError } from '../errors.js'
import { describeFailure, waitHealthy } from '../health/check.js'
import { readMountinfo, type MountEntry } from '../host/mountinfo.js'
import { isUnder } from '../shared/paths.js'
import { guardPath } from '../host/mountprobe.js'
import {
  displayRemote,
  isNotConnected,
  mountRemote,
  rcloneAvailable,
  remoteHashes,
  remoteOfMount,
} from '../host/rclone.js'
import type { Ident } from '../host/safefs.js'
import { walkTree } from './manifest.js'
import {
  judgeContainers,
  judgeMount,
  type ContainerBinding,
  type MountState,
} from '../shared/mount.js'
import type { Refusal } from '../shared/refusal.js'
import {
  checkSourcePath,
  judgeSource,
  judgeSpace,
  judgeTree,
  unknownRestartNames,
  type SourceState,
} from './policy.js'
import type { HashName, ManifestEntry } from '../shared/manifest-types.js'

export interface RemoteInfo {
  /** the rclone remote spec (may hold credentials: never print it; use `display`) */
  spec: string
  display: string
  /** the hash both sides can compare, null: sizes from rclone + a read-back through the mount */
  hash: HashName | null
}

export interface PreflightResult {
  /** the source already is the symlink to dest */
  migrated: boolean
  refusals: Refusal[]
  warnings: string[]
  /** the source tree (null when it was not walked: migrated, or the source is gone) */
  entries: ManifestEntry[] | null
  /** the source directory as walked (device, inode): later steps refuse another one there */
  sourceIdent: Ident | null
  files: number
  bytes: number
  mount: { allowOther: boolean; keepsSymlinks: boolean } | null
  remote: RemoteInfo | null
  /** containers binding the source (or a parent of it) */
  bindings: ContainerBinding[]
  /** running containers to stop before the swap and start after it */
  restart: { id: string; name: string }[]
}

const TAR_OVERHEAD_PER_ENTRY = 1536
const SPACE_MARGIN = 64 * 1024 * 1024

export async function sourceState(p: string): Promise<SourceState> {
  try {
    const st = await lstat(p)
    if (st.isDirectory()) return { kind: 'dir' }
    if (st.isSymbolicLink()) return { kind: 'symlink', target: await readlink(p) }
    return { kind: 'other', what: st.isFile() ? 'file' : 'special file' }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' }
    throw err
  }
}

/**
 * The remote behind a mount as shipshape checks it: rclone's spec, how to print it, and the hash
 * both sides can compare (sha256 when the remote has it). UnavailableError when rclone cannot
 * reach it.
 */
export async function remoteInfo(spec: string, mount: string): Promise<RemoteInfo> {
  const hashes = await remoteHashes(spec).catch((err: Error) => {
    throw new UnavailableError(
      `rclone cannot reach the remote ${displayRemote(spec)} behind ${mount}: ${err.message}`,
      'check `rclone about` for that remote as the user shipshape runs as, or set assets.<name>.remote',
    )
  })
  return {
    spec,
    display: displayRemote(spec),
    hash: hashes.find((h) => h === 'sha256') ?? hashes[0] ?? null,
  }
}

/** The mount as the kernel sees it, and whether it answers. */
export async function mountState(
  mount: string,
  expectedType: string,
  mounts?: MountEntry[],
): Promise<{ state: MountState; entry: MountEntry | null }> {
  const all = mounts ?? (await readMountinfo())
  const entry = all.filter((m) => m.mountPoint === mount).at(-1) ?? null
  // asked from a child first: a stat here through a hung FUSE mount would never return
  const probe = (await guardPath(mount, { mounts: all }))[0]
  if (probe?.state === 'gone') return { state: { kind: 'enotconn' }, entry }
  if (probe) {
    return {
      state: { kind: 'hung', mountPoint: probe.mountPoint, detail: probe.detail },
      entry,
    }
  }
  try {
    await stat(mount)
  } catch (err) {
    if (isNotConnected(err)) return { state: { kind: 'enotconn' }, entry }
    const code = (err as NodeJS.ErrnoException).code ?? ''
    if (code === 'ENOENT') return { state: { kind: 'not-mounted' }, entry }
    if (code === 'EACCES' || code === 'EPERM') return { state: { kind: 'no-access', code }, entry }
    throw err
  }
  if (!entry) return { state: { kind: 'not-mounted' }, entry }
  if (entry.fsType !== expectedType)
    return { state: { kind: 'wrong-type', fsType: entry.fsType }, entry }
  const opts = [...entry.options, ...entry.superOptions]
  const uid = /^user_id=(\d+)$/.exec(opts.find((o) => o.startsWith('user_id=')) ?? '')
  return {
    state: {
      kind: 'live',
      fsType: entry.fsType,
      allowOther: opts.includes('allow_other'),
      userId: uid ? Number(uid[1]) : null,
    },
    entry,
  }
}

/** The deepest existing directory on the way from `mount` to `p`. */
async function deepestExisting(p: string, stopAt: string): Promise<string> {
  let cur = p
  for (;;) {
    try {
      if ((await stat(cur)).isDirectory()) return cur
    } catch {
      // not there yet
    }
    if (cur === stopAt || cur === '/') return stopAt
    cur = path.dirname(cur)
  }
}

/** Write, read back and remove a probe file; try a symlink too. */
export async function probeMount(
  dir: string,
): Promise<{ writable: true; keepsSymlinks: boolean } | { writable: false; error: string }> {
  const token = randomBytes(16)
  const probe = path.join(dir, `.shipshape-probe-${process.pid}-${token.toString('hex', 0, 4)}`)
  try {
    await writeFile(probe, token)
    const back = await readFile(probe)
    if (!back.equals(token))
      return { writable: false, error: `read back different bytes from ${probe}` }
  } catch (err) {
    await unlink(probe).catch(() => {})
    return {
      writable: false,
      error: `${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`.trim(),
    }
  }
  let keepsSymlinks = false
  const link = `${probe}-link`
  try {
    await symlink(path.basename(probe), link)
    keepsSymlinks = (await readlink(link)) === path.basename(probe)
  } catch {
    keepsSymlinks = false
  }
  await unlink(link).catch(() => {})
  await unlink(probe).catch(() => {})
  return { writable: true, keepsSymlinks }
}

/** The destination as a new run needs it: absent or empty (probe files aside). */
export async function destState(
  dest: string,
): Promise<'absent' | 'empty' | 'not-empty' | 'not-a-dir'> {
  try {
    const st = await lstat(dest)
    if (!st.isDirectory()) return 'not-a-dir'
    return (await readdir(dest)).filter((n) => !n.startsWith('.shipshape-probe-')).length === 0
      ? 'empty'
      : 'not-empty'
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent'
    throw err
  }
}

/** Containers whose bind mounts involve the source; their user from inspect. */
export async function findBindings(
  engine: Engine,
  source: string,
  mount: string,
): Promise<{
  bindings: ContainerBinding[]
  all: { id: string; name: string; composeService: string | null; running: boolean }[]
}> {
  const list = await engine.listContainers()
  const bindings: ContainerBinding[] = []
  for (const c of list) {
    const binds = c.mounts.filter((m) => m.type === 'bind')
    const related = binds.filter((m) => isUnder(m.source, source) || isUnder(source, m.source))
    if (!related.length) continue
    const details = await engine.inspectContainer(c.id)
    const seesMount = binds.some((m) => isUnder(mount, m.source) && m.destination === m.source)
    for (const m of related) {
      bindings.push({
        id: c.id,
        name: c.name,
        running: c.state === 'running',
        user: details?.user ?? '',
        bindSource: m.source,
        destination: m.destination,
        seesMount,
      })
    }
  }
  return {
    bindings,
    all: list.map((c) => ({
      id: c.id,
      name: c.name,
      composeService: c.labels['com.docker.compose.service'] ?? null,
      running: c.state === 'running',
    })),
  }
}

/** Running containers that bind the source, and those the config names under restart. */
export function restartOf(
  found: Awaited<ReturnType<typeof findBindings>>,
  names: readonly string[],
): { id: string; name: string }[] {
  const restart = new Map<string, string>()
  for (const b of found.bindings) if (b.running) restart.set(b.id, b.name)
  for (const c of found.all) {
    if (c.running && names.some((r) => r === c.name || r === c.composeService)) {
      restart.set(c.id, c.name)
    }
  }
  return [...restart].map(([id, name]) => ({ id, name }))
}

export interface PreflightInput {
  asset: AssetConfig
  config: Config
  engine: Engine
  /** resuming or rolling back an unfinished run: its state is expected mid-way */
  continuing: boolean
}

/** What a rollback starts from: it reads nothing of the host (the journal has what it needs). */
export function emptyPreflight(): PreflightResult {
  return {
    migrated: false,
    refusals: [],
    warnings: [],
    entries: null,
    sourceIdent: null,
    files: 0,
    bytes: 0,
    mount: null,
    remote: null,
    bindings: [],
    restart: [],
  }
}

/** A mount that answers: writable, keeps symlinks?, dest empty, the remote behind it. */
async function checkLiveMount(
  input: PreflightInput,
  state: { allowOther: boolean },
  entry: Awaited<ReturnType<typeof mountState>>['entry'],
  result: PreflightResult,
): Promise<void> {
  const { asset } = input
  const { refusals, warnings } = result
  const probeDir = await deepestExisting(path.dirname(asset.dest), asset.mount)
  const probe = await probeMount(probeDir)
  if (!probe.writable) {
    refusals.push({
      check: 'mount-writable',
      message: `cannot write to ${probeDir} on ${asset.mount}: ${probe.error}`,
      remedy: 'check the mount is read-write and the remote has room',
    })
  } else {
    result.mount = { allowOther: state.allowOther, keepsSymlinks: probe.keepsSymlinks }
  }
  if (!input.continuing) {
    const d = await destState(asset.dest)
    if (d === 'not-empty' || d === 'not-a-dir') {
      refusals.push({
        check: 'dest',
        message: `dest ${asset.dest} ${d === 'not-a-dir' ? 'exists and is not a directory' : 'exists and is not empty'}`,
        remedy: 'pick another dest, or empty it after checking what it holds',
      })
    }
  }
  const spec = asset.remote ?? (entry ? remoteOfMount(entry) : null)
  if (spec) {
    if (!(await rcloneAvailable())) {
      throw new UnavailableError(
        `rclone is needed to check the files reached the remote behind ${asset.mount}, and it is not installed`,
        'apt-get install rclone',
      )
    }
    result.remote = await remoteInfo(spec, asset.mount)
  } else if (entry?.fsType === 'fuse.rclone') {
    const why = mountRemote(entry)
    refusals.push({
      check: 'remote',
      message: `cannot tell which rclone remote is behind ${asset.mount}${'reason' in why && why.reason ? ` (${why.reason})` : ''}: without it, shipshape cannot check the files reached the remote and not only the mount's cache`,
      remedy: `set assets.<name>.remote to the remote the mount serves (e.g. rd:)`,
    })
  } else {
    warnings.push(
      `${asset.mount} is not an rclone mount: files are verified by reading them back through it, and a write-back cache cannot be checked`,
    )
  }
}

export async function preflight(input: PreflightInput): Promise<PreflightResult> {
  const { asset, config, engine } = input
  const result = emptyPreflight()
  const { refusals } = result
  refusals.push(
    ...checkSourcePath(asset.source, {
      allowedRoots: config.allowedRoots,
      stateDir: config.stateDir,
      backupDir: config.backupDir,
    }),
  )
  if (isUnder(config.backupDir, asset.mount)) {
    refusals.push({
      check: 'backup-dir',
      message: `backupDir ${config.backupDir} is on the mount ${asset.mount}: the backup must stay on local disk`,
    })
  }
  if (refusals.length) return result // a forbidden path is not even looked at

  const src = await sourceState(asset.source)
  if (!input.continuing) {
    const judged = judgeSource(asset.source, asset.dest, src)
    if (judged.migrated) {
      result.migrated = true
      return result
    }
    refusals.push(...judged.refusals)
  }

  const { state, entry } = await mountState(asset.mount, asset.mountType)
  refusals.push(...judgeMount(asset.mount, asset.mountType, state))
  if (state.kind === 'live') await checkLiveMount(input, state, entry, result)

  if (src.kind === 'dir') {
    const walked = await walkTree(asset.source)
    result.entries = walked.entries
    result.sourceIdent = walked.root
    for (const e of walked.entries) {
      if (e.kind === 'file') {
        result.files++
        result.bytes += e.size
      }
    }
    refusals.push(
      ...judgeTree(
        walked.entries,
        walked.problems,
        result.mount?.keepsSymlinks ?? true,
        asset.mount,
      ),
    )
    if (!input.continuing) {
      const space = await freeBytes(config.backupDir)
      refusals.push(
        ...judgeSpace({
          needBytes: result.bytes + walked.entries.length * TAR_OVERHEAD_PER_ENTRY + SPACE_MARGIN,
          freeBytes: space.free,
          dir: space.dir,
        }),
      )
    }
  }

  const found = await findBindings(engine, asset.source, asset.mount)
  result.bindings = found.bindings
  refusals.push(
    ...judgeContainers(asset.source, found.bindings, {
      path: asset.mount,
      allowOther: result.mount?.allowOther ?? true,
    }),
  )
  const unknown = unknownRestartNames(asset.restart, found.all)
  if (unknown.length) {
    refusals.push({
      check: 'restart',
      message: `restart names ${unknown.join(', ')}: no such container or compose service on this engine`,
      remedy: 'fix assets.<name>.restart in the host config (`docker ps -a` lists the names)',
    })
  }
  result.restart = restartOf(found, asset.restart)

  // a service unhealthy before the migration would fail its check after it, and again after
  // the rollback: say so now, while nothing has changed
  if (asset.health && !input.continuing && !refusals.length) {
    // healthy now is all the preflight asks: the hold is for after a change
    const h = await waitHealthy(
      { ...asset.health, stableFor: 0 },
      {
        engine,
        containers: result.restart.map((c) => c.id),
      },
    )
    if (!h.ok) {
      refusals.push({
        check: 'health',
        message: `the health check fails already, before anything changed: ${describeFailure(h)}`,
        remedy: 'fix the service or assets.<name>.health first',
      })
    }
  }
  return result
}
