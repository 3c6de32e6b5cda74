/**
 * The one host-wide lock every mutating shipshape run takes (PRODUCT.md: a second run is refused
 * with exit 4, a stale lock of a dead process is recovered).
 *
 * <stateDir>/shipshape.lock holds JSON {pid, startTime, bootId, operation, since, host}, mode 0600.
 * It is published atomically by writeFileDurable(…, { noReplace }) (lib/host/durable.ts): the
 * content is written and fsync'ed into a private temp file, then link(2)ed to the lock name — link
 * fails with EEXIST when the lock exists, and a reader never sees an empty or half-written lock (an
 * O_EXCL create of the lock itself would leave an empty file behind if the process died before
 * writing it). stateDir is created 0700 and refused when another user could write it
 * (lib/host/private.ts): a lock or journal planted there would be trusted.
 *
 * A holder is alive when its pid exists with the same start time (/proc/<pid>/stat field 22) and
 * the same boot: a recycled pid or a reboot is not mistaken for the holder. No native modules,
 * no proper-lockfile: it keeps a killed holder's lock for its stale timeout and throws when the
 * event loop is blocked (PITFALLS.md).
 */
import { readFileSync, unlinkSync } from 'node:fs'
import { readFile, unlink } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { RefusedError } from '../errors.js'
import { writeFileDurable } from './durable.js'
import { ensurePrivateDir } from './private.js'

export const LOCK_FILE = 'shipshape.lock'

export interface LockInfo {
  pid: number
  /** /proc/<pid>/stat field 22 (clock ticks after boot); null where /proc is unreadable. */
  startTime: string | null
  /** /proc/sys/kernel/random/boot_id; null where unreadable. */
  bootId: string | null
  operation: string
  /** ISO time the lock was taken. */
  since: string
  host: string
}

export interface AcquireOptions {
  stateDir: string
  operation: string
  /** Told when a stale lock is recovered. */
  warn?: (line: string) => void
  now?: () => Date
}

export interface HostLock {
  readonly file: string
  readonly info: LockInfo
  /** Removes the lock if it is still ours; false when it is gone or someone else's. */
  release(): Promise<boolean>
  /** The same, synchronously: for a signal or 'exit' handler. */
  releaseSync(): boolean
}

export function lockPath(stateDir: string): string {
  return path.join(stateDir, LOCK_FILE)
}

interface ProcStat {
  state: string
  startTime: string
}

/** Parses /proc/<pid>/stat (proc(5)); comm (field 2) may hold spaces and parentheses. Pure. */
export function parseProcStat(text: string): ProcStat | null {
  const close = text.lastIndexOf(')')
  if (close < 0) return null
  // fields after "(comm)" start at field 3 (state); field 22 (starttime) is the 20th of them
  const rest = text
    .slice(close + 1)
    .trim()
    .split(/\s+/)
  const state = rest[0]
  const startTime = rest[19]
  if (!state || !startTime || !/^\d+$/.test(startTime)) return null
  return { state, startTime }
}

async function readProcStat(pid: number): Promise<ProcStat | null> {
  try {
    return parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return null
  }
}

async function readBootId(): Promise<string | null> {
  try {
    return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim() || null
  } catch {
    return null
  }
}

/** Parses a lock file's text; null when it is not a lock this module wrote. Pure. */
export function parseLockInfo(text: string): LockInfo | null {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    return null
  }
  if (!v || typeof v !== 'object') return null
  const o = v as Record<string, unknown>
  // a pid ≤ 0 would make kill(pid, 0) address a process group: never trust one
  if (typeof o.pid !== 'number' || !Number.isInteger(o.pid) || o.pid <= 0) return null
  if (typeof o.operation !== 'string' || typeof o.since !== 'string') return null
  if (typeof o.host !== 'string') return null
  const optional = (x: unknown) => (typeof x === 'string' && x ? x : null)
  return {
    pid: o.pid,
    startTime: optional(o.startTime),
    bootId: optional(o.bootId),
    operation: o.operation,
    since: o.since,
    host: o.host,
  }
}

export type HolderState =
  { alive: true; why: string } | { alive: false; why: string } | { alive: 'unknown'; why: string }

/** Is the process that wrote this lock still running? */
export async function holderState(info: LockInfo): Promise<HolderState> {
  if (info.host !== os.hostname()) {
    return { alive: 'unknown', why: `taken on host ${info.host}` }
  }
  const bootId = await readBootId()
  if (info.bootId && bootId && info.bootId !== bootId) {
    return { alive: false, why: 'taken before the last reboot' }
  }
  try {
    process.kill(info.pid, 0)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ESRCH') return { alive: false, why: `pid ${info.pid} is gone` }
    if (code !== 'EPERM') throw e
    // EPERM: it exists, owned by someone else — go on to the start time
  }
  const stat = await readProcStat(info.pid)
  if (info.startTime) {
    if (!stat) return { alive: false, why: `pid ${info.pid} is gone` }
    if (stat.startTime !== info.startTime) {
      return { alive: false, why: `pid ${info.pid} now belongs to another process` }
    }
  }
  if (stat?.state === 'Z') return { alive: false, why: `pid ${info.pid} has exited (zombie)` }
  return { alive: true, why: `pid ${info.pid} is running` }
}

function describeHolder(info: LockInfo): string {
  const where = info.host === os.hostname() ? '' : ` on ${info.host}`
  return `${info.operation} (pid ${info.pid}${where}) since ${info.since}`
}

/**
 * Takes the lock or throws RefusedError (exit 4) naming the holder. A lock whose holder is dead
 * (gone, pid recycled, rebooted) is recovered once — removed under a guard if it is still the
 * same stale lock, reported through warn — and the lock taken again.
 */
export async function acquireLock(opts: AcquireOptions): Promise<HostLock> {
  const now = opts.now ?? (() => new Date())
  const file = lockPath(opts.stateDir)
  try {
    await ensurePrivateDir(opts.stateDir, 'stateDir')
  } catch (e) {
    if (e instanceof RefusedError) throw e
    throw cannotWrite(opts.stateDir, e)
  }
  const self = await readProcStat(process.pid)
  const info: LockInfo = {
    pid: process.pid,
    startTime: self?.startTime ?? null,
    bootId: await readBootId(),
    operation: opts.operation,
    since: now().toISOString(),
    host: os.hostname(),
  }
  const text = JSON.stringify(info) + '\n'
  let recovered = false
  // bounded: a lock that keeps vanishing and reappearing is someone else's busy loop
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      await writeFileDurable(file, text, { noReplace: true })
      return ownLock(file, info, text)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw cannotWrite(opts.stateDir, e)
    }
    let held: string
    try {
      held = await readFile(file, 'utf8')
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue // released meanwhile
      throw e
    }
    const holder = parseLockInfo(held)
    if (!holder) {
      throw new RefusedError(
        `the lock file ${file} is not a shipshape lock (unreadable content)`,
        `if no shipshape run is active on this host, remove ${file}`,
      )
    }
    const state = await holderState(holder)
    if (state.alive !== false || recovered) throw heldError(file, holder, state)
    const r = await removeStale(file, held, text)
    if (r === 'busy') await new Promise((res) => setTimeout(res, 10))
    if (r === 'removed') {
      opts.warn?.(`recovered a stale lock: ${describeHolder(holder)} (${state.why})`)
      recovered = true
    }
  }
  throw new RefusedError(
    `could not take the lock ${file}: it keeps changing`,
    'another shipshape run is starting: wait for it to finish',
  )
}

function heldError(file: string, holder: LockInfo, state: HolderState): RefusedError {
  return new RefusedError(
    `another shipshape run holds the lock: ${describeHolder(holder)}`,
    state.alive === 'unknown'
      ? `the lock was ${state.why} (shared state directory?): if no shipshape run is active there, remove ${file}`
      : `wait for it to finish; if pid ${holder.pid} is not a shipshape process, remove ${file}`,
  )
}

/**
 * Throws the RefusedError acquireLock would throw if a live run holds the lock now; takes nothing.
 * Lets a command refuse before asking its question. A dead holder's lock passes (acquire recovers
 * it); an unreadable lock file is left to acquireLock.
 */
export async function assertLockFree(stateDir: string): Promise<void> {
  const file = lockPath(stateDir)
  let held: string
  try {
    held = await readFile(file, 'utf8')
  } catch {
    return
  }
  const holder = parseLockInfo(held)
  if (!holder) return
  const state = await holderState(holder)
  if (state.alive !== false) throw heldError(file, holder, state)
}

/**
 * Removes the stale lock if it still is the one judged stale. Recoverers take turns through a
 * guard file (linked like the lock): without it, a slow recoverer could delete the fresh lock a
 * faster one has just taken in the stale one's place.
 */
async function removeStale(
  file: string,
  staleText: string,
  ours: string,
): Promise<'removed' | 'changed' | 'busy'> {
  const guard = `${file}.recover`
  try {
    await writeFileDurable(guard, ours, { noReplace: true })
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
    // another run is recovering now, or died doing it (a window of microseconds)
    const g = await readFile(guard, 'utf8').catch(() => null)
    const gi = g === null ? null : parseLockInfo(g)
    if (g !== null && (!gi || (await holderState(gi)).alive === false)) {
      if ((await readFile(guard, 'utf8').catch(() => null)) === g) {
        await unlink(guard).catch(() => {})
      }
    }
    return 'busy'
  }
  try {
    if ((await readFile(file, 'utf8').catch(() => null)) !== staleText) return 'changed'
    await unlink(file)
    return 'removed'
  } finally {
    if ((await readFile(guard, 'utf8').catch(() => null)) === ours) {
      await unlink(guard).catch(() => {})
    }
  }
}

function ownLock(file: string, info: LockInfo, text: string): HostLock {
  return {
    file,
    info,
    async release() {
      let current: string
      try {
        current = await readFile(file, 'utf8')
      } catch {
        return false
      }
      if (current !== text) return false
      await unlink(file).catch(() => {})
      return true
    },
    releaseSync() {
      try {
        if (readFileSync(file, 'utf8') !== text) return false
        unlinkSync(file)
        return true
      } catch {
        return false
      }
    },
  }
}

function cannotWrite(stateDir: string, e: unknown): RefusedError {
  const code = (e as NodeJS.ErrnoException).code
  return new RefusedError(
    `cannot take the lock in ${stateDir}: ${code ?? (e as Error).message}`,
    code === 'EACCES' || code === 'EPERM'
      ? `run as a user who can write ${stateDir} (usually root), or set stateDir in the host config`
      : `check that ${stateDir} is a writable directory`,
  )
}
