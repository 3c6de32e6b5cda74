// The python fixtures (test/harness/python.ts) on the run's engine: the base image runs
// Debian 12's real python3 and carries a real dpkg database; fakeTorchFiles() makes torch
// installations the real python imports, with the metadata and file sizes asked for.
import { afterAll, beforeAll, expect } from 'vitest'
import { requireEngine, type PrivateEngine } from '../harness/engine.js'
import { buildImage, docker, dockerOk } from '../harness/fixtures.js'
import {
  DEBIAN_SITE_PACKAGES,
  fakeTorchFiles,
  nvidiaDist,
  pythonBaseImage,
  pythonProblem,
  type FakeTorchOptions,
} from '../harness/python.js'
import { describeEngine, engineTest as test } from '../harness/suite.js'

const TORCH_PROBE =
  'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available(), torch.cuda.device_count())'
const SITE = `/${DEBIAN_SITE_PACKAGES}`

const CUDA_OPTS = {
  version: '2.8.0',
  cuda: '12.8',
  nvidia: {
    'nvidia-cublas-cu12': 50_000_000,
    'nvidia-cudnn-cu12': 30_000_000,
    'nvidia-cuda-runtime-cu12': 2_000_000,
  },
  libtorchCudaBytes: 40_000_000,
  tritonBytes: 20_000_000,
} satisfies FakeTorchOptions

const TAGS = {
  cuda: 'sst-python/torch-cu128:1',
  cpu: 'sst-python/torch-cpu:1',
  broken: 'sst-python/torch-broken:1',
}

/** Checks every RECORD entry with a hash (size and sha256) of every installed distribution. */
const VERIFY_RECORDS = `
import base64, hashlib, importlib.metadata as md, json, os
out = {}
for dist in md.distributions():
    checked = 0
    for f in dist.files or []:
        if not f.hash:
            continue
        p = f.locate()
        h = hashlib.sha256()
        with open(p, 'rb') as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b''):
                h.update(chunk)
        digest = base64.urlsafe_b64encode(h.digest()).rstrip(b'=').decode()
        assert f.hash.mode == 'sha256' and f.hash.value == digest, (str(f), f.hash.value, digest)
        assert f.size == os.path.getsize(p), (str(f), f.size, os.path.getsize(p))
        checked += 1
    out[dist.metadata['Name']] = {'version': dist.version, 'checked': checked,
                                  'requires': dist.requires or []}
print(json.dumps(out, sort_keys=True))
`

function run(engine: PrivateEngine, image: string, args: string[]) {
  return docker(engine, ['run', '--rm', '--network', 'none', image, ...args])
}

describeEngine(
  'python fixtures (Debian python3 + fake torch)',
  (getEngine) => {
    const problem = pythonProblem()
    if (problem && !requireEngine()) {
      process.stderr.write(`\n!!! SKIPPED python fixture tests: ${problem}\n`)
      test.skip(`[SKIPPED: python fixtures cannot be made here: ${problem}]`, () => {})
      return
    }

    let engine: PrivateEngine
    let base: string
    const images: Partial<Record<keyof typeof TAGS, string>> = {}
    const torchImage = (dockerfileExtra = '') => `FROM ${base}\nCOPY usr/ /usr/\n${dockerfileExtra}`

    beforeAll(async () => {
      engine = getEngine()
      base = await pythonBaseImage(engine)
      images.cuda = await buildImage(engine, {
        tag: TAGS.cuda,
        dockerfile: torchImage(),
        files: fakeTorchFiles(CUDA_OPTS),
      })
      images.cpu = await buildImage(engine, {
        tag: TAGS.cpu,
        dockerfile: torchImage(),
        files: fakeTorchFiles({ version: '2.8.0', cuda: null, distVersion: '2.8.0+cpu' }),
      })
      images.broken = await buildImage(engine, {
        tag: TAGS.broken,
        dockerfile: torchImage(),
        files: fakeTorchFiles({
          version: '2.8.0',
          cuda: '12.8',
          nvidia: { 'nvidia-cublas-cu12': 1_000 },
          brokenImport: true,
        }),
      })
      const sizes = await dockerOk(engine, [
        'image',
        'inspect',
        '--format',
        '{{index .RepoTags 0}} {{.Size}}',
        base,
        TAGS.cuda,
        TAGS.cpu,
        TAGS.broken,
      ])
      process.stderr.write(`[python fixtures on ${engine.kind}] image sizes:\n${sizes}`)
    })

    afterAll(async () => {
      if (engine) await docker(engine, ['rmi', '-f', ...Object.values(TAGS)]).catch(() => {})
    })

    test('the base image runs Debian 12 python3 3.11 without a network', async ({ engine }) => {
      const r = await run(engine, base, [
        'python3',
        '-c',
        "import json, os, sys; print('ok', sys.version.split()[0], sys.executable)",
      ])
      expect(r.stderr).toBe('')
      expect(r.exitCode).toBe(0)
      expect(r.stdout.trim()).toMatch(/^ok 3\.11\.\d+ \/usr\/bin\/python3$/)
      const pyVersion = r.stdout.trim().split(' ')[1]!
      // the interpreter is the one the dpkg database says is installed
      const dpkgVersion = await dockerOk(engine, [
        'run',
        '--rm',
        '--network',
        'none',
        base,
        'dpkg-query',
        '-W',
        '-f',
        '${Version}',
        'python3.11-minimal',
      ])
      expect(dpkgVersion.startsWith(`${pyVersion}-`)).toBe(true)
      const osRelease = await dockerOk(engine, [
        'run',
        '--rm',
        '--network',
        'none',
        base,
        'cat',
        '/etc/os-release',
      ])
      expect(osRelease).toContain('VERSION_ID="12"')
      expect(osRelease).toContain('VERSION_CODENAME=bookworm')
    })

    test('pip installs go to /usr/local/lib/python3.11/dist-packages (first on sys.path)', async ({
      engine,
    }) => {
      const out = await dockerOk(engine, [
        'run',
        '--rm',
        '--network',
        'none',
        base,
        'python3',
        '-c',
        'import json, sys; print(json.dumps(sys.path))',
      ])
      const sysPath = JSON.parse(out) as string[]
      expect(sysPath.find((p) => p.endsWith('-packages'))).toBe(SITE)
      expect(sysPath).toContain('/usr/lib/python3/dist-packages')
    })

    test('the dpkg database lists the installed packages and their files', async ({ engine }) => {
      const out = await dockerOk(engine, [
        'run',
        '--rm',
        '--network',
        'none',
        base,
        'dpkg-query',
        '-W',
        '-f',
        '${Package}\t${Version}\t${db:Status-Abbrev}\t${Installed-Size}\n',
      ])
      const rows = out
        .trim()
        .split('\n')
        .map((l) => l.split('\t').map((f) => f.trim()))
      expect(rows.length).toBeGreaterThan(30)
      for (const row of rows) {
        expect(row[2], row.join(' ')).toBe('ii')
        expect(Number(row[3]), row.join(' ')).toBeGreaterThan(0)
      }
      const names = rows.map((r) => r[0])
      for (const p of ['python3', 'python3.11-minimal', 'libpython3.11-stdlib', 'libc6', 'dpkg']) {
        expect(names).toContain(p)
      }
      const owner = await dockerOk(engine, [
        'run',
        '--rm',
        '--network',
        'none',
        base,
        'dpkg-query',
        '-S',
        '/usr/bin/python3.11',
      ])
      expect(owner.trim()).toBe('python3.11-minimal: /usr/bin/python3.11')
    })

    test('a CUDA torch 2.8.0 imports: 2.8.0+cu128 12.8 False 0', async ({ engine }) => {
      const r = await run(engine, TAGS.cuda, ['python3', '-c', TORCH_PROBE])
      expect(r.stderr).toBe('')
      expect(r.exitCode).toBe(0)
      expect(r.stdout.trim()).toBe('2.8.0+cu128 12.8 False 0')
      const dev = await dockerOk(engine, [
        'run',
        '--rm',
        '--network',
        'none',
        TAGS.cuda,
        'python3',
        '-c',
        "import torch; d = torch.device('cuda:0'); print(repr(d), d, torch.version.git_version != '')",
      ])
      expect(dev.trim()).toBe("device(type='cuda', index=0) cuda:0 True")
    })

    test('a CPU torch imports: 2.8.0+cpu None False 0', async ({ engine }) => {
      const r = await run(engine, TAGS.cpu, ['python3', '-c', TORCH_PROBE])
      expect(r.stderr).toBe('')
      expect(r.exitCode).toBe(0)
      expect(r.stdout.trim()).toBe('2.8.0+cpu None False 0')
      const files = await dockerOk(engine, [
        'run',
        '--rm',
        '--network',
        'none',
        TAGS.cpu,
        'ls',
        `${SITE}`,
        `${SITE}/torch/lib`,
      ])
      expect(files).toContain('torch-2.8.0+cpu.dist-info')
      expect(files).not.toContain('nvidia')
      expect(files).not.toContain('libtorch_cuda.so')
    })

    test('a broken torch fails to import with the missing CUDA library on stderr', async ({
      engine,
    }) => {
      const r = await run(engine, TAGS.broken, ['python3', '-c', TORCH_PROBE])
      expect(r.exitCode).not.toBe(0)
      expect(r.stdout).toBe('')
      expect(r.stderr).toContain(
        'ImportError: libcudart.so.12: cannot open shared object file: No such file or directory',
      )
      // the installation itself is intact: metadata readable without importing torch
      const v = await dockerOk(engine, [
        'run',
        '--rm',
        '--network',
        'none',
        TAGS.broken,
        'python3',
        '-c',
        "import importlib.metadata as m; print(m.version('torch'))",
      ])
      expect(v.trim()).toBe('2.8.0')
    })

    test('the files have the sizes asked for (stat, du)', async ({ engine }) => {
      const expected: Record<string, number> = {
        'torch/lib/libtorch_cuda.so': CUDA_OPTS.libtorchCudaBytes,
        'triton/_C/libtriton.so': CUDA_OPTS.tritonBytes,
      }
      for (const [dist, bytes] of Object.entries(CUDA_OPTS.nvidia)) {
        const { module, lib } = nvidiaDist(dist)
        expected[`nvidia/${module}/lib/${lib}`] = bytes
      }
      const stat = await dockerOk(engine, [
        'run',
        '--rm',
        '--network',
        'none',
        '-w',
        SITE,
        TAGS.cuda,
        'stat',
        '-c',
        '%s %n',
        ...Object.keys(expected),
      ])
      const got = Object.fromEntries(
        stat
          .trim()
          .split('\n')
          .map((l) => {
            const [size, name] = l.split(' ')
            return [name!, Number(size)]
          }),
      )
      expect(got).toEqual(expected)

      // du -sk: the data is really there (not sparse in the image), within 1% + a few KiB
      const du = await dockerOk(engine, [
        'run',
        '--rm',
        '--network',
        'none',
        '-w',
        SITE,
        TAGS.cuda,
        'du',
        '-sk',
        'nvidia',
        'torch',
        'triton',
      ])
      const kib = Object.fromEntries(
        du
          .trim()
          .split('\n')
          .map((l) => {
            const [k, name] = l.split(/\s+/)
            return [name!, Number(k)]
          }),
      )
      const nvidiaBytes = Object.values(CUDA_OPTS.nvidia).reduce((a, b) => a + b, 0)
      const near = (actualKib: number, bytes: number) => {
        expect(actualKib * 1024).toBeGreaterThanOrEqual(bytes * 0.99)
        expect(actualKib * 1024).toBeLessThanOrEqual(bytes * 1.01 + 1024 * 1024)
      }
      near(kib.nvidia!, nvidiaBytes)
      near(kib.torch!, CUDA_OPTS.libtorchCudaBytes)
      near(kib.triton!, CUDA_OPTS.tritonBytes)
    })

    test('RECORD, METADATA and dist-info are what pip would have written', async ({ engine }) => {
      const out = await dockerOk(engine, [
        'run',
        '--rm',
        '--network',
        'none',
        TAGS.cuda,
        'python3',
        '-c',
        VERIFY_RECORDS,
      ])
      const dists = JSON.parse(out) as Record<
        string,
        { version: string; checked: number; requires: string[] }
      >
      expect(Object.keys(dists).sort()).toEqual([
        'nvidia-cublas-cu12',
        'nvidia-cuda-runtime-cu12',
        'nvidia-cudnn-cu12',
        'torch',
        'triton',
      ])
      expect(dists.torch!.version).toBe('2.8.0')
      expect(dists['nvidia-cudnn-cu12']!.version).toBe('9.10.2.21')
      for (const d of Object.values(dists)) expect(d.checked).toBeGreaterThan(3)
      expect(dists.torch!.requires).toContain(
        'nvidia-cublas-cu12==12.8.4.1; platform_system == "Linux" and platform_machine == "x86_64"',
      )
      expect(dists.torch!.requires.some((r) => r.startsWith('triton==3.4.0'))).toBe(true)
    })
  },
  // one engine: the fixture builder itself: its subject is not the engine
  { anyEngine: true },
)
