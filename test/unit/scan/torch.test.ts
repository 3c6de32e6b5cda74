import { describe, expect, it } from 'vitest'
import { gpuRequest } from '../../../lib/docker/gpu.js'
import { missingProgram, parseProbeOutput, PROBE_SCRIPT } from '../../../lib/scan/torch-probe.js'
import { decideVerdict, type VerdictInput } from '../../../lib/scan/torch-verdict.js'

const noReq = { requested: false, reasons: [] }
const cudaStatic = {
  torch: { version: '2.8.0+cu128', cuda: '12.8' },
  cudaBytes: 4_200_000_000,
  parts: [{ name: 'nvidia-libs', bytes: 3_000_000_000 }],
}
const runtime = (over: Partial<ReturnType<typeof parseProbeOutput>> = {}) => ({
  python: 'python3',
  pythonVersion: '3.11.2',
  torch: '2.8.0+cu128',
  cuda: '12.8',
  cudaAvailable: false,
  deviceCount: 0,
  importError: null,
  error: null,
  ...over,
})
const base: VerdictInput = {
  kind: 'container',
  runtime: null,
  static: cudaStatic,
  gpuRequest: noReq,
  hostGpu: false,
  codeCalls: [],
}

describe('gpuRequest', () => {
  it('sees device requests, the nvidia runtime and NVIDIA_VISIBLE_DEVICES', () => {
    expect(
      gpuRequest({
        deviceRequests: [{ driver: '', count: -1, deviceIds: [], capabilities: [['gpu']] }],
        runtime: 'runc',
        env: [],
      }),
    ).toEqual({ requested: true, reasons: ['device request (gpu: all)'] })
    expect(
      gpuRequest({ deviceRequests: [], runtime: 'nvidia', env: ['NVIDIA_VISIBLE_DEVICES=0,1'] })
        .reasons,
    ).toEqual(['runtime nvidia', 'NVIDIA_VISIBLE_DEVICES=0,1'])
    expect(
      gpuRequest({ deviceRequests: [], runtime: 'runc', env: ['NVIDIA_VISIBLE_DEVICES=void'] }),
    ).toEqual(noReq)
  })
})

describe('the runtime probe', () => {
  it('is valid python that prints one marked JSON line', () => {
    expect(PROBE_SCRIPT).toContain('import torch')
    expect(PROBE_SCRIPT.split('\n').every((l) => !l.includes('\t'))).toBe(true)
  })
  it('reads a CUDA build, a CPU build, a broken import and a missing dependency', () => {
    const cuda = parseProbeOutput(
      'python3',
      'noise\nSHIPSHAPE-TORCH {"python": "3.11.2", "torch": "2.8.0+cu128", "cuda": "12.8", "available": false, "devices": 0}\n',
    )
    expect(cuda).toMatchObject({
      torch: '2.8.0+cu128',
      cuda: '12.8',
      cudaAvailable: false,
      deviceCount: 0,
      error: null,
    })
    expect(
      parseProbeOutput(
        'python',
        'SHIPSHAPE-TORCH {"python": "3.11.2", "torch": "2.8.0+cpu", "cuda": null}',
      ).cuda,
    ).toBeNull()
    expect(
      parseProbeOutput(
        'python3',
        'SHIPSHAPE-TORCH {"python": "3.11.2", "importError": "ImportError: libcudart.so.12: cannot open"}',
      ).importError,
    ).toMatch(/libcudart/)
    expect(
      parseProbeOutput('python3', `SHIPSHAPE-TORCH {"missing": "No module named 'torch'"}`)
        .importError,
    ).toBeNull()
    expect(
      parseProbeOutput('python3', `SHIPSHAPE-TORCH {"missing": "No module named 'numpy'"}`)
        .importError,
    ).toBe("ModuleNotFoundError: No module named 'numpy'")
    expect(parseProbeOutput('python3', 'Traceback …').error).toMatch(/no answer/)
  })
  it('tells a missing interpreter from a failing one', () => {
    expect(missingProgram(127, '')).toBe(true)
    expect(
      missingProgram(
        126,
        'OCI runtime exec failed: exec: "python3": executable file not found in $PATH',
      ),
    ).toBe(true)
    expect(missingProgram(1, 'Traceback (most recent call last)')).toBe(false)
  })
})

describe('decideVerdict', () => {
  it('gpu-unused: a CUDA build in a container that asks for no GPU, with the saving and the CPU wheel', () => {
    const v = decideVerdict({ ...base, runtime: runtime() })
    expect(v.verdict).toBe('gpu-unused')
    expect(v.estimatedSavingsBytes).toBe(4_200_000_000)
    expect(v.suggestion).toContain('--index-url https://download.pytorch.org/whl/cpu torch==2.8.0')
    expect(v.torch).toEqual({ version: '2.8.0+cu128', cuda: '12.8' })
  })
  it('gpu-used: the container sees a GPU, or asks for one and its code calls CUDA', () => {
    expect(
      decideVerdict({ ...base, runtime: runtime({ cudaAvailable: true, deviceCount: 1 }) }).verdict,
    ).toBe('gpu-used')
    const requested = decideVerdict({
      ...base,
      gpuRequest: { requested: true, reasons: ['device request (nvidia: all)'] },
      codeCalls: [{ path: 'app/main.py', line: 3, text: 'model.to("cuda")' }],
    })
    expect(requested.verdict).toBe('gpu-used')
    expect(requested.estimatedSavingsBytes).toBe(0)
    expect(requested.reasons.join(' ')).toMatch(/no GPU/)
  })
  it('cpu-only, no-torch, unknown', () => {
    expect(
      decideVerdict({
        ...base,
        static: { torch: { version: '2.8.0+cpu', cuda: null }, cudaBytes: 0, parts: [] },
      }).verdict,
    ).toBe('cpu-only')
    expect(
      decideVerdict({ ...base, static: { torch: null, cudaBytes: 0, parts: [] } }).verdict,
    ).toBe('no-torch')
    expect(
      decideVerdict({
        ...base,
        static: null,
        runtime: runtime({ python: null, torch: null, cuda: null }),
      }).verdict,
    ).toBe('no-torch')
    expect(decideVerdict({ ...base, static: null, runtime: null }).verdict).toBe('unknown')
  })
  it('a broken import still gets its verdict from the static scan, with the error as a reason', () => {
    const v = decideVerdict({
      ...base,
      runtime: runtime({ torch: null, cuda: null, importError: 'ImportError: libcudart.so.12' }),
    })
    expect(v.verdict).toBe('gpu-unused')
    expect(v.reasons[0]).toMatch(/import torch fails: ImportError/)
  })
  it('a bare image: gpu-unused without host GPU or CUDA calls, unknown otherwise', () => {
    expect(decideVerdict({ ...base, kind: 'image', gpuRequest: null }).verdict).toBe('gpu-unused')
    expect(
      decideVerdict({
        ...base,
        kind: 'image',
        gpuRequest: null,
        codeCalls: [{ path: 'a.py', line: 1, text: 'x.cuda()' }],
      }).verdict,
    ).toBe('unknown')
  })
  it('a mismatch with services.X.gpu becomes a finding', () => {
    expect(decideVerdict({ ...base, expectation: 'required' }).mismatch).toMatch(/required/)
    expect(decideVerdict({ ...base, expectation: 'expected-unused' }).mismatch).toBeNull()
    expect(
      decideVerdict({
        ...base,
        expectation: 'expected-unused',
        runtime: runtime({ cudaAvailable: true, deviceCount: 2 }),
      }).mismatch,
    ).toMatch(/expected-unused/)
  })
})
