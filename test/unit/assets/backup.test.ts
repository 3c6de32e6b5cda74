import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import { appendFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  BackupCorruptError,
  BackupMismatchError,
  chooseCompression,
  parsePaxTime,
  paxTime,
  sampleCompressibility,
  sampleWindows,
  verifyBackup,
  writeBackup,
  zstdAvailable,
  type Compression,
} from '../../../lib/assets/backup.js'
import {
  compareEntries,
  comparePaths,
  manifestOf,
  readManifest,
  walkTree,
  writeManifest,
} from '../../../lib/assets/manifest.js'
import type { ManifestEntry } from '../../../lib/shared/manifest-types.js'

const run = promisify(execFile)
const MiB = 1024 * 1024

let tmp: string
let src: string
let hasZstd = false

/** 2001-02-03T04:05:06.789Z and one with whole seconds */
const OLD_MS = 981173106789
const OLD_WHOLE_MS = 946684800000
/** +0.5 ms: seconds as a double land a few ns BELOW most .xyz values, a millisecond early */
const setMtime = (p: string, ms: number) => fs.lutimes(p, (ms + 0.5) / 1000, (ms + 0.5) / 1000)

/** Every regular file's sha256, read whole and hashed here, not by the code under test. */
async function sha256Of(file: string): Promise<string> {
  return createHash('sha256')
    .update(await fs.readFile(file))
    .digest('hex')
}

/** Depth-first, siblings in byte order of their UTF-8 names: compared here name by name. */
function treeOrder(a: string, b: string): number {
  const x = a.split('/')
  const y = b.split('/')
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const c = Buffer.compare(Buffer.from(x[i]!), Buffer.from(y[i]!))
    if (c) return c
  }
  return x.length - y.length
}

/** The fixture tree: awkward names, modes, old mtimes, a symlink, empty things. */
async function makeTree(root: string): Promise<void> {
  await fs.mkdir(root)
  const w = (name: string, content: string | Buffer, mode = 0o644) =>
    fs.writeFile(path.join(root, name), content, { mode })
  await w('a b.txt', 'space\n')
  await w('caf\u00e9.txt', 'NFC\n')
  await w('cafe\u0301.txt', 'NFD\n')
  await w('-leading-dash', 'dash\n')
  await w('new\nline.txt', 'newline\n')
  await w('zero.bin', '')
  await w('random.bin', randomBytes(3 * MiB + 123))
  await w('exact.bin', randomBytes(MiB)) // exactly one read chunk
  await w('\uff46ullwidth.txt', 'BMP above the surrogates\n')
  await w('\u{1f600}.txt', 'astral\n')
  await w('private.txt', 'secret\n', 0o600)
  await w('script.sh', '#!/bin/sh\necho hi\n', 0o755)
  await fs.chmod(path.join(root, 'private.txt'), 0o600)
  await fs.chmod(path.join(root, 'script.sh'), 0o755)
  await fs.mkdir(path.join(root, 'empty-dir'))
  await fs.mkdir(path.join(root, 'a'))
  await w('a/x', 'x\n')
  await w('a-b', 'sorts between a and a/x\n')
  await fs.mkdir(path.join(root, 'sub'))
  await w('sub/inner.txt', 'inner '.repeat(1000))
  await fs.symlink('sub/inner.txt', path.join(root, 'link'))
  await setMtime(path.join(root, 'random.bin'), OLD_MS)
  await setMtime(path.join(root, 'private.txt'), OLD_WHOLE_MS)
  await setMtime(path.join(root, 'link'), OLD_MS + 1)
  await setMtime(path.join(root, 'sub'), OLD_MS + 2) // after its children: creating them sets it
}

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'shipshape-backup-'))
  src = path.join(tmp, 'src')
  await makeTree(src)
  hasZstd = await zstdAvailable()
  if (!hasZstd) console.warn('\n!!! zstd is not installed: the zstd round trip is SKIPPED !!!\n')
})

afterAll(async () => {
  if (tmp) await fs.rm(tmp, { recursive: true, force: true })
})

describe('walkTree', () => {
  it('lists every entry in byte order of the UTF-8 paths, parents first', async () => {
    const { entries, problems } = await walkTree(src)
    expect(problems).toEqual([])
    const paths = entries.map((e) => e.path)
    const expected = [
      '-leading-dash',
      'a',
      'a/x',
      'a b.txt',
      'a-b',
      'cafe\u0301.txt', // NFD: 'e' 0x65 < 0xc3, the first byte of NFC's é
      'caf\u00e9.txt',
      'empty-dir',
      'exact.bin',
      'link',
      'new\nline.txt',
      'private.txt',
      'random.bin',
      'script.sh',
      'sub',
      'sub/inner.txt',
      'zero.bin',
      '\uff46ullwidth.txt',
      '\u{1f600}.txt',
    ]
    expect([...expected].sort(treeOrder)).toEqual(expected) // the list above is in that order
    expect(paths).toEqual(expected)
    // UTF-16 order would put the astral character first: byte order does not
    expect('\u{1f600}' < '\uff46').toBe(true)
    expect(comparePaths('\u{1f600}', '\uff46')).toBeGreaterThan(0)
    for (let i = 1; i < entries.length; i++) {
      expect(comparePaths(paths[i - 1]!, paths[i]!)).toBeLessThan(0)
    }
  })

  it('records kind, size, mode, mtime (ms), owner and symlink targets as lstat sees them', async () => {
    const { entries } = await walkTree(src)
    const by = new Map(entries.map((e) => [e.path, e]))
    for (const e of entries) {
      const st = await fs.lstat(path.join(src, e.path), { bigint: true })
      expect(e.mode).toBe(Number(st.mode & 0o7777n))
      expect(e.uid).toBe(Number(st.uid))
      expect(e.gid).toBe(Number(st.gid))
      expect(e.mtimeMs).toBe(Number(st.mtimeNs / 1_000_000n))
      expect(e.size).toBe(e.kind === 'file' ? Number(st.size) : 0)
      expect(e.hashes).toBeUndefined()
    }
    expect(by.get('random.bin')).toMatchObject({
      kind: 'file',
      size: 3 * MiB + 123,
      mtimeMs: OLD_MS,
    })
    expect(by.get('private.txt')).toMatchObject({ mode: 0o600, mtimeMs: OLD_WHOLE_MS })
    expect(by.get('script.sh')).toMatchObject({ mode: 0o755 })
    expect(by.get('zero.bin')).toMatchObject({ kind: 'file', size: 0 })
    expect(by.get('empty-dir')).toMatchObject({ kind: 'dir', size: 0 })
    expect(by.get('sub')).toMatchObject({ kind: 'dir', mtimeMs: OLD_MS + 2 })
    expect(by.get('link')).toMatchObject({
      kind: 'symlink',
      size: 0,
      linkname: 'sub/inner.txt',
      mtimeMs: OLD_MS + 1,
    })
  })

  it('reports special files all at once and skips them; lists names that are not UTF-8', async () => {
    const root = path.join(tmp, 'weird')
    await fs.mkdir(path.join(root, 'd'), { recursive: true })
    await fs.writeFile(path.join(root, 'ok.txt'), 'ok')
    await run('mkfifo', [path.join(root, 'd', 'pipe')])
    const bad = Buffer.concat([
      Buffer.from(`${root}/bad-`),
      Buffer.from([0xff, 0x41]),
      Buffer.from('.txt'),
    ])
    await fs.writeFile(bad, 'latin1 name')
    const sock = path.join(root, 's.sock')
    const server = net.createServer()
    await new Promise<void>((resolve) => server.listen(sock, resolve))
    try {
      const { entries, problems } = await walkTree(root)
      // the Latin-1 byte as its escape (U+DCFF): a name like any other, in byte order
      expect(entries.map((e) => e.path)).toEqual(['bad-\udcffA.txt', 'd', 'ok.txt'])
      expect(problems).toHaveLength(2)
      expect(problems).toContainEqual({ path: 'd/pipe', reason: expect.stringMatching(/^fifo/) })
      expect(problems).toContainEqual({ path: 's.sock', reason: expect.stringMatching(/^socket/) })
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
  })

  it('refuses a root that is a symlink or not a directory', async () => {
    await fs.symlink(src, path.join(tmp, 'src-link'))
    await expect(walkTree(path.join(tmp, 'src-link'))).rejects.toThrow(/is a symlink/)
    await expect(walkTree(path.join(src, 'a b.txt'))).rejects.toThrow(/not a directory/)
    await expect(walkTree(path.join(tmp, 'nope'))).rejects.toThrow(/ENOENT/)
  })
})

describe('manifest document', () => {
  const entry = (p: string, over: Partial<ManifestEntry> = {}): ManifestEntry => ({
    path: p,
    kind: 'file',
    size: 3,
    mode: 0o644,
    mtimeMs: OLD_MS,
    uid: 1000,
    gid: 1000,
    hashes: { sha256: 'a'.repeat(64) },
    ...over,
  })

  it('totals files and bytes, sorts, and round-trips through an atomic write', async () => {
    const now = new Date('2026-01-02T03:04:05.000Z')
    const m = manifestOf(
      '/srv/music',
      [
        entry('b', { size: 5 }),
        entry('a', { kind: 'dir', size: 0, hashes: undefined }),
        entry('a/c'),
      ],
      now,
    )
    expect(m).toMatchObject({
      schema: 'shipshape.manifest/1',
      source: '/srv/music',
      createdAt: '2026-01-02T03:04:05.000Z',
      files: 2,
      bytes: 8,
    })
    expect(m.entries.map((e) => e.path)).toEqual(['a', 'a/c', 'b'])
    const file = path.join(tmp, 'manifest.json')
    await writeManifest(file, m)
    await writeManifest(file, m) // over an existing one
    expect(await readManifest(file)).toEqual(JSON.parse(JSON.stringify(m)))
    expect((await fs.readdir(tmp)).filter((n) => n.includes('.tmp'))).toEqual([])
  })

  it('rejects a bad manifest with an error naming the file and the problem', async () => {
    const file = path.join(tmp, 'bad-manifest.json')
    const good = manifestOf('/srv', [entry('a'), entry('b')], new Date())
    const cases: [unknown, RegExp][] = [
      ['{', /not JSON/],
      [{ ...good, schema: 'other/1' }, /schema/],
      [{ ...good, files: 3 }, /totals/],
      [{ ...good, entries: [entry('b'), entry('a')] }, /out of order/],
      [{ ...good, entries: [entry('a'), entry('a')], files: 2 }, /duplicate/],
      [{ ...good, entries: [entry('../etc/passwd'), entry('b')] }, /not a plain relative path/],
      [{ ...good, entries: [entry('a', { mode: 0o100644 }), entry('b')] }, /mode/],
      [{ ...good, entries: [entry('a', { hashes: { sha256: 'xyz' } }), entry('b')] }, /hashes/],
      [{ ...good, entries: [entry('a', { kind: 'symlink', size: 0 }), entry('b')] }, /linkname/],
    ]
    for (const [doc, why] of cases) {
      await fs.writeFile(file, typeof doc === 'string' ? doc : JSON.stringify(doc))
      const err = await readManifest(file).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(Error)
      expect((err as Error).message).toContain(file)
      expect((err as Error).message).toMatch(why)
    }
  })
})

describe('compareEntries', () => {
  const base: ManifestEntry[] = [
    { path: 'd', kind: 'dir', size: 0, mode: 0o755, mtimeMs: 1000, uid: 1, gid: 1 },
    {
      path: 'd/f',
      kind: 'file',
      size: 4,
      mode: 0o644,
      mtimeMs: 2500,
      uid: 1,
      gid: 1,
      hashes: { sha256: '1'.repeat(64) },
    },
    {
      path: 'l',
      kind: 'symlink',
      size: 0,
      mode: 0o777,
      mtimeMs: 3000,
      uid: 1,
      gid: 1,
      linkname: 'd/f',
    },
  ]
  const all = { modes: true, mtimes: true, owners: true, hash: 'sha256' as const }
  const clone = (): ManifestEntry[] => structuredClone(base)

  it('finds nothing when both sides are equal', () => {
    expect(compareEntries(base, clone(), all)).toEqual([])
  })

  it('names every difference', () => {
    const a = clone()
    a[1]!.size = 5
    a[1]!.hashes!.sha256 = '2'.repeat(64)
    a[1]!.mode = 0o600
    a[1]!.mtimeMs = 2501
    a[1]!.uid = 0
    a[2]!.linkname = 'elsewhere'
    a[2]!.mode = 0o755 // a symlink's mode is not compared
    a.push({ path: 'new', kind: 'file', size: 0, mode: 0o644, mtimeMs: 0, uid: 1, gid: 1 })
    expect(compareEntries(base, a.slice(1), all)).toEqual([
      { path: 'd', what: 'missing', expected: 'dir' },
      { path: 'd/f', what: 'size', expected: 4, actual: 5 },
      { path: 'd/f', what: 'hash', expected: '1'.repeat(64), actual: '2'.repeat(64) },
      { path: 'd/f', what: 'mode', expected: '0644', actual: '0600' },
      { path: 'd/f', what: 'mtime', expected: 2500, actual: 2501 },
      { path: 'd/f', what: 'owner', expected: '1:1', actual: '0:1' },
      { path: 'l', what: 'linkname', expected: 'd/f', actual: 'elsewhere' },
      { path: 'new', what: 'extra', actual: 'file' },
    ])
  })

  it('honours the options: what to compare, mtime tolerance, a hash absent on one side', () => {
    const a = clone()
    a[1]!.mode = 0o600
    a[1]!.uid = 7
    a[1]!.mtimeMs = 2000 // whole seconds, truncated
    delete a[1]!.hashes
    expect(compareEntries(base, a, { modes: false, mtimes: false, owners: false })).toEqual([])
    expect(
      compareEntries(base, a, { modes: false, mtimes: true, owners: false, mtimeToleranceMs: 999 }),
    ).toEqual([])
    expect(
      compareEntries(base, a, { modes: false, mtimes: false, owners: false, hash: 'sha256' }),
    ).toEqual([{ path: 'd/f', what: 'hash', expected: '1'.repeat(64), actual: undefined }])
    const k = clone()
    k[0] = { ...k[0]!, kind: 'file' }
    expect(compareEntries(base, k, all)).toEqual([
      { path: 'd', what: 'kind', expected: 'dir', actual: 'file' },
    ])
  })
})

describe('compressibility', () => {
  it('places most windows by bytes (the big files) and a few on small files', () => {
    const entries: ManifestEntry[] = [
      { path: 'big', kind: 'file', size: 100 * MiB, mode: 0o644, mtimeMs: 0, uid: 0, gid: 0 },
      ...Array.from({ length: 200 }, (_, i) => ({
        path: `s${i}`,
        kind: 'file' as const,
        size: 1000 + i,
        mode: 0o644,
        mtimeMs: 0,
        uid: 0,
        gid: 0,
      })),
    ]
    const w = sampleWindows(entries, 32, 128 * 1024)
    expect(w.length).toBeLessThanOrEqual(32)
    const big = w.filter((x) => x.entry.path === 'big')
    expect(big.length).toBeGreaterThanOrEqual(24)
    expect(w.length - big.length).toBeGreaterThan(0)
    expect(w.length - big.length).toBeLessThanOrEqual(8)
    const offsets = big.map((x) => x.offset)
    expect(new Set(offsets).size).toBe(big.length)
    expect(Math.min(...offsets)).toBeLessThan(10 * MiB) // spread through the file
    expect(Math.max(...offsets)).toBeGreaterThan(90 * MiB)
    for (const x of w) {
      expect(x.offset + x.length).toBeLessThanOrEqual(x.entry.size)
      expect(x.length).toBe(Math.min(x.entry.size, 128 * 1024))
    }
    expect(sampleWindows([])).toEqual([])
  })

  it('chooses none for random bytes, zstd or gzip for text', async () => {
    const rnd = path.join(tmp, 'rnd')
    const txt = path.join(tmp, 'txt')
    await fs.mkdir(rnd)
    await fs.mkdir(txt)
    for (let i = 0; i < 5; i++) {
      await fs.writeFile(path.join(rnd, `${i}.mp3`), randomBytes(300_000 + i))
      const lines = Array.from(
        { length: 8000 },
        (_, j) => `line ${j} of file ${i}: the quick brown fox ${j % 13}`,
      )
      await fs.writeFile(path.join(txt, `${i}.txt`), lines.join('\n'))
    }
    const r = await sampleCompressibility(rnd, (await walkTree(rnd)).entries)
    expect(r.sampledBytes).toBeGreaterThan(0)
    expect(r.ratio).toBeCloseTo(r.compressedBytes / r.sampledBytes)
    expect(r.ratio).toBeGreaterThan(0.9)
    expect(chooseCompression(r.ratio, true)).toBe('none')
    const t = await sampleCompressibility(txt, (await walkTree(txt)).entries)
    expect(t.ratio).toBeLessThan(0.5)
    expect(chooseCompression(t.ratio, true)).toBe('zstd')
    expect(chooseCompression(t.ratio, false)).toBe('gzip')
    expect(await sampleCompressibility(txt, [])).toEqual({
      sampledBytes: 0,
      compressedBytes: 0,
      ratio: 1,
    })
  })

  it('draws the line at 0.9', () => {
    expect(chooseCompression(0.91, true)).toBe('none')
    expect(chooseCompression(0.9, true)).toBe('zstd')
    expect(chooseCompression(0.9, false)).toBe('gzip')
  })
})

describe('pax times', () => {
  it('keeps milliseconds both ways, before 1970 too', () => {
    for (const ms of [0, 1, 999, 1000, OLD_MS, -1, -1500, -1000]) {
      expect(parsePaxTime(paxTime(ms))).toBe(ms)
    }
    expect(paxTime(OLD_MS)).toBe('981173106.789')
    expect(paxTime(-1500)).toBe('-1.500')
    expect(parsePaxTime('981173106.7899')).toBe(OLD_MS) // rounded down
    expect(parsePaxTime('12')).toBe(12000)
    expect(parsePaxTime('x')).toBeUndefined()
  })
})

describe('writeBackup + verifyBackup', () => {
  const EXT: Record<Compression, string> = { none: '.tar', gzip: '.tar.gz', zstd: '.tar.zst' }
  const archives: Partial<Record<Compression, string>> = {}

  for (const compression of ['none', 'gzip', 'zstd'] as const) {
    it(`round-trips with compression ${compression}`, async (ctx) => {
      if (compression === 'zstd' && !hasZstd) {
        console.warn('!!! SKIPPED: zstd round trip (no zstd command) !!!')
        ctx.skip()
      }
      const { entries } = await walkTree(src)
      const archive = path.join(tmp, `backup${EXT[compression]}`)
      let progressed = 0
      const r = await writeBackup({
        root: src,
        entries,
        archive,
        compression,
        hashes: ['sha256', 'md5'],
        onProgress: (bytes) => (progressed = bytes),
      })
      archives[compression] = archive
      const total = entries.reduce((a, e) => a + e.size, 0)
      expect(progressed).toBe(total)
      expect(r.archiveBytes).toBe((await fs.stat(archive)).size)
      expect((await fs.stat(archive)).mode & 0o777).toBe(0o600)
      await expect(fs.access(`${archive}.part`)).rejects.toThrow(/ENOENT/)
      // the entries come back as given, files with their hashes, computed independently here
      expect(r.entries.map(({ hashes: _h, ...e }) => e)).toEqual(entries)
      for (const e of r.entries) {
        if (e.kind !== 'file') {
          expect(e.hashes).toBeUndefined()
          continue
        }
        const content = await fs.readFile(path.join(src, e.path))
        expect(e.hashes).toEqual({
          sha256: createHash('sha256').update(content).digest('hex'),
          md5: createHash('md5').update(content).digest('hex'),
        })
      }
      const m = manifestOf(src, r.entries, new Date())
      let verified = 0
      await verifyBackup({ archive, compression, manifest: m, onProgress: (b) => (verified = b) })
      expect(verified).toBe(total)
    })
  }

  it('hashes agree with sha256sum', async () => {
    const { entries } = await walkTree(src)
    const archive = path.join(tmp, 'sum.tar')
    const r = await writeBackup({
      root: src,
      entries,
      archive,
      compression: 'none',
      hashes: ['sha256'],
    })
    const e = r.entries.find((x) => x.path === 'random.bin')!
    const { stdout } = await run('sha256sum', ['--', path.join(src, 'random.bin')])
    expect(e.hashes?.sha256).toBe(stdout.split(' ')[0])
    expect(e.hashes?.sha256).toBe(await sha256Of(path.join(src, 'random.bin')))
  })

  it('is restored by GNU tar with the same names, modes, mtimes (ms) and content', async () => {
    const archive = archives.none
    expect(archive).toBeDefined()
    const out = path.join(tmp, 'restored')
    await fs.mkdir(out)
    await run('tar', ['-x', '-p', '--numeric-owner', '-f', archive!, '-C', out])
    const want = await walkTree(src)
    const got = await walkTree(out)
    expect(
      compareEntries(want.entries, got.entries, { modes: true, mtimes: true, owners: true }),
    ).toEqual([])
    for (const e of got.entries.filter((x) => x.kind === 'file')) {
      expect(await sha256Of(path.join(out, e.path))).toBe(await sha256Of(path.join(src, e.path)))
    }
  })

  it('backs up, checks and restores (GNU tar) names that are not UTF-8 byte for byte', async () => {
    const root = path.join(tmp, 'latin1')
    const B = (...parts: (string | number[] | Buffer)[]): Buffer =>
      Buffer.concat(
        parts.map((x) =>
          Buffer.isBuffer(x) ? x : typeof x === 'string' ? Buffer.from(x) : Buffer.from(x),
        ),
      )
    const dirName = B('Bj', [0xf6], 'rk') // Latin-1 'Björk'
    const files = [
      B('caf', [0xe9], '.mp3'),
      B([0xc3, 0x28], ' invalid pair'),
      B('ok-', [0xe2, 0x82], '-truncated'),
      B('x'.repeat(90), [0xff, 0xfe], 'y'.repeat(40)), // > 100 bytes: a PAX path, BINARY
    ]
    await fs.mkdir(B(root, '/', dirName), { recursive: true })
    const contents = new Map<string, Buffer>()
    for (const [i, f] of files.entries()) {
      const p = B(root, '/', dirName, '/', f)
      const body = randomBytes(1000 + i)
      await fs.writeFile(p, body)
      contents.set(B(dirName, '/', f).toString('hex'), body)
    }
    await fs.symlink(B('../', [0xe9], '-target'), B(root, '/', dirName, '/link'))
    const { entries, problems } = await walkTree(root)
    expect(problems).toEqual([])
    expect(entries).toHaveLength(1 + files.length + 1)
    for (const compression of ['none', 'gzip'] as const) {
      const archive = path.join(tmp, `latin1.${compression}.tar`)
      const r = await writeBackup({ root, entries, archive, compression, hashes: ['sha256'] })
      const m = manifestOf(root, r.entries, new Date())
      // through JSON: the escapes survive a manifest file
      await writeManifest(path.join(tmp, `latin1.${compression}.json`), m)
      const back = await readManifest(path.join(tmp, `latin1.${compression}.json`))
      expect(back.entries.map((e) => e.path)).toEqual(m.entries.map((e) => e.path))
      await verifyBackup({ archive, compression, manifest: back })
      const out = path.join(tmp, `latin1-restored-${compression}`)
      await fs.mkdir(out)
      await run('tar', ['-x', '-p', '--numeric-owner', '-f', archive, '-C', out])
      const dirBytes = await fs.readdir(out, { encoding: 'buffer' })
      expect(dirBytes.map((b) => b.toString('hex'))).toEqual([dirName.toString('hex')])
      const names = await fs.readdir(B(out, '/', dirName), { encoding: 'buffer' })
      expect(names.map((b) => b.toString('hex')).sort()).toEqual(
        [...files, B('link')].map((b) => b.toString('hex')).sort(),
      )
      for (const f of files) {
        const got = await fs.readFile(B(out, '/', dirName, '/', f))
        expect(got.equals(contents.get(B(dirName, '/', f).toString('hex'))!)).toBe(true)
      }
      const target = await fs.readlink(B(out, '/', dirName, '/link'), { encoding: 'buffer' })
      expect(target.toString('hex')).toBe(B('../', [0xe9], '-target').toString('hex'))
    }
  })

  it('finds a flipped byte in an uncompressed archive and names the file', async () => {
    const { entries } = await walkTree(src)
    const archive = path.join(tmp, 'tamper.tar')
    const r = await writeBackup({
      root: src,
      entries,
      archive,
      compression: 'none',
      hashes: ['sha256'],
    })
    const m = manifestOf(src, r.entries, new Date())
    const bytes = await fs.readFile(archive)
    const needle = (await fs.readFile(path.join(src, 'random.bin'))).subarray(2 * MiB, 2 * MiB + 64)
    const at = bytes.indexOf(needle)
    expect(at).toBeGreaterThan(0)
    bytes[at + 10]! ^= 0x01
    await fs.writeFile(archive, bytes)
    const err = await verifyBackup({ archive, compression: 'none', manifest: m }).catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(BackupMismatchError)
    expect((err as BackupMismatchError).mismatches).toEqual([
      expect.objectContaining({ path: 'random.bin', what: 'hash' }),
    ])
    expect((err as Error).message).toMatch(/random\.bin: hash differs/)
    // a flipped byte in a header breaks its checksum: the archive cannot be read
    bytes[at + 10]! ^= 0x01
    bytes[3]! ^= 0x01
    await fs.writeFile(archive, bytes)
    await expect(verifyBackup({ archive, compression: 'none', manifest: m })).rejects.toThrow(
      BackupCorruptError,
    )
  })

  it('finds a manifest that differs from the archive: mode, mtime by 1 ms, a missing file', async () => {
    const archive = archives.none!
    const { entries } = await walkTree(src)
    const r = await writeBackup({
      root: src,
      entries,
      archive,
      compression: 'none',
      hashes: ['sha256'],
    })
    const m = manifestOf(src, r.entries, new Date())
    const edited = structuredClone(m)
    edited.entries.find((e) => e.path === 'private.txt')!.mode = 0o644
    edited.entries.find((e) => e.path === 'random.bin')!.mtimeMs += 1
    edited.entries.push({ ...edited.entries[0]!, path: 'zzz-not-archived' })
    const err = await verifyBackup({ archive, compression: 'none', manifest: edited }).catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(BackupMismatchError)
    expect((err as BackupMismatchError).mismatches).toEqual([
      { path: 'private.txt', what: 'mode', expected: '0644', actual: '0600' },
      { path: 'random.bin', what: 'mtime', expected: OLD_MS + 1, actual: OLD_MS },
      { path: 'zzz-not-archived', what: 'missing', expected: 'file' },
    ])
    expect((err as Error).message).toMatch(/3 differences/)
  })

  for (const compression of ['gzip', 'zstd'] as const) {
    it(`rejects a truncated ${compression} archive as corrupt`, async (ctx) => {
      if (compression === 'zstd' && !hasZstd) ctx.skip()
      const { entries } = await walkTree(src)
      const archive = path.join(tmp, `trunc${EXT[compression]}`)
      const r = await writeBackup({ root: src, entries, archive, compression, hashes: ['sha256'] })
      const m = manifestOf(src, r.entries, new Date())
      await fs.truncate(archive, Math.floor(r.archiveBytes / 2))
      const err = await verifyBackup({ archive, compression, manifest: m }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(BackupCorruptError)
      expect((err as Error).message).toMatch(/truncated or corrupt/)
      expect((err as Error).message).toContain(archive)
    })
  }

  describe('a source that changes', () => {
    let root: string
    const reset = async () => {
      root = await fs.mkdtemp(path.join(tmp, 'changing-'))
      await fs.writeFile(path.join(root, 'a.bin'), randomBytes(64))
      await fs.writeFile(path.join(root, 'big.bin'), randomBytes(3 * MiB))
      await fs.writeFile(path.join(root, 'c.bin'), randomBytes(64))
      return (await walkTree(root)).entries
    }
    const gone = async (archive: string) => {
      await expect(fs.access(archive)).rejects.toThrow(/ENOENT/)
      await expect(fs.access(`${archive}.part`)).rejects.toThrow(/ENOENT/)
    }

    it('fails naming a file that grows while it is read, and leaves no archive', async () => {
      const entries = await reset()
      const archive = path.join(root, '..', `${path.basename(root)}.tar.gz`)
      let grown = false
      const p = writeBackup({
        root,
        entries,
        archive,
        compression: 'gzip',
        hashes: ['sha256'],
        onProgress: (_bytes, file) => {
          if (file === 'big.bin' && !grown) {
            grown = true
            appendFileSync(path.join(root, 'big.bin'), 'more')
          }
        },
      })
      await expect(p).rejects.toThrow(/^big\.bin changed while backing up \(grew/)
      expect(grown).toBe(true)
      await gone(archive)
    })

    it('fails naming a file changed, or removed, since the walk', async () => {
      let entries = await reset()
      const archive = path.join(root, '..', `${path.basename(root)}.tar`)
      await fs.appendFile(path.join(root, 'c.bin'), 'x')
      await expect(
        writeBackup({ root, entries, archive, compression: 'none', hashes: ['sha256'] }),
      ).rejects.toThrow(/^c\.bin changed while backing up \(size 64 → 65/)
      await gone(archive)
      entries = await reset()
      await fs.rm(path.join(root, 'c.bin'))
      await expect(
        writeBackup({ root, entries, archive, compression: 'none', hashes: ['sha256'] }),
      ).rejects.toThrow(/^c\.bin changed while backing up \(vanished/)
      await gone(archive)
      entries = await reset()
      await fs.utimes(path.join(root, 'a.bin'), 1, 1)
      await expect(
        writeBackup({ root, entries, archive, compression: 'none', hashes: ['sha256'] }),
      ).rejects.toThrow(/^a\.bin changed while backing up \(mtime/)
    })

    it('replaces a leftover .part, and stops on abort without leaving one', async () => {
      const entries = await reset()
      const archive = path.join(root, '..', `${path.basename(root)}-p.tar`)
      await fs.writeFile(`${archive}.part`, 'leftover of a killed run')
      const r = await writeBackup({
        root,
        entries,
        archive,
        compression: 'none',
        hashes: ['sha256'],
      })
      await expect(fs.access(`${archive}.part`)).rejects.toThrow(/ENOENT/)
      await verifyBackup({
        archive,
        compression: 'none',
        manifest: manifestOf(root, r.entries, new Date()),
      })
      const ac = new AbortController()
      const archive2 = `${archive}.2`
      const p = writeBackup({
        root,
        entries,
        archive: archive2,
        compression: 'none',
        hashes: ['sha256'],
        signal: ac.signal,
        onProgress: () => ac.abort(new Error('stop now')),
      })
      await expect(p).rejects.toThrow(/stop now/)
      await gone(archive2)
    })
  })
})
