/**
 * The steps of `systemd install` (lib/systemd/steps.ts) on fakes of their ports (InstallFs,
 * SystemdPort): run does its job, undo puts back exactly what was there, a second run is the same
 * as one, verify only reads. No file, no process.
 */
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { StepJournal } from '../../../lib/runbook/types.js'
import {
  daemonReloadStep,
  directoriesStep,
  installSteps,
  unitStep,
  type FileFacts,
  type InstallContext,
  type InstallFs,
  type UnitWrite,
} from '../../../lib/systemd/steps.js'

/** An in-memory tree: directories and files, with a log of every change. */
function fakeFs(dirs: string[], files: Record<string, FileFacts> = {}) {
  const d = new Set(['/', ...dirs])
  const f = new Map(Object.entries(files))
  const changes: string[] = []
  const fs: InstallFs = {
    readFile: async (p) => {
      const x = f.get(p)
      return x ? { ...x } : null
    },
    writeFile: async (p, text, mode) => {
      if (!d.has(path.dirname(p))) throw new Error(`ENOENT ${path.dirname(p)}`)
      changes.push(`write ${p}`)
      f.set(p, { text, mode })
    },
    removeFile: async (p) => {
      changes.push(`rm ${p}`)
      f.delete(p)
    },
    kind: async (p) => (d.has(p) ? 'dir' : f.has(p) ? 'other' : 'missing'),
    makeDir: async (p, mode) => {
      if (!d.has(path.dirname(p))) throw new Error(`ENOENT ${path.dirname(p)}`)
      changes.push(`mkdir ${p} ${mode.toString(8)}`)
      d.add(p)
    },
    removeEmptyDir: async (p) => {
      const inside = [...d, ...f.keys()].some((x) => x !== p && x.startsWith(`${p}/`))
      if (!d.has(p) || inside) return false
      changes.push(`rmdir ${p}`)
      d.delete(p)
      return true
    },
  }
  return { fs, dirs: d, files: f, changes }
}

function fakeJournal(): StepJournal & { notes: Record<string, unknown> } {
  const notes: Record<string, unknown> = {}
  return {
    notes,
    note: async (x) => void Object.assign(notes, x),
    data: () => notes,
  }
}

function fakeSystemd(fail = false) {
  const calls: string[][] = []
  return {
    calls,
    port: {
      running: async () => true,
      unitPath: ['/etc/systemd/system'],
      systemctl: async (args: string[]) => {
        calls.push(args)
        if (fail) throw new Error('systemctl daemon-reload failed: no bus')
      },
    },
  }
}

const UNIT = '/etc/systemd/system/shipshape-report.service'
const unit = (action: UnitWrite['action'] = 'create'): UnitWrite => ({
  name: 'shipshape-report.service',
  path: UNIT,
  text: '[Unit]\nDescription=new\n',
  action,
})

function ctxOf(w: ReturnType<typeof fakeFs>, o: Partial<InstallContext> = {}): InstallContext {
  return {
    fs: w.fs,
    systemd: fakeSystemd().port,
    dirs: [
      { path: '/var/lib/shipshape', mode: 0o700 },
      { path: '/var/backups/shipshape', mode: 0o700 },
    ],
    units: [unit()],
    reload: true,
    ...o,
  }
}

describe('directories step', () => {
  it('creates the missing ones (and the missing parents), 0700; verify reads only', async () => {
    const w = fakeFs(['/var', '/var/lib', '/etc', '/etc/systemd', '/etc/systemd/system'])
    const ctx = ctxOf(w)
    expect(await directoriesStep.verify!(ctx)).toBe(false)
    expect(w.changes).toEqual([])
    const j = fakeJournal()
    await directoriesStep.run(ctx, j)
    expect(w.changes).toEqual([
      'mkdir /var/lib/shipshape 700',
      'mkdir /var/backups 700',
      'mkdir /var/backups/shipshape 700',
    ])
    expect(j.notes.created).toEqual([
      '/var/lib/shipshape',
      '/var/backups',
      '/var/backups/shipshape',
    ])
    expect(await directoriesStep.verify!(ctx)).toBe(true)
    // twice = once: nothing more made, the note keeps what the first run created
    await directoriesStep.run(ctx, j)
    expect(w.changes).toHaveLength(3)
    expect(j.notes.created).toHaveLength(3)
  })

  it('undo removes only what it created, and only while empty', async () => {
    const w = fakeFs(['/var', '/var/lib'])
    const ctx = ctxOf(w)
    const j = fakeJournal()
    await directoriesStep.run(ctx, j)
    // the lock (or a journal) is in stateDir by now: it stays
    w.files.set('/var/lib/shipshape/shipshape.lock', { text: '{}', mode: 0o600 })
    w.changes.length = 0
    await directoriesStep.undo!(ctx, j)
    expect(w.changes).toEqual(['rmdir /var/backups/shipshape', 'rmdir /var/backups'])
    expect(w.dirs.has('/var/lib/shipshape')).toBe(true)
    expect(w.dirs.has('/var/lib')).toBe(true)
    // a second undo finds nothing left to do
    w.changes.length = 0
    await directoriesStep.undo!(ctx, j)
    expect(w.changes).toEqual([])
  })

  it('undo of a run that never began (no note) touches nothing', async () => {
    const w = fakeFs(['/var', '/var/lib', '/var/lib/shipshape'])
    await directoriesStep.undo!(ctxOf(w), fakeJournal())
    expect(w.changes).toEqual([])
  })

  it('a file where a directory should be is an error, noted nothing', async () => {
    const w = fakeFs(['/var', '/var/lib'], { '/var/lib/shipshape': { text: 'x', mode: 0o644 } })
    const j = fakeJournal()
    await expect(directoriesStep.run(ctxOf(w), j)).rejects.toThrow(/not a directory/)
    expect(j.notes).toEqual({})
  })
})

describe('unit file step', () => {
  const step = unitStep('shipshape-report.service')
  const sys = ['/etc', '/etc/systemd', '/etc/systemd/system']

  it('creates the file 0644, noting its absence first; undo removes it', async () => {
    const w = fakeFs(sys)
    const ctx = ctxOf(w)
    expect(await step.verify!(ctx)).toBe(false)
    const j = fakeJournal()
    await step.run(ctx, j)
    expect(j.notes).toMatchObject({
      before: null,
      written: expect.stringMatching(/^[0-9a-f]{64}$/),
    })
    expect(w.files.get(UNIT)).toEqual({ text: unit().text, mode: 0o644 })
    expect(await step.verify!(ctx)).toBe(true)
    await step.run(ctx, j) // twice = once
    expect(w.changes).toEqual([`write ${UNIT}`])
    expect(j.notes.before).toBeNull()
    await step.undo!(ctx, j)
    expect(w.files.has(UNIT)).toBe(false)
  })

  it('replaces a file; undo puts back exactly its content and mode', async () => {
    const old = { text: '[Unit]\nDescription=edited by hand\n', mode: 0o640 }
    const w = fakeFs(sys, { [UNIT]: old })
    const ctx = ctxOf(w, { units: [unit('replace')] })
    const j = fakeJournal()
    await step.run(ctx, j)
    expect(j.notes.before).toEqual(old)
    expect(w.files.get(UNIT)?.text).toBe(unit().text)
    // a re-run after a crash keeps the first note, not the file it wrote itself
    await step.run(ctx, j)
    expect(j.notes.before).toEqual(old)
    await step.undo!(ctx, j)
    expect(w.files.get(UNIT)).toEqual(old)
  })

  it('undo leaves a file changed since it was written (a person edited it): an error', async () => {
    const w = fakeFs(sys)
    const ctx = ctxOf(w)
    const j = fakeJournal()
    await step.run(ctx, j)
    w.files.set(UNIT, { text: 'edited\n', mode: 0o644 })
    await expect(step.undo!(ctx, j)).rejects.toThrow(/changed since install wrote it/)
    expect(w.files.get(UNIT)?.text).toBe('edited\n')
  })

  it('undo without a note (never began) changes nothing', async () => {
    const w = fakeFs(sys, { [UNIT]: { text: 'mine', mode: 0o644 } })
    await step.undo!(ctxOf(w), fakeJournal())
    expect(w.changes).toEqual([])
    expect(w.files.get(UNIT)?.text).toBe('mine')
  })
})

describe('daemon-reload step', () => {
  it('runs systemctl daemon-reload; a failed reload leaves nothing to reload on undo', async () => {
    const w = fakeFs([])
    const ok = fakeSystemd()
    const j = fakeJournal()
    await daemonReloadStep.run(ctxOf(w, { systemd: ok.port }), j)
    expect(ok.calls).toEqual([['daemon-reload']])
    expect(j.notes).toEqual({ reloaded: true })

    const bad = fakeSystemd(true)
    const jb = fakeJournal()
    const ctx = ctxOf(w, { systemd: bad.port })
    await expect(daemonReloadStep.run(ctx, jb)).rejects.toThrow(/no bus/)
    await daemonReloadStep.undo!(ctx, jb)
    expect(ctx.reloadAfterUndo).toBeUndefined()
  })

  it('after a reload that ran, undo reloads again once each unit file is back', async () => {
    const w = fakeFs(['/etc', '/etc/systemd', '/etc/systemd/system'])
    const sd = fakeSystemd()
    const ctx = ctxOf(w, { systemd: sd.port })
    const ju = fakeJournal()
    const jr = fakeJournal()
    const step = unitStep('shipshape-report.service')
    await step.run(ctx, ju)
    await daemonReloadStep.run(ctx, jr)
    // the runner undoes in reverse: the reload first, then the file
    await daemonReloadStep.undo!(ctx, jr)
    expect(sd.calls).toEqual([['daemon-reload']])
    await step.undo!(ctx, ju)
    expect(w.files.has(UNIT)).toBe(false)
    expect(sd.calls).toEqual([['daemon-reload'], ['daemon-reload']])
  })
})

describe('installSteps', () => {
  const units: UnitWrite[] = [
    { ...unit('unchanged') },
    { name: 'shipshape-prune.timer', path: '/u/p', text: 'x', action: 'create' },
  ]
  const base = { dirs: [], units, reload: false, createDirs: false }

  it('only what changes: a written unit, the directories when missing, the reload', () => {
    expect(installSteps(base).map((s) => s.id)).toEqual(['unit:shipshape-prune.timer'])
    expect(installSteps({ ...base, createDirs: true, reload: true }).map((s) => s.id)).toEqual([
      'directories',
      'unit:shipshape-prune.timer',
      'daemon-reload',
    ])
  })

  it('a resumed run keeps every step its journal has, written or not', () => {
    const prior = new Set(['directories', 'unit:shipshape-report.service', 'daemon-reload'])
    expect(installSteps(base, prior).map((s) => s.id)).toEqual([
      'directories',
      'unit:shipshape-report.service',
      'unit:shipshape-prune.timer',
      'daemon-reload',
    ])
  })
})
