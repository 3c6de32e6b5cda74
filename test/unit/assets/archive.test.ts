import { describe, expect, it } from 'vitest'
import { archiveAction, remoteArchiveRel } from '../../../lib/assets/archive.js'

const DAY = 86_400_000
const now = new Date('2026-12-07T12:00:00.000Z')
const ago = (ms: number) => new Date(now.getTime() - ms).toISOString()
const kept = (removedAt?: string) => ({
  workDir: '/opt/backups/music/20261101T000000Z',
  original: '/srv/music.shipshape-20261101T000000Z',
  source: '/srv/music',
  dest: '/mnt/rd/music',
  keepUntil: ago(20 * DAY),
  ...(removedAt ? { removedAt } : {}),
})
const local = '/opt/backups/music/20261101T000000Z/archive.tar.zst'

describe('archiveAction', () => {
  it('stays while the original is kept, whatever keepBackup says', () => {
    const r = archiveAction(
      { local, kept: kept() },
      { keepBackup: 0, backupTo: 'remote' },
      'music',
      now,
    )
    expect(r).toMatchObject({ action: 'keep' })
    expect(r && 'why' in r ? r.why : '').toMatch(/kept while the original .* is .*--finalize/)
  })

  it('after the original went: keepBackup, then move (remote) or remove (local)', () => {
    const gone = kept(ago(2 * DAY))
    expect(
      archiveAction(
        { local, kept: gone },
        { keepBackup: 3 * DAY, backupTo: 'local' },
        'music',
        now,
      ),
    ).toMatchObject({ action: 'keep' })
    expect(
      archiveAction({ local, kept: gone }, { keepBackup: DAY, backupTo: 'local' }, 'music', now),
    ).toEqual({ action: 'remove', since: gone.removedAt })
    expect(
      archiveAction({ local, kept: gone }, { keepBackup: 0, backupTo: 'remote' }, 'music', now),
    ).toEqual({ action: 'move', since: gone.removedAt })
    // not in backupDir any more: nothing to do
    expect(
      archiveAction(
        { local: null, kept: gone },
        { keepBackup: 0, backupTo: 'remote' },
        'music',
        now,
      ),
    ).toBeNull()
  })

  it('the remote copy goes under .shipshape-archives/<asset>/<stamp>/', () => {
    expect(remoteArchiveRel('music', '/opt/backups/music/20261101T000000Z', local)).toBe(
      '.shipshape-archives/music/20261101T000000Z/archive.tar.zst',
    )
  })
})

describe('archiveAction after a revert', () => {
  it('the archive of a reverted migration stays (never moved or removed by prune)', () => {
    const r = archiveAction(
      { local, kept: { ...kept(ago(9 * DAY)), revertedAt: ago(DAY) } },
      { keepBackup: 0, backupTo: 'remote' },
      'music',
      now,
    )
    expect(r).toMatchObject({ action: 'keep' })
    expect(r && 'why' in r ? r.why : '').toMatch(/reverted/)
  })
})
