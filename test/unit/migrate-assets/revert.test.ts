import { describe, expect, it } from 'vitest'
import { revertPaths } from '../../../lib/migrate-assets/revert-context.js'
import {
  chooseRevertSource,
  destChangedSince,
  judgeRevertSpace,
  ownedLike,
  revertSpaceNeed,
  rootOwnerOf,
} from '../../../lib/migrate-assets/revert-policy.js'
import type { ManifestEntry } from '../../../lib/shared/manifest-types.js'

const file = (p: string, over: Partial<ManifestEntry> = {}): ManifestEntry => ({
  path: p,
  kind: 'file',
  size: 10,
  mode: 0o640,
  mtimeMs: 1_600_000_000_000,
  uid: 1000,
  gid: 1000,
  hashes: { sha256: 'a'.repeat(64) },
  ...over,
})
const dir = (p: string, over: Partial<ManifestEntry> = {}): ManifestEntry => ({
  path: p,
  kind: 'dir',
  size: 0,
  mode: 0o750,
  mtimeMs: 1_600_000_000_000,
  uid: 1000,
  gid: 1000,
  ...over,
})

describe('destChangedSince: did the app write to the destination after the swap?', () => {
  const manifest = [dir('a'), file('a/x.mp3'), file('b.mp3')]

  it('nothing when the destination is as the migration left it (mount modes, owners, dir mtimes aside)', () => {
    const now = [
      dir('a', { mode: 0o755, uid: 0, mtimeMs: 1 }),
      file('a/x.mp3', { mode: 0o644, uid: 0, mtimeMs: 1_600_000_000_400 }),
      file('b.mp3'),
      file('.shipshape-probe-123-abcd'), // a preflight's probe file, there for an instant
    ]
    expect(destChangedSince(manifest, now)).toEqual([])
  })

  it('names what was added, removed, resized, rewritten (mtime past 1 s) or changed kind', () => {
    const now = [
      dir('a'),
      file('a/x.mp3', { mtimeMs: 1_600_000_005_000 }),
      file('b.mp3', { size: 11 }),
      file('c.txt'),
      dir('a/new'),
    ]
    const changes = destChangedSince([...manifest, file('gone.mp3'), file('k')], [...now, dir('k')])
    expect(changes).toEqual([
      'a/x.mp3: written since the migration (mtime)',
      'b.mp3: size 10 → 11',
      'gone.mp3: gone since the migration',
      'k: now a dir, was a file',
      'c.txt: added since the migration',
      'a/new: added since the migration',
    ])
  })
})

describe('chooseRevertSource: where the bytes come back from', () => {
  const ok = { changes: [] as string[] }

  it('the kept original (a rename, no copy) when it and the destination are as the manifest has them', () => {
    const c = chooseRevertSource({ original: { path: '/o', changes: [] }, dest: ok, archive: null })
    expect(c).toEqual({ from: 'original', destChanged: [], originalLeft: null, refusals: [] })
  })

  it('the destination when --finalize removed the original', () => {
    const c = chooseRevertSource({ original: null, dest: ok, archive: '/b/archive.tar' })
    expect(c.from).toBe('destination')
    expect(c.originalLeft).toBeNull()
  })

  it('the destination when the app wrote there since: the original is stale and stays', () => {
    const c = chooseRevertSource({
      original: { path: '/o', changes: [] },
      dest: { changes: ['late.txt: added since the migration'] },
      archive: null,
    })
    expect(c.from).toBe('destination')
    expect(c.destChanged).toHaveLength(1)
    expect(c.originalLeft).toMatch(/^\/o is older than the destination .* stays where it is/)
  })

  it('the destination when the kept original was written to after the migration', () => {
    const c = chooseRevertSource({
      original: { path: '/o', changes: ['x: added after the migration'] },
      dest: ok,
      archive: null,
    })
    expect(c.from).toBe('destination')
    expect(c.originalLeft).toMatch(/written to after the migration \(x: added/)
  })

  it('refused when the destination cannot be read: what the app wrote since is unknown', () => {
    const c = chooseRevertSource({
      original: { path: '/o', changes: [] },
      dest: { error: 'ENOTCONN' },
      archive: '/b/archive.tar.zst',
    })
    expect(c.from).toBeNull()
    expect(c.refusals).toHaveLength(1)
    expect(c.refusals[0]!.message).toMatch(/cannot read the destination.*ENOTCONN/)
    expect(c.refusals[0]!.remedy).toContain('/b/archive.tar.zst')
  })
})

describe('space for a copy back', () => {
  it('needs the bytes, a block per entry and a 64 MiB margin', () => {
    expect(revertSpaceNeed(1000, 2)).toBe(1000 + 2 * 4096 + 64 * 1024 * 1024)
  })

  it('refuses a copy back with the figures; a rename needs no room', () => {
    const r = judgeRevertSpace({
      from: 'destination',
      needBytes: 3 * 1024 ** 3,
      freeBytes: 1024 ** 3,
      dir: '/srv',
    })
    expect(r).toHaveLength(1)
    expect(r[0]!.message).toBe(
      'bringing the files back needs 3.22 GB (their bytes and a margin) and /srv has 1.07 GB free',
    )
    expect(
      judgeRevertSpace({ from: 'original', needBytes: 10, freeBytes: 0, dir: '/srv' }),
    ).toEqual([])
    expect(
      judgeRevertSpace({ from: 'destination', needBytes: 10, freeBytes: 10, dir: '/srv' }),
    ).toEqual([])
  })
})

describe('owners and modes of what comes back from a mount', () => {
  it("the root's owner: the one most top-level entries have; root's on a tie or when empty", () => {
    expect(rootOwnerOf([file('a'), file('b'), file('c', { uid: 0, gid: 0 }), file('d/e')])).toEqual(
      { uid: 1000, gid: 1000 },
    )
    expect(rootOwnerOf([file('a'), file('b', { uid: 33, gid: 33 })])).toEqual({ uid: 0, gid: 0 })
    expect(rootOwnerOf([])).toEqual({ uid: 0, gid: 0 })
  })

  it("each entry gets the original's owner and mode; one added since its directory's owner, 0644/0755", () => {
    const original = [dir('a', { uid: 33, gid: 34 }), file('a/x', { mode: 0o600 }), file('b')]
    const fromMount = [
      dir('a', { uid: 0, gid: 0, mode: 0o755 }),
      file('a/x', { uid: 0, gid: 0, mode: 0o644 }),
      file('a/new', { uid: 0, gid: 0, mode: 0o666 }),
      dir('a/sub', { uid: 0, gid: 0, mode: 0o700 }),
      file('b', { uid: 0, gid: 0, mode: 0o644 }),
      file('top', { uid: 0, gid: 0, mode: 0o600 }),
    ]
    const got = ownedLike(original, fromMount, { uid: 7, gid: 8 })
    expect(got.map((e) => [e.path, e.uid, e.gid, e.mode.toString(8)])).toEqual([
      ['a', 33, 34, '750'],
      ['a/x', 1000, 1000, '600'],
      ['a/new', 33, 34, '644'],
      ['a/sub', 33, 34, '755'],
      ['b', 1000, 1000, '640'],
      ['top', 7, 8, '644'],
    ])
    // contents (sizes, hashes) are the destination's
    expect(got[1]!.hashes).toEqual(fromMount[1]!.hashes)
  })
})

describe('revertPaths', () => {
  it("names the staging, the link aside and the migration's files by the two stamps", () => {
    const p = revertPaths({
      name: 'music',
      asset: { source: '/srv/app/music', dest: '/mnt/rd/music', mount: '/mnt/rd' } as never,
      stamp: '20261207T200000Z',
      migration: '/var/backups/s/music/20261125T150405Z',
      stateDir: '/var/lib/shipshape',
    })
    expect(p).toMatchObject({
      original: '/srv/app/music.shipshape-20261125T150405Z',
      staging: '/srv/app/music.shipshape-revert-20261207T200000Z',
      linkAside: '/srv/app/music.shipshape-link-20261207T200000Z',
      expected: '/var/backups/s/music/20261125T150405Z/revert-20261207T200000Z.manifest.json',
      record: '/var/backups/s/music/20261125T150405Z/reverted.json',
      doneLog: '/var/lib/shipshape/migrate-assets/music-revert-20261207T200000Z.copied',
    })
  })
})

describe('doctor: an unfinished revert is continued with --revert', () => {
  it('names --revert --resume and --revert --rollback', async () => {
    const { journalCommands } = await import('../../../lib/runbook/operations.js')
    const c = journalCommands({
      file: '/var/lib/shipshape/journal/migrate-assets-revert-x.jsonl',
      operation: 'migrate-assets-revert',
      args: { asset: 'music' },
      steps: new Map(),
    })
    expect(c.resume).toBe('shipshape migrate-assets music --revert --resume')
    expect(c.rollback).toBe('shipshape migrate-assets music --revert --rollback')
  })
})
