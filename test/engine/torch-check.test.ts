// torch-check and inspect on real containers of the run's engine: a CUDA torch build in a
// container that asks for no GPU, a CPU build, a GPU request with CUDA calls in the code
// (created, not started: no GPU here), no python at all, and a broken torch import.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, expect } from 'vitest'
import { requireEngine, type PrivateEngine } from '../harness/engine.js'
import { BUSYBOX_TAG, buildImage, docker, dockerOk } from '../harness/fixtures.js'
import {
  DEBIAN_SITE_PACKAGES,
  fakeTorchFiles,
  pythonBaseImage,
  pythonProblem,
} from '../harness/python.js'
import { describeEngine, engineTest as test } from '../harness/suite.js'
import { runCli } from '../cli/run.js'
import type { TorchCheckReport, TorchTarget } from '../../lib/torch-check/index.js'
import type { InspectReport } from '../../lib/scan/inspect.js'
import type { Report } from '../../lib/report/types.js'

const SITE = `/${DEBIAN_SITE_PACKAGES}`
const NVIDIA = { 'nvidia-cublas-cu12': 30_000_000, 'nvidia-cudnn-cu12': 20_000_000 }
const SLEEP = ['python3', '-c', 'import time; time.sleep(3600)']
/** Apparent bytes of the files below some directories, measured by the image's own python. */
const DU = (dirs: string[]) =>
  `import os; print(sum(os.path.getsize(os.path.join(d, f)) for top in ${JSON.stringify(dirs)} for d, _, fs in os.walk(top) for f in fs if not os.path.islink(os.path.join(d, f))))`

describeEngine(
  'torch-check and inspect',
  (getEngine) => {
    const problem = pythonProblem()
    if (problem && !requireEngine()) {
      process.stderr.write(`\n!!! SKIPPED torch-check tests: ${problem}\n`)
      test.skip(`[SKIPPED: python fixtures cannot be made here: ${problem}]`, () => {})
      return
    }
    let engine: PrivateEngine
    let report: TorchCheckReport
    const cli = (args: string[]) =>
      runCli(['--docker-host', engine.dockerHost, ...args], {}, 300_000)
    const target = (name: string): TorchTarget => report.targets.find((t) => t.target === name)!

    beforeAll(async () => {
      engine = getEngine()
      const base = await pythonBaseImage(engine)
      const app = (code: string) => ({ 'app/main.py': code })
      await buildImage(engine, {
        tag: 'sst-torch/cuda:1',
        dockerfile: `FROM ${base}\nCOPY usr/ /usr/\nCOPY app/ /app/\nWORKDIR /app\n`,
        files: {
          ...fakeTorchFiles({
            version: '2.8.0',
            cuda: '12.8',
            nvidia: NVIDIA,
            libtorchCudaBytes: 15_000_000,
            tritonBytes: 5_000_000,
          }),
          ...app('import torch\ndevice = "cpu"\nmodel = None\n'),
        },
      })
      await buildImage(engine, {
        tag: 'sst-torch/cpu:1',
        dockerfile: `FROM ${base}\nCOPY usr/ /usr/\n`,
        files: fakeTorchFiles({ version: '2.8.0', cuda: null, distVersion: '2.8.0+cpu' }),
      })
      await buildImage(engine, {
        tag: 'sst-torch/gpu:1',
        dockerfile: `FROM ${base}\nCOPY usr/ /usr/\nCOPY app/ /app/\nWORKDIR /app\n`,
        files: {
          ...fakeTorchFiles({ version: '2.8.0', cuda: '12.8', nvidia: NVIDIA }),
          ...app('import torch\nmodel = torch.nn.Linear(2, 2)\nmodel.to("cuda")\n'),
        },
      })
      await buildImage(engine, {
        tag: 'sst-torch/broken:1',
        dockerfile: `FROM ${base}\nCOPY usr/ /usr/\n`,
        files: fakeTorchFiles({
          version: '2.8.0',
          cuda: '12.8',
          nvidia: { 'nvidia-cublas-cu12': 1_000_000 },
          brokenImport: true,
        }),
      })
      await dockerOk(engine, [
        'run',
        '-d',
        '--network',
        'none',
        '--name',
        'sst-cuda',
        'sst-torch/cuda:1',
        ...SLEEP,
      ])
      await dockerOk(engine, [
        'run',
        '-d',
        '--network',
        'none',
        '--name',
        'sst-cpu',
        'sst-torch/cpu:1',
        ...SLEEP,
      ])
      await dockerOk(engine, [
        'run',
        '-d',
        '--network',
        'none',
        '--name',
        'sst-broken',
        'sst-torch/broken:1',
        ...SLEEP,
      ])
      await dockerOk(engine, [
        'run',
        '-d',
        '--network',
        'none',
        '--name',
        'sst-nopython',
        BUSYBOX_TAG,
        'sleep',
        '3600',
      ])
      await dockerOk(engine, [
        'create',
        '--network',
        'none',
        '--gpus',
        'all',
        '--name',
        'sst-gpu',
        'sst-torch/gpu:1',
      ])
      const r = await cli([
        'torch-check',
        '--json',
        'sst-cuda',
        'sst-cpu',
        'sst-broken',
        'sst-nopython',
        'sst-gpu',
        'image:sst-torch/cpu:1',
      ])
      expect(r.stderr).not.toMatch(/unexpected error/)
      expect(r.code).toBe(0)
      report = JSON.parse(r.stdout) as TorchCheckReport
    })

    afterAll(async () => {
      if (engine)
        await docker(engine, [
          'rm',
          '-f',
          'sst-cuda',
          'sst-cpu',
          'sst-broken',
          'sst-nopython',
          'sst-gpu',
        ]).catch(() => {})
    })

    test('the JSON shape: one entry per target', () => {
      expect(report.schema).toBe('shipshape.torch-check/1')
      expect(report.hostGpu.present).toBe(false)
      expect(report.targets.map((t) => t.target)).toEqual([
        'sst-cuda',
        'sst-cpu',
        'sst-broken',
        'sst-nopython',
        'sst-gpu',
        'image:sst-torch/cpu:1',
      ])
      for (const t of report.targets) {
        expect(t).toHaveProperty('verdict')
        expect(t).toHaveProperty('torch')
        expect(t).toHaveProperty('estimatedSavingsBytes')
        expect(t).toHaveProperty('suggestion')
      }
    })

    test('a CUDA build in a container without a GPU: gpu-unused, saving = du of the CUDA libraries', async ({
      engine,
    }) => {
      const t = target('sst-cuda')
      expect(t.verdict).toBe('gpu-unused')
      expect(t.torch).toEqual({ version: '2.8.0+cu128', cuda: '12.8' })
      expect(t.runtime).toMatchObject({
        python: 'python3',
        torch: '2.8.0+cu128',
        cuda: '12.8',
        cudaAvailable: false,
        deviceCount: 0,
      })
      const du = await dockerOk(engine, [
        'exec',
        'sst-cuda',
        'python3',
        '-c',
        DU([`${SITE}/nvidia`, `${SITE}/triton`]),
      ])
      const cudaInTorchLib = ['libtorch_cuda', 'libc10_cuda', 'libtorch_nvrtc', 'libcaffe2_nvrtc']
        .map((n) => `'${SITE}/torch/lib/${n}*'`)
        .join(', ')
      const libtorchCuda = await dockerOk(engine, [
        'exec',
        'sst-cuda',
        'python3',
        '-c',
        `import os, glob; print(sum(os.path.getsize(p) for g in [${cudaInTorchLib}] for p in glob.glob(g)))`,
      ])
      expect(t.estimatedSavingsBytes).toBe(Number(du) + Number(libtorchCuda))
      expect(t.estimatedSavingsBytes).toBeGreaterThanOrEqual(70_000_000)
      expect(t.suggestion).toContain('https://download.pytorch.org/whl/cpu')
      expect(t.codeCalls).toEqual([])
    })

    test('a CPU build: cpu-only, in a container and as a bare image', () => {
      expect(target('sst-cpu')).toMatchObject({
        verdict: 'cpu-only',
        torch: { version: '2.8.0+cpu', cuda: null },
        estimatedSavingsBytes: 0,
      })
      expect(target('image:sst-torch/cpu:1')).toMatchObject({
        kind: 'image',
        verdict: 'cpu-only',
        runtime: null,
      })
    })

    test('a GPU request and CUDA calls in the code (created, not started): gpu-used', () => {
      const t = target('sst-gpu')
      expect(t.verdict).toBe('gpu-used')
      expect(t.runtime).toBeNull()
      expect(t.gpuRequest?.requested).toBe(true)
      expect(t.codeCalls).toEqual([{ path: 'app/main.py', line: 3, text: 'model.to("cuda")' }])
      expect(t.estimatedSavingsBytes).toBe(0)
    })

    test('no python at all: no-torch, an answer and not a crash', () => {
      const t = target('sst-nopython')
      expect(t.verdict).toBe('no-torch')
      expect(t.runtime?.python).toBeNull()
    })

    test('a broken torch import: the error is reported, the static scan still judges', () => {
      const t = target('sst-broken')
      expect(t.runtime?.importError).toMatch(/ImportError: libcudart\.so\.12/)
      expect(t.verdict).toBe('gpu-unused')
      expect(t.reasons.join('\n')).toMatch(/import torch fails/)
    })

    test('an unknown target is a usage error (exit 2)', async () => {
      const r = await cli(['torch-check', 'no-such-thing'])
      expect(r.code).toBe(2)
      expect(r.stderr).toContain("no container or image named 'no-such-thing'")
    })

    test('inspect finds the CUDA torch with the same bytes, and prints fixes', async () => {
      const r = await cli(['inspect', '--json', 'sst-torch/cuda:1'])
      expect(r.code).toBe(0)
      const scan = JSON.parse(r.stdout) as InspectReport
      expect(scan.schema).toBe('shipshape.inspect/1')
      expect(scan.torch).toMatchObject({ version: '2.8.0+cu128', cuda: '12.8' })
      expect(scan.findings.find((f) => f.rule === 'cuda-torch')?.estimatedSavingsBytes).toBe(
        target('sst-cuda').estimatedSavingsBytes,
      )
      expect(scan.python.distributions.map((d) => d.name)).toEqual(
        expect.arrayContaining(['torch', 'nvidia-cublas-cu12']),
      )
      expect(scan.dpkg?.packages.some((p) => p.name === 'python3.11-minimal')).toBe(true)
      const human = await cli(['inspect', 'sst-torch/cuda:1'])
      expect(human.code).toBe(0)
      expect(human.stderr).toMatch(/cuda-torch/)
      expect(human.stderr).toMatch(/download\.pytorch\.org\/whl\/cpu/)
    })

    test('report --deep turns the scan of a big image into recommendations', async ({ engine }) => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'ss-deep-'))
      try {
        const config = path.join(dir, 'deep.yaml')
        await writeFile(config, 'report:\n  bigImage: 100MB\n')
        const r = await runCli(
          ['--config', config, '--docker-host', engine.dockerHost, 'report', '--deep', '--json'],
          {},
          300_000,
        )
        expect(r.code).toBe(0)
        const rep = JSON.parse(r.stdout) as Report
        const big = rep.images.filter((i) => i.big).map((i) => i.tags[0] ?? i.id)
        expect(rep.deep?.map((d) => d.image).sort()).toEqual(big.sort())
        const cuda = rep.recommendations.find(
          (x) => x.kind === 'image-cuda-torch' && x.target === 'sst-torch/cuda:1',
        )
        expect(cuda?.estimatedSavingsBytes).toBe(target('sst-cuda').estimatedSavingsBytes)
        expect(cuda?.command).toBe('shipshape torch-check image:sst-torch/cuda:1')
        // the generic "inspect it" recommendation is gone for the images that were scanned
        expect(
          rep.recommendations.filter((x) => x.kind === 'inspect-image' && big.includes(x.target)),
        ).toEqual([])
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    })

    test('a configured service: gpu: required flags the mismatch, sourceDir adds host code', async ({
      engine,
    }) => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'ss-svc-'))
      try {
        await mkdir(path.join(dir, 'src'))
        await writeFile(
          path.join(dir, 'src', 'infer.py'),
          'import torch\nx = torch.zeros(1)\nx = x.cuda()\n',
        )
        const config = path.join(dir, 'svc.yaml')
        await writeFile(
          config,
          `services:\n  cuda-svc:\n    container: sst-cuda\n    gpu: required\n    sourceDir: ${JSON.stringify(path.join(dir, 'src'))}\n`,
        )
        const r = await runCli(
          [
            '--config',
            config,
            '--docker-host',
            engine.dockerHost,
            'torch-check',
            '--json',
            'sst-cuda',
          ],
          {},
          300_000,
        )
        expect(r.code).toBe(0)
        const t = (JSON.parse(r.stdout) as TorchCheckReport).targets[0]!
        expect(t.service).toBe('cuda-svc')
        expect(t.findings).toEqual(['configured gpu: required, but the verdict is gpu-unused'])
        expect(t.codeCalls).toContainEqual(
          expect.objectContaining({ line: 3, text: 'x = x.cuda()' }),
        )
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    })

    test('--no-probe leaves running containers alone and judges from the image content', async () => {
      const r = await cli(['torch-check', '--json', '--no-probe', 'sst-cuda'])
      expect(r.code).toBe(0)
      const t = (JSON.parse(r.stdout) as TorchCheckReport).targets[0]!
      expect(t.runtime).toBeNull()
      expect(t.verdict).toBe('gpu-unused')
      expect(t.estimatedSavingsBytes).toBe(target('sst-cuda').estimatedSavingsBytes)
    })
  },
  // one engine: torch-check’s verdicts and probe: the engine-dependent part (export in both image stores) is scan.test’s and archive.test’s, on every engine
  { anyEngine: true },
)
