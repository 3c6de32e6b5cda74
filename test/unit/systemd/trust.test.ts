/**
 * lib/systemd/trust.ts, the pure half: lstat facts → what root's units must not run from, the
 * targets install checks, the refusal. The I/O half (lstat of every component, symlink chains,
 * trees) is in test/host/systemd-trust.test.ts, the built CLI in test/host/systemd-verify.test.ts.
 */
import { describe, expect, it } from 'vitest'
import { ExitCode, RefusedError } from '../../../lib/errors.js'
import {
  describeProblems,
  installTargets,
  pathProblems,
  refuseUntrusted,
  shellWord,
  type PathFact,
  type TrustProblem,
} from '../../../lib/systemd/trust.js'

const DIR = 0o040000
const FILE = 0o100000
const LINK = 0o120000

const dir = (path: string, mode = 0o755, uid = 0): PathFact => ({
  path,
  uid,
  mode: DIR | mode,
  isSymlink: false,
})
const file = (path: string, mode = 0o755, uid = 0): PathFact => ({
  path,
  uid,
  mode: FILE | mode,
  isSymlink: false,
})
const link = (path: string, uid = 0): PathFact => ({
  path,
  uid,
  mode: LINK | 0o777,
  isSymlink: true,
})

describe('pathProblems', () => {
  it('root-owned and not group/other-writable: nothing to say', () => {
    expect(
      pathProblems([
        dir('/'),
        dir('/usr'),
        dir('/usr/bin'),
        file('/usr/bin/node'),
        dir('/etc/shipshape', 0o700),
        file('/etc/shipshape/box1.yaml', 0o600),
        // other-readable and group-readable are fine: only writers matter
        dir('/opt', 0o755),
        file('/opt/a', 0o444),
      ]),
    ).toEqual([])
  })

  it('a directory or file owned by another uid: chown', () => {
    expect(pathProblems([dir('/'), dir('/opt/shipshape', 0o755, 1000)])).toEqual([
      {
        path: '/opt/shipshape',
        why: 'owned by uid 1000, not root',
        fix: 'chown root /opt/shipshape',
      },
    ])
    expect(pathProblems([file('/usr/local/bin/node', 0o755, 1000)])[0]!.fix).toBe(
      'chown root /usr/local/bin/node',
    )
  })

  it('group- or other-writable: chmod go-w, with the mode', () => {
    expect(pathProblems([dir('/srv', 0o777)])).toEqual([
      { path: '/srv', why: 'writable by group and others (mode 0777)', fix: 'chmod go-w /srv' },
    ])
    expect(pathProblems([dir('/srv', 0o775)])[0]!.why).toBe('writable by group (mode 0775)')
    expect(pathProblems([file('/srv/c.yaml', 0o646)])[0]!.why).toBe(
      'writable by others (mode 0646)',
    )
  })

  it('both at once: one problem, both fixes', () => {
    expect(pathProblems([dir('/home/ops', 0o777, 1000)])).toEqual([
      {
        path: '/home/ops',
        why: 'owned by uid 1000, not root, writable by group and others (mode 0777)',
        fix: 'chown root /home/ops && chmod go-w /home/ops',
      },
    ])
  })

  it('a sticky world-writable directory (/tmp) is refused too, and chmod is not the fix', () => {
    const [p] = pathProblems([dir('/tmp', 0o1777)])
    expect(p!.path).toBe('/tmp')
    expect(p!.why).toMatch(/writable by everyone \(mode 1777; the sticky bit does not help\)/)
    expect(p!.fix).not.toMatch(/chmod/)
    expect(p!.fix).toMatch(/move what is below \/tmp to a directory only root can write/)
    // sticky but only group-writable is an ordinary group-writable directory
    expect(pathProblems([dir('/srv/x', 0o1775)])[0]!.fix).toBe('chmod go-w /srv/x')
  })

  it('a symlink: its owner counts (chown -h), its mode (always 0777 on Linux) does not', () => {
    expect(pathProblems([link('/usr/local/bin/node')])).toEqual([])
    expect(pathProblems([link('/usr/local/bin/node', 1000)])).toEqual([
      {
        path: '/usr/local/bin/node',
        why: 'owned by uid 1000, not root',
        fix: 'chown -h root /usr/local/bin/node',
      },
    ])
  })

  it('each path once, in the order given; odd names quoted for the shell', () => {
    const facts = [dir('/a b', 0o777), dir('/x', 0o777), dir('/a b', 0o777)]
    expect(pathProblems(facts).map((p) => [p.path, p.fix])).toEqual([
      ['/a b', "chmod go-w '/a b'"],
      ['/x', 'chmod go-w /x'],
    ])
    expect(shellWord("/it's")).toBe("'/it'\\''s'")
    expect(shellWord('/opt/ship-shape_1.0/x')).toBe('/opt/ship-shape_1.0/x')
  })
})

describe('installTargets', () => {
  const base = {
    nodePath: '/usr/bin/node',
    packageRoot: '/opt/shipshape',
    cliPath: '/opt/shipshape/dist/scripts/shipshape.js',
    configFile: '/etc/shipshape/box1.yaml',
    stateDir: '/var/lib/shipshape',
    backupDir: '/var/backups/shipshape',
    environmentFile: '/etc/shipshape/shipshape.env',
    unitDir: '/etc/systemd/system',
  }

  it('node, the package with what it loads, every node_modules above it, config, env, dirs', () => {
    const present = new Set([
      '/opt/shipshape/package.json',
      '/opt/shipshape/dist',
      '/opt/shipshape/config',
      '/opt/shipshape/systemd',
      '/opt/shipshape/node_modules',
      '/node_modules',
    ])
    const t = installTargets(base, (p) => present.has(p))
    expect(t.map((x) => [x.path, Boolean(x.tree), Boolean(x.missingOk)])).toEqual([
      ['/usr/bin/node', false, false],
      ['/opt/shipshape', false, false],
      ['/opt/shipshape/dist/scripts/shipshape.js', false, false],
      ['/opt/shipshape/package.json', true, false],
      ['/opt/shipshape/dist', true, false],
      ['/opt/shipshape/config', true, false],
      ['/opt/shipshape/systemd', true, false],
      ['/opt/shipshape/node_modules', true, false],
      // node's module lookup goes up to /node_modules
      ['/node_modules', true, false],
      ['/etc/shipshape/box1.yaml', false, false],
      // created later by root or systemd: the existing part of the path is checked
      ['/etc/shipshape/shipshape.env', false, true],
      ['/var/lib/shipshape', false, true],
      ['/var/backups/shipshape', false, true],
      ['/etc/systemd/system', false, true],
    ])
    expect(t[0]!.what).toBe('node')
    expect(t[1]!.what).toBe('the shipshape package')
  })

  it('no config file (the embedded default): none to check; absent entries are skipped', () => {
    const t = installTargets({ ...base, configFile: null }, () => false)
    expect(t.map((x) => x.what)).toEqual([
      'node',
      'the shipshape package',
      'the shipshape CLI',
      'systemd.environmentFile',
      'stateDir',
      'backupDir',
      'systemd.unitDir',
    ])
  })
})

describe('the refusal', () => {
  const problem = (path: string, what: string): TrustProblem => ({
    path,
    what,
    why: 'writable by group and others (mode 0777)',
    fix: `chmod go-w ${path}`,
  })

  it('RefusedError (exit 4) naming each path, what it is for and its fix', () => {
    let err: unknown
    try {
      refuseUntrusted([problem('/srv/apps', 'the shipshape package'), problem('/etc/ss', 'x')])
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(RefusedError)
    const e = err as RefusedError
    expect(e.exitCode).toBe(ExitCode.refused)
    expect(e.message).toMatch(/run as root from paths that others than root can change/)
    expect(e.message).toContain(
      '/srv/apps: writable by group and others (mode 0777) (the shipshape package); fix: chmod go-w /srv/apps',
    )
    expect(e.message).toContain('/etc/ss: ')
    expect(e.remedy).toMatch(/owned by root and not writable by group or others/)
    expect(() => refuseUntrusted([])).not.toThrow()
  })

  it('a long list is cut, with a count of the rest', () => {
    const many = Array.from({ length: 20 }, (_, i) => problem(`/opt/p/${i}`, 'pkg'))
    const lines = describeProblems(many)
    expect(lines).toHaveLength(9)
    expect(lines.at(-1)).toBe('… and 12 more')
  })
})
