import { describe, expect, it } from 'vitest'
import {
  distNameVersion,
  dpkgPackages,
  findCudaCalls,
  findOsRelease,
  findTorch,
  isAppPython,
  nodePackages,
  parseDpkgStatus,
  parseMetadata,
  parseOsRelease,
  parseRecordPaths,
  parseTorchVersion,
  pythonDistributions,
  selectCudaCalls,
  sitePackagesDirs,
  topDirectories,
  underCodeDirs,
  type ReadText,
} from '../../../lib/scan/analyze.js'
import { FsTree, type FsEntry } from '../../../lib/scan/fstree.js'

const file = (path: string, size: number): FsEntry => ({ path, type: 'file', size })
const symlink = (path: string, linkname: string): FsEntry => ({
  path,
  type: 'symlink',
  size: 0,
  linkname,
})

/** A one-layer tree; `texts` are files with content (their size is their length). */
function image(
  sizes: Record<string, number>,
  texts: Record<string, string> = {},
  extra: FsEntry[] = [],
): { tree: FsTree; read: ReadText } {
  const tree = new FsTree()
  tree.applyLayer([
    ...Object.entries(sizes).map(([p, s]) => file(p, s)),
    ...Object.entries(texts).map(([p, t]) => file(p, Buffer.byteLength(t))),
    ...extra,
  ])
  tree.summarize()
  return { tree, read: (_node, p) => texts[p] }
}

describe('RECORD', () => {
  it('parses paths, quoted ones with commas and doubled quotes, CRLF', () => {
    const record = [
      'requests/__init__.py,sha256=abc,5000',
      '"odd,name/x.py",sha256=def,10',
      '"say ""hi"".txt",,',
      '../../../bin/normalizer,sha256=x,200\r',
      'requests-2.32.3.dist-info/RECORD,,',
      '',
    ].join('\n')
    expect(parseRecordPaths(record)).toEqual([
      'requests/__init__.py',
      'odd,name/x.py',
      'say "hi".txt',
      '../../../bin/normalizer',
      'requests-2.32.3.dist-info/RECORD',
    ])
  })

  it('names a distribution from METADATA, else from its directory name', () => {
    expect(
      parseMetadata(
        'Metadata-Version: 2.1\nName: nvidia-cudnn-cu12\nVersion: 9.1.0.70\n\nName: body',
      ),
    ).toEqual({
      name: 'nvidia-cudnn-cu12',
      version: '9.1.0.70',
    })
    expect(parseMetadata('Summary: x\n')).toBeNull()
    expect(distNameVersion('torch-2.8.0+cu128.dist-info')).toEqual({
      name: 'torch',
      version: '2.8.0+cu128',
    })
    expect(distNameVersion('PyYAML-6.0.1-py3.11.egg-info')).toEqual({
      name: 'PyYAML',
      version: '6.0.1',
    })
  })

  it('sizes a distribution by its RECORD in the final FS: .. resolved, each file once, missing files 0', () => {
    const SP = 'usr/local/lib/python3.11/site-packages'
    const record = [
      'charset_normalizer/__init__.py,sha256=a,100',
      'charset_normalizer/md.so,sha256=b,9000',
      'charset_normalizer/./md.so,sha256=b,9000', // the same file twice
      'charset_normalizer/removed.py,sha256=c,50', // deleted in a later layer
      '../../../bin/normalizer,sha256=d,200',
      'charset_normalizer-3.3.2.dist-info/RECORD,,',
    ].join('\n')
    const metadata = 'Metadata-Version: 2.1\nName: charset-normalizer\nVersion: 3.3.2\n'
    const { tree, read } = image(
      {
        [`${SP}/charset_normalizer/__init__.py`]: 100,
        [`${SP}/charset_normalizer/md.so`]: 9000,
        'usr/local/bin/normalizer': 200,
        [`${SP}/six-1.16.0.dist-info/WHEEL`]: 90, // no RECORD: its own size
        [`${SP}/PyYAML-6.0.1-py3.11.egg-info/PKG-INFO`]: 300,
        'usr/lib/python3/dist-packages/apt_pkg.so': 1,
      },
      {
        [`${SP}/charset_normalizer-3.3.2.dist-info/RECORD`]: record,
        [`${SP}/charset_normalizer-3.3.2.dist-info/METADATA`]: metadata,
      },
    )
    const { sitePackages, distributions } = pythonDistributions(tree, read)
    expect(sitePackages).toEqual(['usr/lib/python3/dist-packages', SP])
    expect(distributions).toEqual([
      {
        name: 'charset-normalizer',
        version: '3.3.2',
        path: `${SP}/charset_normalizer-3.3.2.dist-info`,
        sizeBytes: 100 + 9000 + 200 + Buffer.byteLength(record),
        files: 4,
      },
      {
        name: 'PyYAML',
        version: '6.0.1',
        path: `${SP}/PyYAML-6.0.1-py3.11.egg-info`,
        sizeBytes: 300,
        files: 1,
      },
      {
        name: 'six',
        version: '1.16.0',
        path: `${SP}/six-1.16.0.dist-info`,
        sizeBytes: 90,
        files: 1,
      },
    ])
  })

  it('finds site-packages through a venv and dist-packages, not below one another', () => {
    const { tree } = image({
      'opt/venv/lib/python3.12/site-packages/a/x.py': 1,
      'usr/lib/python3/dist-packages/b/y.py': 1,
      'usr/lib/python3/dist-packages/b/site-packages/z': 1,
    })
    expect(sitePackagesDirs(tree.root)).toEqual([
      'opt/venv/lib/python3.12/site-packages',
      'usr/lib/python3/dist-packages',
    ])
  })
})

describe('dpkg', () => {
  const status = [
    'Package: libc6',
    'Status: install ok installed',
    'Priority: optional',
    'Installed-Size: 12 ',
    'Architecture: amd64',
    'Multi-Arch: same',
    'Version: 2.36-9+deb12u7',
    'Description: GNU C Library',
    ' Contains the standard libraries.',
    ' .',
    ' Package: not-a-field',
    '',
    'Package: coreutils',
    'Status: install ok installed',
    'Installed-Size: 3',
    'Architecture: amd64',
    'Version: 9.1-1',
    '',
    'Package: removed-pkg',
    'Status: deinstall ok config-files',
    'Installed-Size: 100',
    'Version: 1',
    '',
    'Package: no-list',
    'Status: install ok installed',
    'Version: 0.1',
    '',
  ].join('\n')

  it('parses stanzas with continuation lines', () => {
    expect(parseDpkgStatus(status)).toEqual([
      {
        name: 'libc6',
        version: '2.36-9+deb12u7',
        architecture: 'amd64',
        status: 'install ok installed',
        installedSizeBytes: 12 * 1024,
      },
      {
        name: 'coreutils',
        version: '9.1-1',
        architecture: 'amd64',
        status: 'install ok installed',
        installedSizeBytes: 3 * 1024,
      },
      {
        name: 'removed-pkg',
        version: '1',
        architecture: '',
        status: 'deinstall ok config-files',
        installedSizeBytes: 100 * 1024,
      },
      {
        name: 'no-list',
        version: '0.1',
        architecture: '',
        status: 'install ok installed',
        installedSizeBytes: 0,
      },
    ])
  })

  it('sizes installed packages by their .list (name:arch.list too), /bin through the usrmerge symlink, each file once', () => {
    const { tree, read } = image(
      {
        'usr/lib/x86_64-linux-gnu/libc.so.6': 2000,
        'usr/lib/x86_64-linux-gnu/libm.so.6': 900,
        'usr/bin/ls': 150,
        'usr/bin/cat': 40,
      },
      {
        'var/lib/dpkg/status': status,
        'var/lib/dpkg/info/libc6:amd64.list':
          '/.\n/usr\n/usr/lib\n/usr/lib/x86_64-linux-gnu/libc.so.6\n/usr/lib/x86_64-linux-gnu/libm.so.6\n/lib/x86_64-linux-gnu/libm.so.6\n',
        'var/lib/dpkg/info/coreutils.list': '/.\n/bin\n/bin/ls\n/usr/bin/ls\n/bin/cat\n/bin/gone\n',
      },
      [symlink('bin', 'usr/bin'), symlink('lib', 'usr/lib')],
    )
    expect(dpkgPackages(tree, read)).toEqual([
      { name: 'libc6', version: '2.36-9+deb12u7', sizeBytes: 2900, installedSizeBytes: 12288 },
      { name: 'coreutils', version: '9.1-1', sizeBytes: 190, installedSizeBytes: 3072 },
      { name: 'no-list', version: '0.1', sizeBytes: 0, installedSizeBytes: 0 },
    ])
  })

  it('is null without a dpkg status file', () => {
    const { tree, read } = image({ 'bin/busybox': 1 })
    expect(dpkgPackages(tree, read)).toBeNull()
  })
})

describe('torch version.py', () => {
  it('reads torch 2.x', () => {
    const v = [
      'from typing import Optional',
      '',
      "__all__ = ['__version__', 'debug', 'cuda', 'git_version', 'hip', 'xpu']",
      "__version__ = '2.8.0+cu128'",
      'debug = False',
      "cuda: Optional[str] = '12.8'",
      "git_version = 'a1cb3cc05d46d198467bebbb6e8fba50a325d4e7'",
      'hip: Optional[str] = None',
      'xpu: Optional[str] = None',
      '',
    ].join('\n')
    expect(parseTorchVersion(v)).toEqual({ version: '2.8.0+cu128', cuda: '12.8' })
  })

  it('reads a CPU build and the older untyped form', () => {
    expect(
      parseTorchVersion(
        "__version__ = '2.3.1+cpu'\ndebug = False\ncuda: Optional[str] = None\ngit_version = 'x'\n",
      ),
    ).toEqual({ version: '2.3.1+cpu', cuda: null })
    expect(
      parseTorchVersion(
        "__version__ = '1.13.1+cu117'\ndebug = False\ncuda = '11.7'\ngit_version = '49444c3'\nhip = None\n",
      ),
    ).toEqual({ version: '1.13.1+cu117', cuda: '11.7' })
    expect(parseTorchVersion('__version__ = "2.1.0"\ncuda = None\n')).toEqual({
      version: '2.1.0',
      cuda: null,
    })
    expect(parseTorchVersion('import torch\n')).toBeNull()
  })

  it('finds torch in the final FS', () => {
    const SP = 'usr/local/lib/python3.11/site-packages'
    const { tree, read } = image(
      { [`${SP}/torch/lib/libtorch_cpu.so`]: 10 },
      { [`${SP}/torch/version.py`]: "__version__ = '2.8.0+cpu'\ncuda: Optional[str] = None\n" },
    )
    expect(findTorch(tree, [SP], read)).toEqual({
      version: '2.8.0+cpu',
      cuda: null,
      path: `${SP}/torch`,
    })
    expect(findTorch(tree, ['usr/lib/python3/dist-packages'], read)).toBeNull()
  })
})

describe('CUDA calls in application code', () => {
  it('finds the usual forms', () => {
    const src = [
      'import torch', // 1
      'model = load()', // 2
      'model.cuda()', // 3
      'x = x.to("cuda")', // 4
      "y = y.to('cuda:1')", // 5
      'z = torch.zeros(3, device="cuda")', // 6
      "dev = torch.device('cuda')", // 7
      'device = torch.device("cuda" if torch.cuda.is_available() else "cpu")', // 8
      'device = "cpu" if not torch.cuda.is_available() else "cuda"', // 9
      'torch.cuda.set_device("cuda:0")', // 10
      "DEVICE = 'cuda'", // 11
      `t = t.to(device="cuda")  ${'#'.repeat(300)}`, // 12
    ].join('\n')
    const calls = findCudaCalls(src)
    expect(calls.map((c) => c.line)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    expect(calls[0]).toEqual({ line: 3, text: 'model.cuda()' })
    expect(calls.at(-1)!.text).toHaveLength(200)
  })

  it('ignores CPU code, checks, comments and docstrings', () => {
    const src = [
      'device = "cpu"',
      'model.to(device)',
      'if torch.cuda.is_available():',
      '    print("gpu available")',
      '# model.cuda()',
      'x = 1  # then x.to("cuda")',
      '"""Usage:',
      '    model.cuda()',
      '"""',
      "s = 'not a # comment'  # device='cuda'",
      'if device == "cuda":',
      '    pass',
      "doc = '''one line model.cuda() docstring'''",
      'cudaMalloc = None',
    ].join('\n')
    expect(findCudaCalls(src)).toEqual([])
  })

  it('tells application Python from installed packages and the standard library', () => {
    expect(isAppPython('app/main.py')).toBe(true)
    expect(isAppPython('srv/lib/util.py')).toBe(true)
    expect(isAppPython('usr/local/lib/python3.11/site-packages/x/y.py')).toBe(false)
    expect(isAppPython('usr/lib/python3/dist-packages/x.py')).toBe(false)
    expect(isAppPython('usr/lib/python3.11/os.py')).toBe(false)
    expect(isAppPython('usr/local/lib/python3.11/json/decoder.py')).toBe(false)
    expect(isAppPython('opt/conda/lib/python3.10/abc.py')).toBe(false)
    expect(isAppPython('app/main.pyc')).toBe(false)
  })

  it('keeps matches of files in the final FS under the working dir or the code dirs', () => {
    const { tree } = image({ 'app/a.py': 1, 'app/sub/b.py': 1, 'srv/c.py': 1, 'tmp/d.py': 1 })
    const m = [{ line: 2, text: 'model.cuda()' }]
    const matches = (_n: unknown, p: string) => (p === 'app/gone.py' ? m : m)
    const cands = ['app/a.py', 'app/sub/b.py', 'srv/c.py', 'tmp/d.py', 'app/gone.py']
    expect(selectCudaCalls(tree, matches, cands, '/app').map((c) => c.path)).toEqual([
      'app/a.py',
      'app/sub/b.py',
    ])
    expect(selectCudaCalls(tree, matches, cands, '/app', ['/srv/']).map((c) => c.path)).toEqual([
      'app/a.py',
      'app/sub/b.py',
      'srv/c.py',
    ])
    expect(selectCudaCalls(tree, matches, cands, '/').map((c) => c.path)).toHaveLength(4)
    expect(selectCudaCalls(tree, matches, cands, '').map((c) => c.path)).toHaveLength(4)
    expect(underCodeDirs('application/x.py', '/app')).toBe(false)
  })
})

describe('directories and node_modules', () => {
  const { tree } = image({
    'usr/lib/a/big': 1000,
    'usr/lib/b/mid': 500,
    'usr/share/x': 100,
    'app/node_modules/react/index.js': 300,
    'app/node_modules/@types/node/index.d.ts': 200,
    'app/node_modules/@types/react/index.d.ts': 50,
    'app/node_modules/.bin/x': 1,
    'app/node_modules/react/node_modules/loose-envify/i.js': 40,
  })

  it('lists the biggest directories down to the depth', () => {
    expect(topDirectories(tree.root, 2, 4)).toEqual([
      { path: 'usr', sizeBytes: 1600, files: 3 },
      { path: 'usr/lib', sizeBytes: 1500, files: 2 },
      { path: 'app', sizeBytes: 591, files: 5 },
      { path: 'app/node_modules', sizeBytes: 591, files: 5 },
    ])
    expect(topDirectories(tree.root, 1, 10).map((d) => d.path)).toEqual(['usr', 'app'])
  })

  it('lists node packages, scoped and nested ones too', () => {
    expect(nodePackages(tree.root, 10)).toEqual([
      { name: 'react', path: 'app/node_modules/react', sizeBytes: 340 },
      { name: '@types/node', path: 'app/node_modules/@types/node', sizeBytes: 200 },
      { name: '@types/react', path: 'app/node_modules/@types/react', sizeBytes: 50 },
      {
        name: 'loose-envify',
        path: 'app/node_modules/react/node_modules/loose-envify',
        sizeBytes: 40,
      },
    ])
    expect(nodePackages(tree.root, 1)).toHaveLength(1)
  })
})

describe('os-release', () => {
  it('parses quoted values and follows etc/os-release → usr/lib/os-release', () => {
    const text =
      'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n# comment\n'
    expect(parseOsRelease(text)).toEqual({
      PRETTY_NAME: 'Debian GNU/Linux 12 (bookworm)',
      NAME: 'Debian GNU/Linux',
      VERSION_ID: '12',
      ID: 'debian',
    })
    const { tree, read } = image({}, { 'usr/lib/os-release': text }, [
      symlink('etc/os-release', '../usr/lib/os-release'),
    ])
    expect(findOsRelease(tree, read)?.ID).toBe('debian')
    expect(findOsRelease(image({ 'bin/sh': 1 }).tree, read)).toBeNull()
  })
})
