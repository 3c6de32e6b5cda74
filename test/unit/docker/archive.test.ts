import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import zlib from 'node:zlib'
import tar from 'tar-stream'
import { describe, expect, it } from 'vitest'
import {
  detectCompression,
  ImageArchiveError,
  normalizeEntryPath,
  readImageArchive,
  type ArchiveLayer,
  type LayerEntry,
  type LayerVisitor,
} from '../../../lib/docker/archive.js'
import { chunked, tarOf, type Spec } from '../../support/tar.js'

// Synthetic `docker save` archives built with tar-stream's pack(), in both layouts.

const MiB = 1024 * 1024

function zstd(buf: Buffer): Buffer {
  const r = spawnSync('zstd', ['-c', '-q'], { input: buf })
  if (r.status !== 0) throw new Error(`zstd: ${r.stderr}`)
  return r.stdout
}

const hasZstd = spawnSync('zstd', ['--version']).status === 0

interface Seen {
  entries: { blob: string; e: LayerEntry }[]
  ends: ArchiveLayer[]
  contents: Map<string, string>
}

function recorder(read: (blob: string, e: LayerEntry) => boolean = () => false): {
  seen: Seen
  visitor: LayerVisitor
} {
  const seen: Seen = { entries: [], ends: [], contents: new Map() }
  return {
    seen,
    visitor: {
      async entry(blob, e, content) {
        seen.entries.push({ blob, e })
        if (read(blob, e)) seen.contents.set(`${blob}:${e.path}`, (await content()).toString())
      },
      layerEnd(_blob, info) {
        seen.ends.push(info)
      },
    },
  }
}

const config = {
  architecture: 'amd64',
  os: 'linux',
  config: { User: 'app', Cmd: ['sh'] },
  rootfs: { type: 'layers', diff_ids: ['sha256:l1', 'sha256:l2'] },
  history: [
    { created_by: 'ADD rootfs /' },
    { created_by: 'ENV A=1', empty_layer: true },
    { created_by: 'RUN rm /foo' },
  ],
}

const layer1Specs: Spec[] = [
  { name: './', type: 'directory' },
  { name: './etc/', type: 'directory' },
  { name: './etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n' },
  { name: './foo', content: 'to be deleted' },
  { name: 'bin/', type: 'directory' },
  { name: 'bin/busybox', content: 'ELF…', mode: 0o755 },
  { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
  { name: 'bin/ln', type: 'link', linkname: './bin/busybox' },
  { name: 'dev/fifo', type: 'fifo' },
]
const layer2Specs: Spec[] = [
  { name: '.wh.foo', content: '' },
  { name: 'etc/', type: 'directory' },
  { name: 'etc/.wh..wh..opq', content: '' },
  { name: 'etc/hosts', content: '127.0.0.1 localhost\n', uid: 1000 },
  { name: 'usr/lib/python3.11/site-packages/', type: 'directory' },
  { name: '/usr/lib/python3.11/site-packages/.wh.torch', content: '' },
  { name: 'usr/.wh..wh.plnk', content: '' },
]

/** Docker 20.10: `<id>/layer.tar` …, in name order (so layer 2's id sorts first here). */
async function legacyArchive(): Promise<Buffer> {
  const l1 = await tarOf(layer1Specs)
  const l2 = await tarOf(layer2Specs)
  return tarOf([
    { name: '0aaa/', type: 'directory' },
    { name: '0aaa/VERSION', content: '1.0' },
    { name: '0aaa/json', content: JSON.stringify({ id: '0aaa', parent: 'fbbb' }) },
    { name: '0aaa/layer.tar', content: l2 },
    { name: 'c0ffee.json', content: JSON.stringify(config) },
    { name: 'fbbb/', type: 'directory' },
    { name: 'fbbb/VERSION', content: '1.0' },
    { name: 'fbbb/json', content: JSON.stringify({ id: 'fbbb' }) },
    { name: 'fbbb/layer.tar', content: l1 },
    {
      name: 'manifest.json',
      content: JSON.stringify([
        {
          Config: 'c0ffee.json',
          RepoTags: ['app:1', 'app:latest'],
          Layers: ['fbbb/layer.tar', '0aaa/layer.tar'],
        },
      ]),
    },
    { name: 'repositories', content: JSON.stringify({ app: { '1': '0aaa' } }) },
  ])
}

/** Docker 25+: blobs first (one gzip layer, one zero-length layer), manifest.json last. */
async function ociArchive(): Promise<Buffer> {
  const l1 = await tarOf(layer1Specs)
  const l2 = zlib.gzipSync(await tarOf(layer2Specs))
  const b = (hex: string) => `blobs/sha256/${hex}`
  return tarOf([
    { name: 'blobs/', type: 'directory' },
    { name: 'blobs/sha256/', type: 'directory' },
    { name: b('22'), content: l2 },
    { name: b('11'), content: l1 },
    { name: b('ee'), content: '' },
    { name: b('cc'), content: JSON.stringify(config) },
    // the legacy-compatible name some engines add next to the blob
    { name: '9999/layer.tar', type: 'symlink', linkname: '../blobs/sha256/11' },
    { name: b('mm'), content: JSON.stringify({ schemaVersion: 2, config: { digest: 'cc' } }) },
    { name: 'index.json', content: JSON.stringify({ schemaVersion: 2, manifests: [] }) },
    {
      name: 'manifest.json',
      content: JSON.stringify([
        { Config: b('cc'), RepoTags: ['app:2'], Layers: ['9999/layer.tar', b('22'), b('ee')] },
      ]),
    },
    { name: 'oci-layout', content: '{"imageLayoutVersion": "1.0.0"}' },
  ])
}

// A 200 MB file entry, generated on the fly: never a 200 MB Buffer.
function zeros(bytes: number): Readable {
  const chunk = Buffer.alloc(64 * 1024)
  let left = bytes
  return new Readable({
    read() {
      if (left === 0) return void this.push(null)
      const n = Math.min(left, chunk.length)
      left -= n
      this.push(n === chunk.length ? chunk : chunk.subarray(0, n))
    },
  })
}

function streamedBigArchive(fileBytes: number): Readable {
  const pad = (n: number) => Math.ceil(n / 512) * 512
  const small = Buffer.from('after the big one\n')
  // header + content for each entry, then the two end-of-archive blocks
  const layerBytes = 512 + pad(fileBytes) + 512 + pad(small.length) + 1024
  const outer = tar.pack()
  const inner = tar.pack()
  const sink = outer.entry({ name: 'blobs/sha256/big', size: layerBytes }, (err) => {
    if (err) return void outer.destroy(err)
    outer.entry({ name: 'blobs/sha256/cfg' }, JSON.stringify(config))
    outer.entry(
      { name: 'manifest.json' },
      JSON.stringify([{ Config: 'blobs/sha256/cfg', Layers: ['blobs/sha256/big'] }]),
    )
    outer.finalize()
  })
  inner.pipe(sink)
  const big = inner.entry({ name: 'big', size: fileBytes }, (err) => {
    if (err) return void inner.destroy(err)
    inner.entry({ name: 'small' }, small)
    inner.finalize()
  })
  zeros(fileBytes).pipe(big)
  return Readable.from(outer, { objectMode: false })
}

// First in the file: the process's peak RSS is still close to its current RSS.
describe('readImageArchive memory', () => {
  it('streams a 200 MB file entry without holding it: peak RSS grows < 100 MB', async () => {
    const fileBytes = 200 * 1e6
    const rssBefore = process.memoryUsage().rss
    const peakBefore = process.resourceUsage().maxRSS * 1024
    const { seen, visitor } = recorder((_b, e) => e.path === 'small')
    const archive = await readImageArchive(streamedBigArchive(fileBytes), visitor)
    const rssGrowth = process.memoryUsage().rss - rssBefore
    // maxRSS is the high-water mark: it catches a transient peak that rss afterwards would miss
    const peakGrowth = process.resourceUsage().maxRSS * 1024 - peakBefore
    console.log(
      `200 MB entry: rss +${(rssGrowth / MiB).toFixed(1)} MiB, peak rss +${(peakGrowth / MiB).toFixed(1)} MiB`,
    )
    expect(seen.entries.map(({ e }) => [e.path, e.size])).toEqual([
      ['big', fileBytes],
      ['small', 18],
    ])
    expect(seen.contents.get('blobs/sha256/big:small')).toBe('after the big one\n')
    expect(archive.layers).toEqual([
      { blob: 'blobs/sha256/big', compression: 'none', sizeBytes: expect.any(Number) },
    ])
    expect(archive.layers[0]!.sizeBytes).toBeGreaterThan(fileBytes)
    expect(rssGrowth).toBeLessThan(100 * 1e6)
    expect(peakGrowth).toBeLessThan(100 * 1e6)
  })
})

describe('detectCompression', () => {
  it('knows gzip, zstd and tar by their first bytes', async () => {
    const t = await tarOf([{ name: 'a', content: 'x' }])
    expect(detectCompression(t)).toBe('none')
    expect(detectCompression(zlib.gzipSync(t))).toBe('gzip')
    expect(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0]))).toBe('zstd')
    expect(detectCompression(Buffer.alloc(1024))).toBe('none') // an empty tar
    expect(detectCompression(Buffer.from('{"a":1}'))).toBe('unknown')
    expect(detectCompression(Buffer.alloc(0))).toBe('unknown')
    expect(detectCompression(t.subarray(0, 300))).toBe('unknown') // too short to tell
    // 'ustar' at 257 with a wrong checksum is not a tar header
    const fake = Buffer.alloc(512, 0x41)
    fake.write('ustar', 257, 'latin1')
    expect(detectCompression(fake)).toBe('unknown')
  })

  it.skipIf(!hasZstd)('knows a real zstd frame', async () => {
    expect(detectCompression(zstd(await tarOf([{ name: 'a', content: 'x' }])))).toBe('zstd')
  })
})

describe('normalizeEntryPath', () => {
  it("drops './', '/', trailing '/' and '.' segments, keeps '..'", () => {
    expect(normalizeEntryPath('./usr/lib/')).toBe('usr/lib')
    expect(normalizeEntryPath('/etc//passwd')).toBe('etc/passwd')
    expect(normalizeEntryPath('./')).toBe('')
    expect(normalizeEntryPath('a/./b/../c')).toBe('a/b/../c')
  })
})

describe('readImageArchive, legacy layout (Docker 20.10)', () => {
  it('reads the layers, their order from manifest.json, the config and tags', async () => {
    const { seen, visitor } = recorder((_b, e) => e.path === 'etc/passwd')
    const a = await readImageArchive(chunked(await legacyArchive()), visitor)
    expect(a.layout).toBe('legacy')
    expect(a.repoTags).toEqual(['app:1', 'app:latest'])
    expect(a.config).toEqual(config)
    expect(a.configBlob).toBe('c0ffee.json')
    expect(a.layers.map((l) => [l.blob, l.compression])).toEqual([
      ['fbbb/layer.tar', 'none'],
      ['0aaa/layer.tar', 'none'],
    ])
    // archive order: 0aaa (layer 2) first
    expect([...new Set(seen.entries.map((x) => x.blob))]).toEqual([
      '0aaa/layer.tar',
      'fbbb/layer.tar',
    ])
    expect(seen.ends.map((l) => l.blob)).toEqual(['0aaa/layer.tar', 'fbbb/layer.tar'])
    expect(seen.ends[1]).toEqual(a.layers[0])
    expect(a.layers[0]!.sizeBytes).toBe((await tarOf(layer1Specs)).length)
    expect(seen.contents.get('fbbb/layer.tar:etc/passwd')).toBe('root:x:0:0:root:/root:/bin/sh\n')
  })

  it('normalises entries: paths, types, links, whiteouts', async () => {
    const { seen, visitor } = recorder()
    await readImageArchive(chunked(await legacyArchive()), visitor)
    const of = (blob: string) =>
      seen.entries
        .filter((x) => x.blob === blob)
        .map(({ e }) => {
          // eslint-disable-next-line @typescript-eslint/no-unused-vars
          const { mtime, ...rest } = e
          return rest
        })
    expect(of('fbbb/layer.tar')).toEqual([
      { path: '', type: 'dir', size: 0, mode: 0o755, uid: 0, gid: 0 },
      { path: 'etc', type: 'dir', size: 0, mode: 0o755, uid: 0, gid: 0 },
      { path: 'etc/passwd', type: 'file', size: 30, mode: 0o644, uid: 0, gid: 0 },
      { path: 'foo', type: 'file', size: 13, mode: 0o644, uid: 0, gid: 0 },
      { path: 'bin', type: 'dir', size: 0, mode: 0o755, uid: 0, gid: 0 },
      { path: 'bin/busybox', type: 'file', size: 6, mode: 0o755, uid: 0, gid: 0 },
      {
        path: 'bin/sh',
        type: 'symlink',
        size: 0,
        mode: 0o644,
        uid: 0,
        gid: 0,
        linkname: 'busybox',
      },
      {
        path: 'bin/ln',
        type: 'hardlink',
        size: 0,
        mode: 0o644,
        uid: 0,
        gid: 0,
        linkname: 'bin/busybox',
      },
      { path: 'dev/fifo', type: 'other', size: 0, mode: 0o644, uid: 0, gid: 0 },
    ])
    const l2 = seen.entries.filter((x) => x.blob === '0aaa/layer.tar').map((x) => x.e)
    expect(l2.map((e) => [e.path, e.whiteout])).toEqual([
      ['.wh.foo', { kind: 'file', target: 'foo' }],
      ['etc', undefined],
      ['etc/.wh..wh..opq', { kind: 'opaque', dir: 'etc' }],
      ['etc/hosts', undefined],
      ['usr/lib/python3.11/site-packages', undefined],
      [
        'usr/lib/python3.11/site-packages/.wh.torch',
        { kind: 'file', target: 'usr/lib/python3.11/site-packages/torch' },
      ],
      ['usr/.wh..wh.plnk', undefined], // AUFS metadata, not a whiteout
    ])
    expect(l2.find((e) => e.path === 'etc/hosts')).toMatchObject({ uid: 1000, size: 20 })
    expect(l2[0]!.mtime).toEqual(new Date(1_700_000_000_000))
  })
})

/** Rewrite the mode field of the tar header at `at` (tar-stream's pack() masks it to 0o7777). */
function patchMode(t: Buffer, at: number, mode: number): void {
  const h = t.subarray(at, at + 512)
  h.write(mode.toString(8).padStart(7, '0') + '\0', 100, 'latin1')
  h.fill(0x20, 148, 156)
  const sum = h.reduce((a, b) => a + b, 0)
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1')
}

describe('readImageArchive, modes', () => {
  it('drops the file type bits Docker 20.10 writes in the mode (0100644)', async () => {
    const layer = await tarOf([
      { name: 'f', content: 'x' },
      { name: 'suid', content: 'y', mode: 0o4755 },
    ])
    patchMode(layer, 0, 0o100644)
    const archive = await tarOf([
      { name: 'l.tar', content: layer },
      { name: 'c.json', content: JSON.stringify(config) },
      { name: 'manifest.json', content: JSON.stringify([{ Config: 'c.json', Layers: ['l.tar'] }]) },
    ])
    const { seen, visitor } = recorder()
    await readImageArchive(chunked(archive), visitor)
    expect(seen.entries.map(({ e }) => [e.path, e.mode])).toEqual([
      ['f', 0o644],
      ['suid', 0o4755],
    ])
  })
})

describe('readImageArchive, OCI layout (Docker 25+)', () => {
  it('finds the layer order and config only from manifest.json at the end', async () => {
    const { seen, visitor } = recorder((_b, e) => e.path === 'etc/hosts')
    const a = await readImageArchive(chunked(await ociArchive()), visitor)
    expect(a.layout).toBe('oci')
    expect(a.repoTags).toEqual(['app:2'])
    expect(a.config).toEqual(config)
    expect(a.configBlob).toBe('blobs/sha256/cc')
    // the symlinked legacy name resolves to the blob the visitor saw
    expect(a.layers).toEqual([
      { blob: 'blobs/sha256/11', compression: 'none', sizeBytes: expect.any(Number) },
      { blob: 'blobs/sha256/22', compression: 'gzip', sizeBytes: expect.any(Number) },
      { blob: 'blobs/sha256/ee', compression: 'none', sizeBytes: 0 },
    ])
    expect(a.layers[1]!.sizeBytes).toBe(zlib.gzipSync(await tarOf(layer2Specs)).length)
    expect([...new Set(seen.entries.map((x) => x.blob))]).toEqual([
      'blobs/sha256/22',
      'blobs/sha256/11',
    ])
    // the zero-length layer: an empty layer, ended once manifest.json is known
    expect(seen.ends.map((l) => l.blob)).toEqual([
      'blobs/sha256/22',
      'blobs/sha256/11',
      'blobs/sha256/ee',
    ])
    expect(seen.contents.get('blobs/sha256/22:etc/hosts')).toBe('127.0.0.1 localhost\n')
    const wh = seen.entries.filter((x) => x.e.whiteout).map((x) => x.e.whiteout)
    expect(wh).toEqual([
      { kind: 'file', target: 'foo' },
      { kind: 'opaque', dir: 'etc' },
      { kind: 'file', target: 'usr/lib/python3.11/site-packages/torch' },
    ])
  })

  it.skipIf(!hasZstd)('reads a zstd layer through `zstd -dc`', async () => {
    const layer = zstd(await tarOf([{ name: 'opt/z', content: 'zstd!' }]))
    const archive = await tarOf([
      { name: 'blobs/sha256/zz', content: layer },
      { name: 'blobs/sha256/cc', content: JSON.stringify(config) },
      {
        name: 'manifest.json',
        content: JSON.stringify([{ Config: 'blobs/sha256/cc', Layers: ['blobs/sha256/zz'] }]),
      },
    ])
    const { seen, visitor } = recorder(() => true)
    const a = await readImageArchive(chunked(archive), visitor)
    expect(a.layout).toBe('legacy') // no oci-layout, no index.json
    expect(a.layers).toEqual([
      { blob: 'blobs/sha256/zz', compression: 'zstd', sizeBytes: layer.length },
    ])
    expect(seen.contents.get('blobs/sha256/zz:opt/z')).toBe('zstd!')
  })

  it.skipIf(!hasZstd)('rejects a truncated zstd layer, naming the blob', async () => {
    const layer = zstd(await tarOf([{ name: 'f', content: Buffer.alloc(200_000, 3) }]))
    const archive = await tarOf([
      { name: 'blobs/sha256/zz', content: layer.subarray(0, layer.length - 20) },
    ])
    await expect(readImageArchive(chunked(archive), recorder().visitor)).rejects.toThrow(
      /^layer blob blobs\/sha256\/zz \(zstd\) is truncated or corrupt: /,
    )
  })

  it('reads empty layers: an empty tar, plain or gzip', async () => {
    const empty = await tarOf([]) // just the two end-of-archive blocks
    expect(empty).toEqual(Buffer.alloc(1024))
    const archive = await tarOf([
      { name: 'blobs/sha256/e1', content: empty },
      { name: 'blobs/sha256/e2', content: zlib.gzipSync(empty) },
      { name: 'blobs/sha256/e3', content: zlib.gzipSync(Buffer.alloc(0)) },
      { name: 'blobs/sha256/cc', content: JSON.stringify(config) },
      {
        name: 'manifest.json',
        content: JSON.stringify([
          { Config: 'blobs/sha256/cc', Layers: ['e1', 'e2', 'e3'].map((h) => `blobs/sha256/${h}`) },
        ]),
      },
    ])
    const { seen, visitor } = recorder()
    const a = await readImageArchive(chunked(archive), visitor)
    expect(seen.entries).toEqual([])
    expect(a.layers.map((l) => l.compression)).toEqual(['none', 'gzip', 'gzip'])
    expect(seen.ends).toHaveLength(3)
  })

  it.skipIf(!hasZstd)('names the blob when zstd is not installed', async () => {
    const layer = zstd(await tarOf([{ name: 'opt/z', content: 'zstd!' }]))
    const archive = await tarOf([{ name: 'blobs/sha256/zz', content: layer }])
    const saved = process.env.PATH
    process.env.PATH = '/nonexistent'
    try {
      await expect(readImageArchive(chunked(archive), recorder().visitor)).rejects.toThrow(
        'layer blob blobs/sha256/zz is zstd-compressed and the zstd command is not installed',
      )
    } finally {
      process.env.PATH = saved
    }
  })
})

describe('readImageArchive, content()', () => {
  it('reads small files, refuses big ones, gives non-files an empty buffer', async () => {
    const layer = await tarOf([
      { name: 'small', content: 'hello' },
      { name: 'big', content: Buffer.alloc(4096, 1) },
      { name: 'd/', type: 'directory' },
      { name: 'after', content: 'still here' },
    ])
    const archive = await tarOf([
      { name: 'l.tar', content: layer },
      { name: 'c.json', content: JSON.stringify(config) },
      { name: 'manifest.json', content: JSON.stringify([{ Config: 'c.json', Layers: ['l.tar'] }]) },
    ])
    const got: Record<string, string> = {}
    let late: (() => Promise<Buffer>) | undefined
    await readImageArchive(
      chunked(archive),
      {
        async entry(_blob, e, content) {
          if (e.path === 'big') {
            await expect(content()).rejects.toThrow(/big in l\.tar is 4096 bytes, more than/)
            late = content
            return
          }
          await new Promise((r) => setImmediate(r)) // an async visitor
          got[e.path] = (await content()).toString()
          expect(await content()).toEqual(Buffer.from(got[e.path]!)) // same buffer twice
        },
      },
      { maxContentBytes: 1024 },
    )
    expect(got).toEqual({ small: 'hello', d: '', after: 'still here' })
    await expect(late!()).rejects.toThrow(/called after its entry\(\) callback/)
  })

  it('rethrows what the visitor throws, as it is', async () => {
    const boom = new TypeError('visitor says no')
    await expect(
      readImageArchive(chunked(await legacyArchive()), {
        entry(_blob, e) {
          if (e.path === 'etc/hosts') throw boom
        },
      }),
    ).rejects.toBe(boom)
  })

  it('rethrows what layerEnd throws, as it is, plain or gzip layers', async () => {
    for (const make of [legacyArchive, ociArchive]) {
      const boom = new TypeError('layerEnd says no')
      await expect(
        readImageArchive(chunked(await make()), {
          entry() {},
          layerEnd() {
            throw boom
          },
        }),
      ).rejects.toBe(boom)
    }
  })
})

describe('readImageArchive errors', () => {
  it('a content() still awaited when the archive breaks rejects too; nothing reaches the visitor after', async () => {
    // incompressible: the first half of the gzip blob decompresses to ~1 MiB of entries
    const files = Array.from({ length: 400 }, (_, i) => ({
      name: `f${i}`,
      content: randomBytes(8000),
    }))
    const gz = zlib.gzipSync(await tarOf(files))
    const full = await tarOf([{ name: 'blobs/sha256/gz', content: gz }])
    let calls = 0
    const src = new Readable({
      read() {
        this.push(full.subarray(0, 512 + (gz.length >> 1)))
        this.destroy(new Error('socket hang up'))
      },
    })
    const err = await readImageArchive(src, {
      async entry() {
        calls++
        await new Promise((r) => setImmediate(r))
      },
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ImageArchiveError)
    expect((err as Error).message).toMatch(/socket hang up/)
    const seen = calls
    await new Promise((r) => setTimeout(r, 100))
    expect(calls).toBe(seen)

    const plain = await tarOf([{ name: 'l.tar', content: await tarOf(files.slice(0, 3)) }])
    let cut: Promise<Buffer> | undefined
    const truncated = plain.subarray(0, 512 + 512 + 1500) // inside f0's content
    const err2 = await readImageArchive(chunked(truncated), {
      async entry(_blob, e, content) {
        if (e.path === 'f0') {
          cut = content()
          await cut
        }
      },
    }).catch((e: unknown) => e)
    expect(err2).toBeInstanceOf(ImageArchiveError)
    await expect(cut).rejects.toBe(err2)
  })

  it('rejects a truncated archive, naming the blob', async () => {
    const full = await legacyArchive()
    const l2At = full.indexOf((await tarOf(layer2Specs)).subarray(0, 512))
    const l1At = full.indexOf((await tarOf(layer1Specs)).subarray(0, 512))
    expect(l2At).toBeLessThan(l1At)
    // in the first block of a layer, further in, in a later layer
    for (const [at, blob] of [
      [l2At + 300, '0aaa/layer.tar'],
      [l2At + 1700, '0aaa/layer.tar'],
      [l1At + 2000, 'fbbb/layer.tar'],
    ] as const) {
      const err = await readImageArchive(chunked(full.subarray(0, at)), recorder().visitor).catch(
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(ImageArchiveError)
      expect((err as ImageArchiveError).message).toMatch(/truncated or corrupt/)
      expect((err as ImageArchiveError).message).toContain(blob)
      expect((err as ImageArchiveError).blob).toBe(blob)
    }
    // in the header of fbbb/layer.tar: the last blob read in full is named
    await expect(
      readImageArchive(chunked(full.subarray(0, l1At - 300)), recorder().visitor),
    ).rejects.toThrow('image archive is truncated or corrupt after blob fbbb/json')
  })

  it('rejects a truncated gzip layer, naming the blob', async () => {
    const gz = zlib.gzipSync(await tarOf([{ name: 'f', content: Buffer.alloc(50_000, 7) }]))
    const archive = await tarOf([{ name: 'blobs/sha256/gz', content: gz.subarray(0, 100) }])
    await expect(readImageArchive(chunked(archive), recorder().visitor)).rejects.toThrow(
      /layer blob blobs\/sha256\/gz \(gzip\) is truncated or corrupt/,
    )
  })

  it("rejects on the stream's 'error' event", async () => {
    const full = await ociArchive()
    const src = new Readable({
      read() {
        this.push(full.subarray(0, 2048))
        this.destroy(new Error('socket hang up'))
      },
    })
    await expect(readImageArchive(src, recorder().visitor)).rejects.toThrow(/socket hang up/)
  })

  it('rejects an archive without manifest.json, or one naming a missing layer', async () => {
    const l = await tarOf([{ name: 'a', content: 'x' }])
    await expect(
      readImageArchive(chunked(await tarOf([{ name: 'x/layer.tar', content: l }])), {
        entry() {},
      }),
    ).rejects.toThrow(/no manifest\.json/)
    const missing = await tarOf([
      { name: 'c.json', content: JSON.stringify(config) },
      {
        name: 'manifest.json',
        content: JSON.stringify([{ Config: 'c.json', Layers: ['c.json', 'gone'] }]),
      },
    ])
    await expect(readImageArchive(chunked(missing), { entry() {} })).rejects.toThrow(
      /layer blob c\.json named by manifest\.json is neither a tar nor gzip\/zstd/,
    )
    const gone = await tarOf([
      { name: 'c.json', content: JSON.stringify(config) },
      { name: 'manifest.json', content: JSON.stringify([{ Config: 'c.json', Layers: ['gone'] }]) },
    ])
    await expect(readImageArchive(chunked(gone), { entry() {} })).rejects.toThrow(
      'layer blob gone named by manifest.json is not in the archive',
    )
    const two = await tarOf([
      { name: 'c.json', content: JSON.stringify(config) },
      {
        name: 'manifest.json',
        content: JSON.stringify([
          { Config: 'c.json', Layers: [] },
          { Config: 'c.json', Layers: [] },
        ]),
      },
    ])
    await expect(readImageArchive(chunked(two), { entry() {} })).rejects.toThrow(/holds 2 images/)
  })
})
