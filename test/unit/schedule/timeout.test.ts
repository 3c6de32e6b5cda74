/**
 * schedule.timeout (issue 17): a job's child that hangs is killed as a process group at the
 * timeout (SIGTERM, SIGKILL after the grace), the outcome is one line, the scheduler runs the next
 * job, and the host lock the killed child took is free afterwards. Real children, a real lock in a
 * temp stateDir, node-cron firing every second.
 */
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { assertLockFree, lockPath } from '../../../lib/host/lock.js'
import { cliJob } from '../../../lib/schedule/jobs.js'
import { hostLock, runJob, startScheduler, type Job } from '../../../lib/schedule/scheduler.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function waitFor(what: string, cond: () => boolean, ms = 15_000): Promise<void> {
  const until = Date.now() + ms
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await sleep(25)
  }
}

/** The number in a pid file; 0 before it is written. */
function pidIn(file: string): number {
  try {
    return Number(readFileSync(file, 'utf8').trim()) || 0
  } catch {
    return 0
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * A stuck `shipshape prune` as the scheduler sees it: takes the host lock the way lib/host/lock.ts
 * writes it (its own pid, start time, boot id), starts a grandchild in its process group, writes
 * that pid, ignores SIGTERM and never ends.
 */
function stuckPrune(stateDir: string, pidFile: string): string[] {
  const script = `
const fs = require('fs'), os = require('os'), cp = require('child_process')
const st = fs.readFileSync('/proc/self/stat', 'utf8')
const f = st.slice(st.lastIndexOf(')') + 1).trim().split(/\\s+/)
const g = cp.spawn('sleep', ['600'], { stdio: 'ignore' })
fs.writeFileSync(${JSON.stringify(pidFile)}, String(g.pid))
fs.writeFileSync(${JSON.stringify(lockPath(stateDir))}, JSON.stringify({
  pid: process.pid, startTime: f[19],
  bootId: fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
  operation: 'prune', since: new Date().toISOString(), host: os.hostname(),
}) + '\\n', { mode: 0o600 })
process.on('SIGTERM', () => {})
setInterval(() => {}, 1e6)
`
  return [process.execPath, '-e', script]
}

let tmp: string
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ss-sched-timeout-'))
})
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true })
})

describe('schedule.timeout', () => {
  it('a hung prune child is killed as a group at the timeout, the next job runs, the lock is free', async () => {
    const stateDir = await mkdtemp(path.join(tmp, 'state-'))
    const pidFile = path.join(tmp, 'grandchild.pid')
    const lines: string[] = []
    // the moment the outcome is logged, the killed child's lock is gone already (not left for
    // the next run to recover)
    let lockAtOutcome: boolean | undefined
    const log = (l: string) => {
      if (l.startsWith('prune: timed out')) lockAtOutcome = existsSync(lockPath(stateDir))
      lines.push(l)
    }
    const lock = hostLock(stateDir, (w) => log(`schedule: warning: ${w}`))
    let pruneRuns = 0
    let reportRuns = 0
    const hung = cliJob({
      name: 'prune',
      argv: stuckPrune(stateDir, pidFile),
      log,
      killGraceMs: 500,
    })
    const jobs: Job[] = [
      {
        name: 'prune',
        cron: '* * * * * *',
        lock: 'check',
        timeoutMs: 2000,
        // the first run hangs; later firings end at once
        run: (signal) => (++pruneRuns === 1 ? hung(signal) : Promise.resolve('quick')),
      },
      {
        name: 'report',
        cron: '* * * * * *',
        lock: 'hold',
        timeoutMs: 2000,
        run: async () => {
          reportRuns++
          // it holds the lock itself now: the killed child's lock was recovered
          const held = JSON.parse(await readFile(lockPath(stateDir), 'utf8')) as { pid: number }
          if (held.pid !== process.pid) throw new Error(`lock held by ${held.pid}`)
          return 'measured'
        },
      },
    ]
    const s = startScheduler({ jobs, lock, log })
    let grandchild = 0
    let t0 = 0
    try {
      await waitFor('the prune child to start', () => pruneRuns === 1 && lines.length > 0)
      t0 = Date.now()
      await waitFor('the grandchild', () => {
        grandchild = pidIn(pidFile)
        return grandchild > 0
      })
      await waitFor('the timeout line', () => lines.some((l) => l.startsWith('prune: timed out')))
      const killedAfter = Date.now() - t0
      // 2 s timeout + 0.5 s grace: well under 6 s (unbounded, it would never come)
      expect(killedAfter).toBeLessThan(6000)
      await waitFor('a report run after the timeout', () =>
        lines
          .slice(lines.findIndex((l) => l.startsWith('prune: timed out')))
          .some((l) => l.startsWith('report: ok')),
      )
    } finally {
      await s.stop()
      if (grandchild > 0 && alive(grandchild)) process.kill(grandchild, 'SIGKILL')
    }
    expect(lines).toContain('prune: timed out after 2s: killed')
    expect(lockAtOutcome).toBe(false)
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^schedule: warning: recovered a stale lock: prune \(pid \d+\) since .* \(pid \d+ is gone\)$/,
      ),
    )
    expect(lines).toContainEqual(expect.stringMatching(/^report: ok in .*: measured$/))
    expect(reportRuns).toBeGreaterThan(0)
    // the whole group went: the grandchild too (it got the SIGTERM its parent ignored)
    expect(alive(grandchild)).toBe(false)
    // the lock is free: nothing left in stateDir, and a new run is not refused
    await expect(assertLockFree(stateDir)).resolves.toBeUndefined()
    expect(await readdir(stateDir)).toEqual([])
  }, 30_000)

  it('a job that does not end after the abort is left behind: the outcome comes anyway', async () => {
    const lines: string[] = []
    const stateDir = await mkdtemp(path.join(tmp, 'state-'))
    const t0 = Date.now()
    const outcome = await runJob(
      {
        name: 'report',
        cron: '* * * * *',
        lock: 'hold',
        timeoutMs: 300,
        run: () => new Promise(() => {}), // deaf to its signal, like a child stuck past SIGKILL
      },
      {
        lock: hostLock(stateDir),
        log: (l) => lines.push(l),
        signal: new AbortController().signal,
        killWaitMs: 200,
      },
    )
    expect(Date.now() - t0).toBeLessThan(3000)
    expect(outcome).toMatchObject({ job: 'report', status: 'timed-out', exitCode: 1 })
    expect(lines.at(-1)).toBe(
      'report: timed out after 300ms: killed, but it has not ended 0.2 s later: left behind',
    )
    // the lock the scheduler held for it is released
    expect(await readdir(stateDir)).toEqual([])
  })

  it('a job that ends in time is untouched by the timeout; stop() is still "stopped"', async () => {
    const lines: string[] = []
    const stateDir = await mkdtemp(path.join(tmp, 'state-'))
    const quick = await runJob(
      { name: 'report', cron: '* * * * *', timeoutMs: 5000, run: () => sleep(50).then(() => 'x') },
      { lock: hostLock(stateDir), log: (l) => lines.push(l), signal: new AbortController().signal },
    )
    expect(quick.status).toBe('ok')
    const c = new AbortController()
    const stopped = runJob(
      {
        name: 'prune',
        cron: '* * * * *',
        timeoutMs: 5000,
        run: (signal) =>
          new Promise((_, reject) =>
            signal.addEventListener('abort', () => reject(signal.reason as Error)),
          ),
      },
      { lock: hostLock(stateDir), log: (l) => lines.push(l), signal: c.signal },
    )
    await sleep(50)
    c.abort(new Error('the scheduler is stopping'))
    expect((await stopped).status).toBe('stopped')
    expect(lines.filter((l) => l.includes('timed out'))).toEqual([])
  })
})
