// scanImage against what each engine really streams (20.10 legacy layout, 26.1 OCI layout,
// 26.1 containerd store with gzip layers), its numbers checked against what a container of the
// image sees (busybox find + stat) and what the engine says (image Size).
import fs from 'node:fs'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { parseEngineAddress } from '../../lib/shared/address.js'
import { readImageArchive } from '../../lib/docker/archive.js'
import { connectEngine, type Engine } from '../../lib/docker/engine.js'
import { UsageError } from '../../lib/errors.js'
import { scanImage } from '../../lib/scan/scan.js'
import type { ScanResult } from '../../lib/scan/types.js'
import type { PrivateEngine } from '../harness/engine.js'
import { buildImage, busyboxImage, docker, dockerOk, engineClient } from '../harness/fixtures.js'
import { describeEngine } from '../harness/suite.js'

const TAG = 'sst-scan/app:1'
const MiB = 1024 * 1024
const RUN_BIG = 'dd if=/dev/zero of=/big bs=1M count=5'
const RUN_RM_BIG = 'rm /big'
const RUN_MODEL = 'mkdir -p /etc/app && dd if=/dev/urandom of=/etc/app/model.bin bs=1000 count=3'
const RUN_MODEL_AGAIN = 'dd if=/dev/urandom of=/etc/app/model.bin bs=1000 count=1'
const RUN_HARDLINK = 'mkdir -p /opt && head -c 4321 /dev/zero > /opt/h1 && ln /opt/h1 /opt/h2'
const RUN_RM_GONE = 'rm /app/gone.py'

const SP = 'usr/local/lib/python3.11/site-packages'
const fill = (n: number, c = 'x') => Buffer.alloc(n, c)
const MAIN_PY = [
  'import torch', // 1
  '',
  'def main():', // 3
  '    model = torch.nn.Linear(4, 2)',
  '    device = "cpu"  # the default', // 5: not a CUDA call
  '    model.to("cuda")', // 6
  '',
].join('\n')
const RECORD = [
  'tiny/__init__.py,sha256=a,300',
  'tiny/core.so,sha256=b,20000',
  'tiny/tests/test_core.py,sha256=c,800',
  '../../../bin/tiny,sha256=d,150',
  'tiny-1.0.dist-info/METADATA,sha256=e,40',
  'tiny-1.0.dist-info/RECORD,,',
  '',
].join('\n')
const STATUS = [
  'Package: tinytool',
  'Status: install ok installed',
  'Installed-Size: 10',
  'Architecture: amd64',
  'Version: 1.2-3',
  'Description: a tiny tool',
  ' for the scan test',
  '',
  'Package: oldtool',
  'Status: deinstall ok config-files',
  'Installed-Size: 99',
  'Version: 0.9',
  '',
].join('\n')

/** The build context's rootfs/, copied to / in one layer. */
const ROOTFS: Record<string, string | Buffer> = {
  'app/main.py': MAIN_PY,
  'app/util.py': 'def add(a, b):\n    return a + b\n',
  'app/gone.py': 'x = y.cuda()\n', // deleted by a later layer
  'app/__pycache__/main.cpython-311.pyc': fill(1500),
  'app/__pycache__/util.cpython-311.pyc': fill(700),
  'app/legacy.pyc': fill(300),
  'app/.git/objects/pack/p.pack': fill(3000),
  'app/node_modules/left-pad/index.js': fill(2000),
  'app/node_modules/left-pad/package.json': fill(500),
  'app/node_modules/@scope/pkg/index.js': fill(7000),
  'app/node_modules/@scope/pkg/test/t.js': fill(600),
  'srv/tool.py': 'x.cuda()\n', // application code outside WorkingDir
  'root/.cache/pip/http/a/b/c.body': fill(40000),
  'root/.cache/pip/wheels/x.whl': fill(25000),
  'var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4':
    fill(80000),
  'var/lib/apt/lists/lock': '',
  'var/cache/apt/pkgcache.bin': fill(12000),
  'var/lib/dpkg/status': STATUS,
  'var/lib/dpkg/info/tinytool.list':
    '/.\n/usr\n/usr/bin\n/usr/bin/tinytool\n/usr/share/doc/tinytool/copyright\n/usr/share/doc/tinytool/gone\n',
  'usr/bin/tinytool': fill(9000),
  'usr/share/doc/tinytool/copyright': fill(1200),
  [`${SP}/tiny/__init__.py`]: fill(300),
  [`${SP}/tiny/core.so`]: fill(20000),
  [`${SP}/tiny/tests/test_core.py`]: fill(800),
  'usr/local/bin/tiny': fill(150),
  [`${SP}/tiny-1.0.dist-info/METADATA`]: 'Metadata-Version: 2.1\nName: tiny\nVersion: 1.0\n',
  [`${SP}/tiny-1.0.dist-info/RECORD`]: RECORD,
  [`${SP}/torch/version.py`]:
    "__version__ = '2.8.0+cu128'\ndebug = False\ncuda: Optional[str] = '12.8'\ngit_version = 'abc'\n",
  [`${SP}/torch/lib/libtorch_cuda.so`]: fill(50000),
}

interface Seen {
  size: number
  inode: string
}

/** Every regular file of a container of the image (root fs only), as busybox stat sees it. */
async function filesInContainer(engine: PrivateEngine, image: string): Promise<Map<string, Seen>> {
  const out = await dockerOk(engine, [
    'run',
    '--rm',
    '--network',
    'none',
    image,
    'find',
    '/',
    '-xdev',
    '-type',
    'f',
    '-exec',
    'stat',
    '-c',
    '%i %s %n',
    '{}',
    '+',
  ])
  // the engine's own files in every container: bind mounts and the marker
  const engineFiles = new Set(['etc/hosts', 'etc/hostname', 'etc/resolv.conf', '.dockerenv'])
  const files = new Map<string, Seen>()
  for (const line of out.trim().split('\n')) {
    const [inode, size, ...name] = line.split(' ')
    const p = name.join(' ').replace(/^\//, '')
    if (!engineFiles.has(p)) files.set(p, { size: Number(size), inode: inode! })
  }
  return files
}

/** Σ sizes of the files under a prefix (or matching), each inode once, and how many names. */
function measure(
  files: Map<string, Seen>,
  match: (p: string) => boolean,
): { bytes: number; files: number } {
  const inodes = new Set<string>()
  let bytes = 0
  let n = 0
  for (const [p, f] of files) {
    if (!match(p)) continue
    n++
    if (inodes.has(f.inode)) continue
    inodes.add(f.inode)
    bytes += f.size
  }
  return { bytes, files: n }
}
const under = (dir: string) => (p: string) => p.startsWith(`${dir}/`)

describeEngine('deep image scan (scanImage)', (getEngine) => {
  let engine: PrivateEngine
  let api: Engine
  let scan: ScanResult
  let seen: Map<string, Seen>
  let inspectSize: number
  let listedSize: number

  beforeAll(async () => {
    engine = getEngine()
    const base = await busyboxImage(engine)
    const files: Record<string, string | Buffer> = {}
    for (const [p, c] of Object.entries(ROOTFS)) files[`rootfs/${p}`] = c
    await buildImage(engine, {
      tag: TAG,
      dockerfile: [
        `FROM ${base}`,
        `RUN ${RUN_BIG}`,
        `RUN ${RUN_RM_BIG}`,
        `RUN ${RUN_MODEL}`,
        `RUN ${RUN_MODEL_AGAIN}`,
        'COPY rootfs/ /',
        `RUN ${RUN_HARDLINK}`,
        `RUN ${RUN_RM_GONE}`,
        'WORKDIR /app',
        'CMD ["python", "main.py"]',
      ].join('\n'),
      files,
    })
    api = await connectEngine(parseEngineAddress(engine.dockerHost))
    scan = await scanImage(api, TAG)
    seen = await filesInContainer(engine, TAG)
    inspectSize = Number(
      (await dockerOk(engine, ['image', 'inspect', '--format', '{{.Size}}', TAG])).trim(),
    )
    const listed = await engineClient(engine).listImages({ all: true })
    listedSize = listed.find((i) => i.Id === scan.image.id)?.Size ?? NaN
  })

  afterAll(async () => {
    api?.close()
    if (engine) await docker(engine, ['rmi', '-f', TAG]).catch(() => {})
  })

  const layerOf = (run: string) => {
    const l = scan.layers.find((x) => x.createdBy.includes(run))
    expect(l, run).toBeDefined()
    return l!
  }

  it('has the final filesystem a container sees: every byte, every file', () => {
    const all = measure(seen, () => true)
    expect(scan.finalBytes).toBe(all.bytes)
    expect(scan.files).toBe(all.files)
    // and directory by directory
    for (const d of scan.directories) {
      expect(measure(seen, under(d.path)), d.path).toEqual({ bytes: d.sizeBytes, files: d.files })
    }
    expect(scan.directories.map((d) => d.path)).toContain('usr/local/lib')
    expect(scan.image).toMatchObject({
      id: expect.stringMatching(/^sha256:/),
      tags: [TAG],
      workingDir: '/app',
      cmd: ['python', 'main.py'],
      healthcheck: false,
      layout: engine.kind === '20.10' ? 'legacy' : 'oci',
    })
  })

  it('counts the deleted 5 MiB and the overwritten file as wasted by the layers that added them', () => {
    expect(layerOf(RUN_BIG)).toMatchObject({ addedBytes: 5 * MiB, wastedBytes: 5 * MiB, files: 1 })
    expect(layerOf(RUN_RM_BIG)).toMatchObject({ addedBytes: 0, wastedBytes: 0 })
    expect(layerOf(RUN_MODEL)).toMatchObject({ addedBytes: 3000, wastedBytes: 3000 })
    expect(layerOf(RUN_MODEL_AGAIN)).toMatchObject({ addedBytes: 1000, wastedBytes: 0 })
    const copy = scan.layers.find((l) => /COPY/.test(l.createdBy))!
    expect(copy.wastedBytes).toBe(Buffer.byteLength(ROOTFS['app/gone.py']!))
    expect(scan.wastedBytes).toBe(5 * MiB + 3000 + copy.wastedBytes)
    // the hard link holds no bytes of its own
    expect(layerOf(RUN_HARDLINK)).toMatchObject({ addedBytes: 4321, files: 2 })
    expect(scan.totalBytes).toBe(scan.finalBytes + scan.wastedBytes)
    expect(scan.layers[0]!.comment).toBe('Imported from -')
  })

  it("totals the engine's image size within 1% (graph driver); containerd: content + snapshots", async () => {
    const ratio = (a: number, b: number) => Math.abs(a - b) / b
    console.log(
      `${engine.kind}: total ${scan.totalBytes}, final ${scan.finalBytes}, inspect Size ${inspectSize}, listed Size ${listedSize}, blobs ${scan.layers.reduce((a, l) => a + l.blobBytes, 0)}`,
    )
    if (!engine.containerdImageStore) {
      // Graph driver: Size is the sum of each layer's diff directory (regular files and
      // symlinks, directories not counted, hard links once): every byte shipped, deleted ones
      // included, i.e. totalBytes plus the symlinks' target lengths (busybox's applet links).
      expect(scan.image.engineSizeBytes).toBe(inspectSize)
      expect(listedSize).toBe(inspectSize)
      expect(scan.totalBytes).toBeLessThanOrEqual(inspectSize)
      expect(ratio(scan.totalBytes, inspectSize)).toBeLessThan(0.01)
      return
    }
    // Containerd store: no image Size is the filesystem's. inspect's Size is the content
    // store's (compressed) blobs: the gzip layers + config + manifest. The listed Size — what
    // the scan reports as engineSizeBytes, what the disk holds — adds the unpacked snapshots,
    // whose usage containerd measures as du does: allocated blocks, directories included.
    // So listed - inspect = Σ over layers of every file rounded up to a block, plus the
    // directories' blocks; it holds totalBytes (deleted files too) and is within 1% of it once
    // files are big (bench/scan.bench.ts), not for this fixture of many tiny files.
    expect(scan.image.engineSizeBytes).toBe(listedSize)
    const blobs = scan.layers.reduce((a, l) => a + l.blobBytes, 0)
    expect(inspectSize).toBeGreaterThan(blobs) // + config and manifest
    expect(inspectSize - blobs).toBeLessThan(16 * 1024)
    const snapshots = listedSize - inspectSize
    const bs = fs.statfsSync(engine.root).bsize
    const round = (n: number) => Math.ceil(n / bs) * bs
    let blocks = 0
    await readImageArchive(await api.exportImage(scan.image.id), {
      entry(_blob, e) {
        if (e.whiteout) return
        if (e.type === 'file') blocks += round(e.size)
        if (e.type === 'dir') blocks += bs
      },
    })
    expect(scan.totalBytes).toBeLessThanOrEqual(blocks)
    expect(snapshots).toBeGreaterThanOrEqual(blocks)
    // each snapshot's own root directory, and directories bigger than a block (/bin's links)
    expect(snapshots - blocks).toBeLessThanOrEqual(bs * (scan.layers.length + 32))
  })

  it('fills the buckets with what the container holds there', () => {
    const b = scan.buckets
    const expectBucket = (name: string, match: (p: string) => boolean) =>
      expect({ bytes: b[name]!.bytes, files: b[name]!.files }, name).toEqual(measure(seen, match))
    expectBucket('pycache', (p) => p.includes('/__pycache__/'))
    expectBucket('pyc', (p) => p.endsWith('.pyc') && !p.includes('/__pycache__/'))
    expectBucket('pip-cache', under('root/.cache/pip'))
    expectBucket(
      'apt-lists',
      (p) => under('var/lib/apt/lists')(p) || /^var\/cache\/apt\/[^/]+\.bin$/.test(p),
    )
    expectBucket('git', (p) => p.includes('/.git/'))
    expectBucket('package-tests', (p) => /\/(site-packages|node_modules)\/.+\/tests?\//.test(p))
    expectBucket('torch', under(`${SP}/torch`))
    expectBucket('libtorch-cuda', (p) => p.endsWith('/torch/lib/libtorch_cuda.so'))
    expect(b.pycache!.top.map((t) => t.path)).toEqual(['app/__pycache__'])
    expect(b['pip-cache']!.bytes).toBe(65000)
    expect(b['nvidia-libs']!.bytes).toBe(0)
  })

  it('sizes the Python distribution by its RECORD, node packages, dpkg packages by their .list', () => {
    const size = (p: string) => seen.get(p)?.size ?? 0
    expect(scan.python.sitePackages).toEqual([SP])
    expect(scan.python.distributions).toEqual([
      {
        name: 'tiny',
        version: '1.0',
        path: `${SP}/tiny-1.0.dist-info`,
        sizeBytes:
          size(`${SP}/tiny/__init__.py`) +
          size(`${SP}/tiny/core.so`) +
          size(`${SP}/tiny/tests/test_core.py`) +
          size('usr/local/bin/tiny') +
          size(`${SP}/tiny-1.0.dist-info/METADATA`) +
          size(`${SP}/tiny-1.0.dist-info/RECORD`),
        files: 6,
      },
    ])
    expect(scan.node.packages).toEqual([
      {
        name: '@scope/pkg',
        path: 'app/node_modules/@scope/pkg',
        sizeBytes: measure(seen, under('app/node_modules/@scope/pkg')).bytes,
      },
      {
        name: 'left-pad',
        path: 'app/node_modules/left-pad',
        sizeBytes: measure(seen, under('app/node_modules/left-pad')).bytes,
      },
    ])
    expect(scan.dpkg).toEqual({
      packages: [
        {
          name: 'tinytool',
          version: '1.2-3',
          sizeBytes: size('usr/bin/tinytool') + size('usr/share/doc/tinytool/copyright'),
          installedSizeBytes: 10 * 1024,
        },
      ],
    })
    expect(scan.torch).toEqual({ version: '2.8.0+cu128', cuda: '12.8', path: `${SP}/torch` })
    expect(scan.image.osRelease).toBeNull()
  })

  it('finds the CUDA call of the application under WorkingDir, not deleted or outside code', async () => {
    expect(scan.cudaCalls).toEqual([{ path: 'app/main.py', line: 6, text: 'model.to("cuda")' }])
    const withSrv = await scanImage(api, TAG, { codeDirs: ['/srv'] })
    expect(withSrv.cudaCalls.map((c) => `${c.path}:${c.line}`)).toEqual([
      'app/main.py:6',
      'srv/tool.py:1',
    ])
  })

  it('refuses an image the engine does not have, naming it (usage error)', async () => {
    const err = await scanImage(api, 'sst-scan/missing:1').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UsageError)
    expect((err as Error).message).toContain('sst-scan/missing:1')
  })
})
