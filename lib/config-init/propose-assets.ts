/**
 * `config init`: an asset entry for every bind-mounted directory over report.bigAssets that
 * migrate-assets' path rule allows, with a dest on a live mount; the rest as comments. Pure.
 */
import path from 'node:path'
import { checkSourcePath, PROTECTED_PATHS } from '../assets/policy.js'
import type { Config } from '../config/schema.js'
import { formatBytes } from '../config/units.js'
import { isUnder } from '../shared/paths.js'
import type { FuseMount, InitFacts } from './facts.js'
import { MAX_LISTED, plural, toName, uniqueName, type Acc, type Entry } from './proposal.js'

/** The asset name the report suggests for a path (lib/report/analyze.ts slug): its last two parts. */
export function assetSlug(p: string): string {
  return toName(
    p
      .split('/')
      .filter(Boolean)
      .slice(-2)
      .join('-')
      .replace(/[^A-Za-z0-9._-]+/g, '-')
      .toLowerCase(),
    'asset',
  )
}

/**
 * Why a bind-mounted directory cannot be an asset (migrate-assets' own path rule: a system path,
 * outside allowedRoots, shipshape's own directories), or null. gather.ts measures only those
 * that can be.
 */
export function sourceRefusal(
  source: string,
  config: Pick<Config, 'allowedRoots' | 'stateDir' | 'backupDir'>,
): string | null {
  return (
    checkSourcePath(source, {
      allowedRoots: config.allowedRoots,
      stateDir: config.stateDir,
      backupDir: config.backupDir,
    })[0]?.message ?? null
  )
}

const isSystemPath = (p: string) =>
  PROTECTED_PATHS.some((s) => p === s || (s !== '/' && (isUnder(p, s) || isUnder(s, p))))

interface BigSource {
  source: string
  sizeBytes: number
  users: string[]
}

/**
 * Bind-mounted directories over report.bigAssets that migrate-assets' path rule allows, each with
 * a dest on the first live rclone mount (other FUSE next); commented out without one.
 */
export function proposeAssets(
  facts: InitFacts,
  config: Config,
  acc: Acc,
): { assets: Record<string, Entry>; roots: string[]; outside: string[] } {
  const bigAssets = config.report.bigAssets
  const users = new Map<string, Set<string>>()
  for (const c of facts.containers)
    for (const m of c.mounts) {
      if (m.type !== 'bind' || !m.source.startsWith('/')) continue
      const src = path.posix.normalize(m.source).replace(/(.)\/+$/, '$1')
      users.set(src, (users.get(src) ?? new Set()).add(c.name))
    }
  const roots = new Set<string>()
  const outside: string[] = []
  const refused: string[] = []
  const unmeasured: string[] = []
  const big: BigSource[] = []
  let small = 0
  for (const [source, who] of [...users].sort((a, b) => a[0].localeCompare(b[0]))) {
    const sf = facts.sources[source]
    if (!sf || sf.kind !== 'dir') continue // files, sockets, symlinks (a migrated asset), missing
    const whoList = [...who].sort()
    if (!isSystemPath(source)) {
      const root = config.allowedRoots
        .filter((r) => isUnder(source, r))
        .sort((a, b) => b.length - a.length)[0]
      if (root) roots.add(root)
      else outside.push(source)
    }
    if (facts.mounts.some((m) => isUnder(source, m.mountPoint))) continue // already on a mount
    const refusal = sourceRefusal(source, config)
    if (refusal) refused.push(`${source} (${whoList.join(', ')}): ${refusal}`)
    else if (sf.sizeBytes === null) unmeasured.push(source)
    else if (sf.sizeBytes <= bigAssets) small++
    else big.push({ source, sizeBytes: sf.sizeBytes, users: whoList })
  }
  // a big directory inside another one goes with it (sorted: the outer one comes first)
  const outer: BigSource[] = []
  for (const b of big) {
    const parent = outer.find((o) => isUnder(b.source, o.source))
    if (parent) parent.users = [...new Set([...parent.users, ...b.users])].sort()
    else outer.push({ ...b })
  }

  const mounts = [
    ...facts.mounts.filter((m) => m.fsType === 'fuse.rclone'),
    ...facts.mounts.filter((m) => m.fsType !== 'fuse.rclone'),
  ]
  const assets: Record<string, Entry> = {}
  const used = new Set<string>()
  for (const b of outer) {
    const name = uniqueName(assetSlug(b.source), used)
    const about = `${formatBytes(b.sizeBytes)} (du -x), bind-mounted by ${b.users.join(', ')}`
    const mount = mounts.find(
      (m) => m.live && !isUnder(b.source, m.mountPoint) && !isUnder(m.mountPoint, b.source),
    )
    if (!mount) {
      acc.trailing.assets.disabled.push({
        name,
        why: [`${name}: ${about}`, `not proposed: ${noMountWhy(mounts)}`],
        entry: {
          source: b.source,
          dest: `/mnt/REMOTE/${name}`,
          mount: '/mnt/REMOTE',
          restart: b.users,
        },
        notes: [],
      })
      continue
    }
    assets[name] = {
      source: b.source,
      dest: path.posix.join(mount.mountPoint, name),
      mount: mount.mountPoint,
      ...(mount.fsType === 'fuse.rclone' ? {} : { mountType: mount.fsType }),
      restart: b.users,
    }
    acc.notes.push(
      { path: ['assets', name], before: [about] },
      { path: ['assets', name, 'dest'], after: 'must be absent or empty when it runs' },
      {
        path: ['assets', name, 'mount'],
        after:
          mount.fsType === 'fuse.rclone'
            ? 'a live rclone mount'
            : `a live ${mount.fsType} mount, not rclone: set remote: if rclone serves it`,
      },
    )
  }
  const lines = acc.trailing.assets.lines
  if (small > 0)
    lines.push(
      `${plural(small, 'smaller bind-mounted directory', 'smaller bind-mounted directories')} (≤ report.bigAssets) left out`,
    )
  for (const u of unmeasured) lines.push(`${u}: du could not measure it`)
  for (const r of refused.slice(0, MAX_LISTED)) lines.push(`not considered, not measured: ${r}`)
  if (refused.length > MAX_LISTED)
    lines.push(`… and ${refused.length - MAX_LISTED} more not considered`)
  return { assets, roots: [...roots].sort(), outside }
}

function noMountWhy(mounts: FuseMount[]): string {
  const then = 'then uncomment this with its dest and mount:'
  if (mounts.length === 0) return `no rclone/FUSE mount in /proc/self/mountinfo. Mount one, ${then}`
  const dead = mounts.map((m) => `${m.mountPoint} (${m.fsType}): ${m.problem ?? 'not usable'}`)
  return `no live rclone/FUSE mount (${dead.join('; ')}). Fix one, ${then}`
}
