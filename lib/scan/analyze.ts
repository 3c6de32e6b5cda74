/**
 * Measures of an image's final filesystem (pure): biggest directories, Python distributions,
 * node_modules packages, dpkg packages, torch's version, CUDA calls in application code.
 * Inputs are the summarised FsTree and `read(node, path)`, the text of a final-filesystem file
 * that the scan kept (only the few files listed in scan.ts are kept; undefined otherwise).
 */
import path from 'node:path'
import { pathOf, type FsNode, type FsTree } from './fstree.js'
import type { CodeMatch, DpkgPackage, NodePackage, PythonDistribution, SizedPath } from './types.js'

/** The text of a final-filesystem file as the scan kept it, or undefined. */
export type ReadText = (node: FsNode, path: string) => string | undefined

const PY_PACKAGE_DIRS = new Set(['site-packages', 'dist-packages'])

const join = (a: string, b: string) => (a ? `${a}/${b}` : b)

/** Walk the directories of a tree (depth 1 = children of the root); `fn` returns false to skip a subtree. */
function walkDirs(
  root: FsNode,
  fn: (dir: FsNode, p: string, depth: number) => boolean | void,
  rootPath = '',
): void {
  const visit = (dir: FsNode, p: string, depth: number): void => {
    for (const c of dir.children!.values()) {
      if (!c.children) continue
      const cp = join(p, c.name)
      if (fn(c, cp, depth) !== false) visit(c, cp, depth + 1)
    }
  }
  visit(root, rootPath, 1)
}

/** Biggest directories down to `depth` levels (1 = /usr, /opt …), biggest first. */
export function topDirectories(root: FsNode, depth = 3, top = 10): SizedPath[] {
  const all: SizedPath[] = []
  walkDirs(root, (d, p, level) => {
    if (d.bytes > 0) all.push({ path: p, sizeBytes: d.bytes, files: d.files })
    return level < depth
  })
  return all.sort((a, b) => b.sizeBytes - a.sizeBytes || cmp(a.path, b.path)).slice(0, top)
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

// --- Python ----------------------------------------------------------------------------------

/** Every site-packages / dist-packages directory of the tree. */
export function sitePackagesDirs(root: FsNode): string[] {
  const found: string[] = []
  walkDirs(root, (d, p) => {
    if (PY_PACKAGE_DIRS.has(d.name)) {
      found.push(p)
      return false
    }
  })
  return found.sort()
}

/**
 * The paths of a wheel's RECORD (CSV: path,hash,size; the path quoted when it holds a comma
 * or a quote, quotes doubled).
 */
export function parseRecordPaths(text: string): string[] {
  const paths: string[] = []
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw
    if (!line) continue
    if (line.startsWith('"')) {
      let p = ''
      let i = 1
      for (;;) {
        const q = line.indexOf('"', i)
        if (q < 0) {
          p += line.slice(i)
          break
        }
        p += line.slice(i, q)
        if (line[q + 1] === '"') {
          p += '"'
          i = q + 2
        } else break
      }
      if (p) paths.push(p)
    } else {
      const comma = line.indexOf(',')
      const p = comma < 0 ? line : line.slice(0, comma)
      if (p) paths.push(p)
    }
  }
  return paths
}

/** Name and Version from the headers of METADATA / PKG-INFO. */
export function parseMetadata(text: string): { name: string; version: string } | null {
  let name = ''
  let version = ''
  for (const line of text.split('\n')) {
    if (line === '' || line === '\r') break // end of the headers
    const m = /^(Name|Version):\s*(.*?)\s*$/i.exec(line)
    if (!m) continue
    if (m[1]!.toLowerCase() === 'name') name ||= m[2]!
    else version ||= m[2]!
  }
  return name ? { name, version } : null
}

/** 'torch-2.8.0+cu128.dist-info' → torch, 2.8.0+cu128; 'foo-1.0-py3.11.egg-info' → foo, 1.0. */
export function distNameVersion(dirName: string): { name: string; version: string } {
  const base = dirName.replace(/\.(dist-info|egg-info)$/, '')
  const dash = base.indexOf('-')
  if (dash < 0) return { name: base, version: '' }
  const name = base.slice(0, dash)
  let version = base.slice(dash + 1)
  if (dirName.endsWith('.egg-info')) version = version.replace(/-py\d+(\.\d+)*$/, '')
  return { name, version }
}

/**
 * Each `*.dist-info` in a site-/dist-packages directory, sized by the files its RECORD names as
 * they are in the final filesystem (resolved from the site-packages directory, '..' and
 * symlinked directories followed, each file once); `*.egg-info` by its own size. Biggest first.
 */
export function pythonDistributions(
  tree: FsTree,
  read: ReadText,
): { sitePackages: string[]; distributions: PythonDistribution[] } {
  const sitePackages = sitePackagesDirs(tree.root)
  const distributions: PythonDistribution[] = []
  for (const sp of sitePackages) {
    const dir = tree.get(sp)
    if (!dir?.children) continue
    for (const child of dir.children.values()) {
      const p = `${sp}/${child.name}`
      if (child.name.endsWith('.dist-info') && child.children) {
        const meta = child.children.get('METADATA')
        const parsed = meta ? parseMetadata(read(meta, `${p}/METADATA`) ?? '') : null
        const { name, version } = parsed ?? distNameVersion(child.name)
        const recordNode = child.children.get('RECORD')
        const record = recordNode ? read(recordNode, `${p}/RECORD`) : undefined
        let sizeBytes = child.bytes
        let files = child.files
        if (record !== undefined) {
          const seen = new Set<FsNode>()
          sizeBytes = 0
          files = 0
          for (const rp of parseRecordPaths(record)) {
            const node = tree.resolve(rp.startsWith('/') ? rp.slice(1) : `${sp}/${rp}`)
            if (!node || seen.has(node) || (node.type !== 'file' && node.type !== 'hardlink'))
              continue
            seen.add(node)
            sizeBytes += node.size
            files++
          }
        }
        distributions.push({ name, version, path: p, sizeBytes, files })
      } else if (child.name.endsWith('.egg-info')) {
        const { name, version } = distNameVersion(child.name)
        distributions.push({ name, version, path: p, sizeBytes: child.bytes, files: child.files })
      }
    }
  }
  distributions.sort((a, b) => b.sizeBytes - a.sizeBytes || cmp(a.path, b.path))
  return { sitePackages, distributions }
}

// --- node_modules ----------------------------------------------------------------------------

/** Every package directly below a node_modules (@scope/name too), biggest first, top N. */
export function nodePackages(root: FsNode, top = 20): NodePackage[] {
  const all: NodePackage[] = []
  walkDirs(root, (d, p) => {
    if (d.name !== 'node_modules') return
    for (const c of d.children!.values()) {
      if (!c.children || c.name.startsWith('.')) continue
      if (c.name.startsWith('@')) {
        for (const s of c.children.values()) {
          if (s.children)
            all.push({
              name: `${c.name}/${s.name}`,
              path: `${p}/${c.name}/${s.name}`,
              sizeBytes: s.bytes,
            })
        }
      } else all.push({ name: c.name, path: `${p}/${c.name}`, sizeBytes: c.bytes })
    }
  })
  return all.sort((a, b) => b.sizeBytes - a.sizeBytes || cmp(a.path, b.path)).slice(0, top)
}

// --- dpkg --------------------------------------------------------------------------------------

export interface DpkgStanza {
  name: string
  version: string
  architecture: string
  status: string
  installedSizeBytes: number
}

/** The stanzas of /var/lib/dpkg/status (RFC 822 style; continuation lines start with a space). */
export function parseDpkgStatus(text: string): DpkgStanza[] {
  const out: DpkgStanza[] = []
  for (const block of text.split(/\n[ \t]*\n/)) {
    const fields = new Map<string, string>()
    for (const line of block.split('\n')) {
      if (line === '' || line[0] === ' ' || line[0] === '\t') continue
      const colon = line.indexOf(':')
      if (colon <= 0) continue
      fields.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim())
    }
    const name = fields.get('package')
    if (!name) continue
    const kib = Number(fields.get('installed-size') ?? '')
    out.push({
      name,
      version: fields.get('version') ?? '',
      architecture: fields.get('architecture') ?? '',
      status: fields.get('status') ?? '',
      installedSizeBytes: Number.isFinite(kib) ? kib * 1024 : 0,
    })
  }
  return out
}

const DPKG_STATUS = 'var/lib/dpkg/status'
const DPKG_INFO = 'var/lib/dpkg/info'

/** The .list of a package in the final filesystem: <name>.list, else <name>:<arch>.list. */
export function dpkgListPaths(stanza: DpkgStanza): string[] {
  const paths = [`${DPKG_INFO}/${stanza.name}.list`]
  if (stanza.architecture) paths.push(`${DPKG_INFO}/${stanza.name}:${stanza.architecture}.list`)
  return paths
}

/**
 * Installed dpkg packages (`Status: install ok installed`), each sized by the files of its
 * .list as they are in the final filesystem (symlinked directories followed: /bin → usr/bin;
 * each file once). Null when the image has no dpkg status file. Biggest first.
 */
export function dpkgPackages(tree: FsTree, read: ReadText): DpkgPackage[] | null {
  const statusNode = tree.resolve(DPKG_STATUS, true)
  if (!statusNode || statusNode.type !== 'file') return null
  const status = read(statusNode, pathOf(statusNode))
  if (status === undefined) return null
  const out: DpkgPackage[] = []
  for (const s of parseDpkgStatus(status)) {
    if (s.status !== 'install ok installed') continue
    let list: string | undefined
    for (const lp of dpkgListPaths(s)) {
      const node = tree.get(lp)
      if (node?.type === 'file') list = read(node, lp)
      if (list !== undefined) break
    }
    let sizeBytes = 0
    if (list) {
      const seen = new Set<FsNode>()
      for (const line of list.split('\n')) {
        const p = line.trim()
        if (!p || p === '/.') continue
        const node = tree.resolve(p.startsWith('/') ? p.slice(1) : p)
        if (!node || seen.has(node) || node.type !== 'file') continue
        seen.add(node)
        sizeBytes += node.size
      }
    }
    out.push({
      name: s.name,
      version: s.version,
      sizeBytes,
      installedSizeBytes: s.installedSizeBytes,
    })
  }
  return out.sort((a, b) => b.sizeBytes - a.sizeBytes || cmp(a.name, b.name))
}

// --- torch -------------------------------------------------------------------------------------

/**
 * torch/version.py as torch's setup writes it:
 *   __version__ = '2.8.0+cu128'
 *   cuda: Optional[str] = '12.8'     (older: cuda = '11.8'; CPU builds: None)
 */
export function parseTorchVersion(text: string): { version: string; cuda: string | null } | null {
  const value = (key: string): string | null | undefined => {
    const re = new RegExp(
      `^${key}\\s*(?::[^=\\n]*)?=\\s*(?:'([^'\\n]*)'|"([^"\\n]*)"|(None))\\s*(?:#.*)?$`,
      'm',
    )
    const m = re.exec(text)
    if (!m) return undefined
    if (m[3]) return null
    return m[1] ?? m[2] ?? null
  }
  const version = value('__version__')
  if (!version) return null
  return { version, cuda: value('cuda') ?? null }
}

/** torch in the final filesystem: the first site-/dist-packages holding torch/version.py. */
export function findTorch(
  tree: FsTree,
  sitePackages: string[],
  read: ReadText,
): { version: string; cuda: string | null; path: string } | null {
  for (const sp of sitePackages) {
    const p = `${sp}/torch/version.py`
    const node = tree.get(p)
    if (node?.type !== 'file') continue
    const parsed = parseTorchVersion(read(node, p) ?? '')
    if (parsed) return { ...parsed, path: `${sp}/torch` }
  }
  return null
}

// --- application code ------------------------------------------------------------------------

/**
 * Application Python: a .py file outside site-/dist-packages and outside a Python's own
 * library (…/lib/python3.X, …/lib64/python3.X: usr/lib, usr/local/lib, opt/conda/lib, venvs).
 */
export function isAppPython(p: string): boolean {
  if (!p.endsWith('.py')) return false
  const segs = p.split('/')
  for (let i = 0; i < segs.length - 1; i++) {
    const s = segs[i]!
    if (PY_PACKAGE_DIRS.has(s)) return false
    if (i > 0 && /^python\d/.test(s) && (segs[i - 1] === 'lib' || segs[i - 1] === 'lib64'))
      return false
  }
  return true
}

const CUDA_PATTERNS: RegExp[] = [
  /\.cuda\s*\(/, // model.cuda(), x.cuda(0)
  /\.to\(\s*(?:device\s*=\s*)?["']cuda/, // .to("cuda"), .to('cuda:1'), .to(device="cuda")
  /\bdevice\s*=\s*["']cuda/i, // device="cuda", DEVICE = 'cuda'
  /torch\.device\(\s*["']cuda/, // torch.device("cuda")
  /["']cuda(?::\d+)?["']\s+if\b/, // "cuda" if torch.cuda.is_available() else "cpu"
  /\belse\s+["']cuda(?::\d+)?["']/, // "cpu" if … else "cuda"
  /["']cuda:\d+["']/, // "cuda:0"
]

/** Longest text kept per match. */
const MATCH_TEXT_MAX = 200

/**
 * Lines of Python source that call CUDA (see CUDA_PATTERNS): line numbers from 1, text trimmed
 * to 200 characters. Comments and triple-quoted strings (docstrings) do not count.
 */
export function findCudaCalls(source: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = []
  const lines = source.split('\n')
  let triple: string | null = null // the open triple quote, if a line ended inside one
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!
    const [code, open] = codeOf(raw, triple)
    triple = open
    if (!code.includes('cuda')) continue
    if (CUDA_PATTERNS.some((re) => re.test(code))) {
      out.push({ line: i + 1, text: raw.trim().slice(0, MATCH_TEXT_MAX) })
    }
  }
  return out
}

/**
 * A line's code without its comment and without the parts inside triple-quoted strings; ordinary
 * string literals are kept ("cuda" is what the patterns look for). Returns the triple quote still
 * open at the end of the line.
 */
function codeOf(line: string, triple: string | null): [string, string | null] {
  let code = ''
  let i = 0
  if (triple) {
    const end = line.indexOf(triple)
    if (end < 0) return ['', triple]
    i = end + 3
  }
  let quote: string | null = null
  for (; i < line.length; i++) {
    const c = line[i]!
    if (quote) {
      code += c
      if (c === '\\') {
        code += line[i + 1] ?? ''
        i++
      } else if (c === quote) quote = null
      continue
    }
    if (c === '#') break
    if ((c === '"' || c === "'") && line.startsWith(c.repeat(3), i)) {
      const q = c.repeat(3)
      const end = line.indexOf(q, i + 3)
      if (end < 0) return [code, q]
      i = end + 2
      code += ' '
      continue
    }
    if (c === '"' || c === "'") quote = c
    code += c
  }
  return [code, null]
}

/** True when a path lies under the working directory or one of the code directories ('' or '/' = everything). */
export function underCodeDirs(p: string, workingDir: string, codeDirs: string[] = []): boolean {
  const dirs = [workingDir, ...codeDirs].map((d) =>
    path.posix.normalize(`/${d}`).slice(1).replace(/\/+$/, ''),
  )
  if (dirs[0] === '') return true
  return dirs.some((d) => d === '' || p === d || p.startsWith(`${d}/`))
}

/** CUDA matches of files that survive in the final filesystem (from the winning layer) under the code dirs. */
export function selectCudaCalls(
  tree: FsTree,
  matchesOf: (node: FsNode, path: string) => { line: number; text: string }[] | undefined,
  candidates: Iterable<string>,
  workingDir: string,
  codeDirs: string[] = [],
): CodeMatch[] {
  const out: CodeMatch[] = []
  for (const p of new Set(candidates)) {
    if (!underCodeDirs(p, workingDir, codeDirs)) continue
    const node = tree.get(p)
    if (node?.type !== 'file') continue
    for (const m of matchesOf(node, p) ?? []) out.push({ path: p, ...m })
  }
  return out.sort((a, b) => cmp(a.path, b.path) || a.line - b.line)
}

// --- os-release -------------------------------------------------------------------------------

/** KEY=value lines of os-release(5), values unquoted. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim())
    if (!m) continue
    let v = m[2]!
    const q = v[0]
    if ((q === '"' || q === "'") && v.endsWith(q) && v.length >= 2) {
      v = v.slice(1, -1)
      if (q === '"') v = v.replace(/\\(["\\$`])/g, '$1')
    }
    out[m[1]!] = v
  }
  return out
}

/** /etc/os-release of the final filesystem (a symlink to usr/lib/os-release is followed), else usr/lib/os-release. */
export function findOsRelease(tree: FsTree, read: ReadText): Record<string, string> | null {
  for (const p of ['etc/os-release', 'usr/lib/os-release']) {
    const node = tree.resolve(p, true)
    if (node?.type !== 'file') continue
    const text = read(node, pathOf(node))
    if (text !== undefined) return parseOsRelease(text)
  }
  return null
}
