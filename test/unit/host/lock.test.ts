import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ExitCode, RefusedError } from '../../../lib/errors.js'
import {
  acquireLock,
  assertLockFree,
  lockPath,
  parseLockInfo,
  parseProcStat,
  type LockInfo,
} from '../../../lib/host/lock.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ss-lock-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function bootId(): Promise<string> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim()
}

async function startTimeOf(pid: number): Promise<string> {
  const st = parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8'))
  if (!st) throw new Error(`cannot read /proc/${pid}/stat`)
  return st.startTime
}

async function writeLock(info: Partial<LockInfo>): Promise<string> {
  const full: LockInfo = {
    pid: process.pid,
    startTime: await startTimeOf(process.pid),
    bootId: await bootId(),
    operation: 'prune',
    since: '2026-01-02T03:04:05.000Z',
    host: os.hostname(),
    ...info,
  }
  const text = JSON.stringify(full) + '\n'
  await writeFile(lockPath(dir), text)
  return text
}

/** A pid that existed and is now gone (reaped), with the start time it had. */
async function deadPid(): Promise<{ pid: number; startTime: string }> {
  const child = spawn(process.execPath, ['-e', 'process.stdin.resume()'], {
    stdio: ['pipe', 'ignore', 'ignore'],
  })
  await once(child, 'spawn')
  const pid = child.pid!
  const startTime = await startTimeOf(pid)
  child.kill('SIGKILL')
  await once(child, 'exit')
  return { pid, startTime }
}

describe('host lock', () => {
  it('writes {pid, startTime, bootId, operation, since, host} and removes it on release', async () => {
    const lock = await acquireLock({
      stateDir: dir,
      operation: 'migrate-assets',
      now: () => new Date('2026-05-06T07:08:09.000Z'),
    })
    const info = parseLockInfo(await readFile(lockPath(dir), 'utf8'))
    expect(info).toEqual({
      pid: process.pid,
      startTime: await startTimeOf(process.pid),
      bootId: await bootId(),
      operation: 'migrate-assets',
      since: '2026-05-06T07:08:09.000Z',
      host: os.hostname(),
    })
    expect(await lock.release()).toBe(true)
    expect(await readdir(dir)).toEqual([]) // no temp or guard file left either
  })

  it('creates a missing stateDir', async () => {
    const stateDir = path.join(dir, 'a/b')
    const lock = await acquireLock({ stateDir, operation: 'prune' })
    expect(await readdir(stateDir)).toEqual(['shipshape.lock'])
    await lock.release()
  })

  it('a second acquire is refused (exit 4) naming the operation, pid and time', async () => {
    const lock = await acquireLock({
      stateDir: dir,
      operation: 'rebuild',
      now: () => new Date('2026-05-06T07:08:09.000Z'),
    })
    const err = await acquireLock({ stateDir: dir, operation: 'prune' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RefusedError)
    expect((err as RefusedError).exitCode).toBe(ExitCode.refused)
    expect((err as RefusedError).message).toBe(
      `another shipshape run holds the lock: rebuild (pid ${process.pid}) since 2026-05-06T07:08:09.000Z`,
    )
    expect((err as RefusedError).remedy).toContain(lockPath(dir))
    await expect(assertLockFree(dir)).rejects.toBeInstanceOf(RefusedError)
    // the holder's lock is untouched
    expect(parseLockInfo(await readFile(lockPath(dir), 'utf8'))?.operation).toBe('rebuild')
    await lock.release()
    await assertLockFree(dir)
    const again = await acquireLock({ stateDir: dir, operation: 'prune' })
    await again.release()
  })

  it('parallel acquires: exactly one wins', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, () => acquireLock({ stateDir: dir, operation: 'prune' })),
    )
    const won = results.filter((r) => r.status === 'fulfilled')
    expect(won).toHaveLength(1)
    for (const r of results) {
      if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(RefusedError)
    }
    await (
      won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireLock>>>
    ).value.release()
  })

  it('recovers the lock of a dead pid, and says so', async () => {
    const dead = await deadPid()
    await writeLock({ pid: dead.pid, startTime: dead.startTime, operation: 'migrate-assets' })
    await assertLockFree(dir) // a dead holder does not block
    const warnings: string[] = []
    const lock = await acquireLock({
      stateDir: dir,
      operation: 'prune',
      warn: (l) => warnings.push(l),
    })
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain(`recovered a stale lock: migrate-assets (pid ${dead.pid})`)
    expect(parseLockInfo(await readFile(lockPath(dir), 'utf8'))?.pid).toBe(process.pid)
    await lock.release()
  })

  it('recovers a lock whose pid is alive but started at another time (pid reuse)', async () => {
    await writeLock({ pid: process.pid, startTime: '1', operation: 'rebuild' })
    const warnings: string[] = []
    const lock = await acquireLock({
      stateDir: dir,
      operation: 'prune',
      warn: (l) => warnings.push(l),
    })
    expect(warnings.join('\n')).toMatch(/now belongs to another process/)
    expect(parseLockInfo(await readFile(lockPath(dir), 'utf8'))?.operation).toBe('prune')
    await lock.release()
  })

  it('recovers a lock taken before a reboot (other boot id)', async () => {
    await writeLock({ bootId: '00000000-0000-0000-0000-000000000000' })
    const warnings: string[] = []
    const lock = await acquireLock({
      stateDir: dir,
      operation: 'prune',
      warn: (l) => warnings.push(l),
    })
    expect(warnings.join('\n')).toMatch(/before the last reboot/)
    await lock.release()
  })

  it('parallel recoveries of one stale lock: exactly one wins, one recovery reported', async () => {
    const dead = await deadPid()
    await writeLock({ pid: dead.pid, startTime: dead.startTime })
    const warnings: string[] = []
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, () =>
        acquireLock({ stateDir: dir, operation: 'prune', warn: (l) => warnings.push(l) }),
      ),
    )
    const won = results.filter((r) => r.status === 'fulfilled')
    expect(won).toHaveLength(1)
    expect(warnings).toHaveLength(1)
    await (
      won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireLock>>>
    ).value.release()
    expect(await readdir(dir)).toEqual([])
  })

  it("release does not remove someone else's lock", async () => {
    const lock = await acquireLock({ stateDir: dir, operation: 'prune' })
    // as if our lock had been judged stale and another run had taken it
    const theirs = await writeLock({ operation: 'rebuild', since: '2026-02-02T00:00:00.000Z' })
    expect(await lock.release()).toBe(false)
    expect(lock.releaseSync()).toBe(false)
    expect(await readFile(lockPath(dir), 'utf8')).toBe(theirs)
  })

  it('releaseSync removes our own lock', async () => {
    const lock = await acquireLock({ stateDir: dir, operation: 'prune' })
    expect(lock.releaseSync()).toBe(true)
    expect(await readdir(dir)).toEqual([])
    expect(await lock.release()).toBe(false)
  })

  it('a lock taken on another host is not judged from here: refused, not recovered', async () => {
    await writeLock({ pid: 999_999, host: 'elsewhere' })
    const err = await acquireLock({ stateDir: dir, operation: 'prune' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RefusedError)
    expect((err as RefusedError).message).toContain('pid 999999 on elsewhere')
  })

  it('an unreadable lock file is refused and left alone', async () => {
    await writeFile(lockPath(dir), 'not json')
    const err = await acquireLock({ stateDir: dir, operation: 'prune' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RefusedError)
    expect((err as RefusedError).message).toMatch(/not a shipshape lock/)
    expect(await readFile(lockPath(dir), 'utf8')).toBe('not json')
  })
})

describe('lock parsing', () => {
  it('reads start time (field 22) and state past a comm with spaces and parentheses', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3))
    fields[0] = 'S'
    fields[19] = '123456'
    expect(parseProcStat(`42 (a) b (c) ${fields.join(' ')}`)).toEqual({
      state: 'S',
      startTime: '123456',
    })
    expect(parseProcStat('garbage')).toBeNull()
  })

  it('never trusts a pid ≤ 0 (kill would address a process group)', () => {
    const base = { operation: 'x', since: 't', host: 'h' }
    expect(parseLockInfo(JSON.stringify({ ...base, pid: 0 }))).toBeNull()
    expect(parseLockInfo(JSON.stringify({ ...base, pid: -1 }))).toBeNull()
    expect(parseLockInfo(JSON.stringify({ ...base, pid: 1.5 }))).toBeNull()
    expect(parseLockInfo(JSON.stringify({ ...base, pid: 7 }))).toMatchObject({
      pid: 7,
      startTime: null,
    })
  })
})
