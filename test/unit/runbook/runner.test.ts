import { PassThrough } from 'node:stream'
import { access, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Output } from '../../../lib/cli/output.js'
import {
  ExitCode,
  NeedsPersonError,
  RefusedError,
  RolledBackError,
  UsageError,
} from '../../../lib/errors.js'
import { acquireLock, lockPath } from '../../../lib/host/lock.js'
import { ttyConfirm } from '../../../lib/runbook/confirm.js'
import {
  findUnfinishedJournals,
  journalDir,
  JournalWriter,
  readJournal,
  type JournalRecord,
} from '../../../lib/runbook/journal.js'
import {
  runMode,
  runRunbook as runSpec,
  RunbookNeedsPersonError,
  RunbookRolledBackError,
  type RunOptions,
} from '../../../lib/runbook/runner.js'
import type { RunSummary, Step } from '../../../lib/runbook/types.js'

/** The runner as a command uses it: the context made once, a failure thrown by the caller. */
async function runRunbook<C>(steps: Step<C>[], c: C, o: RunOptions): Promise<RunSummary> {
  const r = await runSpec({ ...o, steps, makeContext: () => Promise.resolve({ ctx: c }) })
  if ('stopped' in r) throw new Error('stopped')
  if (r.failure) throw r.failure
  return r.summary
}

interface Ctx {
  work: string
  events: string[]
  /** step ids whose run / undo throw */
  failRun: Set<string>
  failUndo: Set<string>
  /** step ids whose verify says false */
  unverified: Set<string>
}

interface MemOut extends Output {
  lines: string[]
  warnings: string[]
}

function memOut(): MemOut {
  const lines: string[] = []
  const warnings: string[] = []
  return {
    json: false,
    quiet: false,
    interactive: false,
    lines,
    warnings,
    info: (l) => lines.push(l),
    warn: (l) => warnings.push(l),
    human: (t) => lines.push(...t.split('\n')),
    data: () => {},
    spinner: () => ({ update() {}, succeed() {}, fail() {}, stop() {} }),
  }
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  )

/** Writes <work>/<id>.txt; undo removes it if present (checks real state first). */
function fileStep(id: string, title = `Write ${id}`): Step<Ctx> {
  const file = (c: Ctx) => path.join(c.work, `${id}.txt`)
  return {
    id,
    title,
    preview: (c) => [`writes ${file(c)}`],
    async run(c) {
      c.events.push(`run:${id}`)
      await writeFile(file(c), id)
      if (c.failRun.has(id)) throw new Error(`${id} broke`)
    },
    async verify(c) {
      c.events.push(`verify:${id}`)
      if (c.unverified.has(id)) return false
      return (await readFile(file(c), 'utf8').catch(() => '')) === id
    },
    async undo(c) {
      c.events.push(`undo:${id}`)
      if (c.failUndo.has(id)) throw new Error(`cannot undo ${id}`)
      await rm(file(c), { force: true })
    },
  }
}

/**
 * Copies via a part file the way a real copy step would: notes the part file first, so that a
 * re-run after a crash and the undo both know where it is.
 */
const copyStep: Step<Ctx> = {
  id: 'copy',
  title: 'Copy the data',
  preview: (c) => [`${c.work}/src → ${c.work}/dst`],
  async run(c, j) {
    c.events.push(`run:copy seen=${JSON.stringify(j.data())}`)
    const part = path.join(c.work, 'dst.part')
    if (!j.data().part) await j.note({ part })
    if (!(await exists(part))) await writeFile(part, 'DATA')
    await rename(part, path.join(c.work, 'dst'))
  },
  async verify(c) {
    return (await readFile(path.join(c.work, 'dst'), 'utf8').catch(() => '')) === 'DATA'
  },
  async undo(c, j) {
    c.events.push(`undo:copy seen=${JSON.stringify(j.data())}`)
    const part = j.data().part
    if (typeof part === 'string') await rm(part, { force: true })
    await rm(path.join(c.work, 'dst'), { force: true })
  },
}

let root: string
let stateDir: string
let ctx: Ctx
let out: MemOut
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'ss-runbook-'))
  stateDir = path.join(root, 'state')
  const work = path.join(root, 'work')
  await mkdir(work)
  ctx = {
    work,
    events: [],
    failRun: new Set(),
    failUndo: new Set(),
    unverified: new Set(),
  }
  out = memOut()
})
afterEach(async () => {
  await rm(root, { recursive: true, force: true })
})

const opts = (more: Partial<RunOptions> = {}): RunOptions => ({
  stateDir,
  operation: 'migrate-assets',
  args: { asset: 'music' },
  out,
  yes: true,
  now: () => new Date('2026-03-04T05:06:07.089Z'),
  ...more,
})

async function records(file: string): Promise<JournalRecord[]> {
  return (await readFile(file, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as JournalRecord)
}
const brief = (r: JournalRecord) => ('id' in r ? `${r.t} ${r.id}` : r.t)

const three = () => [fileStep('a'), fileStep('b'), fileStep('c')]

async function files(): Promise<string[]> {
  return (await readdir(ctx.work)).sort()
}

/** A journal left by a run killed during `copy`, after step a was done. */
async function crashedJournal(): Promise<string> {
  const w = await JournalWriter.create(stateDir, {
    operation: 'migrate-assets',
    args: { asset: 'music' },
    host: os.hostname(),
    pid: 999_999,
    at: '2026-03-01T00:00:00.000Z',
    steps: [],
  })
  const at = '2026-03-01T00:00:01.000Z'
  await w.append({ t: 'step-begin', id: 'a', at })
  await w.append({ t: 'step-note', id: 'a', data: { backup: '/backups/a.tgz' }, at })
  await w.append({ t: 'step-done', id: 'a', at })
  await w.append({ t: 'step-begin', id: 'copy', at })
  await w.append({
    t: 'step-note',
    id: 'copy',
    data: { part: path.join(ctx.work, 'dst.part') },
    at,
  })
  await w.close()
  await writeFile(path.join(ctx.work, 'a.txt'), 'a')
  await writeFile(path.join(ctx.work, 'dst.part'), 'DATA')
  return w.file
}

describe('runRunbook: a run', () => {
  it('runs every step in order, journals each, releases the lock', async () => {
    const summary = await runRunbook(
      three(),
      ctx,
      opts({ args: { asset: 'music', password: 'x' } }),
    )
    expect(summary.outcome).toBe('ok')
    expect(summary.steps.map((s) => [s.id, s.status])).toEqual([
      ['a', 'done'],
      ['b', 'done'],
      ['c', 'done'],
    ])
    expect(summary.steps.every((s) => typeof s.ms === 'number')).toBe(true)
    expect(await files()).toEqual(['a.txt', 'b.txt', 'c.txt'])
    expect(ctx.events).toEqual(['run:a', 'verify:a', 'run:b', 'verify:b', 'run:c', 'verify:c'])
    expect(path.basename(summary.journal!)).toMatch(
      new RegExp(`^migrate-assets-20260304T050607089Z-${process.pid}\\.jsonl$`),
    )
    const recs = await records(summary.journal!)
    expect(recs.map(brief)).toEqual([
      'start',
      'step-begin a',
      'step-done a',
      'step-begin b',
      'step-done b',
      'step-begin c',
      'step-done c',
      'end',
    ])
    expect(recs[0]).toMatchObject({
      t: 'start',
      operation: 'migrate-assets',
      args: { asset: 'music', password: '[redacted]' },
      host: os.hostname(),
      pid: process.pid,
      at: '2026-03-04T05:06:07.089Z',
      steps: [
        { id: 'a', title: 'Write a' },
        { id: 'b', title: 'Write b' },
        { id: 'c', title: 'Write c' },
      ],
    })
    expect(recs.at(-1)).toMatchObject({ t: 'end', outcome: 'ok' })
    expect(await exists(lockPath(stateDir))).toBe(false)
    expect(await findUnfinishedJournals(stateDir, 'migrate-assets')).toEqual([])
    // plan, then one line per step, then the summary
    expect(out.lines).toContain('  2. Write b')
    expect(out.lines).toContain('[2/3] Write b')
    expect(out.lines.some((l) => /^migrate-assets: ok \(journal .*\)$/.test(l))).toBe(true)
  })

  it('the step-begin record is on disk before the step starts, undo-begin before its undo', async () => {
    const seen: string[] = []
    const lastRecord = async () => {
      const [j] = await readdir(journalDir(stateDir))
      return brief((await records(path.join(journalDir(stateDir), j!))).at(-1)!)
    }
    const probe = (id: string): Step<Ctx> => ({
      id,
      title: id,
      preview: () => [],
      run: async () => {
        seen.push(await lastRecord())
        if (id === 'y') throw new Error('no')
      },
      undo: async () => {
        seen.push(await lastRecord())
      },
    })
    await expect(runRunbook([probe('x'), probe('y')], ctx, opts())).rejects.toThrow()
    expect(seen).toEqual(['step-begin x', 'step-begin y', 'undo-begin y', 'undo-begin x'])
  })

  it('a failure in step 3 undoes 3 (it may have half-happened), then 2 and 1; exit 1', async () => {
    ctx.failRun.add('c')
    const err = await runRunbook(three(), ctx, opts()).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RolledBackError)
    expect(err).toBeInstanceOf(RunbookRolledBackError)
    const e = err as RunbookRolledBackError
    expect(e.exitCode).toBe(ExitCode.rolledBack)
    expect(e.message).toBe('migrate-assets: "Write c" failed: c broke; rolled back')
    expect((e.cause as Error).message).toBe('c broke')
    expect(ctx.events).toEqual([
      'run:a',
      'verify:a',
      'run:b',
      'verify:b',
      'run:c',
      'undo:c',
      'undo:b',
      'undo:a',
    ])
    expect(await files()).toEqual([])
    expect(e.summary.outcome).toBe('rolled-back')
    expect(e.summary.steps.map((s) => s.status)).toEqual(['undone', 'undone', 'failed'])
    expect(e.summary.steps[2]?.error).toBe('c broke')
    const recs = await records(e.summary.journal!)
    expect(recs.slice(5).map(brief)).toEqual([
      'step-begin c',
      'step-failed c',
      'undo-begin c',
      'undo-done c',
      'undo-begin b',
      'undo-done b',
      'undo-begin a',
      'undo-done a',
      'end',
    ])
    expect(recs.at(-1)).toMatchObject({ outcome: 'rolled-back' })
    expect(await exists(lockPath(stateDir))).toBe(false)
    expect(await findUnfinishedJournals(stateDir, 'migrate-assets')).toEqual([])
  })

  it('a failing step without undo: only the finished ones, 2 then 1, are undone', async () => {
    const steps = three()
    delete steps[2]!.undo
    ctx.failRun.add('c')
    await expect(runRunbook(steps, ctx, opts())).rejects.toBeInstanceOf(RolledBackError)
    expect(ctx.events.filter((e) => e.startsWith('undo'))).toEqual(['undo:b', 'undo:a'])
  })

  it('verify() false after run is a failure', async () => {
    ctx.unverified.add('b')
    const err = (await runRunbook(three(), ctx, opts()).catch((e: unknown) => e)) as Error
    expect(err).toBeInstanceOf(RolledBackError)
    expect(err.message).toMatch(/"Write b" failed: it did not take effect/)
    expect(ctx.events).not.toContain('run:c')
    expect(await files()).toEqual([])
  })

  it('a failing undo: exit 5 naming the journal; the rollback stops there; --rollback finishes later', async () => {
    ctx.failRun.add('c')
    ctx.failUndo.add('b')
    const err = await runRunbook(three(), ctx, opts()).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(NeedsPersonError)
    const e = err as RunbookNeedsPersonError
    expect(e.exitCode).toBe(ExitCode.needsPerson)
    // the original error leads; the undo error follows
    expect(e.message).toBe(
      'migrate-assets: "Write c" failed: c broke; undoing "Write b" failed too: cannot undo b',
    )
    expect(e.remedy).toContain(e.summary.journal!)
    expect(e.remedy).toMatch(/--rollback/)
    expect(e.remedy).toMatch(/--resume/)
    // a's undo did not run: it may hold what a person needs
    expect(ctx.events.filter((x) => x.startsWith('undo'))).toEqual(['undo:c', 'undo:b'])
    expect(await files()).toEqual(['a.txt', 'b.txt'])
    expect(e.summary.steps.map((s) => s.status)).toEqual(['done', 'undo-failed', 'failed'])
    expect((await records(e.summary.journal!)).at(-1)).toMatchObject({ outcome: 'needs-person' })
    expect(await exists(lockPath(stateDir))).toBe(false)

    // still unfinished: a new run is refused, --rollback (once fixed) finishes the undo
    const [open] = await findUnfinishedJournals(stateDir, 'migrate-assets')
    expect(open?.file).toBe(e.summary.journal)
    await expect(runRunbook(three(), ctx, opts())).rejects.toBeInstanceOf(RefusedError)
    ctx.failUndo.clear()
    ctx.events.length = 0
    const summary = await runRunbook(three(), ctx, opts({ rollback: true }))
    expect(summary.outcome).toBe('rolled-back')
    expect(summary.journal).toBe(e.summary.journal)
    expect(ctx.events).toEqual(['undo:b', 'undo:a'])
    expect(await files()).toEqual([])
    expect(await findUnfinishedJournals(stateDir, 'migrate-assets')).toEqual([])
  })

  it('a held lock refuses the run (exit 4) before asking or writing anything', async () => {
    const lock = await acquireLock({ stateDir, operation: 'prune' })
    try {
      let asked = false
      const err = (await runRunbook(
        three(),
        ctx,
        opts({ yes: false, confirm: async () => (asked = true) }),
      ).catch((e: unknown) => e)) as RefusedError
      expect(err).toBeInstanceOf(RefusedError)
      expect(err.exitCode).toBe(ExitCode.refused)
      expect(err.message).toContain(`prune (pid ${process.pid})`)
      expect(asked).toBe(false)
      expect(ctx.events).toEqual([])
      expect(await exists(journalDir(stateDir))).toBe(false)
    } finally {
      await lock.release()
    }
  })

  it('bad step lists and flags are refused up front', async () => {
    await expect(runRunbook([fileStep('a'), fileStep('a')], ctx, opts())).rejects.toThrow(/unique/)
    const both = await runRunbook(three(), ctx, opts({ resume: true, rollback: true })).catch(
      (e: unknown) => e,
    )
    expect(both).toBeInstanceOf(UsageError)
    expect(ctx.events).toEqual([])
  })
})

describe('runRunbook: dry-run and confirmation', () => {
  it('dry-run prints the plan and touches nothing: no lock, no journal, no stateDir', async () => {
    const summary = await runRunbook(three(), ctx, opts({ dryRun: true, yes: false }))
    expect(summary).toEqual({
      operation: 'migrate-assets',
      outcome: 'dry-run',
      journal: null,
      steps: ['a', 'b', 'c'].map((id) => ({
        id,
        title: `Write ${id}`,
        status: 'pending',
        preview: [`writes ${path.join(ctx.work, `${id}.txt`)}`],
      })),
    })
    expect(ctx.events).toEqual([])
    expect(await files()).toEqual([])
    expect(await exists(stateDir)).toBe(false)
    expect(out.lines).toEqual([
      'migrate-assets: 3 steps',
      '  1. Write a',
      `       writes ${path.join(ctx.work, 'a.txt')}`,
      '  2. Write b',
      `       writes ${path.join(ctx.work, 'b.txt')}`,
      '  3. Write c',
      `       writes ${path.join(ctx.work, 'c.txt')}`,
    ])
  })

  it('dry-run while the lock is held still shows the plan, with a warning', async () => {
    const lock = await acquireLock({ stateDir, operation: 'prune' })
    try {
      const summary = await runRunbook(three(), ctx, opts({ dryRun: true }))
      expect(summary.outcome).toBe('dry-run')
      expect(out.warnings.join('\n')).toMatch(/a real run would be refused now: another shipshape/)
    } finally {
      await lock.release()
    }
  })

  it('asks before running; a no is "cancelled" with nothing changed', async () => {
    const questions: string[] = []
    const summary = await runRunbook(
      three(),
      ctx,
      opts({
        yes: false,
        confirm: async (q) => {
          questions.push(q)
          return false
        },
      }),
    )
    expect(questions).toEqual(['Run migrate-assets (3 steps)?'])
    expect(summary.outcome).toBe('cancelled')
    expect(summary.journal).toBeNull()
    expect(ctx.events).toEqual([])
    expect(await exists(stateDir)).toBe(false)
  })

  it('a yes runs it; --yes does not ask', async () => {
    let asked = 0
    const confirm = async () => {
      asked++
      return true
    }
    expect((await runRunbook(three(), ctx, opts({ yes: false, confirm }))).outcome).toBe('ok')
    expect(asked).toBe(1)
    await rm(stateDir, { recursive: true })
    expect((await runRunbook(three(), ctx, opts({ yes: true, confirm }))).outcome).toBe('ok')
    expect(asked).toBe(1)
  })

  it('no terminal and no --yes: refused (exit 4), nothing changed', async () => {
    const input = Object.assign(new PassThrough(), { isTTY: false })
    const err = (await runRunbook(
      three(),
      ctx,
      opts({ yes: false, confirm: (q) => ttyConfirm(q, { input, output: new PassThrough() }) }),
    ).catch((e: unknown) => e)) as RefusedError
    expect(err).toBeInstanceOf(RefusedError)
    expect(err.exitCode).toBe(ExitCode.refused)
    expect(err.message).toBe('confirmation needed: run with --yes')
    expect(ctx.events).toEqual([])
    expect(await exists(stateDir)).toBe(false)
  })

  it('ttyConfirm reads y/N from a terminal; end of input is a no', async () => {
    const tty = () => Object.assign(new PassThrough(), { isTTY: true })
    const input = tty()
    const output = new PassThrough()
    const yes = ttyConfirm('Go?', { input, output })
    input.write('y\n')
    expect(await yes).toBe(true)
    const input2 = tty()
    const no = ttyConfirm('Go?', { input: input2, output })
    input2.write('\n')
    expect(await no).toBe(false)
    const input3 = tty()
    const eof = ttyConfirm('Go?', { input: input3, output })
    input3.end()
    expect(await eof).toBe(false)
  })
})

describe('runRunbook: after a crash', () => {
  it('a new run is refused while an unfinished journal exists; other args are another run', async () => {
    const file = await crashedJournal()
    const err = (await runRunbook([fileStep('a'), copyStep], ctx, opts()).catch(
      (e: unknown) => e,
    )) as RefusedError
    expect(err).toBeInstanceOf(RefusedError)
    expect(err.message).toContain(file)
    expect(err.remedy).toMatch(/--resume.*--rollback/)
    expect(ctx.events).toEqual([])
    const other = await runRunbook([fileStep('z')], ctx, opts({ args: { asset: 'photos' } }))
    expect(other.outcome).toBe('ok')
  })

  it('takeOverUnfinished: a new run finishes the unfinished one (its steps again), not refused', async () => {
    const file = await crashedJournal()
    const priors: (string | undefined)[] = []
    const r = await runSpec({
      ...opts({ takeOverUnfinished: true, showPlan: false }),
      steps: [fileStep('a'), copyStep],
      makeContext: (prior) => {
        priors.push(prior?.file)
        return Promise.resolve({ ctx })
      },
    })
    if ('stopped' in r) throw new Error('stopped')
    expect(r.failure).toBeUndefined()
    // the journal it took over is the one closed: one journal, ended, the crashed step run again
    expect(priors).toEqual([file])
    expect(r.summary.journal).toBe(file)
    expect(r.summary.steps.map((s) => s.status)).toEqual(['skipped', 'done'])
    expect((await records(file)).map(brief).slice(-2)).toEqual(['step-done copy', 'end'])
    expect(await findUnfinishedJournals(stateDir, 'migrate-assets')).toEqual([])
    expect(out.warnings.join('\n')).toContain(`${file}) is finished by this one`)
    // showPlan: false — the command shows its own plan: no step list from the runner
    expect(out.lines.join('\n')).not.toMatch(/Resume migrate-assets/)
  })

  it('--resume skips verified done steps and re-runs the interrupted one with its notes', async () => {
    const file = await crashedJournal()
    const summary = await runRunbook(
      [fileStep('a'), copyStep, fileStep('c')],
      ctx,
      opts({ resume: true }),
    )
    expect(summary.outcome).toBe('ok')
    expect(summary.journal).toBe(file)
    expect(summary.steps.map((s) => s.status)).toEqual(['skipped', 'done', 'done'])
    // a was only verified; copy saw the note from before the crash and finished the job
    expect(ctx.events).toEqual([
      'verify:a',
      `run:copy seen={"part":"${path.join(ctx.work, 'dst.part')}"}`,
      'run:c',
      'verify:c',
    ])
    expect(await files()).toEqual(['a.txt', 'c.txt', 'dst'])
    expect(await readFile(path.join(ctx.work, 'dst'), 'utf8')).toBe('DATA')
    const recs = await records(file)
    expect(recs.slice(6).map(brief)).toEqual([
      'resume',
      'step-begin copy',
      'step-done copy',
      'step-begin c',
      'step-done c',
      'end',
    ])
    expect(recs[6]).toMatchObject({ t: 'resume', mode: 'resume', pid: process.pid })
    expect(await findUnfinishedJournals(stateDir, 'migrate-assets')).toEqual([])
    expect(out.lines[0]).toMatch(/^Resume migrate-assets \(journal .*\): 2 of 3 steps left$/)
  })

  it('--resume runs a "done" step again when it does not check out', async () => {
    await crashedJournal()
    await rm(path.join(ctx.work, 'a.txt'))
    const summary = await runRunbook([fileStep('a'), copyStep], ctx, opts({ resume: true }))
    expect(summary.steps.map((s) => s.status)).toEqual(['done', 'done'])
    expect(ctx.events.slice(0, 3)).toEqual(['verify:a', 'run:a', 'verify:a'])
    expect(out.warnings.join('\n')).toMatch(
      /Write a: the journal says done but it does not check out/,
    )
    expect(await files()).toEqual(['a.txt', 'dst'])
  })

  it('--resume: once a step runs again, the later "done" steps run again too', async () => {
    const w = await JournalWriter.create(stateDir, {
      operation: 'migrate-assets',
      args: { asset: 'music' },
      host: os.hostname(),
      pid: 999_999,
      at: '2026-03-01T00:00:00.000Z',
      steps: [],
    })
    const at = '2026-03-01T00:00:01.000Z'
    for (const id of ['a', 'b']) {
      await w.append({ t: 'step-begin', id, at })
      await w.append({ t: 'step-done', id, at })
    }
    await w.close()
    // a's work is gone (verify says no), b's is still there (verify would say yes)
    await writeFile(path.join(ctx.work, 'b.txt'), 'b')
    const summary = await runRunbook([fileStep('a'), fileStep('b')], ctx, opts({ resume: true }))
    expect(summary.steps.map((s) => s.status)).toEqual(['done', 'done'])
    expect(ctx.events).toEqual(['verify:a', 'run:a', 'verify:a', 'run:b', 'verify:b'])
  })

  it('an idempotent step re-run after its work was done but not journaled ends right', async () => {
    await crashedJournal()
    // killed after copy's rename, before its step-done record
    await rename(path.join(ctx.work, 'dst.part'), path.join(ctx.work, 'dst'))
    const summary = await runRunbook(
      [fileStep('a'), copyStep, fileStep('c')],
      ctx,
      opts({ resume: true }),
    )
    expect(summary.steps.map((s) => s.status)).toEqual(['skipped', 'done', 'done'])
    expect(await files()).toEqual(['a.txt', 'c.txt', 'dst'])
    expect(await readFile(path.join(ctx.work, 'dst'), 'utf8')).toBe('DATA')
  })

  it('--rollback undoes from the journal, the interrupted step first, with the notes', async () => {
    const file = await crashedJournal()
    const seenByUndo: unknown[] = []
    const a = fileStep('a')
    const undoA = a.undo!
    a.undo = async (c, j) => {
      seenByUndo.push(j.data())
      await undoA(c, j)
    }
    const summary = await runRunbook([a, copyStep, fileStep('c')], ctx, opts({ rollback: true }))
    expect(summary.outcome).toBe('rolled-back')
    expect(summary.journal).toBe(file)
    expect(summary.steps.map((s) => s.status)).toEqual(['undone', 'undone', 'pending'])
    expect(ctx.events).toEqual([
      `undo:copy seen={"part":"${path.join(ctx.work, 'dst.part')}"}`,
      'undo:a',
    ])
    expect(seenByUndo).toEqual([{ backup: '/backups/a.tgz' }])
    expect(await files()).toEqual([])
    const recs = await records(file)
    expect(recs.slice(6).map(brief)).toEqual([
      'resume',
      'undo-begin copy',
      'undo-done copy',
      'undo-begin a',
      'undo-done a',
      'end',
    ])
    expect(recs.at(-1)).toMatchObject({ outcome: 'rolled-back' })
    expect(out.lines[0]).toMatch(/^Roll back migrate-assets \(journal .*\): 2 steps to undo$/)
    expect(out.lines[1]).toBe('  1. Undo: Copy the data (begun)')
  })

  it('notes written by one runner are seen by the undo in the next (same journal)', async () => {
    const backup: Step<Ctx> = {
      id: 'backup',
      title: 'Back up',
      preview: () => [],
      async run(c, j) {
        const p = path.join(c.work, 'backup.tgz')
        await j.note({ path: p }) // before the side effect it describes
        await writeFile(p, 'x')
      },
      async undo(c, j) {
        c.events.push(`undo:backup ${JSON.stringify(j.data())}`)
        if (c.failUndo.has('backup')) throw new Error('disk busy')
        await rm(String(j.data().path), { force: true })
      },
    }
    ctx.failRun.add('b')
    ctx.failUndo.add('backup')
    await expect(runRunbook([backup, fileStep('b')], ctx, opts())).rejects.toBeInstanceOf(
      NeedsPersonError,
    )
    ctx.failUndo.clear()
    ctx.events.length = 0
    // a fresh in-memory runner, only the journal on disk links the two
    await runRunbook([backup, fileStep('b')], ctx, opts({ rollback: true }))
    expect(ctx.events).toEqual([`undo:backup {"path":"${path.join(ctx.work, 'backup.tgz')}"}`])
    expect(await files()).toEqual([])
  })

  it('nothing to resume or roll back: usage error (exit 2) naming the journal directory', async () => {
    for (const flag of [{ resume: true }, { rollback: true }]) {
      const err = (await runRunbook(three(), ctx, opts(flag)).catch(
        (e: unknown) => e,
      )) as UsageError
      expect(err).toBeInstanceOf(UsageError)
      expect(err.exitCode).toBe(ExitCode.usage)
      expect(err.message).toMatch(/^nothing to (resume|roll back): no unfinished migrate-assets/)
      expect(err.message).toContain(journalDir(stateDir))
    }
    await crashedJournal()
    const err = (await runRunbook(
      three(),
      ctx,
      opts({ resume: true, args: { asset: 'photos' } }),
    ).catch((e: unknown) => e)) as UsageError
    expect(err).toBeInstanceOf(UsageError)
    expect(err.remedy).toMatch(/other arguments/)
  })

  it('a journal with steps this runbook does not know is refused (exit 4)', async () => {
    await crashedJournal()
    const err = (await runRunbook([fileStep('a')], ctx, opts({ rollback: true })).catch(
      (e: unknown) => e,
    )) as RefusedError
    expect(err).toBeInstanceOf(RefusedError)
    expect(err.message).toMatch(/does not know: copy/)
    expect(ctx.events).toEqual([])
  })

  it('dry-run --resume shows what is left and writes nothing', async () => {
    const file = await crashedJournal()
    const before = await readFile(file, 'utf8')
    const summary = await runRunbook(
      [fileStep('a'), copyStep, fileStep('c')],
      ctx,
      opts({ resume: true, dryRun: true }),
    )
    expect(summary.outcome).toBe('dry-run')
    expect(out.lines.filter((l) => /^ {2}\d\./.test(l))).toEqual([
      '  1. Write a (done before: skipped if it checks out)',
      '  2. Copy the data (interrupted before: runs again)',
      '  3. Write c',
    ])
    expect(await readFile(file, 'utf8')).toBe(before)
    expect(ctx.events).toEqual([])
    expect(await exists(lockPath(stateDir))).toBe(false)
    const journals = await readJournal(file)
    expect(journals.steps.get('copy')?.status).toBe('begun')
  })
})

describe('runRunbook: the run it owns (makeContext, blockers, stop)', () => {
  const spec = (more: Partial<RunOptions> = {}) => ({
    ...opts(more),
    blockedBy: ['migrate-assets-revert'],
    target: 'music',
    command: (op: string) => `shipshape ${op} music`,
    steps: three(),
  })

  it('makeContext gets the unfinished run --resume continues; a new run gets none', async () => {
    const priors: (string | undefined)[] = []
    const made = (p: { file: string } | undefined) => {
      priors.push(p?.file)
      return Promise.resolve({ ctx })
    }
    const steps = [fileStep('a'), copyStep]
    const first = await runSpec({ ...spec(), steps, makeContext: made })
    expect('summary' in first && first.summary.outcome).toBe('ok')
    const file = await crashedJournal()
    const resumed = await runSpec({ ...spec({ resume: true }), steps, makeContext: made })
    expect('summary' in resumed && resumed.summary.outcome).toBe('ok')
    expect(priors).toEqual([undefined, file])
  })

  it('an unfinished run of a blocking operation on the same target refuses; dry-run warns', async () => {
    const w = await JournalWriter.create(stateDir, {
      operation: 'migrate-assets-revert',
      args: { asset: 'music' },
      host: 'h',
      pid: 4242,
      at: '2026-03-01T00:00:00.000Z',
      steps: [],
    })
    await w.close()
    let made = 0
    const makeContext = () => {
      made++
      return Promise.resolve({ ctx })
    }
    const err = (await runSpec({ ...spec(), makeContext }).catch((e: unknown) => e)) as RefusedError
    expect(err).toBeInstanceOf(RefusedError)
    expect(err.message).toContain('an unfinished migrate-assets-revert run of music')
    expect(err.remedy).toContain('shipshape migrate-assets-revert music --resume')
    expect(made).toBe(0)
    // another target is not blocked
    const other = await runSpec({ ...spec({ args: { asset: 'photos' } }), makeContext })
    expect('summary' in other && other.summary.outcome).toBe('ok')
    const dry = await runSpec({ ...spec({ dryRun: true }), makeContext })
    expect('summary' in dry && dry.summary.outcome).toBe('dry-run')
    expect(out.warnings.join('\n')).toContain('a real run would be refused now')
  })

  it('makeContext may stop with its own result: no plan, no lock, no journal', async () => {
    const r = await runSpec({
      ...spec(),
      makeContext: () => Promise.resolve({ stop: 'up-to-date' }),
    })
    expect(r).toEqual({ stopped: 'up-to-date' })
    expect(await exists(journalDir(stateDir))).toBe(false)
    expect(ctx.events).toEqual([])
  })

  it('a failure comes back beside the summary, not thrown', async () => {
    ctx.failRun.add('b')
    const r = await runSpec({ ...spec(), makeContext: () => Promise.resolve({ ctx }) })
    if ('stopped' in r) throw new Error('stopped')
    expect(r.failure).toBeInstanceOf(RunbookRolledBackError)
    expect(r.summary.outcome).toBe('rolled-back')
    expect(r.ctx).toBe(ctx)
  })

  it('--resume with --rollback is refused in one place, before anything is read', async () => {
    expect(() => runMode({ resume: true, rollback: true })).toThrow(UsageError)
    expect(runMode({ rollback: true })).toBe('rollback')
  })
})
