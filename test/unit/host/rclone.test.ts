import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { ManifestEntry } from '../../../lib/shared/manifest-types.js'
import {
  displayRemote,
  isNotConnected,
  LsjsonReader,
  mountRemote,
  redactRcloneText,
  remoteJoin,
  remoteOfMount,
  type RemoteListing,
} from '../../../lib/host/rclone.js'
import { compareRemote } from '../../../lib/assets/compare.js'
import type { MountEntry } from '../../../lib/host/mountinfo.js'

const sha = (s: string) => createHash('sha256').update(s).digest('hex')

function file(path: string, content: string): ManifestEntry {
  return {
    path,
    kind: 'file',
    size: Buffer.byteLength(content),
    mode: 0o644,
    mtimeMs: 0,
    uid: 0,
    gid: 0,
    hashes: { sha256: sha(content) },
  }
}
const dir = (path: string): ManifestEntry => ({
  path,
  kind: 'dir',
  size: 0,
  mode: 0o755,
  mtimeMs: 0,
  uid: 0,
  gid: 0,
})

describe('remoteJoin', () => {
  it.each([
    ['remote:', 'a/b', 'remote:a/b'],
    ['remote:base', 'a/b', 'remote:base/a/b'],
    ['remote:base/', 'a/b', 'remote:base/a/b'],
    ['remote:base//', '/a//b/', 'remote:base/a/b'],
    [':local:/x', 'a/b', ':local:/x/a/b'],
    [':local:/', 'a', ':local:/a'],
    ['remote:base', '', 'remote:base'],
    ['remote:base', '.', 'remote:base'],
    ['remote:', './a', 'remote:a'],
    ['/plain/dir', 'a', '/plain/dir/a'],
    [
      ":s3,endpoint='http://h:9000/',secret_access_key=SK:bucket",
      'a b',
      ":s3,endpoint='http://h:9000/',secret_access_key=SK:bucket/a b",
    ],
    ['remote,shared_with_me:', 'x', 'remote,shared_with_me:x'],
  ])('%s + %s → %s', (remote, rel, want) => {
    expect(remoteJoin(remote, rel)).toBe(want)
  })
  it('refuses ..', () => {
    expect(() => remoteJoin('remote:a', '../b')).toThrow(/\.\./)
  })
})

describe('displayRemote', () => {
  it.each([
    ['remote:path', 'remote:path'],
    [':local:/tmp/x', ':local:/tmp/x'],
    ['/plain/path', '/plain/path'],
    [
      ':s3,access_key_id=AK,secret_access_key=SK:bucket/x',
      ':s3,access_key_id=***,secret_access_key=***:bucket/x',
    ],
    ['remote,password=hunter2:path', 'remote,password=***:path'],
    ["remote,password='a:b,c''d':path", 'remote,password=***:path'],
    ['remote,pass="x""y":p', 'remote,pass=***:p'],
    ['remote,shared_with_me:p', 'remote,shared_with_me:p'],
    [":webdav,url='https://u:pw@dav.example/x':dir", ':webdav,url=***:dir'],
    [":crypt,remote=':s3,secret_access_key=SK:b',password=PW:", ':crypt,remote=***,password=***:'],
    [':http:https://user:pw@host/dir', ':http:https://***@host/dir'],
    ['https://user:pw@host/dir', 'https://***@host/dir'],
  ])('%s → %s', (raw, want) => {
    expect(displayRemote(raw)).toBe(want)
  })
  it('never shows a secret of an unterminated quote', () => {
    expect(displayRemote("remote,password='hunter2")).not.toContain('hunter2')
  })
})

describe('redactRcloneText', () => {
  it('redacts the raw spec and nested connection strings rclone echoes', () => {
    const spec = 'nosuch,password=hunter2:path'
    const err = `2026/11/25 15:10:07 Failed to create file system for "${spec}": didn't find section in config file`
    const out = redactRcloneText(err, spec)
    expect(out).not.toContain('hunter2')
    expect(out).toContain('"nosuch,password=***:path"')
    expect(redactRcloneText('for ":s3,secret_access_key=SK,x=\'q\':b"')).toBe(
      'for ":s3,secret_access_key=***,x=***:b"',
    )
  })
})

describe('remoteOfMount', () => {
  const m = (source: string, fsType = 'fuse.rclone'): MountEntry => ({
    mountPoint: '/mnt/rd',
    fsType,
    source,
    options: [],
    superOptions: [],
    device: '0:45',
  })
  it('takes the spec from the source of a fuse.rclone entry', () => {
    expect(remoteOfMount(m(':local:/tmp/rx/remote'))).toBe(':local:/tmp/rx/remote')
    expect(remoteOfMount(m('rd:'))).toBe('rd:')
    expect(remoteOfMount(m('gdrive:media/music'))).toBe('gdrive:media/music')
    expect(remoteOfMount(m('/dev/vdb', 'ext4'))).toBeNull()
  })
  it('refuses what rclone shows for connection-string remotes and --devname', () => {
    expect(remoteOfMount(m(':local{gDIhX}:/tmp/r'))).toBeNull()
    expect(mountRemote(m(':s3{AbCdE}:bucket'))).toMatchObject({
      remote: null,
      reason: expect.stringContaining('connection-string'),
    })
    expect(remoteOfMount(m('custom name'))).toBeNull()
  })
})

describe('isNotConnected', () => {
  it('is true for ENOTCONN only', () => {
    expect(isNotConnected(Object.assign(new Error('x'), { code: 'ENOTCONN' }))).toBe(true)
    expect(isNotConnected(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBe(false)
    expect(isNotConnected(null)).toBe(false)
  })
})

describe('LsjsonReader', () => {
  const lines = [
    '[',
    '{"Path":"d","Name":"d","Size":-1,"ModTime":"2026-11-25T15:10:07.637732848Z","IsDir":true},',
    `{"Path":"d/a b.txt","Name":"a b.txt","Size":5,"ModTime":"2026-11-25T16:10:07.5+01:00","IsDir":false,"Hashes":{"sha256":"${sha('hello').toUpperCase()}"}},`,
    '{"Path":"line\\nbreak","Name":"x","Size":0,"ModTime":"bad","IsDir":false,"Hashes":{"sha256":""}}',
    ']',
  ]
  it('parses rclone output line by line', () => {
    const r = new LsjsonReader('sha256')
    for (const l of lines) r.line(l)
    const m = r.end()
    expect(m.get('d')).toEqual({ size: 0, isDir: true, mtimeMs: 1795619407637 })
    expect(m.get('d/a b.txt')).toEqual({
      size: 5,
      isDir: false,
      mtimeMs: Date.parse('2026-11-25T15:10:07.5Z'),
      hash: sha('hello'),
    })
    expect(m.get('line\nbreak')).toEqual({ size: 0, isDir: false, mtimeMs: 0 })
  })
  it('copes with pretty-printed JSON and an empty listing', () => {
    const r = new LsjsonReader('md5')
    const pretty = JSON.stringify(
      [
        {
          Path: 'x',
          Size: 1,
          IsDir: false,
          ModTime: '2020-01-01T00:00:00Z',
          Hashes: { md5: 'ab' },
        },
      ],
      null,
      2,
    )
    for (const l of pretty.split('\n')) r.line(l)
    expect(r.end().get('x')?.hash).toBe('ab')
    const e = new LsjsonReader()
    e.line('[]')
    expect(e.end().size).toBe(0)
  })
  it('fails on truncated output', () => {
    const r = new LsjsonReader()
    r.line('[')
    r.line('{"Path":"x","Size":1,')
    expect(() => r.end()).toThrow(/ended inside/)
  })
})

describe('compareRemote', () => {
  const expected = [
    dir('d'),
    dir('empty'),
    file('d/a', 'hello'),
    file('b', 'world!'),
    file('c', 'cccc'),
    file('g', 'gg'),
    file('h', 'hh'),
    file('caf\u00e9', 'nfc'),
    { ...dir('l'), kind: 'symlink' as const, linkname: 'x' },
  ]
  const listing: RemoteListing = new Map([
    ['d', { size: 0, isDir: true, mtimeMs: 0 }],
    ['d/a', { size: 5, isDir: false, mtimeMs: 0, hash: sha('hello') }],
    ['b', { size: 3, isDir: false, mtimeMs: 0 }],
    ['c', { size: 4, isDir: false, mtimeMs: 0, hash: sha('CCCC') }],
    ['h', { size: 2, isDir: false, mtimeMs: 0 }],
    ['cafe\u0301', { size: 3, isDir: false, mtimeMs: 0, hash: sha('nfc') }],
  ])
  it('sorts files into missing, wrong size, wrong hash, unhashed', () => {
    const c = compareRemote(expected, listing, 'sha256')
    expect(c).toEqual({
      files: 6,
      ok: 3,
      missing: ['g'],
      wrongSize: ['b'],
      partial: ['b'],
      wrongHash: ['c'],
      noHash: ['h'],
      missingDirs: [],
      pending: 3,
    })
  })
  it('compares sizes only without a hash; dirs only when asked', () => {
    const c = compareRemote(expected, listing, undefined, { checkDirs: true })
    expect(c.wrongHash).toEqual([])
    expect(c.noHash).toEqual([])
    expect(c.missingDirs).toEqual(['empty'])
    expect(c.pending).toBe(3)
  })
  it('a bigger file is wrong, not partial; a dir where a file belongs is missing', () => {
    const c = compareRemote(
      [file('x', 'ab'), file('y', 'ab')],
      new Map([
        ['x', { size: 9, isDir: false, mtimeMs: 0 }],
        ['y', { size: 0, isDir: true, mtimeMs: 0 }],
      ]),
    )
    expect(c).toMatchObject({ wrongSize: ['x'], partial: [], missing: ['y'], pending: 2 })
  })
})
