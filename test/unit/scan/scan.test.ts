// scanImage end to end on synthetic `docker save` archives (tar-stream pack(), both layouts,
// plain and gzip layers, blobs out of layer order) through readImageArchive, with a fake engine.
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import zlib from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Engine } from '../../../lib/docker/engine.js'
import type { ImageDetails } from '../../../lib/docker/types.js'
import { EngineError, UsageError } from '../../../lib/errors.js'
import { ImageArchiveError } from '../../../lib/docker/archive.js'
import { chunked, tarOf, type Spec } from '../../support/tar.js'
import { contentWanted, scanImage } from '../../../lib/scan/scan.js'

const SP = 'usr/local/lib/python3.11/site-packages'
const bytes = (n: number, fill = 0x61) => Buffer.alloc(n, fill)
const STATUS = [
  'Package: tzdata',
  'Status: install ok installed',
  'Installed-Size: 2',
  'Architecture: all',
  'Version: 2024a-0+deb12u1',
  '',
].join('\n')
const RECORD = [
  'tiny/__init__.py,sha256=x,300',
  'tiny/core.so,sha256=y,4000',
  '../../../bin/tiny,sha256=z,50',
  'tiny-1.0.dist-info/RECORD,,',
  '',
].join('\n')
const VERSION_PY = "__version__ = '2.8.0+cu128'\ncuda: Optional[str] = '12.8'\n"
const APP = 'import torch\n\nmodel = torch.nn.Linear(2, 2)\nmodel.to("cuda")\n'

// layer 1: a base with dpkg, python, torch's version.py, app code, a big file, a dir
const layer1: Spec[] = [
  { name: './', type: 'directory' },
  { name: 'etc/', type: 'directory' },
  { name: 'etc/os-release', type: 'symlink', linkname: '../usr/lib/os-release' },
  { name: 'usr/lib/os-release', content: 'ID=debian\nVERSION_ID="12"\n' },
  { name: 'usr/share/zoneinfo/UTC', content: bytes(1000) },
  { name: 'usr/share/doc/tzdata/changelog.gz', content: bytes(200) },
  { name: 'var/lib/dpkg/status', content: STATUS },
  {
    name: 'var/lib/dpkg/info/tzdata.list',
    content: '/.\n/usr\n/usr/share/zoneinfo/UTC\n/usr/share/doc/tzdata/changelog.gz\n',
  },
  { name: `${SP}/tiny/__init__.py`, content: bytes(300) },
  { name: `${SP}/tiny/core.so`, content: bytes(4000) },
  { name: 'usr/local/bin/tiny', content: bytes(50) },
  { name: `${SP}/tiny-1.0.dist-info/RECORD`, content: RECORD },
  { name: `${SP}/torch/version.py`, content: VERSION_PY },
  { name: `${SP}/torch/cuda/__init__.py`, content: 'x = y.cuda()\n' }, // not app code
  { name: 'big', content: bytes(100_000) },
  { name: 'app/main.py', content: APP },
  { name: 'app/old.py', content: 'model.cuda()\n' },
  { name: 'opt/tool.py', content: 'model.cuda()\n' }, // app code outside WorkingDir
  { name: 'd/', type: 'directory' },
  { name: 'd/a', content: bytes(10) },
  { name: 'd/e/f', content: bytes(20) },
  { name: 'app/__pycache__/main.cpython-311.pyc', content: bytes(64) },
]
// layer 2: rm /big, overwrite the dpkg status, delete app/old.py, replace /d (opaque)
const layer2: Spec[] = [
  { name: '.wh.big', content: '' },
  { name: 'app/', type: 'directory' },
  { name: 'app/.wh.old.py', content: '' },
  { name: 'app/main.py', content: APP.replace('model.to("cuda")', 'model.to("cpu")\nx.cuda()') },
  { name: 'd/', type: 'directory' },
  { name: 'd/.wh..wh..opq', content: '' },
  { name: 'd/c', content: bytes(5) },
  { name: 'root/.cache/pip/http/x', content: bytes(700) },
  { name: 'usr/local/bin/tiny2', type: 'link', linkname: 'usr/local/bin/tiny' },
]

const config = {
  architecture: 'amd64',
  os: 'linux',
  config: { WorkingDir: '/app' },
  rootfs: { type: 'layers', diff_ids: ['sha256:l1', 'sha256:l2'] },
  history: [
    { created_by: 'ADD rootfs /', comment: 'Imported from -' },
    { created_by: 'WORKDIR /app', empty_layer: true },
    { created_by: 'RUN rm /big …' },
  ],
}

/** Docker 25+: gzip blobs, layer 2 first in the archive, manifest.json last. */
async function ociArchive(): Promise<Buffer> {
  const b = (hex: string) => `blobs/sha256/${hex}`
  return tarOf([
    { name: b('02'), content: zlib.gzipSync(await tarOf(layer2)) },
    { name: b('cc'), content: JSON.stringify(config) },
    { name: b('f1'), content: zlib.gzipSync(await tarOf(layer1)) },
    { name: 'index.json', content: '{"schemaVersion":2,"manifests":[]}' },
    {
      name: 'manifest.json',
      content: JSON.stringify([{ Config: b('cc'), RepoTags: [], Layers: [b('f1'), b('02')] }]),
    },
    { name: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' },
  ])
}

/** Docker 20.10: plain `<id>/layer.tar` in name order. */
async function legacyArchive(): Promise<Buffer> {
  return tarOf([
    { name: 'aa/', type: 'directory' },
    { name: 'aa/layer.tar', content: await tarOf(layer2) },
    { name: 'cfg.json', content: JSON.stringify(config) },
    { name: 'ff/', type: 'directory' },
    { name: 'ff/layer.tar', content: await tarOf(layer1) },
    {
      name: 'manifest.json',
      content: JSON.stringify([
        { Config: 'cfg.json', RepoTags: ['app:1'], Layers: ['ff/layer.tar', 'aa/layer.tar'] },
      ]),
    },
  ])
}

const ID = 'sha256:' + 'ab'.repeat(32)

function fakeEngine(archive: Buffer, opts: { listedSize?: number } = {}): Engine {
  const details: ImageDetails = {
    id: ID,
    tags: ['app:1'],
    sizeBytes: 777,
    user: '',
    workingDir: '/app',
    env: ['PATH=/usr/bin'],
    entrypoint: [],
    cmd: ['python', 'main.py'],
    labels: { a: 'b' },
    healthcheck: false,
  }
  return {
    info: { address: 'unix:///fake.sock' },
    listImages: async (o: { all?: boolean } = {}) => {
      if (!o.all) throw new Error('the scan lists all images (GET /images/json?all=1)')
      return [
        { id: 'sha256:other', sizeBytes: 1 },
        { id: ID, sizeBytes: opts.listedSize ?? 123_456, tags: ['app:1'] },
      ]
    },
    inspectImage: async (ref: string) => (ref === 'app:1' || ref === ID ? details : null),
    exportImage: async (id: string) => {
      if (id !== ID) throw new Error(`exported ${id}, not the image id`)
      return chunked(archive)
    },
  } as unknown as Engine
}

/** Σ content bytes of the regular files of a layer's specs. */
const fileBytes = (specs: Spec[]) =>
  specs
    .filter((s) => (s.type ?? 'file') === 'file' && !s.name.split('/').pop()!.startsWith('.wh.'))
    .reduce((a, s) => a + Buffer.byteLength(s.content ?? ''), 0)
const layer1Total = fileBytes(layer1)

describe.each([
  ['OCI layout, gzip layers', ociArchive],
  ['legacy layout, plain layers', legacyArchive],
])('scanImage: %s', (_name, make) => {
  it('measures layers, waste and the final filesystem', async () => {
    const archive = await make()
    let progressed = 0
    const scan = await scanImage(fakeEngine(archive), 'app:1', {
      progress: (b) => (progressed = b),
    })
    expect(progressed).toBe(archive.length)
    const app2 = APP.length - 'model.to("cuda")'.length + 'model.to("cpu")\nx.cuda()'.length
    expect(scan.layers.map((l) => [l.index, l.createdBy, l.comment, l.files])).toEqual([
      [0, 'ADD rootfs /', 'Imported from -', 18],
      [1, 'RUN rm /big …', '', 4],
    ])
    expect(scan.layers[0]!.addedBytes).toBe(layer1Total)
    expect(scan.layers[1]!.addedBytes).toBe(app2 + 5 + 700)
    expect(fileBytes(layer2)).toBe(app2 + 5 + 700)
    // big, app/old.py, app/main.py (overwritten), d/a, d/e/f: all added by layer 0
    expect(scan.layers.map((l) => l.wastedBytes)).toEqual([100_000 + 13 + APP.length + 30, 0])
    expect(scan.wastedBytes).toBe(100_000 + 13 + APP.length + 30)
    expect(scan.totalBytes).toBe(layer1Total + app2 + 705)
    expect(scan.finalBytes).toBe(scan.totalBytes - scan.wastedBytes)
    expect(scan.files).toBe(18 + 4 - 5)
    expect(scan.image).toMatchObject({
      id: ID,
      tags: ['app:1'],
      engineSizeBytes: 123_456,
      workingDir: '/app',
      cmd: ['python', 'main.py'],
      osRelease: { ID: 'debian', VERSION_ID: '12' },
    })
    expect(scan.image.layout).toBe(make === ociArchive ? 'oci' : 'legacy')
  })

  it('reads dpkg, Python distributions, torch and CUDA calls from the winning layer', async () => {
    const scan = await scanImage(fakeEngine(await make()), ID)
    expect(scan.dpkg).toEqual({
      packages: [
        { name: 'tzdata', version: '2024a-0+deb12u1', sizeBytes: 1200, installedSizeBytes: 2048 },
      ],
    })
    expect(scan.python.sitePackages).toEqual([SP])
    expect(scan.python.distributions).toEqual([
      {
        name: 'tiny',
        version: '1.0',
        path: `${SP}/tiny-1.0.dist-info`,
        sizeBytes: 300 + 4000 + 50 + RECORD.length,
        files: 4,
      },
    ])
    expect(scan.torch).toEqual({ version: '2.8.0+cu128', cuda: '12.8', path: `${SP}/torch` })
    // main.py as layer 2 left it; old.py deleted; opt/tool.py outside WorkingDir; torch not app code
    expect(scan.cudaCalls).toEqual([{ path: 'app/main.py', line: 5, text: 'x.cuda()' }])
    expect(scan.buckets['pip-cache']).toMatchObject({ bytes: 700, files: 1 })
    expect(scan.buckets.pycache).toMatchObject({ bytes: 64, files: 1 })
    expect(scan.buckets['package-docs']).toMatchObject({ bytes: 200 })
    expect(scan.directories[0]).toEqual({
      path: 'usr',
      sizeBytes: expect.any(Number),
      files: expect.any(Number),
    })
  })

  it('takes code directories besides the WorkingDir', async () => {
    const scan = await scanImage(fakeEngine(await make()), ID, { codeDirs: ['/opt'] })
    expect(scan.cudaCalls.map((c) => c.path)).toEqual(['app/main.py', 'opt/tool.py'])
  })
})

describe('scanImage errors', () => {
  it('an image the engine does not have is a usage error naming it', async () => {
    const err = await scanImage(fakeEngine(Buffer.alloc(0)), 'nope:1').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UsageError)
    expect((err as UsageError).exitCode).toBe(2)
    expect((err as Error).message).toContain('nope:1')
  })

  it('a truncated archive rejects', async () => {
    const archive = await ociArchive()
    await expect(
      scanImage(fakeEngine(archive.subarray(0, archive.length - 3000)), ID),
    ).rejects.toThrow(/truncated|corrupt|manifest/)
  })
})

// The real engine port reads the export in a worker thread that opens it itself
// (Engine.exportRequest → lib/docker/export.ts): here over HTTP on a unix socket, as dockerd.
describe('scanImage in a worker thread (the export opened by the worker)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sst-scan-worker-'))
  const socketPath = path.join(dir, 'engine.sock')
  const served = new Map<string, Buffer>()
  const requests: string[] = []
  const dropping = new Set<Buffer>()
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '')
    const body = served.get(req.url ?? '')
    if (!body) {
      res.writeHead(404, { 'content-type': 'application/json' })
      return res.end(JSON.stringify({ message: 'No such image: gone' }))
    }
    res.writeHead(200, { 'content-type': 'application/x-tar' })
    if (dropping.has(body)) {
      // the engine goes away mid-export
      return res.write(body.subarray(0, body.length >> 1), () => res.destroy())
    }
    res.end(body)
  })
  beforeAll(async () => {
    // the worker runs the BUILT modules (a worker cannot load TypeScript): a stale build would
    // test old code, so say so instead
    const root = fileURLToPath(new URL('../../..', import.meta.url))
    for (const m of [
      'scan/collect',
      'scan/collect-worker',
      'scan/analyze',
      'docker/export',
      'docker/archive',
      'docker/tarwalk',
      'errors',
    ]) {
      const src = statSync(path.join(root, `lib/${m}.ts`)).mtimeMs
      const built = path.join(root, `dist/lib/${m}.js`)
      if (!existsSync(built) || statSync(built).mtimeMs < src)
        throw new Error(`${built} is older than lib/${m}.ts: run npm run build (npm test does)`)
    }
    await new Promise<void>((r) => server.listen(socketPath, r))
  })
  afterAll(() => {
    server.close()
    rmSync(dir, { recursive: true, force: true })
  })

  /** fakeEngine whose export is only reachable the way the worker reads it. */
  function workerEngine(archive: Buffer, id = ID): Engine {
    const p = `/v1.45/images/${encodeURIComponent(id)}/get`
    served.set(p, archive)
    const engine = fakeEngine(archive)
    engine.exportImage = () => Promise.reject(new Error('read in this thread, not in the worker'))
    engine.exportRequest = (imageId: string) => ({
      socketPath,
      protocol: 'http',
      path: `/v1.45/images/${encodeURIComponent(imageId)}/get`,
      idleTimeoutMs: 10_000,
      what: `export of image ${imageId}`,
    })
    return engine
  }

  it.each([
    ['OCI layout, gzip layers', ociArchive],
    ['legacy layout, plain layers', legacyArchive],
  ])('%s: the same result as in this thread, progress to the last byte', async (_n, make) => {
    const archive = await make()
    let progressed = 0
    const before = requests.length
    const inWorker = await scanImage(workerEngine(archive), 'app:1', {
      progress: (b) => (progressed = b),
      codeDirs: ['/opt'],
    })
    expect(requests.slice(before)).toEqual([`/v1.45/images/${encodeURIComponent(ID)}/get`])
    expect(progressed).toBe(archive.length)
    const inThread = await scanImage(fakeEngine(archive), 'app:1', { codeDirs: ['/opt'] })
    expect(inWorker).toEqual(inThread)
    expect(inWorker.files).toBe(18 + 4 - 5)
    expect(inWorker.cudaCalls.map((c) => c.path)).toEqual(['app/main.py', 'opt/tool.py'])
  })

  it("an engine error answer is an EngineError with the engine's message", async () => {
    const engine = workerEngine(await ociArchive())
    served.clear() // the image went away between inspect and export
    const err = await scanImage(engine, ID).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(EngineError)
    expect((err as EngineError).statusCode).toBe(404)
    expect((err as Error).message).toBe(`export of image ${ID}: No such image: gone`)
  })

  it('a truncated archive is an archive error; a connection dropped mid-export an engine error', async () => {
    const archive = await ociArchive()
    const err = await scanImage(workerEngine(archive.subarray(0, archive.length - 3000)), ID).catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(ImageArchiveError)
    expect((err as Error).message).toMatch(/truncated|corrupt|manifest/)
    const cut = await legacyArchive()
    dropping.add(cut)
    const dropped = await scanImage(workerEngine(cut), ID).catch((e: unknown) => e)
    // the engine went away: its failure (exit 3), not a corrupt image
    expect(dropped).toBeInstanceOf(EngineError)
    expect((dropped as Error).message).toBe(
      `export of image ${ID}: the engine stopped sending mid-export (no answer: timed out or connection lost)`,
    )
  })

  it('an engine that cannot be reached is an EngineError', async () => {
    const engine = workerEngine(await ociArchive())
    engine.exportRequest = (imageId: string) => ({
      socketPath: path.join(dir, 'no-such.sock'),
      protocol: 'http',
      path: `/v1.45/images/${encodeURIComponent(imageId)}/get`,
      idleTimeoutMs: 10_000,
      what: `export of image ${imageId}`,
    })
    const err = await scanImage(engine, ID).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(EngineError)
    expect((err as Error).message).toBe(`export of image ${ID}: no such socket`)
  })
})

describe('contentWanted', () => {
  it('keeps the few texts the analysis reads and greps application Python', () => {
    expect(contentWanted('var/lib/dpkg/status', 10)).toBe('text')
    expect(contentWanted('var/lib/dpkg/status', 9 * 1024 * 1024)).toBe('text') // over 8 MiB
    expect(contentWanted('var/lib/dpkg/status', 33 * 1024 * 1024)).toBeNull()
    expect(contentWanted('var/lib/dpkg/info/libc6:amd64.list', 10)).toBe('text')
    expect(contentWanted('var/lib/dpkg/info/libc6.md5sums', 10)).toBeNull()
    expect(contentWanted(`${SP}/torch-2.8.0.dist-info/RECORD`, 10)).toBe('text')
    expect(contentWanted(`${SP}/torch-2.8.0.dist-info/METADATA`, 10)).toBe('text')
    expect(contentWanted(`${SP}/torch/RECORD`, 10)).toBeNull()
    expect(contentWanted(`${SP}/torch/version.py`, 300)).toBe('text')
    expect(contentWanted(`${SP}/torch/nn/linear.py`, 300)).toBeNull()
    expect(contentWanted('app/main.py', 300)).toBe('python')
    expect(contentWanted('app/huge.py', 2 * 1024 * 1024)).toBeNull()
    expect(contentWanted('usr/lib/python3.11/os.py', 300)).toBeNull()
    expect(contentWanted('etc/os-release', 300)).toBe('text')
    expect(contentWanted('etc/passwd', 300)).toBeNull()
  })
})
