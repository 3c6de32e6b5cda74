/** The host lock: free, held by a live run (for how long), stale, or unreadable. */
import { formatDuration } from '../../config/index.js'
import { lockPath, parseLockInfo, type LockInfo } from '../../host/lock.js'
import { errorText, type Check, type DoctorCheck, type LockFinding } from '../check.js'
import type { DoctorPorts } from '../ports.js'

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

export interface LockFacts {
  lock: LockFinding
  now: Date
  hostname: string
}

export const lockCheck: DoctorCheck<LockFacts> = {
  id: 'lock',
  title: 'Host lock',
  gather: async (ctx) => ({
    lock: await ctx.lock(),
    now: ctx.ports.now(),
    hostname: ctx.ports.hostname(),
  }),
  judge: (f) => [judgeLock(f.lock, f.now, f.hostname)],
}
