import { describe, expect, it } from 'vitest'
import { addToBucket, BUCKET_NAMES, bucketize, emptyBucket } from '../../../lib/scan/buckets.js'
import { FsTree, type FsEntry } from '../../../lib/scan/fstree.js'

const file = (path: string, size: number): FsEntry => ({ path, type: 'file', size })

function tree(files: Record<string, number>, extra: FsEntry[] = []): FsTree {
  const t = new FsTree()
  t.applyLayer([...Object.entries(files).map(([p, s]) => file(p, s)), ...extra])
  t.summarize()
  return t
}

const SP = 'usr/local/lib/python3.11/site-packages'
const DP = 'usr/lib/python3/dist-packages'

describe('bucketize', () => {
  const t = tree({
    // python caches
    [`${SP}/requests/__pycache__/api.cpython-311.pyc`]: 100,
    [`${SP}/requests/__pycache__/models.cpython-311.pyc`]: 50,
    'app/__pycache__/main.cpython-311.pyc': 7,
    'app/legacy.pyc': 30,
    'app/old.pyo': 3,
    'app/main.py': 1000,
    // pip / npm caches
    'root/.cache/pip/http/a': 500,
    'home/app/.cache/pip/wheels/b': 400,
    'root/.cache/other/c': 1,
    'root/.npm/_cacache/d': 60,
    'home/node/.npm/_cacache/e': 40,
    'usr/local/share/.cache/yarn/v6/f': 20,
    'root/.cache/yarn/v6/g': 10,
    // apt
    'var/lib/apt/lists/deb.debian.org_dists_bookworm_InRelease': 150,
    'var/lib/apt/lists/partial/x': 5,
    'var/cache/apt/pkgcache.bin': 80,
    'var/cache/apt/srcpkgcache.bin': 70,
    'var/cache/apt/archives/curl_8.deb': 300,
    'var/cache/apt/archives/partial/y.deb': 9, // not archives/*.deb
    'var/cache/apt/archives/lock': 0,
    // git
    'app/.git/objects/pack/p.pack': 2000,
    'app/vendor/lib/.git/HEAD': 1,
    // package tests and docs
    [`${SP}/numpy/core/tests/test_a.py`]: 900,
    [`${SP}/numpy/tests/test_b.py`]: 800,
    [`${SP}/tests/__init__.py`]: 11, // a top-level "tests" package, not inside a package
    'app/node_modules/lodash/test/t.js': 70,
    'app/node_modules/@scope/pkg/docs/readme.md': 25,
    'app/node_modules/test/index.js': 12, // the npm package called "test"
    'app/tests/test_app.py': 33, // application tests: not package tests
    [`${DP}/six/doc/x.txt`]: 15,
    'usr/share/doc/curl/copyright': 17,
    'usr/share/man/man1/curl.1.gz': 19,
    'usr/share/info/dir': 2,
    'usr/share/locale/fr/x.mo': 99,
    // torch & CUDA
    [`${SP}/torch/lib/libtorch_cuda.so`]: 1_000_000,
    [`${SP}/torch/lib/libc10_cuda.so`]: 200_000,
    [`${SP}/torch/lib/libtorch_nvrtc.so`]: 300,
    [`${SP}/torch/lib/libcaffe2_nvrtc.so`]: 200,
    [`${SP}/torch/lib/libtorch_cpu.so`]: 500_000,
    [`${SP}/torch/__init__.py`]: 10,
    [`${SP}/nvidia/cudnn/lib/libcudnn.so.9`]: 700_000,
    [`${SP}/nvidia/cublas/lib/libcublas.so.12`]: 600_000,
    'usr/lib/x86_64-linux-gnu/libcudnn_ops.so.8': 50_000,
    [`${SP}/triton/backends/nvidia/bin/ptxas`]: 30_000,
    'usr/local/cuda-12.4/lib64/libcudart.so': 4000,
    'usr/local/cuda-12.4/bin/nvcc': 3000,
    'usr/local/cudnn-notes/readme': 5, // not cuda*
    'opt/torch/lib/libtorch_cuda.so': 77, // a torch dir outside site-packages: libtorch-cuda only
  })
  const b = bucketize(t.root)

  it('has every named bucket', () => {
    expect(Object.keys(b).sort()).toEqual([...BUCKET_NAMES].sort())
  })

  it('pycache and pyc do not overlap', () => {
    expect(b.pycache).toEqual({
      bytes: 157,
      files: 3,
      top: [
        { path: `${SP}/requests/__pycache__`, sizeBytes: 150, files: 2 },
        { path: 'app/__pycache__', sizeBytes: 7, files: 1 },
      ],
    })
    expect(b.pyc.bytes).toBe(33)
    expect(b.pyc.top.map((p) => p.path)).toEqual(['app/legacy.pyc', 'app/old.pyo'])
  })

  it('caches of pip, npm, yarn', () => {
    expect(b['pip-cache'].bytes).toBe(900)
    expect(b['pip-cache'].top.map((p) => p.path)).toEqual([
      'root/.cache/pip',
      'home/app/.cache/pip',
    ])
    expect(b['npm-cache'].bytes).toBe(130)
    expect(b['npm-cache'].files).toBe(4)
  })

  it('apt lists and caches', () => {
    expect(b['apt-lists'].bytes).toBe(155 + 80 + 70 + 300)
    expect(b['apt-lists'].top.map((p) => p.path)).toEqual([
      'var/cache/apt/archives/curl_8.deb',
      'var/lib/apt/lists',
      'var/cache/apt/pkgcache.bin',
      'var/cache/apt/srcpkgcache.bin',
    ])
  })

  it('.git directories, nested ones counted once', () => {
    expect(b.git).toMatchObject({ bytes: 2001, files: 2 })
  })

  it('tests and docs inside packages only, plus usr/share/doc|man|info', () => {
    expect(b['package-tests'].bytes).toBe(900 + 800 + 70)
    expect(b['package-tests'].top.map((p) => p.path)).toEqual([
      `${SP}/numpy/core/tests`,
      `${SP}/numpy/tests`,
      'app/node_modules/lodash/test',
    ])
    expect(b['package-docs'].bytes).toBe(25 + 15 + 17 + 19 + 2)
    expect(b['package-docs'].top.map((p) => p.path).sort()).toEqual([
      'app/node_modules/@scope/pkg/docs',
      `${DP}/six/doc`,
      'usr/share/doc',
      'usr/share/info',
      'usr/share/man',
    ])
  })

  it('torch, its CUDA libraries, nvidia, cudnn, triton, the CUDA toolkit', () => {
    expect(b.torch.bytes).toBe(1_000_000 + 200_000 + 300 + 200 + 500_000 + 10)
    expect(b.torch.top).toEqual([{ path: `${SP}/torch`, sizeBytes: b.torch.bytes, files: 6 }])
    expect(b['libtorch-cuda'].bytes).toBe(1_000_000 + 200_000 + 300 + 200 + 77)
    expect(b['libtorch-cuda'].files).toBe(5)
    expect(b['nvidia-libs'].bytes).toBe(1_300_000)
    // the copy inside the nvidia-cudnn wheel is nvidia-libs' (the CUDA buckets are disjoint)
    expect(b.cudnn.bytes).toBe(50_000)
    expect(b.cudnn.top.map((p) => p.path)).toEqual(['usr/lib/x86_64-linux-gnu/libcudnn_ops.so.8'])
    expect(b.triton.bytes).toBe(30_000)
    expect(b['cuda-toolkit'].bytes).toBe(7000)
    expect(b['cuda-toolkit'].top[0]).toEqual({
      path: 'usr/local/cuda-12.4',
      sizeBytes: 7000,
      files: 2,
    })
  })

  it('counts a bucket over an empty tree as zero', () => {
    const e = bucketize(tree({}).root)
    for (const name of BUCKET_NAMES) expect(e[name]).toEqual({ bytes: 0, files: 0, top: [] })
  })

  it('keeps the 5 biggest paths, biggest first', () => {
    const bucket = emptyBucket()
    for (const s of [3, 9, 1, 7, 5, 8, 2, 6])
      addToBucket(bucket, { path: `p${s}`, sizeBytes: s, files: 1 })
    expect(bucket.top.map((p) => p.sizeBytes)).toEqual([9, 8, 7, 6, 5])
    expect(bucket).toMatchObject({ bytes: 41, files: 8 })
  })
})
