/**
 * The pure half of the migrate-assets preflight: facts in (gathered by preflight.ts), refusals
 * out. Every refusal names what is wrong and the fix; all of them are reported at once, before
 * anything changed (exit 4).
 */
import path from 'node:path'
import { formatBytes } from '../config/units.js'
import { isUnder } from '../host/mountinfo.js'
import type { ManifestEntry } from '../shared/manifest-types.js'

/** Never a source, whatever allowedRoots says: the system, the engine's own state. */
export const PROTECTED_PATHS = [
  '/',
  '/bin',
  '/boot',
  '/dev',
  '/etc',
  '/lib',
  '/lib32',
  '/lib64',
  '/proc',
  '/root',
  '/run',
  '/sbin',
  '/sys',
  '/usr',
  '/var/lib/containerd',
  '/var/lib/docker',
  '/var/lib/dpkg',
  '/var/lib/apt',
]

export interface Refusal {
  check: string
  message: string
  remedy?: string
}

/**
 * A source must be strictly below an allowed root, and neither be nor contain nor sit inside a
 * protected path, shipshape's state or its backups.
 */
export function checkSourcePath(
  source: string,
  opts: { allowedRoots: string[]; stateDir: string; backupDir: string },
): Refusal[] {
  const out: Refusal[] = []
  const src = path.posix.normalize(source).replace(/(.)\/+$/, '$1')
  const own = [opts.stateDir, opts.backupDir]
  const protectedHit = PROTECTED_PATHS.find(
    (p) => src === p || (p !== '/' && isUnder(src, p)) || (p !== '/' && isUnder(p, src)),
  )
  if (protectedHit || src === '/') {
    out.push({
      check: 'allowed-roots',
      message: `source ${src} is a system path (${protectedHit ?? '/'}): never migrated`,
      remedy: 'name a directory of application data, e.g. under /opt or /srv',
    })
  } else if (!opts.allowedRoots.some((r) => src !== r && isUnder(src, r))) {
    out.push({
      check: 'allowed-roots',
      message: `source ${src} is not below an allowed root (${opts.allowedRoots.join(', ') || 'none configured'})`,
      remedy:
        'add its parent directory to allowedRoots in the host config if it really is application data',
    })
  }
  for (const d of own) {
    if (isUnder(src, d) || isUnder(d, src)) {
      out.push({
        check: 'allowed-roots',
        message: `source ${src} overlaps shipshape's own directory ${d}`,
        remedy: 'move stateDir/backupDir elsewhere in the host config',
      })
    }
  }
  return out
}

/** What lstat says the source is. */
export type SourceState =
  | { kind: 'dir' }
  | { kind: 'symlink'; target: string }
  | { kind: 'missing' }
  | { kind: 'other'; what: string }

/**
 * `migrated` when the source already is the symlink to dest (the runbook's end state);
 * refusals when it is anything but a real directory.
 */
export function judgeSource(
  source: string,
  dest: string,
  state: SourceState,
): { migrated: boolean; refusals: Refusal[] } {
  switch (state.kind) {
    case 'dir':
      return { migrated: false, refusals: [] }
    case 'symlink': {
      const target = path.posix.resolve(path.posix.dirname(source), state.target)
      if (target === path.posix.normalize(dest)) return { migrated: true, refusals: [] }
      return {
        migrated: false,
        refusals: [
          {
            check: 'source',
            message: `source ${source} is a symlink to ${state.target}, not to dest ${dest}`,
            remedy: 'point the asset at the real directory, or fix dest in the host config',
          },
        ],
      }
    }
    case 'missing':
      return {
        migrated: false,
        refusals: [{ check: 'source', message: `source ${source} does not exist` }],
      }
    case 'other':
      return {
        migrated: false,
        refusals: [
          { check: 'source', message: `source ${source} is a ${state.what}, not a directory` },
        ],
      }
  }
}

export type MountState =
  /** userId: the FUSE mount's owner (user_id=), null when not FUSE */
  | { kind: 'live'; fsType: string; allowOther: boolean; userId: number | null }
  | { kind: 'not-mounted' }
  | { kind: 'enotconn' }
  /** a FUSE/network mount (this one or one above it) that did not answer a probe in time */
  | { kind: 'hung'; mountPoint: string; detail: string }
  | { kind: 'no-access'; code: string }
  | { kind: 'wrong-type'; fsType: string }

export function judgeMount(mount: string, expectedType: string, state: MountState): Refusal[] {
  switch (state.kind) {
    case 'live':
      // dockerd (root) resolves the symlink when it starts a container: a FUSE mount of
      // another user without allow_other is closed to it
      if (state.userId !== null && state.userId !== 0 && !state.allowOther) {
        return [
          {
            check: 'allow-other',
            message: `${mount} is mounted by uid ${state.userId} without allow_other: dockerd (root) cannot reach it, so no container could start on the symlink`,
            remedy: 'remount with --allow-other (and user_allow_other in /etc/fuse.conf)',
          },
        ]
      }
      return []
    case 'no-access':
      return [
        {
          check: 'mount',
          message: `${mount} cannot be read by shipshape (${state.code}): a FUSE mount of another user without allow_other`,
          remedy: 'remount with --allow-other (and user_allow_other in /etc/fuse.conf)',
        },
      ]
    case 'not-mounted':
      return [
        {
          check: 'mount',
          message: `${mount} is not a mount point (nothing is mounted there: writing into it would fill the local disk)`,
          remedy: `mount it first (e.g. systemctl start the rclone mount unit) and check with: findmnt ${mount}`,
        },
      ]
    case 'enotconn':
      return [
        {
          check: 'mount',
          message: `${mount} answers "Transport endpoint is not connected": its rclone process died`,
          remedy: `unmount it with fusermount3 -uz ${mount}, then start the mount again`,
        },
      ]
    case 'hung':
      return [
        {
          check: 'mount',
          message: `${state.mountPoint === mount ? mount : `${mount} (on ${state.mountPoint})`} does not answer (${state.detail}): its rclone process is stopped or stuck, or the remote does not reply`,
          remedy: `check the rclone process; if it is stuck or dead: fusermount3 -uz ${state.mountPoint}, then start the mount again`,
        },
      ]
    case 'wrong-type':
      return [
        {
          check: 'mount',
          message: `${mount} is mounted as ${state.fsType}, not ${expectedType}`,
          remedy: `check the mount, or set mountType: ${state.fsType} for this asset`,
        },
      ]
  }
}

/** A container's bind mount that involves the source. */
export interface ContainerBinding {
  id: string
  name: string
  running: boolean
  /** Config.User ('' = the image's default) */
  user: string
  /** host path bound */
  bindSource: string
  /** path inside the container */
  destination: string
  /** also binds the mount (or an ancestor) at the same path: a symlink into it resolves inside */
  seesMount: boolean
}

/** Is this user spec root? '' (the image default) counts as root only when the image says so. */
export function isRootUser(user: string): boolean {
  const name = user.split(':')[0] ?? ''
  return name === '' || name === '0' || name === 'root'
}

/**
 * Containers that bind the source or a directory inside it see the symlink resolved at start;
 * containers that bind a PARENT of the source would see a symlink to a path they don't have.
 * Without allow_other, no uid but the mounter's can read a FUSE mount.
 */
export function judgeContainers(
  source: string,
  bindings: ContainerBinding[],
  mount: { path: string; allowOther: boolean },
): Refusal[] {
  const out: Refusal[] = []
  for (const b of bindings) {
    if (isUnder(source, b.bindSource) && b.bindSource !== source && !b.seesMount) {
      out.push({
        check: 'containers',
        message: `container ${b.name} binds ${b.bindSource} (a parent of the source) at ${b.destination}: it would see a symlink to ${mount.path}, which it does not mount`,
        remedy: `bind the source directory itself, or also bind ${mount.path} into ${b.name} at the same path`,
      })
    }
    if (!mount.allowOther && !isRootUser(b.user)) {
      out.push({
        check: 'allow-other',
        message: `container ${b.name} runs as user ${b.user} but ${mount.path} is mounted without allow_other: only the mounting user can read it`,
        remedy:
          'remount with --allow-other (and user_allow_other in /etc/fuse.conf if rclone runs as a non-root user)',
      })
    }
  }
  return out
}

/** Names in `restart` that match no container (by name, or compose service label). */
export function unknownRestartNames(
  restart: string[],
  containers: { name: string; composeService: string | null }[],
): string[] {
  return restart.filter((r) => !containers.some((c) => c.name === r || c.composeService === r))
}

export function judgeTree(
  entries: ManifestEntry[],
  problems: { path: string; reason: string }[],
  mountKeepsSymlinks: boolean,
  mount: string,
): Refusal[] {
  const out: Refusal[] = []
  if (problems.length) {
    const shown = problems.slice(0, 5).map((p) => `${p.path}: ${p.reason}`)
    out.push({
      check: 'source-tree',
      message: `the source holds ${problems.length} entr${problems.length === 1 ? 'y' : 'ies'} that cannot be copied safely: ${shown.join('; ')}${problems.length > 5 ? '; …' : ''}`,
      remedy: 'move them first (sockets, fifos, devices, mounts below)',
    })
  }
  const links = entries.filter((e) => e.kind === 'symlink')
  if (links.length && !mountKeepsSymlinks) {
    out.push({
      check: 'symlinks',
      message: `the source holds ${links.length} symlink(s) (${links
        .slice(0, 3)
        .map((l) => l.path)
        .join(', ')}${links.length > 3 ? ', …' : ''}) and ${mount} cannot store symlinks`,
      remedy:
        'replace them by the files they point to, or use an rclone with symlink support (--links, rclone ≥ 1.67)',
    })
  }
  return out
}

export function judgeSpace(opts: { needBytes: number; freeBytes: number; dir: string }): Refusal[] {
  if (opts.freeBytes >= opts.needBytes) return []
  return [
    {
      check: 'space',
      message: `the backup needs up to ${formatBytes(opts.needBytes)} and ${opts.dir} has ${formatBytes(opts.freeBytes)} free`,
      remedy: 'free space there, or point backupDir at a disk with room',
    },
  ]
}
