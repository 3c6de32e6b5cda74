/**
 * Python fixtures for the engine tests (torch-check, inspect): a base image with Debian 12's
 * REAL python3 (3.11) and dpkg database, and synthetic PyTorch installations to COPY on top.
 *
 *   const base = await pythonBaseImage(engine)              // shipshape-test/python:3.11
 *   await buildImage(engine, {
 *     tag: 'sst-torch/cu128:1',
 *     dockerfile: `FROM ${base}\nCOPY usr/ /usr/\n`,
 *     files: fakeTorchFiles({ version: '2.8.0', cuda: '12.8', nvidia: { 'nvidia-cublas-cu12': 50e6 } }),
 *   })
 *
 * No registry is reachable here, so the root filesystem is made from Debian's .debs by
 * make-python-root.sh (private apt setup, `apt-get download` of python3's dependency closure,
 * unpacked into a merged-/usr root with a real /var/lib/dpkg/status, cached in
 * .cache/python-root/ keyed by the package versions) and imported with POST /images/create.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import type { Readable } from 'node:stream'
import type Docker from 'dockerode'
import { repoRoot, which } from './engine.js'
import {
  busyboxProblem,
  engineClient,
  followProgress,
  type EngineRef,
  type FixtureFile,
} from './fixtures.js'

export const PYTHON_TAG = 'shipshape-test/python:3.11'
/** Where pip installs for Debian's python3.11 (first dist-packages entry of sys.path). */
export const DEBIAN_SITE_PACKAGES = 'usr/local/lib/python3.11/dist-packages'
/** The image's PATH (Debian's default for root). */
export const PYTHON_IMAGE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
/** Label on the imported image: the cache key of the root it was made from. */
const ROOT_LABEL = 'org.shipshape.test.python-root'

const script = path.join(repoRoot, 'test', 'harness', 'make-python-root.sh')
const keyring = '/usr/share/keyrings/debian-archive-keyring.gpg'

/** The python-root cache dir (make-python-root.sh uses the same default). */
export function pythonRootCache(): string {
  return process.env.SHIPSHAPE_PYTHON_ROOT_CACHE ?? path.join(repoRoot, '.cache', 'python-root')
}

/** The complete cached root.tar named by `current`, or null (no network needed to use it). */
function cachedRootTar(): string | null {
  try {
    const cache = pythonRootCache()
    const key = fs.readFileSync(path.join(cache, 'current'), 'utf8').trim()
    if (!key) return null
    const tar = path.join(cache, key, 'root.tar')
    return fs.existsSync(path.join(cache, key, '.complete')) && fs.existsSync(tar) ? tar : null
  } catch {
    return null
  }
}

/**
 * Why the python fixtures cannot be made on this machine, or null. With a complete cached
 * root nothing else is needed; to build one: Linux amd64, root, bash, apt-get, dpkg-deb,
 * flock, chroot, Debian's archive keyring, a static busybox (and the Debian archive reachable).
 */
export function pythonProblem(): string | null {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`
  if (process.arch !== 'x64')
    return `the python root is made for amd64 only (this is ${process.arch})`
  if (cachedRootTar()) return null
  if (process.getuid?.() !== 0) return 'building the python root needs root (chroot, file owners)'
  const missing = ['bash', 'apt-get', 'dpkg-deb', 'dpkg-query', 'flock', 'chroot', 'tar'].filter(
    (t) => !which(t),
  )
  if (missing.length > 0) {
    return `${missing.join(', ')} not found (building the python root needs a Debian-like host)`
  }
  if (!fs.existsSync(keyring))
    return `${keyring} is missing (apt-get install debian-archive-keyring)`
  return busyboxProblem()
}

let rootTar: Promise<string> | undefined

/**
 * Build the Debian 12 python3 root once (make-python-root.sh: cached in .cache/python-root/,
 * offline when cached, serialized with flock across processes) and return the path of its tar.
 */
export function pythonRootTar(): Promise<string> {
  rootTar ??= makeRootTar().catch((err: unknown) => {
    rootTar = undefined
    throw err
  })
  return rootTar
}

function makeRootTar(): Promise<string> {
  const problem = pythonProblem()
  if (problem) return Promise.reject(new Error(`cannot make the python root: ${problem}`))
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.on('error', (err) => reject(new Error(`make-python-root.sh: ${err.message}`)))
    child.on('close', (code) => {
      const tar = stdout.trim().split('\n').pop() ?? ''
      if (code === 0 && tar.endsWith('.tar') && fs.existsSync(tar)) return resolve(tar)
      reject(new Error(`make-python-root.sh exited ${code}:\n${stderr.trimEnd()}${stdout}`))
    })
  })
}

async function inspectImage(docker: Docker, name: string): Promise<Docker.ImageInspectInfo | null> {
  try {
    return await docker.getImage(name).inspect()
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return null
    throw err
  }
}

/** pending imports per engine client (one client per socket), by tag and root */
const imports = new WeakMap<Docker, Map<string, Promise<string>>>()

/**
 * The python base image (tag shipshape-test/python:3.11 by default): pythonRootTar() imported
 * with `POST /images/create?fromSrc=-` (PATH set, CMD ["python3"], labelled with the root's
 * cache key), once per engine; returns the image id. Re-imports when the tag holds an image
 * of another root.
 */
export async function pythonBaseImage(
  engine: EngineRef,
  tag: string = PYTHON_TAG,
): Promise<string> {
  const docker = engineClient(engine)
  const tar = await pythonRootTar()
  const rootKey = path.basename(path.dirname(tar))
  const existing = await inspectImage(docker, tag)
  if (existing && existing.Config?.Labels?.[ROOT_LABEL] === rootKey) return existing.Id
  const key = `${tag}\0${rootKey}`
  let pendingByKey = imports.get(docker)
  if (!pendingByKey) imports.set(docker, (pendingByKey = new Map()))
  let pending = pendingByKey.get(key)
  if (!pending) {
    const done = pendingByKey
    pending = importRoot(docker, tar, tag, rootKey).finally(() => done.delete(key))
    pendingByKey.set(key, pending)
  }
  return pending
}

async function importRoot(
  docker: Docker,
  tar: string,
  tag: string,
  rootKey: string,
): Promise<string> {
  const slash = tag.lastIndexOf('/')
  const colon = tag.lastIndexOf(':')
  const repo = colon > slash ? tag.slice(0, colon) : tag
  const t = colon > slash ? tag.slice(colon + 1) : 'latest'
  const stream = (await docker.importImage(fs.createReadStream(tar), {
    repo,
    tag: t,
    changes: [`ENV PATH=${PYTHON_IMAGE_PATH}`, `LABEL ${ROOT_LABEL}=${rootKey}`, 'CMD ["python3"]'],
  })) as Readable
  await followProgress(docker, stream, `import ${tag}`)
  const image = await inspectImage(docker, tag)
  if (!image) throw new Error(`import ${tag}: the image is not there afterwards`)
  return image.Id
}

// --- fake PyTorch --------------------------------------------------------------------------

export interface FakeTorchOptions {
  /** public version, e.g. '2.8.0' */
  version: string
  /** CUDA version of the build, e.g. '12.8' (local version +cu128), or null: CPU (+cpu) */
  cuda: string | null
  /** nvidia-* wheels next to torch: distribution name → bytes of its main library */
  nvidia?: Record<string, number>
  /** size of torch/lib/libtorch_cuda.so (CUDA builds only; default 1 MiB) */
  libtorchCudaBytes?: number
  /** with a size: a triton 3.4.0 installation whose triton/_C/libtriton.so has that size */
  tritonBytes?: number
  /**
   * `import torch` fails like a wheel whose CUDA libraries are missing (true: "ImportError:
   * libcudart.so.12: cannot open shared object file: No such file or directory"; a string:
   * that library name instead)
   */
  brokenImport?: boolean | string
  /** site-packages dir, relative; default Debian python's pip dir DEBIAN_SITE_PACKAGES */
  sitePackages?: string
  /**
   * version in the dist-info name and METADATA; default `version` (PyPI wheels: torch-2.8.0,
   * the local part only in torch.__version__); '2.8.0+cpu' for download.pytorch.org wheels
   */
  distVersion?: string
}

/** nvidia wheel → module dir under nvidia/, main library, version (the pins of torch 2.8.0). */
const NVIDIA_DISTS: Record<string, { module: string; lib: string; version: string }> = {
  'nvidia-cublas-cu12': { module: 'cublas', lib: 'libcublas.so.12', version: '12.8.4.1' },
  'nvidia-cuda-cupti-cu12': { module: 'cuda_cupti', lib: 'libcupti.so.12', version: '12.8.90' },
  'nvidia-cuda-nvrtc-cu12': { module: 'cuda_nvrtc', lib: 'libnvrtc.so.12', version: '12.8.93' },
  'nvidia-cuda-runtime-cu12': {
    module: 'cuda_runtime',
    lib: 'libcudart.so.12',
    version: '12.8.90',
  },
  'nvidia-cudnn-cu12': { module: 'cudnn', lib: 'libcudnn.so.9', version: '9.10.2.21' },
  'nvidia-cufft-cu12': { module: 'cufft', lib: 'libcufft.so.11', version: '11.3.3.83' },
  'nvidia-cufile-cu12': { module: 'cufile', lib: 'libcufile.so.0', version: '1.13.1.3' },
  'nvidia-curand-cu12': { module: 'curand', lib: 'libcurand.so.10', version: '10.3.9.90' },
  'nvidia-cusolver-cu12': { module: 'cusolver', lib: 'libcusolver.so.11', version: '11.7.3.90' },
  'nvidia-cusparse-cu12': { module: 'cusparse', lib: 'libcusparse.so.12', version: '12.5.8.93' },
  'nvidia-cusparselt-cu12': { module: 'cusparselt', lib: 'libcusparseLt.so.0', version: '0.7.1' },
  'nvidia-nccl-cu12': { module: 'nccl', lib: 'libnccl.so.2', version: '2.27.3' },
  'nvidia-nvjitlink-cu12': { module: 'nvjitlink', lib: 'libnvJitLink.so.12', version: '12.8.93' },
  'nvidia-nvtx-cu12': { module: 'nvtx', lib: 'libnvToolsExt.so.1', version: '12.8.90' },
}

/** Module dir, library and version of an nvidia wheel (made up for names not in the table). */
export function nvidiaDist(dist: string): { module: string; lib: string; version: string } {
  const known = NVIDIA_DISTS[dist]
  if (known) return known
  const module = dist
    .replace(/^nvidia-/, '')
    .replace(/-cu\d+$/, '')
    .replace(/-/g, '_')
  return { module, lib: `lib${module}.so`, version: '1.0.0' }
}

const TRITON_VERSION = '3.4.0'
const SMALL_LIB = 64 * 1024
const FAKE_GIT_SHA = '5a6d7e1f0b2c3d4e5f60718293a4b5c6d7e8f901'

/** The wheel's normalized distribution name for file names (PEP 427: runs of -_. → _). */
function wheelName(dist: string): string {
  return dist.replace(/[-_.]+/g, '_').toLowerCase()
}

const zeroDigests = new Map<number, string>()
const ZEROS = Buffer.alloc(1 << 20)

/** RECORD hash: sha256, urlsafe base64 without padding. */
function recordHash(content: FixtureFile): { hash: string; size: number } {
  if (typeof content === 'string' || Buffer.isBuffer(content)) {
    const buf = typeof content === 'string' ? Buffer.from(content) : content
    return { hash: createHash('sha256').update(buf).digest('base64url'), size: buf.length }
  }
  let hash = zeroDigests.get(content.size)
  if (hash === undefined) {
    const h = createHash('sha256')
    for (let left = content.size; left > 0; left -= ZEROS.length) {
      h.update(left >= ZEROS.length ? ZEROS : ZEROS.subarray(0, left))
    }
    hash = h.digest('base64url')
    zeroDigests.set(content.size, hash)
  }
  return { hash, size: content.size }
}

/** One installed distribution: its files (relative to site-packages) + dist-info with RECORD. */
function distribution(
  dist: string,
  version: string,
  files: Record<string, FixtureFile>,
  meta: { summary: string; requires?: string[]; wheelTag: string; purelib: boolean },
): Record<string, FixtureFile> {
  const info = `${wheelName(dist)}-${version}.dist-info`
  const out: Record<string, FixtureFile> = { ...files }
  out[`${info}/METADATA`] = [
    'Metadata-Version: 2.4',
    `Name: ${dist}`,
    `Version: ${version}`,
    `Summary: ${meta.summary}`,
    ...(meta.requires ?? []).map((r) => `Requires-Dist: ${r}`),
    '',
    'A synthetic installation made by the shipshape test harness (test/harness/python.ts).',
    '',
  ].join('\n')
  out[`${info}/WHEEL`] = [
    'Wheel-Version: 1.0',
    'Generator: setuptools (80.9.0)',
    `Root-Is-Purelib: ${meta.purelib}`,
    `Tag: ${meta.wheelTag}`,
    '',
  ].join('\n')
  out[`${info}/INSTALLER`] = 'pip\n'
  const tops = [...new Set(Object.keys(files).map((f) => f.split('/')[0]!))].sort()
  out[`${info}/top_level.txt`] = tops.map((t) => `${t}\n`).join('')
  const record = Object.keys(out)
    .sort()
    .map((f) => {
      const { hash, size } = recordHash(out[f]!)
      return `${f},sha256=${hash},${size}`
    })
  // like pip: the compiled files are not in RECORD; RECORD itself has no hash
  out[`${info}/RECORD`] = [...record, `${info}/RECORD,,`, ''].join('\n')
  return out
}

function torchInit(broken: string | null): string {
  const lines = [
    '"""torch: a synthetic installation made by the shipshape test harness.',
    '',
    'The layout and metadata of a real wheel (torch/version.py, dist-info, torch/lib, nvidia-*',
    'wheels), small enough to build in a test; no tensors."""',
    '',
  ]
  if (broken) {
    lines.push(
      'import ctypes as _ctypes',
      '',
      '',
      'def _load_global_deps() -> None:',
      '    # what torch/_C needs first: its shared libraries (missing here, as in a broken image)',
      '    try:',
      `        _ctypes.CDLL(${JSON.stringify(broken)}, mode=_ctypes.RTLD_GLOBAL)`,
      '    except OSError as err:',
      '        raise ImportError(str(err)) from None',
      '',
      '',
      '_load_global_deps()',
      '',
    )
  }
  lines.push(
    'from torch import cuda, version',
    'from torch.version import __version__',
    '',
    "__all__ = ['__version__', 'cuda', 'device', 'version']",
    '',
    '_DEVICE_TYPES = ("cpu", "cuda", "meta", "mps", "xpu", "hip")',
    '',
    '',
    'class device:',
    '    """torch.device: a device type and an optional index (\'cuda:0\', \'cpu\')."""',
    '',
    '    def __init__(self, type, index=None):',
    '        if isinstance(type, device):',
    '            type, index = type.type, type.index',
    '        elif isinstance(type, str) and ":" in type:',
    '            type, _, idx = type.partition(":")',
    '            index = int(idx)',
    '        if type not in _DEVICE_TYPES:',
    '            raise RuntimeError(',
    '                "Expected one of " + ", ".join(_DEVICE_TYPES)',
    '                + " device type at start of device string: " + str(type)',
    '            )',
    '        self.type = type',
    '        self.index = index',
    '',
    '    def __repr__(self):',
    '        if self.index is None:',
    '            return f"device(type=\'{self.type}\')"',
    '        return f"device(type=\'{self.type}\', index={self.index})"',
    '',
    '    def __str__(self):',
    '        return self.type if self.index is None else f"{self.type}:{self.index}"',
    '',
    '    def __eq__(self, other):',
    '        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)',
    '',
    '    def __hash__(self):',
    '        return hash((self.type, self.index))',
    '',
  )
  return lines.join('\n')
}

function torchVersionPy(localVersion: string, cuda: string | null): string {
  // as tools/generate_torch_version.py writes it into the wheels
  const q = (v: string | null) => (v === null ? 'None' : `'${v}'`)
  return [
    'from typing import Optional',
    '',
    "__all__ = ['__version__', 'debug', 'cuda', 'git_version', 'hip', 'xpu']",
    `__version__ = '${localVersion}'`,
    'debug = False',
    `cuda: Optional[str] = ${q(cuda)}`,
    `git_version = '${FAKE_GIT_SHA}'`,
    'hip: Optional[str] = None',
    'xpu: Optional[str] = None',
    '',
  ].join('\n')
}

function torchCudaPy(cuda: string | null): string {
  const lazyInitError =
    cuda === null
      ? 'AssertionError("Torch not compiled with CUDA enabled")'
      : 'RuntimeError("Found no NVIDIA driver on your system. Please check that you have an ' +
        'NVIDIA GPU and installed a driver from http://www.nvidia.com/Download/index.aspx")'
  return [
    '"""torch.cuda of the synthetic torch: no GPU (none is visible in the test engines)."""',
    '',
    '',
    'def is_available() -> bool:',
    '    return False',
    '',
    '',
    'def device_count() -> int:',
    '    return 0',
    '',
    '',
    'def is_initialized() -> bool:',
    '    return False',
    '',
    '',
    'def _lazy_init() -> None:',
    `    raise ${lazyInitError}`,
    '',
    '',
    'def current_device() -> int:',
    '    _lazy_init()',
    '    return 0',
    '',
    '',
    'def get_device_name(device=None) -> str:',
    '    _lazy_init()',
    '    return ""',
    '',
  ].join('\n')
}

/**
 * Files of a synthetic PyTorch installation under site-packages, to put in a build context
 * (keys are context paths: `<sitePackages>/torch/__init__.py`, …; COPY them to /):
 *
 * - torch/: `__init__.py` (`__version__`, `torch.device`, `torch.cuda`, `torch.version`),
 *   version.py as the wheels write it (`__version__ = '2.8.0+cu128'`, `cuda = '12.8'`; or
 *   '+cpu' and `cuda = None`), cuda/ (`is_available()` False, `device_count()` 0), the
 *   _C extension and torch/lib/*.so (libtorch_cuda.so of `libtorchCudaBytes` for CUDA builds);
 * - torch-<distVersion>.dist-info/ (METADATA with Requires-Dist for the nvidia/triton wheels,
 *   WHEEL, INSTALLER, top_level.txt, RECORD as `path,sha256=<urlsafe b64>,size`);
 * - per nvidia dist: nvidia/<module>/lib/<lib> of the given bytes + its dist-info;
 * - with tritonBytes: triton/ (triton/_C/libtriton.so of that size) + its dist-info.
 *
 * Big files are `{ size }` entries (zero bytes, written sparse by buildImage).
 */
export function fakeTorchFiles(opts: FakeTorchOptions): Record<string, FixtureFile> {
  const site = (opts.sitePackages ?? DEBIAN_SITE_PACKAGES).replace(/^\/+|\/+$/g, '')
  const pyTag = /python3\.(\d+)/.exec(site)?.[1] ?? '11'
  const cpTag = `cp3${pyTag}`
  const cudaTag = opts.cuda === null ? 'cpu' : `cu${opts.cuda.replace(/\./g, '')}`
  const localVersion = `${opts.version}+${cudaTag}`
  const distVersion = opts.distVersion ?? opts.version
  const nvidia = Object.entries(opts.nvidia ?? {}).sort(([a], [b]) => a.localeCompare(b))
  const broken =
    opts.brokenImport === true
      ? opts.cuda === null
        ? 'libtorch_cpu.so'
        : `libcudart.so.${opts.cuda.split('.')[0]}`
      : typeof opts.brokenImport === 'string'
        ? opts.brokenImport
        : null
  const marker = 'platform_system == "Linux" and platform_machine == "x86_64"'

  const torch: Record<string, FixtureFile> = {
    'torch/__init__.py': torchInit(broken),
    'torch/version.py': torchVersionPy(localVersion, opts.cuda),
    'torch/cuda/__init__.py': torchCudaPy(opts.cuda),
    [`torch/_C.cpython-3${pyTag}-x86_64-linux-gnu.so`]: { size: 37_000 },
    'torch/lib/libc10.so': { size: SMALL_LIB },
    'torch/lib/libtorch.so': { size: SMALL_LIB },
    'torch/lib/libtorch_cpu.so': { size: 4 * SMALL_LIB },
    'torch/lib/libtorch_python.so': { size: SMALL_LIB },
  }
  if (opts.cuda !== null) {
    torch['torch/lib/libc10_cuda.so'] = { size: SMALL_LIB }
    torch['torch/lib/libtorch_cuda.so'] = { size: opts.libtorchCudaBytes ?? 1 << 20 }
  }
  const requires = [
    'filelock',
    'typing-extensions>=4.10.0',
    'sympy>=1.13.3',
    'networkx',
    'jinja2',
    'fsspec',
    ...nvidia.map(([dist]) => `${dist}==${nvidiaDist(dist).version}; ${marker}`),
    ...(opts.tritonBytes !== undefined ? [`triton==${TRITON_VERSION}; ${marker}`] : []),
  ]
  const all: Record<string, FixtureFile> = {
    ...distribution('torch', distVersion, torch, {
      summary: 'Tensors and Dynamic neural networks in Python with strong GPU acceleration',
      requires,
      wheelTag: `${cpTag}-${cpTag}-manylinux_2_28_x86_64`,
      purelib: false,
    }),
  }
  for (const [dist, bytes] of nvidia) {
    const { module, lib, version } = nvidiaDist(dist)
    Object.assign(
      all,
      distribution(
        dist,
        version,
        {
          'nvidia/__init__.py': '',
          [`nvidia/${module}/__init__.py`]: '',
          [`nvidia/${module}/lib/__init__.py`]: '',
          [`nvidia/${module}/lib/${lib}`]: { size: bytes },
        },
        {
          summary: `${module} native runtime libraries`,
          wheelTag: 'py3-none-manylinux_2_27_x86_64',
          purelib: true,
        },
      ),
    )
  }
  if (opts.tritonBytes !== undefined) {
    Object.assign(
      all,
      distribution(
        'triton',
        TRITON_VERSION,
        {
          'triton/__init__.py': `__version__ = '${TRITON_VERSION}'\n`,
          'triton/_C/libtriton.so': { size: opts.tritonBytes },
        },
        {
          summary: 'A language and compiler for custom Deep Learning operations',
          wheelTag: `${cpTag}-${cpTag}-manylinux_2_27_x86_64.manylinux_2_28_x86_64`,
          purelib: false,
        },
      ),
    )
  }
  const out: Record<string, FixtureFile> = {}
  for (const [f, content] of Object.entries(all)) out[`${site}/${f}`] = content
  return out
}
