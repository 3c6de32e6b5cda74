import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  findUnfinishedJournals,
  isUnfinished,
  journalDir,
  journalFileName,
  JournalWriter,
  parseJournal,
  readJournal,
  type JournalRecord,
} from '../../../lib/runbook/journal.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ss-journal-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

const AT = '2026-03-04T05:06:07.089Z'
const start = (operation = 'migrate-assets', at = AT, pid = 4242) => ({
  operation,
  args: { asset: 'music' },
  host: 'h',
  pid,
  at,
  steps: [
    { id: 'a', title: 'A' },
    { id: 'b', title: 'B' },
  ],
})
const lines = (recs: object[]) => recs.map((r) => JSON.stringify(r)).join('\n') + '\n'

describe('journal', () => {
  it('names files <operation>-<UTC stamp>-<pid>.jsonl', () => {
    expect(journalFileName('migrate-assets', new Date(AT), 7)).toBe(
      'migrate-assets-20260304T050607089Z-7.jsonl',
    )
    expect(() => journalFileName('../etc', new Date(AT), 7)).toThrow(/invalid operation/)
  })

  it('creates the directories, writes the start record and appends records in order', async () => {
    const stateDir = path.join(dir, 'state')
    const w = await JournalWriter.create(stateDir, start())
    expect(path.dirname(w.file)).toBe(journalDir(stateDir))
    await w.append({ t: 'step-begin', id: 'a', at: AT })
    await w.append({ t: 'step-note', id: 'a', data: { backup: '/b1' }, at: AT })
    await w.append({ t: 'step-note', id: 'a', data: { size: 3 }, at: AT })
    await w.append({ t: 'step-done', id: 'a', at: AT })
    await w.close()
    const recs = (await readFile(w.file, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as JournalRecord)
    expect(recs.map((r) => r.t)).toEqual([
      'start',
      'step-begin',
      'step-note',
      'step-note',
      'step-done',
    ])
    expect(recs[0]).toMatchObject({ t: 'start', v: 1, operation: 'migrate-assets', pid: 4242 })
    const st = await readJournal(w.file)
    expect(st.steps.get('a')).toEqual({ status: 'done', notes: { backup: '/b1', size: 3 } })
    expect(st.outcome).toBeNull()
    expect(isUnfinished(st)).toBe(true)
    expect(w.state.steps.get('a')).toEqual(st.steps.get('a'))
  })

  it('a repeated clock reading does not clash with an existing journal', async () => {
    const a = await JournalWriter.create(dir, start())
    const b = await JournalWriter.create(dir, start())
    expect(a.file).not.toBe(b.file)
    await a.close()
    await b.close()
  })

  it('reads step status from the last record; needs-person stays unfinished', () => {
    const st = parseJournal(
      'f',
      lines([
        { t: 'start', v: 1, ...start() },
        { t: 'step-begin', id: 'a', at: AT },
        { t: 'step-done', id: 'a', at: AT },
        { t: 'step-begin', id: 'b', at: AT },
        { t: 'step-failed', id: 'b', error: 'boom', at: AT },
        { t: 'undo-begin', id: 'b', at: AT },
        { t: 'undo-done', id: 'b', at: AT },
        { t: 'undo-begin', id: 'a', at: AT },
        { t: 'undo-failed', id: 'a', error: 'stuck', at: AT },
        { t: 'end', outcome: 'needs-person', at: AT },
      ]),
    )
    expect(st.steps.get('a')).toMatchObject({ status: 'undo-failed', error: 'stuck' })
    expect(st.steps.get('b')).toMatchObject({ status: 'undone', error: 'boom' })
    expect(st.outcome).toBe('needs-person')
    expect(isUnfinished(st)).toBe(true)
    const closed = parseJournal(
      'f',
      lines([
        { t: 'start', v: 1, ...start() },
        { t: 'end', outcome: 'needs-person', at: AT },
        { t: 'resume', mode: 'rollback', pid: 1, at: AT },
        { t: 'end', outcome: 'rolled-back', at: AT },
      ]),
    )
    expect(isUnfinished(closed)).toBe(false)
  })

  it('skips a torn last line, and fences it off before appending', async () => {
    const jdir = journalDir(dir)
    await mkdir(jdir, { recursive: true })
    const file = path.join(jdir, journalFileName('prune', new Date(AT), 1))
    const good = lines([
      { t: 'start', v: 1, ...start('prune') },
      { t: 'step-begin', id: 'a', at: AT },
    ])
    await writeFile(file, good + '{"t":"step-do')
    const st = await readJournal(file)
    expect(st.damaged).toBe(1)
    expect(st.steps.get('a')?.status).toBe('begun')
    const w = await JournalWriter.open(st)
    await w.append({ t: 'step-done', id: 'a', at: AT })
    await w.close()
    const again = await readJournal(file)
    expect(again.steps.get('a')?.status).toBe('done')
    expect(again.damaged).toBe(1)
  })

  it('a file without a start record is not a journal', () => {
    expect(() => parseJournal('f', '')).toThrow(/not a shipshape journal/)
    expect(() => parseJournal('f', '{"t":"step-begin","id":"a"}\n')).toThrow(/no start record/)
  })

  it('finds unfinished journals of exactly this operation, newest first', async () => {
    const jdir = journalDir(dir)
    await mkdir(jdir, { recursive: true })
    const put = async (op: string, at: string, pid: number, more: object[] = []) => {
      const f = path.join(jdir, journalFileName(op, new Date(at), pid))
      await writeFile(f, lines([{ t: 'start', v: 1, ...start(op, at, pid) }, ...more]))
      return f
    }
    const older = await put('migrate-assets', '2026-01-01T00:00:00.000Z', 1)
    const newer = await put('migrate-assets', '2026-02-01T00:00:00.000Z', 2)
    await put('migrate-assets', '2026-03-01T00:00:00.000Z', 3, [
      { t: 'end', outcome: 'ok', at: AT },
    ])
    await put('migrate', '2026-04-01T00:00:00.000Z', 4) // a prefix of the name: not ours
    await writeFile(path.join(jdir, 'migrate-assets-junk.jsonl'), 'x')
    await writeFile(path.join(jdir, journalFileName('migrate-assets', new Date(AT), 5)), '')
    const found = await findUnfinishedJournals(dir, 'migrate-assets')
    expect(found.map((s) => s.file)).toEqual([newer, older])
    expect((await findUnfinishedJournals(dir, 'migrate')).map((s) => s.pid)).toEqual([4])
    expect(await findUnfinishedJournals(path.join(dir, 'absent'), 'prune')).toEqual([])
    expect((await readdir(jdir)).length).toBe(6)
  })
})
