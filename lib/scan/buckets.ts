/**
 * Named groups of paths in an image's final filesystem (pure): caches, tests, docs and the
 * CUDA/torch payload that `inspect` and `torch-check` put numbers on.
 *
 *   bucketize(tree) → Record<BucketName, Bucket>   (tree summarised: FsTree.summarize())
 *
 * A directory rule counts the whole subtree once (its top entries are the matching
 * directories); a file rule counts single files. Buckets overlap one another on purpose
 * (torch ⊃ libtorch-cuda); nvidia-libs, libtorch-cuda, cudnn and triton are disjoint, so their sum
 * is the CUDA weight of an image; within one bucket nothing counts twice.
 * Paths are relative to the image root ('usr/share/doc').
 *
 *   pycache        files under __pycache__ directories
 *   pyc            *.pyc / *.pyo outside __pycache__
 *   pip-cache      root/.cache/pip, home/* /.cache/pip
 *   npm-cache      root/.npm, home/* /.npm, root/.cache/yarn, home/* /.cache/yarn, usr/local/share/.cache/yarn
 *   apt-lists      var/lib/apt/lists, var/cache/apt/*.bin, var/cache/apt/archives/*.deb
 *   git            .git directories
 *   package-tests  test/tests directories inside a package of site-/dist-packages or node_modules
 *   package-docs   doc/docs directories inside such packages; usr/share/doc, man, info
 *   torch          (site|dist)-packages/torch
 *   libtorch-cuda  torch/lib/libtorch_cuda*, libc10_cuda*, libtorch_nvrtc*, libcaffe2_nvrtc*
 *   nvidia-libs    (site|dist)-packages/nvidia
 *   cudnn          libcudnn* files outside the nvidia-* wheels (those are in nvidia-libs)
 *   triton         (site|dist)-packages/triton
 *   cuda-toolkit   usr/local/cuda*
 */
import type { Bucket, SizedPath } from './types.js'
import type { FsNode } from './fstree.js'

export const BUCKET_NAMES = [
  'pycache',
  'pyc',
  'pip-cache',
  'npm-cache',
  'apt-lists',
  'git',
  'package-tests',
  'package-docs',
  'torch',
  'libtorch-cuda',
  'nvidia-libs',
  'cudnn',
  'triton',
  'cuda-toolkit',
] as const
export type BucketName = (typeof BUCKET_NAMES)[number]

/** Biggest paths kept per bucket. */
export const BUCKET_TOP = 5

const bit = (name: BucketName) => 1 << BUCKET_NAMES.indexOf(name)

const PY_PACKAGE_DIRS = new Set(['site-packages', 'dist-packages'])
const isPkgRoot = (name: string) => PY_PACKAGE_DIRS.has(name) || name === 'node_modules'
const LIBTORCH_CUDA = /^(libtorch_cuda|libc10_cuda|libtorch_nvrtc|libcaffe2_nvrtc)/

/** s = path segments, n = s.length; pkgDepth: levels below the nearest package root, -1 outside. */
type DirRule = (s: string[], n: number, pkgDepth: number) => boolean
type FileRule = (s: string[], n: number) => boolean

const underPyPackages = (s: string[], n: number, name: string) =>
  n >= 2 && s[n - 1] === name && PY_PACKAGE_DIRS.has(s[n - 2]!)

const underNvidiaWheel = (s: string[], n: number) => {
  for (let i = 1; i < n - 1; i++)
    if (s[i] === 'nvidia' && PY_PACKAGE_DIRS.has(s[i - 1]!)) return true
  return false
}

const DIR_RULES: [BucketName, DirRule][] = [
  ['pycache', (s, n) => s[n - 1] === '__pycache__'],
  [
    'pip-cache',
    (s, n) =>
      (n === 3 && s[0] === 'root' && s[1] === '.cache' && s[2] === 'pip') ||
      (n === 4 && s[0] === 'home' && s[2] === '.cache' && s[3] === 'pip'),
  ],
  [
    'npm-cache',
    (s, n) =>
      (n === 2 && s[0] === 'root' && s[1] === '.npm') ||
      (n === 3 && s[0] === 'home' && s[2] === '.npm') ||
      (n === 3 && s[0] === 'root' && s[1] === '.cache' && s[2] === 'yarn') ||
      (n === 4 && s[0] === 'home' && s[2] === '.cache' && s[3] === 'yarn') ||
      (n === 5 && s.join('/') === 'usr/local/share/.cache/yarn'),
  ],
  ['apt-lists', (s, n) => n === 4 && s.join('/') === 'var/lib/apt/lists'],
  ['git', (s, n) => s[n - 1] === '.git'],
  ['package-tests', (s, n, d) => d >= 2 && (s[n - 1] === 'test' || s[n - 1] === 'tests')],
  [
    'package-docs',
    (s, n, d) =>
      (d >= 2 && (s[n - 1] === 'doc' || s[n - 1] === 'docs')) ||
      (n === 3 &&
        s[0] === 'usr' &&
        s[1] === 'share' &&
        (s[2] === 'doc' || s[2] === 'man' || s[2] === 'info')),
  ],
  ['torch', (s, n) => underPyPackages(s, n, 'torch')],
  ['nvidia-libs', (s, n) => underPyPackages(s, n, 'nvidia')],
  ['triton', (s, n) => underPyPackages(s, n, 'triton')],
  [
    'cuda-toolkit',
    (s, n) => n === 3 && s[0] === 'usr' && s[1] === 'local' && s[2]!.startsWith('cuda'),
  ],
]

const FILE_RULES: [BucketName, FileRule][] = [
  ['pyc', (s, n) => s[n - 1]!.endsWith('.pyc') || s[n - 1]!.endsWith('.pyo')],
  [
    'apt-lists',
    (s, n) =>
      (n === 4 && s[0] === 'var' && s[1] === 'cache' && s[2] === 'apt' && s[3]!.endsWith('.bin')) ||
      (n === 5 &&
        s[0] === 'var' &&
        s[1] === 'cache' &&
        s[2] === 'apt' &&
        s[3] === 'archives' &&
        s[4]!.endsWith('.deb')),
  ],
  [
    'libtorch-cuda',
    (s, n) => n >= 3 && s[n - 2] === 'lib' && s[n - 3] === 'torch' && LIBTORCH_CUDA.test(s[n - 1]!),
  ],
  // outside the nvidia-* wheels (those are counted in nvidia-libs): system or torch/lib copies
  ['cudnn', (s, n) => s[n - 1]!.startsWith('libcudnn') && !underNvidiaWheel(s, n)],
]

const DIR_RULE_BITS = DIR_RULES.map(([name]) => bit(name))
const FILE_RULE_BITS = FILE_RULES.map(([name]) => bit(name))
// a .pyc under __pycache__ belongs to pycache, not pyc
const PYC_EXCLUDED = bit('pycache')

export function emptyBucket(): Bucket {
  return { bytes: 0, files: 0, top: [] }
}

/** Add a path to a bucket, keeping its `top` the biggest BUCKET_TOP paths, biggest first. */
export function addToBucket(b: Bucket, p: SizedPath, topN = BUCKET_TOP): void {
  b.bytes += p.sizeBytes
  b.files += p.files
  const top = b.top
  if (top.length >= topN && p.sizeBytes <= top[top.length - 1]!.sizeBytes) return
  let i = top.length
  while (i > 0 && top[i - 1]!.sizeBytes < p.sizeBytes) i--
  top.splice(i, 0, p)
  if (top.length > topN) top.pop()
}

/** The buckets of a summarised tree (see the file header). */
export function bucketize(root: FsNode): Record<BucketName, Bucket> {
  const buckets = Object.fromEntries(BUCKET_NAMES.map((n) => [n, emptyBucket()])) as Record<
    BucketName,
    Bucket
  >
  const segs: string[] = []
  const visit = (dir: FsNode, active: number, pkgDepth: number): void => {
    for (const child of dir.children!.values()) {
      segs.push(child.name)
      const n = segs.length
      if (child.children) {
        const depth = pkgDepth < 0 ? -1 : pkgDepth + 1
        let act = active
        for (let r = 0; r < DIR_RULES.length; r++) {
          const b = DIR_RULE_BITS[r]!
          if (act & b || !DIR_RULES[r]![1](segs, n, depth)) continue
          act |= b
          if (child.files > 0 || child.bytes > 0) {
            addToBucket(buckets[DIR_RULES[r]![0]], {
              path: segs.join('/'),
              sizeBytes: child.bytes,
              files: child.files,
            })
          }
        }
        visit(child, act, isPkgRoot(child.name) ? 0 : depth)
      } else if (child.type === 'file' || child.type === 'hardlink') {
        for (let r = 0; r < FILE_RULES.length; r++) {
          const b = FILE_RULE_BITS[r]!
          if (active & b) continue
          const [name, rule] = FILE_RULES[r]!
          if (name === 'pyc' && active & PYC_EXCLUDED) continue
          if (!rule(segs, n)) continue
          addToBucket(buckets[name], { path: segs.join('/'), sizeBytes: child.size, files: 1 })
        }
      }
      segs.pop()
    }
  }
  visit(root, 0, -1)
  return buckets
}
