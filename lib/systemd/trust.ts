/**
 * What root's units may run from. The units start node as root (no User=) with the built CLI of
 * this package and a config file; whoever can change any of them, or any directory above them
 * (rename, replace, a symlink swapped in), decides what root runs. `shipshape systemd install`
 * refuses (exit 4) unless each is owned by root and not writable by group or others — every
 * directory up to `/`, each symlink on the way and the whole chain it points along — and
 * `systemd print` warns about the same.
 *
 * pathProblems() is pure (lstat facts in, problems out); collectChain() and collectTree() read
 * the facts (lstat every component, follow every symlink by hand); checkInstallPaths() takes the
 * paths as parameters, so a test can point it at a tree of its own.
 */
import { existsSync, lstatSync, readdirSync, readlinkSync, realpathSync, type Stats } from 'node:fs'
import path from 'node:path'
import { RefusedError } from '../errors.js'

/** One lstat(2) result. `mode` is st_mode (type and permission bits). */
export interface PathFact {
  path: string
  uid: number
  mode: number
  isSymlink: boolean
}

export interface PathProblem {
  path: string
  /** "owned by uid 1000", "writable by group and others (mode 0777)" */
  why: string
  /** the command that fixes it, or what to do when no command does (/tmp) */
  fix: string
}

const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const S_ISVTX = 0o1000

/** A path as a shell word: plain, or in single quotes. */
export function shellWord(p: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`
}

const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, '0')

/**
 * The facts that make a path unfit for root's units: not owned by root (uid 0), or — not for a
 * symlink, whose mode Linux ignores — writable by group or others. A world-writable sticky
 * directory (/tmp) is no better: anyone can create a name there first. Each path once, in the
 * order given.
 */
export function pathProblems(facts: readonly PathFact[]): PathProblem[] {
  const out: PathProblem[] = []
  const seen = new Set<string>()
  for (const f of facts) {
    if (seen.has(f.path)) continue
    seen.add(f.path)
    const why: string[] = []
    const fix: string[] = []
    const p = shellWord(f.path)
    if (f.uid !== 0) {
      why.push(`owned by uid ${f.uid}, not root`)
      fix.push(f.isSymlink ? `chown -h root ${p}` : `chown root ${p}`)
    }
    const writable = f.isSymlink ? 0 : f.mode & 0o022
    if (writable) {
      const who = writable === 0o022 ? 'group and others' : writable === 0o020 ? 'group' : 'others'
      const sticky = (f.mode & S_IFMT) === S_IFDIR && f.mode & S_ISVTX && f.mode & 0o002
      if (sticky) {
        why.push(`writable by everyone (mode ${octal(f.mode)}; the sticky bit does not help)`)
        fix.push(`move what is below ${p} to a directory only root can write (e.g. /opt, /etc)`)
      } else {
        why.push(`writable by ${who} (mode ${octal(f.mode)})`)
        fix.push(`chmod go-w ${p}`)
      }
    }
    if (why.length) out.push({ path: f.path, why: why.join(', '), fix: fix.join(' && ') })
  }
  return out
}

// --- reading the facts ---------------------------------------------------------------------------

/** lstat(2) of a path that could not be taken (the path and the errno code). */
export interface PathError {
  path: string
  code: string
}

export interface Collected {
  facts: PathFact[]
  errors: PathError[]
}

/** Linux gives up after 40 symlinks (ELOOP); so does the walk. */
const MAX_LINKS = 40

function fact(p: string, st: Stats): PathFact {
  return { path: p, uid: st.uid, mode: st.mode, isSymlink: st.isSymbolicLink() }
}

function lstatOrError(p: string): Stats | PathError {
  try {
    return lstatSync(p)
  } catch (err) {
    return { path: p, code: (err as NodeJS.ErrnoException).code ?? String(err) }
  }
}

const isError = (x: Stats | PathError): x is PathError => 'code' in x

/**
 * lstat's `/` and every component of `target` in turn, as the kernel resolves it: a symlink is
 * recorded itself and then its target is walked from `/` (absolute) or from the link's
 * directory (relative), so the directories of the whole chain are in the facts too. With
 * `missingOk`, a component that does not exist ends the walk quietly (what root creates later
 * below the last existing directory is as safe as that directory); otherwise it is an error.
 */
export function collectChain(
  target: string,
  opts: { missingOk?: boolean } = {},
  into: Collected = { facts: [], errors: [] },
): Collected {
  if (!path.posix.isAbsolute(target)) {
    into.errors.push({ path: target, code: 'not an absolute path' })
    return into
  }
  const root = lstatOrError('/')
  if (isError(root)) {
    into.errors.push(root)
    return into
  }
  into.facts.push(fact('/', root))
  const parts = target.split('/')
  let current = '/'
  let links = 0
  while (parts.length) {
    const name = parts.shift()!
    if (name === '' || name === '.') continue
    if (name === '..') {
      current = path.posix.dirname(current)
      continue
    }
    const next = path.posix.join(current, name)
    const st = lstatOrError(next)
    if (isError(st)) {
      if (!(opts.missingOk && st.code === 'ENOENT')) into.errors.push(st)
      return into
    }
    into.facts.push(fact(next, st))
    if (st.isSymbolicLink()) {
      if (++links > MAX_LINKS) {
        into.errors.push({ path: target, code: 'ELOOP' })
        return into
      }
      const to = readlinkSync(next)
      if (path.posix.isAbsolute(to)) current = '/'
      parts.unshift(...to.split('/'))
    } else if (parts.some((x) => x !== '' && x !== '.') && !st.isDirectory()) {
      into.errors.push({ path: next, code: 'ENOTDIR' })
      return into
    } else {
      current = next
    }
  }
  return into
}

const within = (p: string, dir: string) => p === dir || p.startsWith(dir === '/' ? '/' : dir + '/')

/**
 * Every entry below `dir` (itself included): what a package loads from. Symlinks are not
 * entered; each is checked with the chain it points along (collectChain, missing targets
 * allowed: whoever could create one must not be able to), and a directory it leads to outside
 * `dir` is walked as well.
 */
export function collectTree(dir: string, into: Collected = { facts: [], errors: [] }): Collected {
  const walked = new Set<string>()
  const walk = (d: string) => {
    let real: string
    try {
      real = realpathSync(d)
    } catch (err) {
      into.errors.push({ path: d, code: (err as NodeJS.ErrnoException).code ?? String(err) })
      return
    }
    if ([...walked].some((w) => within(real, w))) return
    walked.add(real)
    collectChain(real, {}, into)
    const top = lstatOrError(real)
    if (isError(top) || !top.isDirectory()) return // a file: its chain is all there is
    const stack = [real]
    const links: string[] = []
    while (stack.length) {
      const cur = stack.pop()!
      let names: string[]
      try {
        names = readdirSync(cur)
      } catch (err) {
        into.errors.push({ path: cur, code: (err as NodeJS.ErrnoException).code ?? String(err) })
        continue
      }
      for (const name of names) {
        const p = path.posix.join(cur, name)
        const st = lstatOrError(p)
        if (isError(st)) {
          if (st.code !== 'ENOENT') into.errors.push(st)
          continue
        }
        into.facts.push(fact(p, st))
        if (st.isDirectory()) stack.push(p)
        else if (st.isSymbolicLink()) links.push(p)
      }
    }
    for (const l of links) {
      collectChain(l, { missingOk: true }, into)
      let to: string
      try {
        to = realpathSync(l)
      } catch {
        continue // dangling: its chain (above) is what matters
      }
      const st = lstatOrError(to)
      if (!isError(st) && st.isDirectory()) walk(to)
    }
  }
  walk(dir)
  return into
}

// --- what the units use ------------------------------------------------------------------------

export interface TrustTarget {
  /** what it is, for the messages: "node", "the shipshape package", … */
  what: string
  path: string
  /** may not exist yet (root creates it later): the existing part of its path is checked */
  missingOk?: boolean
  /** a directory whose whole content counts (the package: dist/, node_modules/…) */
  tree?: boolean
}

export interface TrustProblem extends PathProblem {
  /** the target(s) the path belongs to */
  what: string
}

/** What a package loads at run time, below its root. */
const PACKAGE_ENTRIES = ['package.json', 'dist', 'config', 'systemd'] as const

/**
 * What root's units run from and read, as targets: node; the package root with what it loads
 * (package.json, dist/, config/, systemd/) and every node_modules/ node's lookup would search
 * (the package's own and each one above it); the config file the units read; and what root
 * writes or systemd reads for them — the environment file (NODE_OPTIONS= there would be code),
 * stateDir and backupDir (ReadWritePaths=, resolved by systemd at each start), the unit
 * directory. Those may not exist yet: their existing part is checked.
 */
export function installTargets(
  o: {
    nodePath: string
    packageRoot: string
    cliPath: string
    /** the config file the units read (pinned, or found by hostname in the package); null: none */
    configFile: string | null
    stateDir: string
    backupDir: string
    environmentFile: string
    unitDir: string
  },
  exists: (p: string) => boolean = existsSync,
): TrustTarget[] {
  const pkg = 'the shipshape package'
  const targets: TrustTarget[] = [
    { what: 'node', path: o.nodePath },
    { what: pkg, path: o.packageRoot },
    { what: 'the shipshape CLI', path: o.cliPath },
  ]
  for (const e of PACKAGE_ENTRIES) {
    const p = path.posix.join(o.packageRoot, e)
    if (exists(p)) targets.push({ what: pkg, path: p, tree: true })
  }
  for (let d = o.packageRoot; ; d = path.posix.dirname(d)) {
    const nm = path.posix.join(d, 'node_modules')
    if (exists(nm)) targets.push({ what: `modules node loads (${nm})`, path: nm, tree: true })
    if (d === '/') break
  }
  if (o.configFile) targets.push({ what: 'the config file', path: o.configFile })
  targets.push(
    { what: 'systemd.environmentFile', path: o.environmentFile, missingOk: true },
    { what: 'stateDir', path: o.stateDir, missingOk: true },
    { what: 'backupDir', path: o.backupDir, missingOk: true },
    { what: 'systemd.unitDir', path: o.unitDir, missingOk: true },
  )
  return targets
}

/** Reads the facts for each target and judges them: [] when root may run from all of them. */
export function checkInstallPaths(targets: readonly TrustTarget[]): TrustProblem[] {
  const byPath = new Map<string, TrustProblem>()
  for (const t of targets) {
    const c = t.tree ? collectTree(t.path) : collectChain(t.path, { missingOk: t.missingOk })
    const found: TrustProblem[] = [
      ...pathProblems(c.facts).map((p) => ({ ...p, what: t.what })),
      ...c.errors.map((e) => ({
        path: e.path,
        what: t.what,
        why: `cannot be checked (${e.code})`,
        fix: `make ${shellWord(e.path)} an existing path root owns`,
      })),
    ]
    for (const p of found) {
      const had = byPath.get(p.path)
      if (!had) byPath.set(p.path, p)
      else if (!had.what.split(', ').includes(p.what)) had.what += `, ${p.what}`
    }
  }
  return [...byPath.values()]
}

/** Problems shown in a message; the rest are counted. */
const SHOWN = 8

/** One line per problem: "<path>: <why> (<what>); fix: <fix>". */
export function describeProblems(problems: readonly TrustProblem[]): string[] {
  const lines = problems
    .slice(0, SHOWN)
    .map((p) => `${p.path}: ${p.why} (${p.what}); fix: ${p.fix}`)
  if (problems.length > SHOWN) lines.push(`… and ${problems.length - SHOWN} more`)
  return lines
}

/** RefusedError (exit 4) naming each offending path and its fix; nothing when there is none. */
export function refuseUntrusted(problems: readonly TrustProblem[]): void {
  if (problems.length === 0) return
  throw new RefusedError(
    [
      'the units would run as root from paths that others than root can change:',
      ...describeProblems(problems).map((l) => `  ${l}`),
    ].join('\n'),
    'make every path named owned by root and not writable by group or others (the command after each), or move shipshape, node or the file under a directory only root can write (e.g. /opt, /usr/local); then install again',
  )
}
