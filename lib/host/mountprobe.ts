/**
 * Is a FUSE or network mount answering? Asked from a child process, never in this one.
 *
 * A stat/open/readdir on a hung FUSE mount (its rclone stopped, its remote gone mute) blocks the
 * libuv thread-pool thread that makes it, for good: no JS timeout cancels it, four of them stall
 * every fs and dns call of the process, and even process.exit() then hangs (libuv joins its
 * threads on the way out; checked here with a SIGSTOPped rclone). A child stuck in a FUSE request
 * dies of a fatal signal, so the question goes to `stat -f` (statfs always reaches the FUSE
 * daemon: no attribute cache answers it) in its own process group with a deadline
 * (lib/host/run.ts), and only a mount that answered is touched in-process afterwards.
 *
 *   probeMount(mountPoint)      live | hung | gone (ENOTCONN), once per mount per process
 *   isRemoteMount(entry)        (pure) FUSE or network file system: worth a probe
 *   mountsTouching(mounts, p)   (pure) the remote mounts a look at p enters: the one holding p
 *                               and, for a tree walk, those below it
 *   guardPath(p, o)             the probes of those mounts that did not answer (empty: go on)
 *   mountWarning(probe, what)   (pure) the one-line warning naming the mount and the fix
 */
import { readMountinfo, type MountEntry } from './mountinfo.js'
import { isUnder } from '../shared/paths.js'
import { runCaptured } from './run.js'

export type MountAnswer = 'live' | 'hung' | 'gone'

export interface MountProbe {
  mountPoint: string
  state: MountAnswer
  /** what was seen: "no answer to statfs within 5 s", "Transport endpoint is not connected" */
  detail: string
  ms: number
}

/** How long a mount may take to answer statfs before it counts as hung. */
export const DEFAULT_PROBE_TIMEOUT_MS = 5_000

/** File systems whose calls may wait on a process or a network: FUSE and network mounts. */
const NETWORK_FS = new Set([
  'nfs',
  'nfs4',
  'cifs',
  'smb3',
  'smbfs',
  '9p',
  'ceph',
  'glusterfs',
  'afs',
  'davfs',
  'ncpfs',
  'lustre',
])

/** Pure: FUSE (fuse, fuse.rclone, fuseblk, fuse.sshfs …) or a network file system. */
export function isRemoteMount(m: Pick<MountEntry, 'fsType'>): boolean {
  return (
    m.fsType === 'fuse' ||
    m.fsType.startsWith('fuse.') ||
    m.fsType === 'fuseblk' ||
    NETWORK_FS.has(m.fsType)
  )
}

/**
 * Pure: the remote mounts a look at `p` reaches — the deepest mount holding p when it is a
 * remote one, and with `below` (a walk such as du -x: it stats the mount points it does not
 * enter) every remote mount strictly below p. Each mount point once, in mount-table order.
 */
export function mountsTouching(
  mounts: readonly MountEntry[],
  p: string,
  o: { below?: boolean } = {},
): MountEntry[] {
  let home: MountEntry | null = null
  for (const m of mounts) {
    if (isUnder(p, m.mountPoint) && (!home || m.mountPoint.length >= home.mountPoint.length)) {
      home = m
    }
  }
  const out: MountEntry[] = []
  const seen = new Set<string>()
  const add = (m: MountEntry) => {
    if (seen.has(m.mountPoint)) return
    seen.add(m.mountPoint)
    out.push(m)
  }
  if (home && isRemoteMount(home)) add(home)
  if (o.below) {
    for (const m of mounts) {
      if (m.mountPoint !== p && isUnder(m.mountPoint, p) && isRemoteMount(m)) add(m)
    }
  }
  return out
}

/** Pure: the probe child's outcome as an answer. */
export function judgeProbe(
  mountPoint: string,
  r: { exitCode: number | null; signal: string | null; timedOut: boolean; stderr: string },
  timeoutMs: number,
  ms: number,
): MountProbe {
  if (r.timedOut) {
    return {
      mountPoint,
      state: 'hung',
      detail: `no answer to statfs within ${formatSeconds(timeoutMs)}`,
      ms,
    }
  }
  if (r.exitCode === 0) return { mountPoint, state: 'live', detail: 'answers', ms }
  const said = r.stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .at(-1)
  if (/Transport endpoint is not connected/i.test(r.stderr)) {
    return { mountPoint, state: 'gone', detail: 'Transport endpoint is not connected', ms }
  }
  // killed by someone else, or stat failing otherwise (EACCES, ENOENT): it answered, badly;
  // the in-process call reports its own error without hanging
  if (r.exitCode === null) {
    return { mountPoint, state: 'hung', detail: `statfs killed by ${r.signal ?? 'a signal'}`, ms }
  }
  return { mountPoint, state: 'live', detail: said ? `answers: ${said}` : 'answers', ms }
}

const formatSeconds = (ms: number) =>
  ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`

export interface ProbeOptions {
  timeoutMs?: number
  /** the probe's argv before the mount point (tests); default stat -f */
  command?: string[]
}

const cache = new Map<string, Promise<MountProbe>>()

/** Forgets every answer (tests; a long-running process between runs). */
export function clearProbeCache(): void {
  cache.clear()
}

/**
 * Asks the mount at `mountPoint` for statfs from a child (`stat -f`, its own process group,
 * SIGTERM at the deadline, SIGKILL 10 s later). Once per mount point per process: a second
 * caller gets the first answer, so a command pays for a hung mount once.
 */
export function probeMount(mountPoint: string, o: ProbeOptions = {}): Promise<MountProbe> {
  let p = cache.get(mountPoint)
  if (!p) {
    p = probeNow(mountPoint, o)
    cache.set(mountPoint, p)
    // a probe that could not even start (no stat on PATH) is asked again next time
    p.catch(() => cache.delete(mountPoint))
  }
  return p
}

async function probeNow(mountPoint: string, o: ProbeOptions): Promise<MountProbe> {
  const timeoutMs = o.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS
  const argv = [...(o.command ?? ['stat', '-f', '-c', '%t']), '--', mountPoint]
  const t0 = performance.now()
  // stdout is not waited on past the kill: a child stuck in the kernel dies of SIGTERM
  const r = await runCaptured(argv, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
    timeoutMs,
    maxBytes: 64 * 1024,
  })
  return judgeProbe(mountPoint, r, timeoutMs, Math.round(performance.now() - t0))
}

/**
 * The mounts a look at `p` reaches (see mountsTouching) that did not answer; empty when every
 * one is live (or none is remote). The mount table is read unless given.
 */
export async function guardPath(
  p: string,
  o: ProbeOptions & { mounts?: readonly MountEntry[]; below?: boolean } = {},
): Promise<MountProbe[]> {
  const mounts = o.mounts ?? (await readMountinfo().catch(() => []))
  const probes = await Promise.all(
    mountsTouching(mounts, p, { below: o.below ?? false }).map((m) => probeMount(m.mountPoint, o)),
  )
  return probes.filter((x) => x.state !== 'live')
}

/**
 * Pure: one line for a mount that did not answer: what was skipped, the mount, the fix.
 * `skipped` says what this run left out ("du of /srv", "the kept originals of asset music").
 */
export function mountWarning(probe: MountProbe, skipped: string): string {
  const what =
    probe.state === 'gone'
      ? `the mount ${probe.mountPoint} is gone (${probe.detail}: its process died)`
      : `the mount ${probe.mountPoint} does not answer (${probe.detail}: hung)`
  return `${what}: skipped ${skipped}; fix: fusermount3 -uz ${probe.mountPoint}, then mount it again`
}
