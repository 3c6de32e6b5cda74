// The synchronous tar reader behind lib/docker/archive.ts: formats (ustar prefix, PAX, GNU long
// names, base-256), chunk boundaries anywhere, pauses, and what it refuses.
import { describe, expect, it } from 'vitest'
import { TarWalker, type Sink, type TarHeader } from '../../../lib/docker/tarwalk.js'
import { tarOf } from '../../support/tar.js'

/** One 512-byte header; fields as in the ustar layout; the checksum computed. */
function header(f: {
  name: string
  size?: number
  type?: string
  linkname?: string
  prefix?: string
  magic?: 'posix' | 'gnu' | 'none'
  sizeField?: Buffer
  uid?: number
}): Buffer {
  const b = Buffer.alloc(512)
  b.write(f.name, 0, 100, 'utf8')
  b.write('0000644\0', 100, 'latin1')
  b.write(`${(f.uid ?? 0).toString(8).padStart(7, '0')}\0`, 108, 'latin1')
  b.write('0000000\0', 116, 'latin1')
  if (f.sizeField) f.sizeField.copy(b, 124)
  else b.write(`${(f.size ?? 0).toString(8).padStart(11, '0')}\0`, 124, 'latin1')
  b.write(`${(1_700_000_000).toString(8).padStart(11, '0')}\0`, 136, 'latin1')
  b.write(f.type ?? '0', 156, 'latin1')
  if (f.linkname) b.write(f.linkname, 157, 100, 'utf8')
  const magic = f.magic ?? 'posix'
  if (magic === 'posix') b.write('ustar\u000000', 257, 'latin1')
  if (magic === 'gnu') b.write('ustar  \u0000', 257, 'latin1')
  if (f.prefix) b.write(f.prefix, 345, 155, 'utf8')
  b.write('        ', 148, 'latin1')
  let sum = 0
  for (const x of b) sum += x
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1')
  return b
}

const body = (content: Buffer | string): Buffer => {
  const c = Buffer.from(content)
  return Buffer.concat([c, Buffer.alloc((512 - (c.length % 512)) % 512)])
}
const pax = (records: Record<string, string>): string =>
  Object.entries(records)
    .map(([k, v]) => {
      const rec = ` ${k}=${v}\n`
      const bytes = (t: string) => Buffer.byteLength(t)
      let len = bytes(rec) + 1
      while (bytes(`${len}${rec}`) !== len) len++
      return `${len}${rec}`
    })
    .join('')
// (the PAX length counts bytes: 'файл' is 8 of them)
const EOF = Buffer.alloc(1024)

interface Seen {
  h: TarHeader
  body: string
}

/** Walks buf delivered `step` bytes at a time; the entries and their bodies. */
async function walk(buf: Buffer, step = buf.length): Promise<Seen[]> {
  const seen: Seen[] = []
  const w = new TarWalker((h) => {
    const parts: Buffer[] = []
    return {
      write: (c) => void parts.push(Buffer.from(c)),
      end: () => void seen.push({ h, body: Buffer.concat(parts).toString() }),
    }
  })
  for (let i = 0; i < buf.length; i += step) {
    const wait = w.push(buf.subarray(i, i + step))
    if (wait) await wait
  }
  w.end()
  return seen
}

describe('TarWalker', () => {
  it('reads what tar-stream packs, the same at any chunk boundary, PAX names over 100 bytes', async () => {
    const long = `d/${'x'.repeat(150)}/file.txt`
    const tar = await tarOf([
      { name: 'dir/', type: 'directory' },
      { name: 'dir/a.txt', content: 'hello' },
      { name: long, content: 'long one', uid: 1234 },
      { name: 'ln', type: 'symlink', linkname: `../${'y'.repeat(120)}` },
      { name: 'hard', type: 'link', linkname: 'dir/a.txt' },
      { name: 'empty', content: '' },
      { name: 'big', content: Buffer.alloc(70_000, 0x41) },
    ])
    const whole = await walk(tar)
    expect(whole.map((s) => [s.h.name, s.h.type, s.h.size, s.body.length])).toEqual([
      ['dir/', 'directory', 0, 0],
      ['dir/a.txt', 'file', 5, 5],
      [long, 'file', 8, 8],
      ['ln', 'symlink', 0, 0],
      ['hard', 'link', 0, 0],
      ['empty', 'file', 0, 0],
      ['big', 'file', 70_000, 70_000],
    ])
    expect(whole[1]!.body).toBe('hello')
    expect(whole[2]!.h.uid).toBe(1234)
    expect(whole[3]!.h.linkname).toBe(`../${'y'.repeat(120)}`)
    expect(whole[4]!.h.linkname).toBe('dir/a.txt')
    expect(whole[1]!.h.mtime.getTime()).toBe(1_700_000_000_000)
    for (const step of [1, 7, 511, 512, 513, 4096])
      expect(await walk(tar, step), `step ${step}`).toEqual(whole)
  })

  it('ustar prefix, GNU long names, PAX global and per-entry records, base-256 sizes', async () => {
    const gnuName = `gnu/${'n'.repeat(200)}`
    const base256 = Buffer.alloc(12)
    base256[0] = 0x80
    base256.writeUInt32BE(600, 8)
    const tar = Buffer.concat([
      header({ name: 'file.py', prefix: 'usr/lib/python3', size: 2 }),
      body('ok'),
      header({ name: '././@LongLink', type: 'L', size: gnuName.length + 1, magic: 'gnu' }),
      body(`${gnuName}\0`),
      header({ name: 'truncated-name', magic: 'gnu', size: 1 }),
      body('g'),
      header({ name: 'pax_global_header', type: 'g', size: pax({ uid: '77' }).length }),
      body(pax({ uid: '77' })),
      header({ name: 'PaxHeader/x', type: 'x', size: pax({ path: 'from/pax', size: '3' }).length }),
      body(pax({ path: 'from/pax', size: '3' })),
      header({ name: 'short', size: 0 }),
      body('abc'),
      header({ name: 'b256', sizeField: base256 }),
      body(Buffer.alloc(600, 0x62)),
      EOF,
    ])
    const seen = await walk(tar, 100)
    expect(seen.map((s) => [s.h.name, s.h.size, s.h.uid, s.body.length])).toEqual([
      ['usr/lib/python3/file.py', 2, 0, 2],
      [gnuName, 1, 0, 1],
      // a global header applies to nothing (as the engine's reader, Go's archive/tar, has it)
      ['from/pax', 3, 0, 3],
      ['b256', 600, 0, 600],
    ])
    expect(seen[2]!.body).toBe('abc')
  })

  it('reads entries the way the engine extracts them', async () => {
    const paxed = pax({ path: 'app/файл' })
    const tar = Buffer.concat([
      // Go writes the non-ASCII name as 'app/' + typeflag '0', the real one in PAX: a file
      header({ name: 'PaxHeader/x', type: 'x', size: Buffer.byteLength(paxed) }),
      body(paxed),
      header({ name: 'app/', size: 4 }),
      body('data'),
      header({ name: 'old-dir/', type: '\0' }), // NUL typeflag, name ending in '/': a directory
      header({ name: 'fifo', type: '6', size: 512 }), // no body, whatever its size says
      header({ name: 'after-fifo', size: 1 }),
      body('z'),
      header({ name: 'neg-mtime' }),
      EOF,
      header({ name: 'after-the-end', size: 1 }), // never extracted by the engine
      body('q'),
    ])
    tar.fill(0xff, 512 * 8 + 136, 512 * 8 + 148) // neg-mtime: mtime -1 (base-256)
    tar.write('        ', 512 * 8 + 148, 'latin1')
    let sum = 0
    for (const x of tar.subarray(512 * 8, 512 * 9)) sum += x
    tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, 512 * 8 + 148, 'latin1')
    const seen = await walk(tar, 300)
    expect(seen.map((s) => [s.h.name, s.h.type, s.h.size, s.body])).toEqual([
      ['app/файл', 'file', 4, 'data'],
      ['old-dir/', 'directory', 0, ''],
      ['fifo', 'other', 0, ''],
      ['after-fifo', 'file', 1, 'z'],
      ['neg-mtime', 'file', 0, ''],
    ])
    expect(seen[4]!.h.mtime.getTime()).toBe(-1000)
    // one zero block, then a header: the engine refuses that layer
    await expect(
      walk(Buffer.concat([Buffer.alloc(512), header({ name: 'x', size: 0 }), EOF])),
    ).rejects.toThrow(/after a zero block/)
  })

  it('waits for a pending entry or write, in order', async () => {
    const tar = await tarOf([
      { name: 'a', content: 'A'.repeat(2000) },
      { name: 'b', content: 'B' },
    ])
    const log: string[] = []
    const tick = () => new Promise<void>((r) => setTimeout(r, 5))
    const w = new TarWalker(async (h) => {
      await tick()
      log.push(`entry ${h.name}`)
      const sink: Sink = {
        write: async (c) => {
          await tick()
          log.push(`write ${h.name} ${c.length}`)
        },
        end: async () => {
          await tick()
          log.push(`end ${h.name}`)
        },
      }
      return sink
    })
    await w.push(tar)
    w.end()
    expect(log).toEqual(['entry a', 'write a 2000', 'end a', 'entry b', 'write b 1', 'end b'])
  })

  it('refuses a bad checksum, a header that is not ustar, and input that stops inside an entry', async () => {
    const bad = header({ name: 'f', size: 1 })
    bad[0] = 0x67 // the name changed, the checksum not
    await expect(walk(Buffer.concat([bad, body('x')]))).rejects.toThrow(/checksum/)
    await expect(walk(Buffer.concat([header({ name: 'v7', magic: 'none' }), EOF]))).rejects.toThrow(
      /not ustar/,
    )
    const ok = Buffer.concat([header({ name: 'f', size: 1000 }), body('x'.repeat(1000))])
    await expect(walk(ok.subarray(0, 700))).rejects.toThrow(/unexpected end of data/)
    await expect(walk(ok.subarray(0, 300))).rejects.toThrow(
      /unexpected end of data \(in a header\)/,
    )
    expect(await walk(Buffer.concat([ok, EOF]))).toHaveLength(1)
  })

  it('rethrows what onEntry or a sink throws', async () => {
    const tar = await tarOf([{ name: 'a', content: 'x' }])
    const boom = new Error('boom')
    const w = new TarWalker(() => {
      throw boom
    })
    expect(() => w.push(tar)).toThrow(boom)
    const w2 = new TarWalker(() => ({ write: () => Promise.reject(boom), end() {} }))
    await expect(w2.push(tar)).rejects.toBe(boom)
  })
})
