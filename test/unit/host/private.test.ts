import { chmod, chown, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ExitCode, RefusedError } from '../../../lib/errors.js'
import { acquireLock } from '../../../lib/host/lock.js'
import {
  checkPrivateDir,
  checkPrivateFile,
  ensurePrivateDir,
  judgePrivate,
  pathFacts,
  type PathFacts,
} from '../../../lib/host/private.js'
import { findUnfinishedJournals, JournalWriter } from '../../../lib/runbook/journal.js'

const dirFacts = (o: Partial<PathFacts> = {}): PathFacts => ({
  type: 'dir',
  mode: 0o700,
  uid: 0,
  ...o,
})
const asRoot = { kind: 'dir', uid: 0, what: 'stateDir' } as const
const S = '/var/lib/shipshape'

describe('judgePrivate (pure)', () => {
  it('a directory of this uid, not writable by others, passes (0700, 0755, 0750)', () => {
    for (const mode of [0o700, 0o755, 0o750, 0o711])
      expect(judgePrivate(S, dirFacts({ mode }), asRoot)).toBeNull()
    expect(judgePrivate('/tmp/x', dirFacts({ uid: 1000 }), { ...asRoot, uid: 1000 })).toBeNull()
  })

  it('world-writable: refused with chmod 700 && chown root:root', () => {
    const p = judgePrivate(S, dirFacts({ mode: 0o777 }), asRoot)
    expect(p?.problem).toBe(
      `stateDir ${S} is writable by group and others (mode 0777): another user could plant journals, locks or records there that shipshape, running as root, would act on`,
    )
    expect(p?.fix).toBe(`chmod 700 ${S} && chown root:root ${S}`)
    // the sticky bit does not make it private
    expect(judgePrivate(S, dirFacts({ mode: 0o1777 }), asRoot)?.problem).toContain('mode 1777')
  })

  it('group-writable alone is refused too', () => {
    expect(judgePrivate(S, dirFacts({ mode: 0o770 }), asRoot)?.problem).toContain(
      'writable by group (mode 0770)',
    )
    expect(judgePrivate(S, dirFacts({ mode: 0o702 }), asRoot)?.problem).toContain(
      'writable by others (mode 0702)',
    )
  })

  it('another owner: refused, naming both uids; both faults in one line', () => {
    const p = judgePrivate(S, dirFacts({ uid: 1000 }), asRoot)
    expect(p?.problem).toContain('is owned by uid 1000, not root (uid 0)')
    expect(p?.fix).toBe(`chmod 700 ${S} && chown root:root ${S}`)
    const both = judgePrivate(S, dirFacts({ uid: 1000, mode: 0o775 }), asRoot)
    expect(both?.problem).toContain('owned by uid 1000, not root (uid 0) and writable by group')
    // not running as root: the fix chowns to that uid
    expect(judgePrivate('/srv/s', dirFacts({ uid: 0 }), { ...asRoot, uid: 1000 })?.fix).toBe(
      'chmod 700 /srv/s && chown 1000 /srv/s',
    )
  })

  it('a symlink is refused whatever it points at; stateDir/backupDir: set the key to the real dir', () => {
    const p = judgePrivate(S, dirFacts({ type: 'symlink', mode: 0o777 }), asRoot)
    expect(p?.problem).toContain(`stateDir ${S} is a symbolic link`)
    expect(p?.fix).toContain('set stateDir in the host config to the real directory')
    const j = judgePrivate(`${S}/journal`, dirFacts({ type: 'symlink' }), {
      ...asRoot,
      what: 'journal directory',
    })
    expect(j?.fix).toBe(
      `replace the link with a directory: rm ${S}/journal && mkdir -m 700 ${S}/journal`,
    )
  })

  it('a file where a directory belongs', () => {
    const p = judgePrivate(S, dirFacts({ type: 'file', mode: 0o600 }), {
      ...asRoot,
      what: 'backupDir',
    })
    expect(p?.problem).toBe(`backupDir ${S} exists and is not a directory`)
    expect(p?.fix).toContain('set backupDir in the host config')
  })

  it('journals: a regular file of this uid, not writable by others; anything else refused', () => {
    const f = `${S}/journal/rebuild-20260101T000000000Z-1.jsonl`
    const journal = { kind: 'file', uid: 0, what: 'journal' } as const
    expect(judgePrivate(f, { type: 'file', mode: 0o600, uid: 0 }, journal)).toBeNull()
    expect(judgePrivate(f, { type: 'file', mode: 0o644, uid: 0 }, journal)).toBeNull()
    const planted = judgePrivate(f, { type: 'file', mode: 0o644, uid: 1000 }, journal)
    expect(planted?.problem).toContain(`the journal ${f} is owned by uid 1000`)
    expect(planted?.problem).toContain('--resume would replay it as root')
    expect(planted?.fix).toBe(
      `if you did not make it, remove it (rm ${f}); if it is one of shipshape's: chmod 600 ${f} && chown root:root ${f}`,
    )
    expect(judgePrivate(f, { type: 'file', mode: 0o666, uid: 0 }, journal)?.problem).toContain(
      'writable by group and others (mode 0666)',
    )
    expect(judgePrivate(f, { type: 'symlink', mode: 0o777, uid: 0 }, journal)?.fix).toBe(
      `if you did not make it, remove it (rm ${f})`,
    )
    expect(judgePrivate(f, { type: 'other', mode: 0o600, uid: 0 }, journal)?.problem).toContain(
      'is not a regular file',
    )
  })
})

describe('private dirs on disk', () => {
  let root: string
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'ss-private-'))
  })
  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })
  const uid = process.geteuid?.() ?? 0

  it('pathFacts: lstat (a symlink is not followed); null when missing', async () => {
    await symlink(root, path.join(root, 'link'))
    expect(await pathFacts(path.join(root, 'link'))).toMatchObject({ type: 'symlink' })
    expect(await pathFacts(root)).toEqual({ type: 'dir', mode: 0o700, uid })
    expect(await pathFacts(path.join(root, 'nope'))).toBeNull()
    await writeFile(path.join(root, 'f'), '')
    expect(await pathFacts(path.join(root, 'f', 'below'))).toBeNull()
  })

  it('a stateDir that cannot even be looked at (ELOOP, EACCES, EIO) is refused with exit 4', async () => {
    await symlink(path.join(root, 'b'), path.join(root, 'a'))
    await symlink(path.join(root, 'a'), path.join(root, 'b'))
    const err = await checkPrivateDir(path.join(root, 'a', 'state'), 'stateDir').catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(RefusedError)
    expect((err as RefusedError).exitCode).toBe(ExitCode.refused)
    expect((err as Error).message).toMatch(/cannot look at stateDir .*: ELOOP/)
  })

  it('ensurePrivateDir creates 0700 (parents too); checkPrivateDir: false when missing', async () => {
    const state = path.join(root, 'var', 'lib', 'shipshape')
    expect(await checkPrivateDir(state, 'stateDir')).toBe(false)
    await ensurePrivateDir(state, 'stateDir')
    expect((await stat(state)).mode & 0o7777).toBe(0o700)
    expect((await stat(path.join(root, 'var'))).mode & 0o7777).toBe(0o700)
    expect(await checkPrivateDir(state, 'stateDir')).toBe(true)
  })

  it('refuses (exit 4) a world-writable, a symlinked, a foreign-owned dir; never changes it', async () => {
    const open = path.join(root, 'open')
    await mkdir(open)
    await chmod(open, 0o777)
    const e = await ensurePrivateDir(open, 'stateDir').catch((x: unknown) => x)
    expect(e).toBeInstanceOf(RefusedError)
    expect((e as RefusedError).exitCode).toBe(ExitCode.refused)
    expect((e as RefusedError).remedy).toBe(`chmod 700 ${open} && chown root:root ${open}`)
    expect((await stat(open)).mode & 0o7777).toBe(0o777)

    const real = path.join(root, 'real')
    await mkdir(real, { mode: 0o700 })
    await symlink(real, path.join(root, 'linked'))
    await expect(checkPrivateDir(path.join(root, 'linked'), 'backupDir')).rejects.toThrow(
      /is a symbolic link/,
    )
    // a dangling one is not created through either
    await symlink(path.join(root, 'target'), path.join(root, 'dangling'))
    await expect(ensurePrivateDir(path.join(root, 'dangling'), 'stateDir')).rejects.toThrow(
      /is a symbolic link/,
    )
    await expect(stat(path.join(root, 'target'))).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it.runIf(uid === 0)('refuses a dir or journal owned by another uid (as root)', async () => {
    const d = path.join(root, 'theirs')
    await mkdir(d, { mode: 0o700 })
    await chown(d, 1234, 1234)
    await expect(checkPrivateDir(d, 'stateDir')).rejects.toThrow(/owned by uid 1234, not root/)
    const f = path.join(root, 'j.jsonl')
    await writeFile(f, '{}', { mode: 0o600 })
    await chown(f, 1234, 1234)
    await expect(checkPrivateFile(f, 'journal')).rejects.toThrow(/owned by uid 1234/)
  })

  it('acquireLock refuses a stateDir others can write, before any lock file is made', async () => {
    const state = path.join(root, 'state')
    await mkdir(state)
    await chmod(state, 0o777)
    const e = await acquireLock({ stateDir: state, operation: 'prune' }).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(RefusedError)
    expect(String((e as Error).message)).toContain('writable by group and others (mode 0777)')
    await expect(stat(path.join(state, 'shipshape.lock'))).rejects.toMatchObject({
      code: 'ENOENT',
    })
    await chmod(state, 0o700)
    const lock = await acquireLock({ stateDir: state, operation: 'prune' })
    expect((await stat(lock.file)).mode & 0o7777).toBe(0o600)
    await lock.release()
  })

  it('acquireLock creates a missing stateDir 0700', async () => {
    const state = path.join(root, 'new', 'state')
    const lock = await acquireLock({ stateDir: state, operation: 'prune' })
    expect((await stat(state)).mode & 0o7777).toBe(0o700)
    await lock.release()
  })

  describe('journals (what --resume would replay)', () => {
    async function journal(state: string): Promise<string> {
      const w = await JournalWriter.create(state, {
        operation: 'rebuild',
        args: { service: 'web' },
        host: os.hostname(),
        pid: 4242,
        at: '2026-01-01T00:00:00.000Z',
        steps: [{ id: 'backup', title: 'Back up' }],
      })
      await w.close()
      return w.file
    }

    it('a new journal dir is 0700 and its journal 0600; listed as unfinished', async () => {
      const state = path.join(root, 'state')
      const file = await journal(state)
      expect((await stat(path.dirname(file))).mode & 0o7777).toBe(0o700)
      expect((await stat(file)).mode & 0o7777).toBe(0o600)
      expect((await findUnfinishedJournals(state, 'rebuild')).map((j) => j.file)).toEqual([file])
    })

    it('a missing stateDir lists nothing (read-only commands need none)', async () => {
      expect(await findUnfinishedJournals(path.join(root, 'absent'), 'rebuild')).toEqual([])
    })

    it('a group/world-writable journal is refused by name, not skipped', async () => {
      const state = path.join(root, 'state')
      const file = await journal(state)
      await chmod(file, 0o666)
      const e = await findUnfinishedJournals(state, 'rebuild').catch((x: unknown) => x)
      expect(e).toBeInstanceOf(RefusedError)
      expect((e as Error).message).toContain(file)
      expect((e as RefusedError).remedy).toContain(`rm ${file}`)
      // another operation's listing does not read it
      expect(await findUnfinishedJournals(state, 'rollback')).toEqual([])
    })

    it('a journal that is a symlink (to a file of ours) is refused', async () => {
      const state = path.join(root, 'state')
      const file = await journal(state)
      const planted = path.join(path.dirname(file), 'rebuild-20260102T000000000Z-1.jsonl')
      await symlink(file, planted)
      await expect(findUnfinishedJournals(state, 'rebuild')).rejects.toThrow(
        /is a symbolic link, not a file shipshape wrote/,
      )
    })

    it('a stateDir or journal dir others can write is refused', async () => {
      const state = path.join(root, 'state')
      const file = await journal(state)
      await chmod(path.dirname(file), 0o777)
      await expect(findUnfinishedJournals(state, 'rebuild')).rejects.toThrow(
        /journal directory .* is writable by group and others/,
      )
      await chmod(path.dirname(file), 0o700)
      await chmod(state, 0o757)
      await expect(findUnfinishedJournals(state, 'rebuild')).rejects.toThrow(
        /stateDir .* is writable by others \(mode 0757\)/,
      )
    })
  })
})
