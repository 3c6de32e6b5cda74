/**
 * The torch verdict: pure, from what the runtime probe, the static scan, the container's GPU
 * request, the host and the application code say. One function, every case unit-tested.
 */
import type { CodeMatch } from './types.js'
import type { GpuRequest } from '../docker/gpu.js'
import type { RuntimeProbe } from './torch-probe.js'

export type Verdict = 'gpu-unused' | 'gpu-used' | 'cpu-only' | 'no-torch' | 'unknown'

export interface StaticTorch {
  torch: { version: string; cuda: string | null } | null
  /** bytes of CUDA libraries in the image (nvidia-*, libtorch_cuda*, cudnn, triton) */
  cudaBytes: number
  parts: { name: string; bytes: number }[]
}

export interface VerdictInput {
  kind: 'container' | 'image'
  runtime: RuntimeProbe | null
  static: StaticTorch | null
  /** null for a bare image (nothing asks for a GPU yet) */
  gpuRequest: GpuRequest | null
  hostGpu: boolean
  codeCalls: CodeMatch[]
  /** services.X.gpu of the config, when the target is a configured service */
  expectation?: 'required' | 'expected-unused' | 'unknown'
}

export interface VerdictResult {
  verdict: Verdict
  torch: { version: string; cuda: string | null } | null
  reasons: string[]
  estimatedSavingsBytes: number
  suggestion: string | null
  /** a mismatch with services.X.gpu */
  mismatch: string | null
}

const stripLocal = (v: string) => v.replace(/\+.*$/, '')

export function cpuSuggestion(version: string | null): string {
  const pin = version ? `==${stripLocal(version)}` : ''
  return [
    "# CPU-only torch (the runbook's Option A): a multi-stage build whose builder installs",
    '# torch from the CPU wheel index before the rest of the requirements',
    'FROM python:3.11-slim AS builder',
    'COPY requirements.txt .',
    'RUN pip install --no-cache-dir --prefix=/install \\',
    `      --index-url https://download.pytorch.org/whl/cpu torch${pin} torchaudio \\`,
    ' && pip install --no-cache-dir --prefix=/install -r requirements.txt',
    'FROM python:3.11-slim',
    'COPY --from=builder /install /usr/local',
    '# then: shipshape rebuild SERVICE (backs up the running image, health-gates, rolls back)',
  ].join('\n')
}

export function decideVerdict(input: VerdictInput): VerdictResult {
  const reasons: string[] = []
  const rt = input.runtime
  const st = input.static
  const torch =
    rt?.torch !== null && rt?.torch !== undefined
      ? { version: rt.torch, cuda: rt.cuda }
      : (st?.torch ?? null)
  const result = (
    verdict: Verdict,
    savings = 0,
    suggestion: string | null = null,
  ): VerdictResult => {
    let mismatch: string | null = null
    if (input.expectation === 'expected-unused' && verdict === 'gpu-used')
      mismatch = 'configured gpu: expected-unused, but the service uses its GPU'
    if (input.expectation === 'required' && (verdict === 'cpu-only' || verdict === 'gpu-unused'))
      mismatch = `configured gpu: required, but the verdict is ${verdict}`
    if (input.expectation === 'required' && verdict === 'no-torch')
      mismatch = 'configured gpu: required, but there is no torch'
    return { verdict, torch, reasons, estimatedSavingsBytes: savings, suggestion, mismatch }
  }

  if (rt?.importError) reasons.push(`import torch fails: ${rt.importError}`)
  if (rt?.error) reasons.push(`runtime probe: ${rt.error}`)
  if (rt && rt.python === null) reasons.push('no python in the container')

  if (!torch) {
    const knownAbsent =
      (st !== null && st.torch === null) ||
      (rt !== null && rt.python === null) ||
      (rt !== null && rt.torch === null && !rt.importError && !rt.error)
    if (knownAbsent && !(st && st.cudaBytes > 0)) {
      reasons.push('torch is not installed')
      return result('no-torch')
    }
    reasons.push('torch could not be read (no static scan and no answer from the container)')
    return result('unknown')
  }
  if (torch.cuda === null) {
    reasons.push(`torch ${torch.version} is a CPU build`)
    return result('cpu-only')
  }
  reasons.push(`torch ${torch.version} is a CUDA ${torch.cuda} build`)
  const cudaBytes = st?.cudaBytes ?? 0
  const savings = cudaBytes
  const gpuVisible = rt?.cudaAvailable === true && (rt.deviceCount ?? 0) > 0
  if (gpuVisible) {
    reasons.push(`the container sees ${rt?.deviceCount} GPU(s)`)
    return result('gpu-used')
  }
  if (input.kind === 'container') {
    const req = input.gpuRequest
    if (req?.requested) {
      reasons.push(`a GPU is requested (${req.reasons.join('; ')})`)
      if (input.codeCalls.length)
        reasons.push(`the code calls CUDA (${input.codeCalls.length} place(s))`)
      if (!input.hostGpu) reasons.push('this host has no GPU: the container cannot use one here')
      if (input.hostGpu || input.codeCalls.length) return result('gpu-used')
      reasons.push('no CUDA call found in the application code')
      return result('unknown', savings)
    }
    reasons.push('no GPU is requested for the container: CUDA libraries ship for nothing')
    if (input.codeCalls.length)
      reasons.push(
        `the code calls CUDA (${input.codeCalls.length} place(s)): check it falls back to CPU`,
      )
    return result('gpu-unused', savings, cpuSuggestion(torch.version))
  }
  // A bare image: nothing requests a GPU yet; the host and the code decide.
  if (!input.hostGpu && input.codeCalls.length === 0) {
    reasons.push('no GPU on this host and no CUDA call in the application code')
    return result('gpu-unused', savings, cpuSuggestion(torch.version))
  }
  reasons.push(input.hostGpu ? 'this host has a GPU' : 'the application code calls CUDA')
  return result('unknown', savings)
}
