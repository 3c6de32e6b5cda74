import { describe, expect, it } from 'vitest'
import { bytesToName, isUtf8Name, nameToBytes, showName } from '../../../lib/host/names.js'
import { tarHeader } from '../../../lib/assets/tarheader.js'
import { TarWalker, type TarHeader } from '../../../lib/docker/tarwalk.js'
import { entryWrittenSince, writtenSince } from '../../../lib/assets/finalize.js'
import type { ManifestEntry } from '../../../lib/shared/manifest-types.js'

const hex = (b: Buffer) => b.toString('hex')

describe('byte names (surrogate escape)', () => {
  const cases: [string, Buffer][] = [
    ['ascii', Buffer.from('plain.mp3')],
    ['utf8', Buffer.from('Ça va — 😀.mp3')],
    ['latin1', Buffer.from([0x42, 0x6a, 0xf6, 0x72, 0x6b])], // 'Björk' in Latin-1
    ['lone continuation', Buffer.from([0x61, 0x80, 0x62])],
    ['truncated sequence', Buffer.from([0x61, 0xe2, 0x82])],
    ['overlong', Buffer.from([0xc0, 0xaf])],
    ['encoded surrogate', Buffer.from([0xed, 0xa0, 0x80])],
    ['past U+10FFFF', Buffer.from([0xf4, 0x90, 0x80, 0x80])],
    ['a real U+FFFD and a bad byte', Buffer.from([0xef, 0xbf, 0xbd, 0xff])],
    ['every high byte', Buffer.from(Array.from({ length: 128 }, (_, i) => 0x80 + i))],
  ]

  it.each(cases)('%s: bytes → name → bytes is the identity', (_, bytes) => {
    const name = bytesToName(bytes)
    expect(hex(nameToBytes(name))).toBe(hex(bytes))
    // and through JSON (manifests, journals, the copy log)
    expect(hex(nameToBytes(JSON.parse(JSON.stringify(name)) as string))).toBe(hex(bytes))
  })

  it('is the plain string for valid UTF-8, and says which names are not', () => {
    expect(bytesToName(Buffer.from('Ça va.mp3'))).toBe('Ça va.mp3')
    expect(isUtf8Name('Ça va 😀')).toBe(true)
    expect(isUtf8Name(bytesToName(Buffer.from([0x42, 0xf6])))).toBe(false)
    // a low surrogate inside a real pair is a character, not an escaped byte
    expect(isUtf8Name('\u{1f480}')).toBe(true)
  })

  it('refuses a lone surrogate no byte string produces', () => {
    expect(() => nameToBytes('a\ud800b')).toThrow(/lone surrogate/)
    expect(() => nameToBytes('a\udc10b')).toThrow(/lone surrogate/)
  })

  it('escapes C1 controls and bidi overrides that would spoof a log line', () => {
    expect(showName('a\u202eb')).toBe('a\\u202eb')
    expect(showName('a\u0085b')).toBe('a\\x85b')
  })

  it('shows escaped bytes and control characters as \\xNN, on one line', () => {
    expect(showName(bytesToName(Buffer.from([0x42, 0x6a, 0xf6, 0x72, 0x6b])))).toBe('Bj\\xf6rk')
    expect(showName('new\nline')).toBe('new\\x0aline')
    expect(showName('back\\slash')).toBe('back\\\\slash')
    expect(showName('😀 ok')).toBe('😀 ok')
  })
})

describe('tar headers of names that are not UTF-8', () => {
  const entry = (p: string, over: Partial<ManifestEntry> = {}): ManifestEntry => ({
    path: p,
    kind: 'file',
    size: 0,
    mode: 0o644,
    mtimeMs: 1_600_000_000_123,
    uid: 0,
    gid: 0,
    ...over,
  })

  /** The headers a reader sees (an entry's body is not there: only headers are read). */
  function read(buf: Buffer): TarHeader[] {
    const seen: TarHeader[] = []
    const w = new TarWalker((h) => {
      seen.push(h)
      return null
    }, bytesToName)
    void w.push(buf)
    return seen
  }

  it('keeps a short name in the ustar field as its bytes, no PAX header', () => {
    const name = bytesToName(Buffer.from([0x63, 0x61, 0x66, 0xe9])) // 'café' in Latin-1
    const h = tarHeader(entry(name, { mtimeMs: 1_600_000_000_000 }))
    expect(h.length).toBe(512)
    expect(hex(h.subarray(0, 4))).toBe('636166e9')
    expect(read(h)[0]!.name).toBe(name)
  })

  it('puts a long one in a PAX path with hdrcharset=BINARY, read back byte for byte', () => {
    const bytes = Buffer.concat([Buffer.from('d'.repeat(120)), Buffer.from([0xff, 0xfe])])
    const name = bytesToName(bytes)
    const h = tarHeader(entry(name))
    expect(h.includes(Buffer.from('hdrcharset=BINARY'))).toBe(true)
    expect(h.includes(bytes)).toBe(true)
    const [got] = read(h)
    expect(hex(nameToBytes(got!.name))).toBe(hex(bytes))
    expect(got!.mtimeMs).toBe(1_600_000_000_123)
  })

  it('a long directory name without a slash goes in PAX, never an empty name field', () => {
    const h = tarHeader(entry('d'.repeat(120), { kind: 'dir' }))
    const [got] = read(h)
    expect(got!.name.replace(/\/$/, '')).toBe('d'.repeat(120))
    expect(got!.type).toBe('directory')
  })

  it('an mtime past the 11 octal digits of ustar (year 2242+) is kept exactly in PAX', () => {
    const far = 2 ** 34 * 1000 // whole seconds, past 0o77777777777
    const [got] = read(tarHeader(entry('far.txt', { mtimeMs: far })))
    expect(got!.mtimeMs).toBe(far)
  })

  it('a long UTF-8 name has no BINARY record; sizes past 8 GiB go in PAX', () => {
    const h = tarHeader(entry('é'.repeat(80), { size: 9 * 1024 ** 3 }))
    expect(h.includes(Buffer.from('hdrcharset'))).toBe(false)
    const [got] = read(h)
    expect(got!.name).toBe('é'.repeat(80))
    expect(got!.size).toBe(9 * 1024 ** 3)
  })
})

describe('what keeps a kept original (finalize, prune)', () => {
  const e = (p: string, over: Partial<ManifestEntry> = {}): ManifestEntry => ({
    path: p,
    kind: 'file',
    size: 10,
    mode: 0o644,
    mtimeMs: 1000,
    uid: 0,
    gid: 0,
    ino: '77',
    ...over,
  })

  it('nothing when the original is as the manifest has it, or has lost entries', () => {
    const m = [e('a'), e('d', { kind: 'dir', size: 0 }), e('d/b', { ino: '78' })]
    expect(writtenSince(m, { entries: m, problems: [] })).toEqual([])
    expect(writtenSince(m, { entries: [m[0]!], problems: [] })).toEqual([])
  })

  it('an entry added, grown, newer, replaced or of another kind; a special file', () => {
    const m = [e('a'), e('b', { ino: '2' }), e('c', { ino: '3' }), e('d', { ino: '4' })]
    const now = [
      e('a', { size: 11 }),
      e('b', { ino: '2', mtimeMs: 2000 }),
      e('c', { ino: '99' }),
      e('d', { ino: '4', kind: 'dir', size: 0 }),
      e('new.txt', { ino: '5' }),
    ]
    const why = writtenSince(m, { entries: now, problems: [{ path: 'p', reason: 'fifo: …' }] })
    expect(why).toEqual([
      'a: size 10 → 11',
      'b: written after the migration (newer mtime)',
      'c: replaced after the migration (another inode)',
      'd: now a dir, was a file',
      'new.txt: added after the migration',
      'p: fifo: …',
    ])
  })

  it('a same-size write with the mtime put back still shows: the ctime moved', () => {
    expect(
      entryWrittenSince(e('a', { ctimeNs: '100' }), {
        kind: 'file',
        size: 10,
        mtimeMs: 1000,
        ino: '77',
        ctimeNs: '200',
      }),
    ).toBe('changed after the migration (ctime)')
  })

  it('an older mtime of the same file is not a write (a restore keeps mtimes)', () => {
    expect(entryWrittenSince(e('a'), { kind: 'file', size: 10, mtimeMs: 500, ino: '77' })).toBe(
      null,
    )
  })
})
