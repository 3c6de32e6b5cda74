/**
 * lib/systemd/trust.ts against real trees: lstat of every component, symlink chains followed by
 * hand (absolute, relative, `..`, loops), the package tree with links out of it, and the
 * judgement on directories chmod'ed 0777 or chown'ed to another uid (that part as root: skipped
 * loudly otherwise, failing under SHIPSHAPE_REQUIRE_SYSTEMD=1 like the other systemd tests).
 * The pure rules are in test/unit/systemd/trust.test.ts.
 */
import { lstatSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { chmod, chown, lchown, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  checkInstallPaths,
  collectChain,
  collectTree,
  installTargets,
} from '../../lib/systemd/trust.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const isRoot = process.getuid?.() === 0

let tmp: string
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ss-trust-'))
})
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true })
})

const pathsOf = (facts: { path: string }[]) => facts.map((f) => f.path)

describe('collectChain: every component, as the kernel resolves the path', () => {
  test('/ and each directory down to the file', async () => {
    const file = path.join(tmp, 'plain', 'a', 'f')
    await mkdir(path.dirname(file), { recursive: true })
    await writeFile(file, 'x')
    const c = collectChain(file)
    expect(c.errors).toEqual([])
    const above = tmp.split('/').map((_, i, a) => a.slice(0, i + 1).join('/') || '/')
    expect(pathsOf(c.facts)).toEqual([
      ...above,
      path.join(tmp, 'plain'),
      path.join(tmp, 'plain', 'a'),
      file,
    ])
    expect(c.facts.every((f) => !f.isSymlink)).toBe(true)
    expect(c.facts.at(-1)!.mode & 0o170000).toBe(0o100000)
  })

  test('a symlink is a fact itself, and so is every directory its target chain passes', async () => {
    const d = path.join(tmp, 'links')
    await mkdir(path.join(d, 'real', 'dir'), { recursive: true })
    await mkdir(path.join(d, 'other'))
    await writeFile(path.join(d, 'real', 'dir', 'f'), 'x')
    await symlink(path.join(d, 'real', 'dir'), path.join(d, 'abs'))
    // relative, through .. : other/rel -> ../real/dir
    await symlink('../real/dir', path.join(d, 'other', 'rel'))
    // a link to a link
    await symlink('other/rel', path.join(d, 'twice'))

    const abs = collectChain(path.join(d, 'abs', 'f'))
    expect(abs.errors).toEqual([])
    const a = pathsOf(abs.facts)
    expect(abs.facts.find((f) => f.path === path.join(d, 'abs'))!.isSymlink).toBe(true)
    expect(a).toContain(path.join(d, 'real'))
    expect(a).toContain(path.join(d, 'real', 'dir', 'f'))
    expect(a).not.toContain(path.join(d, 'abs', 'f'))

    const twice = collectChain(path.join(d, 'twice', 'f'))
    expect(twice.errors).toEqual([])
    const t = pathsOf(twice.facts)
    expect(t).toEqual(
      expect.arrayContaining([
        path.join(d, 'twice'),
        path.join(d, 'other'),
        path.join(d, 'other', 'rel'),
        path.join(d, 'real'),
        path.join(d, 'real', 'dir'),
        path.join(d, 'real', 'dir', 'f'),
      ]),
    )
    expect(twice.facts.filter((f) => f.isSymlink).map((f) => f.path)).toEqual([
      path.join(d, 'twice'),
      path.join(d, 'other', 'rel'),
    ])
  })

  test('missing, not a directory, a loop, a relative path: errors (missingOk: the existing part)', async () => {
    const d = path.join(tmp, 'errors')
    await mkdir(d)
    await writeFile(path.join(d, 'file'), 'x')
    await symlink('loop-b', path.join(d, 'loop-a'))
    await symlink('loop-a', path.join(d, 'loop-b'))

    expect(collectChain(path.join(d, 'no', 'such')).errors).toEqual([
      { path: path.join(d, 'no'), code: 'ENOENT' },
    ])
    const quiet = collectChain(path.join(d, 'no', 'such'), { missingOk: true })
    expect(quiet.errors).toEqual([])
    expect(pathsOf(quiet.facts).at(-1)).toBe(d)

    expect(collectChain(path.join(d, 'file', 'x')).errors).toEqual([
      { path: path.join(d, 'file'), code: 'ENOTDIR' },
    ])
    expect(collectChain(path.join(d, 'loop-a')).errors.map((e) => e.code)).toEqual(['ELOOP'])
    expect(collectChain('relative/path').errors.map((e) => e.code)).toEqual([
      'not an absolute path',
    ])
  })
})

describe('collectTree: what a package loads', () => {
  test('every entry; links not entered but their chains followed, directories out of the tree walked', async () => {
    const d = path.join(tmp, 'tree')
    const pkg = path.join(d, 'pkg')
    await mkdir(path.join(pkg, 'node_modules', 'tool', 'bin'), { recursive: true })
    await mkdir(path.join(pkg, 'node_modules', '.bin'))
    await writeFile(path.join(pkg, 'node_modules', 'tool', 'bin', 'tool.js'), 'x')
    await symlink('../tool/bin/tool.js', path.join(pkg, 'node_modules', '.bin', 'tool'))
    await mkdir(path.join(d, 'outside', 'ext'), { recursive: true })
    await writeFile(path.join(d, 'outside', 'ext', 'index.js'), 'x')
    await symlink(path.join(d, 'outside', 'ext'), path.join(pkg, 'node_modules', 'ext'))
    await symlink(path.join(d, 'nowhere', 'x'), path.join(pkg, 'node_modules', 'dangling'))

    const c = collectTree(path.join(pkg, 'node_modules'))
    expect(c.errors).toEqual([])
    const p = pathsOf(c.facts)
    expect(p).toEqual(
      expect.arrayContaining([
        path.join(pkg, 'node_modules', 'tool', 'bin', 'tool.js'),
        path.join(pkg, 'node_modules', '.bin', 'tool'),
        // out of the tree through a link: walked too
        path.join(d, 'outside'),
        path.join(d, 'outside', 'ext', 'index.js'),
        // a dangling link: its chain up to what is missing
        path.join(pkg, 'node_modules', 'dangling'),
      ]),
    )
    // what is missing below the dangling link's target is not an error: whoever could create
    // it must not be able to, and that is the chain's facts
    expect(p).not.toContain(path.join(d, 'nowhere'))
    // a file as a tree: its chain
    const f = collectTree(path.join(pkg, 'node_modules', 'tool', 'bin', 'tool.js'))
    expect(f.errors).toEqual([])
    expect(pathsOf(f.facts).at(-1)).toBe(path.join(pkg, 'node_modules', 'tool', 'bin', 'tool.js'))
  })
})

/** A temp dir below a chain only root can write (the repo's .cache/, or /run), as root. */
function trustedBase(): { ok: true; base: string } | { ok: false; reason: string } {
  if (!isRoot) return { ok: false, reason: 'not root: chown and root-owned chains need root' }
  for (const dir of [path.join(REPO, '.cache'), '/run']) {
    try {
      mkdirSync(dir, { recursive: true })
    } catch {
      continue
    }
    if (checkInstallPaths([{ what: 'base', path: dir }]).length) continue
    return { ok: true, base: mkdtempSync(path.join(dir, 'ss-trust-')) }
  }
  return { ok: false, reason: 'no directory only root can write for the test files' }
}

const BASE = trustedBase()
afterAll(() => {
  if (BASE.ok) rmSync(BASE.base, { recursive: true, force: true })
})

function describeAsRoot(name: string, fn: (base: string) => void): void {
  if (BASE.ok) {
    describe(name, () => fn(BASE.base))
    return
  }
  if (process.env.SHIPSHAPE_REQUIRE_SYSTEMD === '1') {
    describe(name, () => {
      test('usable here (SHIPSHAPE_REQUIRE_SYSTEMD=1)', () => {
        throw new Error(`${BASE.reason} (run the tests as root)`)
      })
    })
    return
  }
  console.warn(`\n!!! SKIPPED "${name}": ${BASE.reason}\n`)
  describe.skip(`${name} [SKIPPED: ${BASE.reason}]`, () => fn(''))
}

describeAsRoot('checkInstallPaths: what root must not run from', (base) => {
  let n = 0
  const fresh = async () => {
    const d = path.join(base, `t${++n}`)
    await mkdir(d)
    return d
  }

  test('a tree root owns, writable by none but root: nothing', async () => {
    const d = await fresh()
    await mkdir(path.join(d, 'opt', 'pkg', 'dist'), { recursive: true })
    await writeFile(path.join(d, 'opt', 'pkg', 'dist', 'x.js'), 'x', { mode: 0o644 })
    await symlink('dist/x.js', path.join(d, 'opt', 'pkg', 'main.js'))
    expect(
      checkInstallPaths([
        { what: 'pkg', path: path.join(d, 'opt', 'pkg'), tree: true },
        { what: 'main', path: path.join(d, 'opt', 'pkg', 'main.js') },
        { what: 'later', path: path.join(d, 'opt', 'state', 'deeper'), missingOk: true },
      ]),
    ).toEqual([])
  })

  test('a directory above chmod 0777 or chown 1000: named, with its fix', async () => {
    const d = await fresh()
    const open = path.join(d, 'open')
    const theirs = path.join(open, 'theirs')
    await mkdir(theirs, { recursive: true })
    await writeFile(path.join(theirs, 'c.yaml'), 'x', { mode: 0o600 })
    await chmod(open, 0o777)
    await chown(theirs, 1000, 1000)
    expect(
      checkInstallPaths([{ what: 'the config file', path: path.join(theirs, 'c.yaml') }]),
    ).toEqual([
      {
        path: open,
        what: 'the config file',
        why: 'writable by group and others (mode 0777)',
        fix: `chmod go-w ${open}`,
      },
      {
        path: theirs,
        what: 'the config file',
        why: 'owned by uid 1000, not root',
        fix: `chown root ${theirs}`,
      },
    ])
  })

  test('symlinks: the link’s owner, and every directory of the chain it resolves to', async () => {
    const d = await fresh()
    const open = path.join(d, 'open')
    await mkdir(path.join(open, 'bin'), { recursive: true })
    await chmod(open, 0o777)
    await writeFile(path.join(open, 'bin', 'node'), 'x', { mode: 0o755 })
    // root's own link, in a root-owned directory, to a file below a 0777 directory
    await mkdir(path.join(d, 'bin'))
    await symlink(path.join(open, 'bin', 'node'), path.join(d, 'bin', 'node'))
    expect(
      checkInstallPaths([{ what: 'node', path: path.join(d, 'bin', 'node') }]).map((p) => p.path),
    ).toEqual([open])
    // a link another user owns (they can replace it where the directory lets them; and it says
    // whose it is): chown -h
    await symlink(path.join(d, 'bin', 'node'), path.join(d, 'bin', 'theirs'))
    await lchown(path.join(d, 'bin', 'theirs'), 1000, 1000)
    const p = checkInstallPaths([{ what: 'node', path: path.join(d, 'bin', 'theirs') }])
    expect(p[0]).toEqual({
      path: path.join(d, 'bin', 'theirs'),
      what: 'node',
      why: 'owned by uid 1000, not root',
      fix: `chown -h root ${path.join(d, 'bin', 'theirs')}`,
    })
    expect(p.map((x) => x.path)).toContain(open)
  })

  test('in a package tree: a writable file, a link out to another user’s directory', async () => {
    const d = await fresh()
    const nm = path.join(d, 'pkg', 'node_modules')
    await mkdir(path.join(nm, 'dep'), { recursive: true })
    await writeFile(path.join(nm, 'dep', 'index.js'), 'x')
    await chmod(path.join(nm, 'dep', 'index.js'), 0o666)
    const ext = path.join(d, 'home', 'alice', 'ext')
    await mkdir(ext, { recursive: true })
    await chown(path.join(d, 'home', 'alice'), 1000, 1000)
    await symlink(ext, path.join(nm, 'ext'))
    // a dangling link into alice's directory: she could create what it points at
    await symlink(path.join(d, 'home', 'alice', 'later'), path.join(nm, 'later'))
    const p = checkInstallPaths([{ what: 'modules', path: nm, tree: true }])
    expect(p.map((x) => [x.path, x.why])).toEqual([
      [path.join(nm, 'dep', 'index.js'), 'writable by group and others (mode 0666)'],
      [path.join(d, 'home', 'alice'), 'owned by uid 1000, not root'],
    ])
  })

  test('a CLI below /tmp is refused for /tmp itself (sticky or not); so is stateDir there', () => {
    const st = lstatSync('/tmp')
    if (!st.isDirectory() || (st.mode & 0o7777) !== 0o1777) {
      console.warn(`!!! /tmp is not a sticky world-writable directory here: not tested`)
      return
    }
    const inTmp = mkdtempSync('/tmp/ss-trust-pkg-')
    try {
      mkdirSync(path.join(inTmp, 'dist', 'scripts'), { recursive: true })
      writeFileSync(path.join(inTmp, 'dist', 'scripts', 'shipshape.js'), 'x')
      const targets = installTargets({
        nodePath: process.execPath,
        packageRoot: inTmp,
        cliPath: path.join(inTmp, 'dist', 'scripts', 'shipshape.js'),
        configFile: null,
        stateDir: path.join(inTmp, 'state'),
        backupDir: path.join(base, 'backups'),
        environmentFile: path.join(base, 'env'),
        unitDir: path.join(base, 'units'),
      })
      const problems = checkInstallPaths(targets)
      expect(problems.map((p) => p.path)).toEqual(['/tmp'])
      expect(problems[0]!.why).toBe(
        'writable by everyone (mode 1777; the sticky bit does not help)',
      )
      expect(problems[0]!.what.split(', ')).toEqual([
        'the shipshape package',
        'the shipshape CLI',
        'stateDir',
      ])
    } finally {
      rmSync(inTmp, { recursive: true, force: true })
    }
  })
})
