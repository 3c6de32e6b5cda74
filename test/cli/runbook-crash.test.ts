/**
 * The runbook engine across real process deaths (no engine needed): a small script runs three
 * file-writing steps through the BUILT runner (npm test builds first); step 2 waits for a "go"
 * file, so the test can kill the process in the middle of it.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { access, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const dist = (p: string) => path.join(root, 'dist', p)

const SCRIPT = `
import { readFile, rename, rm, writeFile, access } from 'node:fs/promises'
import path from 'node:path'
import { runRunbook } from ${JSON.stringify(pathToFileURL(dist('lib/runbook/runner.js')).href)}
import { createOutput } from ${JSON.stringify(pathToFileURL(dist('lib/cli/output.js')).href)}

const [stateDir, work, sig, ...flags] = process.argv.slice(2)
const f = (n) => path.join(work, n)
const content = (p) => readFile(p, 'utf8').catch(() => null)
const exists = (p) => access(p).then(() => true, () => false)

const steps = [
  {
    id: 'write-a',
    title: 'Write a',
    preview: () => [f('a.txt')],
    run: () => writeFile(f('a.txt'), 'A'),
    verify: async () => (await content(f('a.txt'))) === 'A',
    undo: () => rm(f('a.txt'), { force: true }),
  },
  {
    id: 'write-b',
    title: 'Write b through a part file',
    preview: () => [f('b.txt')],
    async run(_ctx, journal) {
      await journal.note({ part: f('b.part') })
      await writeFile(f('b.part'), 'B')
      await writeFile(path.join(sig, 'step2-started'), String(process.pid))
      while (!(await exists(path.join(sig, 'go')))) await new Promise((r) => setTimeout(r, 20))
      await rename(f('b.part'), f('b.txt'))
    },
    verify: async () => (await content(f('b.txt'))) === 'B',
    async undo(_ctx, journal) {
      const part = journal.data().part
      if (typeof part === 'string') await rm(part, { force: true })
      await rm(f('b.txt'), { force: true })
    },
  },
  {
    id: 'write-c',
    title: 'Write c',
    preview: () => [f('c.txt')],
    run: () => writeFile(f('c.txt'), 'C'),
    verify: async () => (await content(f('c.txt'))) === 'C',
    undo: () => rm(f('c.txt'), { force: true }),
  },
]

try {
  const { summary, failure } = await runRunbook({
    stateDir,
    operation: 'crash-test',
    args: { work },
    out: createOutput(),
    yes: flags.includes('--yes'),
    resume: flags.includes('--resume'),
    rollback: flags.includes('--rollback'),
    steps,
    makeContext: async () => ({ ctx: {} }),
  })
  if (failure) throw failure
  process.stdout.write(JSON.stringify(summary) + '\\n')
} catch (e) {
  process.stderr.write(\`\${e.name}: \${e.message}\${e.remedy ? \` (fix: \${e.remedy})\` : ''}\\n\`)
  process.exitCode = typeof e.exitCode === 'number' ? e.exitCode : 1
}
`

interface Done {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

interface Run {
  child: ChildProcess
  done: Promise<Done>
  stderr(): string
}

let dir: string
let script: string
let stateDir: string
let work: string
let sig: string

beforeAll(async () => {
  const sources = [
    'lib/runbook/runner.ts',
    'lib/runbook/execution.ts',
    'lib/runbook/journal.ts',
    'lib/runbook/render.ts',
    'lib/host/lock.ts',
  ]
  for (const src of sources) {
    const built = dist(src.replace(/\.ts$/, '.js'))
    const [s, b] = await Promise.all([stat(path.join(root, src)), stat(built).catch(() => null)])
    if (!b || b.mtimeMs < s.mtimeMs) throw new Error(`${built} is missing or stale: npm run build`)
  }
})

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ss-crash-'))
  script = path.join(dir, 'crash.mjs')
  stateDir = path.join(dir, 'state')
  work = path.join(dir, 'work')
  sig = path.join(dir, 'sig')
  await Promise.all([writeFile(script, SCRIPT), mkdir(work), mkdir(sig)])
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

function start(...flags: string[]): Run {
  const child = spawn(process.execPath, [script, stateDir, work, sig, ...flags], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const done = new Promise<Done>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
  return { child, done, stderr: () => stderr }
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  )

async function until(what: string, cond: () => Promise<boolean> | boolean, ms = 15_000) {
  const t0 = Date.now()
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Waits until the run is inside step 2 (it wrote its pid there). */
async function inStep2(run: Run): Promise<void> {
  const marker = path.join(sig, 'step2-started')
  await until(`pid ${run.child.pid} in step 2`, async () => {
    return (await readFile(marker, 'utf8').catch(() => '')) === String(run.child.pid)
  })
}

async function workFiles(): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const n of (await readdir(work)).sort()) out[n] = await readFile(path.join(work, n), 'utf8')
  return out
}

async function journal(): Promise<{ t: string; id?: string; outcome?: string }[]> {
  const jdir = path.join(stateDir, 'journal')
  const names = await readdir(jdir)
  expect(names).toHaveLength(1)
  return (await readFile(path.join(jdir, names[0]!), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { t: string; id?: string; outcome?: string })
}

/** A first run killed with SIGKILL in the middle of step 2. */
async function crashInStep2(): Promise<number> {
  const first = start('--yes')
  await inStep2(first)
  first.child.kill('SIGKILL')
  const r = await first.done
  expect(r.signal).toBe('SIGKILL')
  expect(await workFiles()).toEqual({ 'a.txt': 'A', 'b.part': 'B' })
  // the lock is left behind by the dead process; the journal says step 2 began
  const lock = JSON.parse(await readFile(path.join(stateDir, 'shipshape.lock'), 'utf8')) as {
    pid: number
  }
  expect(lock.pid).toBe(first.child.pid)
  const recs = await journal()
  expect(recs.map((r) => r.t + (r.id ? ` ${r.id}` : ''))).toEqual([
    'start',
    'step-begin write-a',
    'step-done write-a',
    'step-begin write-b',
    'step-note write-b',
  ])
  return first.child.pid!
}

describe('runbook across a real crash', { timeout: 60_000 }, () => {
  it('kill -9 in step 2 → a concurrent run is refused (exit 4) → --resume finishes', async () => {
    const deadPid = await crashInStep2()

    // a plain rerun is refused: the journal is unfinished
    const plain = await start('--yes').done
    expect(plain.code).toBe(4)
    expect(plain.stderr).toMatch(/an unfinished crash-test run .* is in .*crash-test-.*\.jsonl/)
    expect(plain.stderr).toMatch(/--resume/)

    await rm(path.join(sig, 'step2-started'))
    const resumer = start('--yes', '--resume')
    await inStep2(resumer)
    expect(resumer.stderr()).toContain(`recovered a stale lock: crash-test (pid ${deadPid})`)

    // while it holds the lock, another run (of any kind) is refused naming the holder
    for (const flags of [
      ['--yes', '--resume'],
      ['--yes', '--rollback'],
    ]) {
      const other = await start(...flags).done
      expect(other.code).toBe(4)
      expect(other.stderr).toContain(
        `RefusedError: another shipshape run holds the lock: crash-test (pid ${resumer.child.pid})`,
      )
    }

    await writeFile(path.join(sig, 'go'), '')
    const r = await resumer.done
    expect(r.code).toBe(0)
    const summary = JSON.parse(r.stdout) as { outcome: string; steps: { status: string }[] }
    expect(summary.outcome).toBe('ok')
    expect(summary.steps.map((s) => s.status)).toEqual(['skipped', 'done', 'done'])
    expect(await workFiles()).toEqual({ 'a.txt': 'A', 'b.txt': 'B', 'c.txt': 'C' })
    expect((await journal()).at(-1)).toMatchObject({ t: 'end', outcome: 'ok' })
    expect(await exists(path.join(stateDir, 'shipshape.lock'))).toBe(false)
  })

  it('kill -9 in step 2 → --rollback undoes everything, the half-done step 2 included', async () => {
    await crashInStep2()
    const r = await start('--yes', '--rollback').done
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(/recovered a stale lock/)
    expect((JSON.parse(r.stdout) as { outcome: string }).outcome).toBe('rolled-back')
    expect(await workFiles()).toEqual({})
    const recs = await journal()
    expect(recs.slice(5).map((x) => x.t + (x.id ? ` ${x.id}` : ''))).toEqual([
      'resume',
      'undo-begin write-b',
      'undo-done write-b',
      'undo-begin write-a',
      'undo-done write-a',
      'end',
    ])
    expect(recs.at(-1)).toMatchObject({ outcome: 'rolled-back' })
    expect(await exists(path.join(stateDir, 'shipshape.lock'))).toBe(false)
    // nothing left to resume
    const again = await start('--yes', '--resume').done
    expect(again.code).toBe(2)
    expect(again.stderr).toMatch(/nothing to resume/)
  })

  it('SIGTERM in step 2: the step finishes, then everything is undone; exit 1; lock released', async () => {
    const run = start('--yes')
    await inStep2(run)
    run.child.kill('SIGTERM')
    await until('the SIGTERM warning', () =>
      /SIGTERM: finishing the current step/.test(run.stderr()),
    )
    await writeFile(path.join(sig, 'go'), '')
    const r = await run.done
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(
      'RolledBackError: crash-test: interrupted by SIGTERM before "Write c"; rolled back',
    )
    expect(await workFiles()).toEqual({})
    expect((await journal()).at(-1)).toMatchObject({ t: 'end', outcome: 'rolled-back' })
    expect(await exists(path.join(stateDir, 'shipshape.lock'))).toBe(false)
  })

  it('a second SIGINT stops at once: lock released, journal left for --resume', async () => {
    const run = start('--yes')
    await inStep2(run)
    run.child.kill('SIGINT')
    await until('the SIGINT warning', () => /SIGINT: finishing the current step/.test(run.stderr()))
    run.child.kill('SIGINT')
    const r = await run.done
    expect(r.signal).toBe('SIGINT')
    expect(await exists(path.join(stateDir, 'shipshape.lock'))).toBe(false)
    expect((await journal()).some((x) => x.t === 'end')).toBe(false)

    await writeFile(path.join(sig, 'go'), '')
    const resumed = await start('--yes', '--resume').done
    expect(resumed.code).toBe(0)
    expect(resumed.stderr).not.toMatch(/stale lock/)
    expect(await workFiles()).toEqual({ 'a.txt': 'A', 'b.txt': 'B', 'c.txt': 'C' })
  })

  it('no terminal and no --yes: exit 4 before anything is written', async () => {
    const r = await start().done
    expect(r.code).toBe(4)
    expect(r.stderr).toContain('RefusedError: confirmation needed: run with --yes')
    expect(await exists(stateDir)).toBe(false)
    expect(await workFiles()).toEqual({})
  })
})
