import { describe, expect, it } from 'vitest'
import {
  checkSourcePath,
  judgeSource,
  judgeSpace,
  judgeTree,
  unknownRestartNames,
} from '../../../lib/assets/policy.js'
import {
  type ContainerBinding,
  isRootUser,
  judgeContainers,
  judgeMount,
} from '../../../lib/shared/mount.js'
import type { EntryKind, ManifestEntry } from '../../../lib/shared/manifest-types.js'

const OPTS = {
  allowedRoots: ['/opt', '/srv'],
  stateDir: '/var/lib/shipshape',
  backupDir: '/var/backups/shipshape',
}

describe('checkSourcePath', () => {
  it.each([
    ['/', '/'],
    ['/etc', '/etc'],
    ['/etc/ssl', '/etc'],
    ['/usr/share/x', '/usr'],
    ['/var/lib/docker/volumes/x', '/var/lib/docker'],
    ['/root/x', '/root'],
    ['/proc/1', '/proc'],
  ])('refuses the system path %s (%s)', (source, hit) => {
    // even when allowedRoots would take it
    const r = checkSourcePath(source, { ...OPTS, allowedRoots: ['/'] })
    // '/' also contains stateDir and backupDir: those are reported after it
    expect(r).toHaveLength(source === '/' ? 3 : 1)
    expect(r[0]?.check).toBe('allowed-roots')
    expect(r[0]?.message).toContain('is a system path')
    expect(r[0]?.message).toContain(`(${hit})`)
    expect(r[0]?.remedy).toBeTruthy()
  })

  it('refuses a directory that contains a protected path', () => {
    for (const source of ['/var', '/var/lib']) {
      const r = checkSourcePath(source, { ...OPTS, allowedRoots: ['/'] })
      expect(r.map((x) => x.message).join('\n')).toContain('is a system path')
    }
  })

  it('passes a directory strictly below an allowed root', () => {
    expect(checkSourcePath('/opt/app/music', OPTS)).toEqual([])
    expect(checkSourcePath('/srv/x', OPTS)).toEqual([])
    // a sibling that merely shares the prefix is no system path
    expect(checkSourcePath('/opt/etc', OPTS)).toEqual([])
  })

  it('refuses an allowed root itself', () => {
    const r = checkSourcePath('/opt', { ...OPTS, allowedRoots: ['/opt'] })
    expect(r).toHaveLength(1)
    expect(r[0]?.check).toBe('allowed-roots')
    expect(r[0]?.message).toContain('not below an allowed root')
  })

  it('refuses a path outside every root, naming the roots', () => {
    const r = checkSourcePath('/srv/x', { ...OPTS, allowedRoots: ['/opt', '/data'] })
    expect(r).toHaveLength(1)
    expect(r[0]?.message).toContain('/srv/x')
    expect(r[0]?.message).toContain('/opt, /data')
    expect(r[0]?.remedy).toContain('allowedRoots')
  })

  it('says so when no root is configured', () => {
    const r = checkSourcePath('/opt/app', { ...OPTS, allowedRoots: [] })
    expect(r[0]?.message).toContain('none configured')
  })

  it('does not accept a mere prefix as "below" a root', () => {
    const r = checkSourcePath('/optional/app', { ...OPTS, allowedRoots: ['/opt'] })
    expect(r).toHaveLength(1)
    expect(r[0]?.message).toContain('not below an allowed root')
  })

  it('refuses a source inside stateDir or backupDir', () => {
    const opts = { allowedRoots: ['/opt'], stateDir: '/opt/state', backupDir: '/opt/backups' }
    const inState = checkSourcePath('/opt/state/journals', opts)
    expect(inState).toHaveLength(1)
    expect(inState[0]?.message).toContain("overlaps shipshape's own directory /opt/state")
    const inBackup = checkSourcePath('/opt/backups', opts)
    expect(inBackup).toHaveLength(1)
    expect(inBackup[0]?.message).toContain('/opt/backups')
  })

  it('refuses a source that contains stateDir or backupDir', () => {
    const opts = { allowedRoots: ['/opt'], stateDir: '/opt/app/state', backupDir: '/srv/b' }
    const r = checkSourcePath('/opt/app', opts)
    expect(r).toHaveLength(1)
    expect(r[0]?.message).toContain('/opt/app/state')
    const both = checkSourcePath('/opt/x', {
      allowedRoots: ['/opt'],
      stateDir: '/opt/x/s',
      backupDir: '/opt/x/b',
    })
    expect(both.map((x) => x.message)).toEqual([
      expect.stringContaining('/opt/x/s'),
      expect.stringContaining('/opt/x/b'),
    ])
  })

  it('normalises the path before judging it', () => {
    const escaped = checkSourcePath('/opt/../etc/x', { ...OPTS, allowedRoots: ['/opt'] })
    expect(escaped).toHaveLength(1)
    expect(escaped[0]?.message).toContain('source /etc/x is a system path (/etc)')

    const dotted = checkSourcePath('/opt/./app//music', { ...OPTS, allowedRoots: ['/opt'] })
    expect(dotted).toEqual([])

    const rootItself = checkSourcePath('/opt/app/..', { ...OPTS, allowedRoots: ['/opt'] })
    expect(rootItself).toHaveLength(1)
    expect(rootItself[0]?.message).toContain('source /opt is not below')
  })

  it('reports every problem at once', () => {
    const r = checkSourcePath('/data/x', {
      allowedRoots: ['/opt'],
      stateDir: '/data',
      backupDir: '/data/x/b',
    })
    expect(r).toHaveLength(3)
  })
})

describe('judgeSource', () => {
  const source = '/opt/app/music'
  const dest = '/mnt/rd/music'

  it('accepts a real directory', () => {
    expect(judgeSource(source, dest, { kind: 'dir' })).toEqual({ migrated: false, refusals: [] })
  })

  it('reports migrated for the symlink to dest', () => {
    expect(judgeSource(source, dest, { kind: 'symlink', target: dest })).toEqual({
      migrated: true,
      refusals: [],
    })
    expect(judgeSource(source, dest, { kind: 'symlink', target: dest + '/' }).migrated).toBe(true)
  })

  it('resolves a relative symlink against the source directory', () => {
    const r = judgeSource(source, dest, { kind: 'symlink', target: '../../../mnt/rd/music' })
    expect(r).toEqual({ migrated: true, refusals: [] })
    // the same relative text from elsewhere does not reach dest
    const other = judgeSource('/opt/music', dest, { kind: 'symlink', target: '../../../mnt/x' })
    expect(other.migrated).toBe(false)
  })

  it('refuses a symlink that points elsewhere', () => {
    const r = judgeSource(source, dest, { kind: 'symlink', target: '/mnt/rd/other' })
    expect(r.migrated).toBe(false)
    expect(r.refusals).toHaveLength(1)
    expect(r.refusals[0]?.check).toBe('source')
    expect(r.refusals[0]?.message).toContain('/mnt/rd/other')
    expect(r.refusals[0]?.message).toContain(dest)
  })

  it('refuses a missing source', () => {
    const r = judgeSource(source, dest, { kind: 'missing' })
    expect(r.migrated).toBe(false)
    expect(r.refusals).toEqual([
      { check: 'source', message: expect.stringContaining('does not exist') },
    ])
    expect(r.refusals[0]?.message).toContain(source)
  })

  it('refuses a file', () => {
    const r = judgeSource(source, dest, { kind: 'other', what: 'regular file' })
    expect(r.migrated).toBe(false)
    expect(r.refusals).toHaveLength(1)
    expect(r.refusals[0]?.message).toContain('is a regular file, not a directory')
  })
})

describe('judgeMount', () => {
  const mount = '/mnt/rd'

  it('accepts a live mount', () => {
    expect(
      judgeMount(mount, 'fuse.rclone', {
        kind: 'live',
        fsType: 'fuse.rclone',
        allowOther: true,
        userId: 0,
      }),
    ).toEqual([])
  })

  it('refuses a FUSE mount of another user without allow_other (dockerd could not reach it)', () => {
    const r = judgeMount(mount, 'fuse.rclone', {
      kind: 'live',
      fsType: 'fuse.rclone',
      allowOther: false,
      userId: 1000,
    })
    expect(r).toHaveLength(1)
    expect(r[0]!.message).toMatch(/uid 1000 without allow_other/)
    expect(
      judgeMount(mount, 'fuse.rclone', {
        kind: 'live',
        fsType: 'fuse.rclone',
        allowOther: true,
        userId: 1000,
      }),
    ).toEqual([])
  })

  it('refuses a mount shipshape cannot read (EACCES)', () => {
    const r = judgeMount(mount, 'fuse.rclone', { kind: 'no-access', code: 'EACCES' })
    expect(r[0]!.remedy).toMatch(/allow-other/)
  })

  it('refuses a directory with nothing mounted, pointing at findmnt', () => {
    const r = judgeMount(mount, 'fuse.rclone', { kind: 'not-mounted' })
    expect(r).toHaveLength(1)
    expect(r[0]?.check).toBe('mount')
    expect(r[0]?.message).toContain('is not a mount point')
    expect(r[0]?.remedy).toContain(`findmnt ${mount}`)
  })

  it('refuses a dead FUSE mount, pointing at fusermount3 -uz', () => {
    const r = judgeMount(mount, 'fuse.rclone', { kind: 'enotconn' })
    expect(r).toHaveLength(1)
    expect(r[0]?.message).toContain('Transport endpoint is not connected')
    expect(r[0]?.remedy).toContain(`fusermount3 -uz ${mount}`)
  })

  it('refuses the wrong file system type, pointing at mountType', () => {
    const r = judgeMount(mount, 'fuse.rclone', { kind: 'wrong-type', fsType: 'ext4' })
    expect(r).toHaveLength(1)
    expect(r[0]?.message).toContain('mounted as ext4, not fuse.rclone')
    expect(r[0]?.remedy).toContain('mountType: ext4')
  })
})

describe('isRootUser', () => {
  it.each(['', '0', 'root', '0:0', 'root:root', '0:1000'])('%j is root', (u) => {
    expect(isRootUser(u)).toBe(true)
  })
  it.each(['1000', '1000:1000', 'app', 'app:app', 'rootless'])('%j is not root', (u) => {
    expect(isRootUser(u)).toBe(false)
  })
})

describe('judgeContainers', () => {
  const source = '/opt/app/music'
  const bind = (over: Partial<ContainerBinding>): ContainerBinding => ({
    id: 'c1',
    name: 'web',
    running: true,
    user: '',
    bindSource: source,
    destination: '/music',
    seesMount: false,
    ...over,
  })
  const mount = { path: '/mnt/rd', allowOther: false }

  it('accepts a container that binds the source itself or a directory inside it', () => {
    expect(judgeContainers(source, [bind({})], mount)).toEqual([])
    expect(judgeContainers(source, [bind({ bindSource: `${source}/albums` })], mount)).toEqual([])
  })

  it('refuses a container binding a parent of the source that does not see the mount', () => {
    const r = judgeContainers(
      source,
      [bind({ name: 'jelly', bindSource: '/opt/app', destination: '/data' })],
      mount,
    )
    expect(r).toHaveLength(1)
    expect(r[0]?.check).toBe('containers')
    expect(r[0]?.message).toContain('container jelly binds /opt/app')
    expect(r[0]?.message).toContain('/data')
    expect(r[0]?.message).toContain('/mnt/rd')
    expect(r[0]?.remedy).toContain('jelly')
  })

  it('refuses an ancestor further up too', () => {
    const r = judgeContainers(source, [bind({ bindSource: '/opt' })], mount)
    expect(r.map((x) => x.check)).toEqual(['containers'])
  })

  it('accepts a parent binding when the container also sees the mount', () => {
    expect(
      judgeContainers(source, [bind({ bindSource: '/opt/app', seesMount: true })], mount),
    ).toEqual([])
  })

  it('ignores a binding of a sibling that shares a prefix', () => {
    expect(judgeContainers(source, [bind({ bindSource: '/opt/ap' })], mount)).toEqual([])
  })

  it.each(['1000', '1000:1000', 'app'])('refuses non-root user %j without allow_other', (user) => {
    const r = judgeContainers(source, [bind({ name: 'nc', user })], mount)
    expect(r).toHaveLength(1)
    expect(r[0]?.check).toBe('allow-other')
    expect(r[0]?.message).toContain(`container nc runs as user ${user}`)
    expect(r[0]?.message).toContain('/mnt/rd')
    expect(r[0]?.remedy).toContain('--allow-other')
  })

  it.each(['', '0', 'root', '0:0'])('accepts root user %j without allow_other', (user) => {
    expect(judgeContainers(source, [bind({ user })], mount)).toEqual([])
  })

  it('accepts a non-root user when the mount has allow_other', () => {
    expect(
      judgeContainers(source, [bind({ user: '1000' })], { path: '/mnt/rd', allowOther: true }),
    ).toEqual([])
  })

  it('reports both problems of one container and each container', () => {
    const r = judgeContainers(
      source,
      [
        bind({ name: 'a', user: '1000', bindSource: '/opt/app' }),
        bind({ name: 'b', user: 'root' }),
        bind({ name: 'c', user: 'app' }),
      ],
      mount,
    )
    expect(r.map((x) => `${x.check}:${x.message.split(' ')[1]}`)).toEqual([
      'containers:a',
      'allow-other:a',
      'allow-other:c',
    ])
  })
})

describe('unknownRestartNames', () => {
  const containers = [
    { name: 'music-web-1', composeService: 'web' },
    { name: 'standalone', composeService: null },
  ]

  it('accepts container names and compose services', () => {
    expect(unknownRestartNames(['music-web-1', 'web', 'standalone'], containers)).toEqual([])
  })

  it('returns the names that match nothing, in order', () => {
    expect(unknownRestartNames(['db', 'web', 'music', 'worker'], containers)).toEqual([
      'db',
      'music',
      'worker',
    ])
  })

  it('returns every name when there is no container', () => {
    expect(unknownRestartNames(['web'], [])).toEqual(['web'])
  })
})

describe('judgeTree', () => {
  const entry = (p: string, kind: EntryKind): ManifestEntry => ({
    path: p,
    kind,
    size: 0,
    mode: 0o644,
    mtimeMs: 0,
    uid: 0,
    gid: 0,
    ...(kind === 'symlink' ? { linkname: 'target' } : {}),
  })
  const plain = [entry('a', 'dir'), entry('a/b.mp3', 'file')]

  it('accepts a plain tree', () => {
    expect(judgeTree(plain, [], false, '/mnt/rd')).toEqual([])
  })

  it('lists the problems', () => {
    const r = judgeTree(
      plain,
      [
        { path: 'run/sock', reason: 'socket' },
        { path: 'q', reason: 'fifo' },
      ],
      true,
      '/mnt/rd',
    )
    expect(r).toHaveLength(1)
    expect(r[0]?.check).toBe('source-tree')
    expect(r[0]?.message).toContain('2 entries')
    expect(r[0]?.message).toContain('run/sock: socket; q: fifo')
    expect(r[0]?.message).not.toContain('…')
  })

  it('says "entry" for one problem', () => {
    const r = judgeTree(plain, [{ path: 'dev/x', reason: 'device' }], true, '/mnt/rd')
    expect(r[0]?.message).toContain('1 entry that')
  })

  it('shows the first five problems and an ellipsis', () => {
    const problems = Array.from({ length: 7 }, (_, i) => ({ path: `p${i}`, reason: `r${i}` }))
    const r = judgeTree(plain, problems, true, '/mnt/rd')
    expect(r).toHaveLength(1)
    const m = r[0]?.message ?? ''
    expect(m).toContain('7 entries')
    for (let i = 0; i < 5; i++) expect(m).toContain(`p${i}: r${i}`)
    expect(m).not.toContain('p5')
    expect(m).not.toContain('p6')
    expect(m.endsWith('; …')).toBe(true)
  })

  it('shows exactly five problems without an ellipsis', () => {
    const problems = Array.from({ length: 5 }, (_, i) => ({ path: `p${i}`, reason: 'x' }))
    const m = judgeTree(plain, problems, true, '/mnt/rd')[0]?.message ?? ''
    expect(m).toContain('p4: x')
    expect(m).not.toContain('…')
  })

  it('refuses symlinks when the mount cannot keep them, naming them', () => {
    const tree = [...plain, entry('a/link', 'symlink'), entry('cover.jpg', 'symlink')]
    const r = judgeTree(tree, [], false, '/mnt/rd')
    expect(r).toHaveLength(1)
    expect(r[0]?.check).toBe('symlinks')
    expect(r[0]?.message).toContain('2 symlink(s) (a/link, cover.jpg)')
    expect(r[0]?.message).toContain('/mnt/rd cannot store symlinks')
    expect(r[0]?.remedy).toContain('--links')
  })

  it('names at most three symlinks', () => {
    const tree = ['l1', 'l2', 'l3', 'l4'].map((p) => entry(p, 'symlink'))
    const m = judgeTree(tree, [], false, '/mnt/rd')[0]?.message ?? ''
    expect(m).toContain('4 symlink(s) (l1, l2, l3, …)')
    expect(m).not.toContain('l4')
  })

  it('accepts symlinks when the mount keeps them', () => {
    const tree = [...plain, entry('a/link', 'symlink')]
    expect(judgeTree(tree, [], true, '/mnt/rd')).toEqual([])
  })

  it('reports problems and symlinks together', () => {
    const tree = [...plain, entry('a/link', 'symlink')]
    const r = judgeTree(tree, [{ path: 's', reason: 'socket' }], false, '/mnt/rd')
    expect(r.map((x) => x.check)).toEqual(['source-tree', 'symlinks'])
  })
})

describe('judgeSpace', () => {
  it('accepts enough or exactly enough room', () => {
    expect(judgeSpace({ needBytes: 1e9, freeBytes: 2e9, dir: '/var/backups' })).toEqual([])
    expect(judgeSpace({ needBytes: 1e9, freeBytes: 1e9, dir: '/var/backups' })).toEqual([])
  })

  it('refuses too little room, with both sizes and the directory', () => {
    const r = judgeSpace({ needBytes: 8.77e9, freeBytes: 1e9 - 1, dir: '/var/backups/shipshape' })
    expect(r).toHaveLength(1)
    expect(r[0]?.check).toBe('space')
    expect(r[0]?.message).toContain('8.77 GB')
    expect(r[0]?.message).toContain('1 GB')
    expect(r[0]?.message).toContain('/var/backups/shipshape')
    expect(r[0]?.remedy).toContain('backupDir')
  })

  it('refuses one byte short', () => {
    expect(judgeSpace({ needBytes: 1001, freeBytes: 1000, dir: '/b' })).toHaveLength(1)
  })
})
