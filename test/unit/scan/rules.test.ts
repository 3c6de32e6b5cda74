import { describe, expect, it } from 'vitest'
import { inspectFindings } from '../../../lib/scan/rules.js'
import type { Bucket, ScanResult } from '../../../lib/scan/types.js'

const bucket = (bytes: number, files = 1, path = 'x'): Bucket => ({
  bytes,
  files,
  top: [{ path, sizeBytes: bytes, files }],
})

function scan(over: Partial<ScanResult> = {}): ScanResult {
  return {
    image: {
      id: 'sha256:abc',
      tags: ['whisperx:latest'],
      engineSizeBytes: 8_770_000_000,
      layout: 'legacy',
      user: '',
      workingDir: '/app',
      env: [],
      entrypoint: [],
      cmd: ['uvicorn'],
      labels: {},
      healthcheck: false,
      osRelease: { ID: 'debian', VERSION_ID: '12' },
    },
    layers: [
      {
        index: 0,
        blob: 'a',
        compression: 'none',
        blobBytes: 80e6,
        createdBy: '',
        comment: '',
        addedBytes: 80e6,
        files: 100,
        wastedBytes: 0,
      },
      {
        index: 1,
        blob: 'b',
        compression: 'none',
        blobBytes: 745e6,
        createdBy: '/bin/sh -c apt-get install -y ffmpeg git curl',
        comment: '',
        addedBytes: 745e6,
        files: 900,
        wastedBytes: 30e6,
      },
      {
        index: 2,
        blob: 'c',
        compression: 'none',
        blobBytes: 7.9e9,
        createdBy: '/bin/sh -c pip install -r requirements.txt',
        comment: '',
        addedBytes: 7.9e9,
        files: 40000,
        wastedBytes: 500,
      },
    ],
    totalBytes: 8.725e9,
    finalBytes: 8.695e9,
    wastedBytes: 30e6 + 500,
    files: 41000,
    directories: [],
    python: { sitePackages: ['usr/local/lib/python3.11/site-packages'], distributions: [] },
    node: { packages: [] },
    dpkg: {
      packages: [
        { name: 'git', version: '1', sizeBytes: 40e6, installedSizeBytes: 40e6 },
        { name: 'curl', version: '1', sizeBytes: 1e6, installedSizeBytes: 1e6 },
        { name: 'gcc-12', version: '1', sizeBytes: 60e6, installedSizeBytes: 60e6 },
        { name: 'ffmpeg', version: '1', sizeBytes: 2e6, installedSizeBytes: 2e6 },
        { name: 'libc6', version: '1', sizeBytes: 12e6, installedSizeBytes: 12e6 },
      ],
    },
    buckets: {
      'nvidia-libs': bucket(3e9),
      'libtorch-cuda': bucket(1.2e9),
      cudnn: bucket(0),
      triton: bucket(400e6),
      'pip-cache': bucket(250e6, 10, 'root/.cache/pip'),
      'apt-lists': bucket(45e6),
      pycache: bucket(90e6, 3000),
      pyc: bucket(10e6, 100),
      'package-tests': bucket(70e6),
      git: bucket(0, 0),
    },
    torch: {
      version: '2.8.0+cu128',
      cuda: '12.8',
      path: 'usr/local/lib/python3.11/site-packages/torch',
    },
    cudaCalls: [],
    ...over,
  }
}

describe('inspectFindings', () => {
  const findings = inspectFindings(scan())
  const by = Object.fromEntries(findings.map((f) => [f.rule, f]))

  it('measures the CUDA torch and names the CPU wheel fix', () => {
    expect(by['cuda-torch']?.estimatedSavingsBytes).toBe(3e9 + 1.2e9 + 400e6)
    expect(by['cuda-torch']?.fix).toContain('https://download.pytorch.org/whl/cpu torch==2.8.0')
  })
  it('finds build tools from dpkg, not runtime packages', () => {
    expect(by['build-tools']?.estimatedSavingsBytes).toBe(101e6)
    expect(by['build-tools']?.message).toMatch(/git, curl, gcc-12/)
    expect(by['build-tools']?.message).not.toMatch(/ffmpeg|libc6/)
  })
  it('finds caches, bytecode, tests and a wasteful layer with its instruction', () => {
    expect(by['pip-cache']?.estimatedSavingsBytes).toBe(250e6)
    expect(by['pip-cache']?.fix).toContain('--no-cache-dir')
    expect(by['apt-lists']?.estimatedSavingsBytes).toBe(45e6)
    expect(by['pycache']?.estimatedSavingsBytes).toBe(100e6)
    expect(by['package-tests']?.estimatedSavingsBytes).toBe(70e6)
    const wasted = findings.filter((f) => f.rule === 'wasted-layer')
    expect(wasted).toHaveLength(1) // 500 bytes in layer 2 is under the threshold
    expect(wasted[0]?.message).toContain('apt-get install -y ffmpeg git curl')
  })
  it('flags root and a missing HEALTHCHECK without inventing savings', () => {
    expect(by['root-user']?.estimatedSavingsBytes).toBe(0)
    expect(by['no-healthcheck']?.fix).toMatch(/^HEALTHCHECK/)
  })
  it('says nothing that is not there, and sorts by savings', () => {
    expect(by['git-dir']).toBeUndefined()
    expect(by['npm-cache']).toBeUndefined()
    expect(by['non-slim-base']).toBeUndefined()
    const savings = findings.map((f) => f.estimatedSavingsBytes)
    expect(savings).toEqual([...savings].sort((a, b) => b - a))
  })
  it('a non-root image with a healthcheck and a CPU torch has no such findings', () => {
    const clean = inspectFindings(
      scan({
        image: { ...scan().image, user: 'app', healthcheck: true },
        torch: { version: '2.8.0+cpu', cuda: null, path: 'x' },
        buckets: {},
        dpkg: null,
      }),
    )
    expect(clean.map((f) => f.rule)).toEqual(['wasted-layer'])
  })
  it('recognises a full (non-slim) base by the packages only it carries', () => {
    const names = [
      'openssh-client',
      'mercurial',
      'subversion',
      'libpq-dev',
      'libssl-dev',
      'zlib1g-dev',
    ]
    const full = inspectFindings(
      scan({
        dpkg: {
          packages: names.map((name) => ({
            name,
            version: '1',
            sizeBytes: 10e6,
            installedSizeBytes: 10e6,
          })),
        },
      }),
    )
    expect(full.find((f) => f.rule === 'non-slim-base')?.estimatedSavingsBytes).toBe(60e6)
  })
})
