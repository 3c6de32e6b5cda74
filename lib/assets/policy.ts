/**
 * The pure half of the migrate-assets preflight: facts in (gathered by preflight.ts), refusals
 * out. Every refusal names what is wrong and the fix; all of them are reported at once, before
 * anything changed (exit 4).
 */
import path from 'node:path'
import { formatBytes } from '../config/units.js'
import { isUnder } from '../shared/paths.js'
import type { Refusal } from '../shared/refusal.js'
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
