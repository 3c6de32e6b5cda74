// `shipshape schedule` as a process: the refusal without jobs, a clean stop on SIGTERM while the
// engine is down (the event watcher retries, it does not fail the start), --once's exit code, a
// stop during a job (its child stopped), and a second signal that ends the process at once (its
// lock released).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, runCli } from './run.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ss-schedule-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function config(name: string, lines: string[]): Promise<{ file: string; state: string }> {
  const state = path.join(dir, `${name}-state`)
  const file = path.join(dir, `${name}.yaml`)
  await writeFile(file, [`stateDir: ${JSON.stringify(state)}`, ...lines].join('\n') + '\n')
  return { file, state }
}

/** The first child process of pid (its job's CLI), once it is there. */
async function waitForChild(pid: number, ms = 10_000): Promise<number> {
  const until = Date.now() + ms
  for (;;) {
    for (const name of await readdir('/proc')) {
      if (!/^\d+$/.test(name)) continue
      const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '')
      // "pid (comm) state ppid …": comm may hold spaces and parentheses
      const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]
      if (Number(ppid) === pid) return Number(name)
    }
    if (Date.now() > until) throw new Error(`no child of pid ${pid}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** The CLI as a long-running child whose output is followed line by line. */
function startCli(args: string[]) {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  const waitFor = async (re: RegExp, ms = 10_000) => {
    const until = Date.now() + ms
    while (!re.test(stdout)) {
      if (Date.now() > until || child.exitCode !== null) {
        throw new Error(`no ${re} in stdout:\n${stdout}\nstderr:\n${stderr}`)
      }
      await new Promise((r) => setTimeout(r, 25))
    }
  }
  return { child, exited, waitFor, out: () => stdout, err: () => stderr }
}

describe('shipshape schedule', { timeout: 30_000 }, () => {
  it('no job configured: exit 2 naming the config keys', async () => {
    const { file } = await config('none', [])
    const r = await runCli(['--config', file, 'schedule'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(
      `shipshape: no job is scheduled in ${file}: schedule.report and schedule.prune are both unset`,
    )
    expect(r.stderr).toMatch(/fix: set schedule\.report and\/or schedule\.prune/)
  })

  it('--once with an unknown job: exit 2', async () => {
    const { file } = await config('unknown', [])
    const r = await runCli(['--config', file, 'schedule', '--once', 'backup'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--once: no job 'backup' \(fix: name one of: report, prune, update\)/)
  })

  it('--once report with the engine down: the job’s exit code (3) and one outcome line', async () => {
    const { file, state } = await config('once', [])
    const sock = path.join(dir, 'once-absent.sock')
    const r = await runCli([
      '--config',
      file,
      '--docker-host',
      `unix://${sock}`,
      'schedule',
      '--once',
      'report',
    ])
    expect(r.code).toBe(3)
    const lines = r.stdout.trim().split('\n')
    expect(lines[0]).toBe('report: started')
    expect(lines[1]).toMatch(
      new RegExp(
        `^report: failed \\(exit 3\\) after \\d+\\.\\d s: Docker engine unreachable at unix://${sock}: no such socket \\(fix: .*\\)$`,
      ),
    )
    expect(lines).toHaveLength(2)
    expect(await readdir(state)).not.toContain('shipshape.lock')
  })

  it('SIGTERM stops it cleanly (exit 0) while the engine is down', async () => {
    const { file, state } = await config('term', [
      `docker: { host: ${JSON.stringify(`unix://${path.join(dir, 'term-absent.sock')}`)} }`,
      'schedule: { report: "0 0 1 1 *", timezone: UTC }',
    ])
    const p = startCli(['--config', file, 'schedule'])
    try {
      await p.waitFor(
        /^schedule: started \(pid \d+, config .*\): report "0 0 1 1 \*" \(time zone UTC\)$/m,
      )
      await p.waitFor(
        /^events: engine unreachable \(Docker engine unreachable at .*\); retrying with backoff$/m,
      )
      const t0 = Date.now()
      p.child.kill('SIGTERM')
      const [code, signal] = await p.exited
      expect({ code, signal }, p.out() + p.err()).toEqual({ code: 0, signal: null })
      expect(Date.now() - t0).toBeLessThan(3000)
      expect(p.out()).toMatch(/^schedule: SIGTERM: stopping \(SIGTERM again exits at once\)$/m)
      expect(p.out().trimEnd().split('\n').at(-1)).toBe('schedule: stopped')
      expect(p.err()).toBe('')
      // the engine was never reached: nothing written
      expect(await readdir(state).catch(() => [])).toEqual([])
    } finally {
      p.child.kill('SIGKILL')
    }
  })

  it('a second signal exits at once and leaves no lock behind', async () => {
    // an engine that accepts and never answers: the report job's child waits in its first call
    const sock = path.join(dir, 'mute.sock')
    const held: net.Socket[] = []
    const server = net.createServer((s) => held.push(s))
    await new Promise<void>((res) => server.listen(sock, res))
    const { file, state } = await config('twice', ['docker: { timeout: 60s }'])
    const p = startCli([
      '--config',
      file,
      '--docker-host',
      `unix://${sock}`,
      'schedule',
      '--once',
      'report',
    ])
    let job: number | undefined
    try {
      await p.waitFor(/^report: started$/m)
      expect(await readdir(state), p.out() + p.err()).toContain('shipshape.lock')
      // the job's child, frozen: the first signal's SIGTERM to it stays pending, the stop waits
      job = await waitForChild(p.child.pid!)
      process.kill(job, 'SIGSTOP')
      p.child.kill('SIGINT')
      await p.waitFor(/^schedule: SIGINT: stopping/m)
      const t0 = Date.now()
      p.child.kill('SIGINT')
      const [code, signal] = await p.exited
      expect({ code, signal }, p.out() + p.err()).toEqual({ code: null, signal: 'SIGINT' })
      expect(Date.now() - t0).toBeLessThan(2000)
      expect(await readdir(state), p.out() + p.err()).not.toContain('shipshape.lock')
    } finally {
      p.child.kill('SIGKILL')
      if (job) process.kill(job, 'SIGKILL')
      for (const s of held) s.destroy()
      server.close()
    }
  })

  it('SIGTERM during a job: the job’s child is stopped, exit 1 (the job did not finish)', async () => {
    const sock = path.join(dir, 'mute2.sock')
    const held: net.Socket[] = []
    const server = net.createServer((s) => held.push(s))
    await new Promise<void>((res) => server.listen(sock, res))
    const { file, state } = await config('stop', ['docker: { timeout: 60s }'])
    const p = startCli([
      '--config',
      file,
      '--docker-host',
      `unix://${sock}`,
      'schedule',
      '--once',
      'report',
    ])
    try {
      await p.waitFor(/^report: started$/m)
      const job = await waitForChild(p.child.pid!)
      p.child.kill('SIGTERM')
      const [code] = await p.exited
      expect(code, p.out() + p.err()).toBe(1)
      expect(p.out()).toMatch(/^report: stopped after \d+\.\d s$/m)
      expect(() => process.kill(job, 0)).toThrow() // gone with its group
      expect(await readdir(state)).not.toContain('shipshape.lock')
    } finally {
      p.child.kill('SIGKILL')
      for (const s of held) s.destroy()
      server.close()
    }
  })
})
