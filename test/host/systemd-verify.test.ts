/**
 * The rendered units against systemd's own parser (`systemd-analyze verify`, Debian package
 * `systemd`), and `shipshape systemd print|install` as the built CLI (test/cli/run.ts; `npm test`
 * builds first). verify needs no running systemd: it loads the files as the manager would,
 * checks that each ExecStart= binary exists and is executable, and exits non-zero on an
 * unloadable unit. With SYSTEMD_LOG_LEVEL=debug it also dumps each unit as parsed, which shows
 * whether the escaping of odd paths survived.
 *
 * `systemd-analyze security --offline=true` rates each rendered service (exposure ≤ 2.5 is held
 * here), and setpriv(1) runs the jobs' file work under each unit's CapabilityBoundingSet= (no
 * systemd needed). `systemd install` refuses to point root's units at paths others can change
 * (lib/systemd/trust.ts): the install tests run as root, with their files in a directory only
 * root can write, and the CLI of this checkout when install accepts it, else of a copy of the
 * package owned by root in that directory (where the checkout is cloned does not matter);
 * without root, a node or such a directory install accepts they skip loudly (fail under
 * SHIPSHAPE_REQUIRE_SYSTEMD=1).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { existsSync, lstatSync, mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs'
import {
  chmod,
  chown,
  cp,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { parseConfigText, type Config } from '../../lib/config/index.js'
import { installUnits, type SystemdPort } from '../../lib/systemd/index.js'
import { renderUnits, UNIT_NAMES, type RenderOptions } from '../../lib/systemd/render.js'
import { createOutput } from '../../lib/cli/output.js'
import { checkInstallPaths, installTargets, shellWord } from '../../lib/systemd/trust.js'
import { CLI, runCli, runCliAt } from '../cli/run.js'

const REPO = path.resolve(path.dirname(CLI), '../..')
const REQUIRED = process.env.SHIPSHAPE_REQUIRE_SYSTEMD === '1'
const isRoot = process.getuid?.() === 0

function systemdAnalyze(): { ok: true } | { ok: false; reason: string } {
  const r = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' })
  if (r.error)
    return { ok: false, reason: `systemd-analyze: ${(r.error as NodeJS.ErrnoException).code}` }
  if (r.status !== 0) return { ok: false, reason: `systemd-analyze --version exited ${r.status}` }
  return { ok: true }
}

/**
 * describe() that skips LOUDLY without systemd-analyze, and fails instead under
 * SHIPSHAPE_REQUIRE_SYSTEMD=1.
 */
function describeSystemd(name: string, fn: () => void): void {
  const u = systemdAnalyze()
  if (u.ok) {
    describe(name, fn)
    return
  }
  describeOrSkip(
    name,
    { ok: false, reason: `systemd-analyze unusable: ${u.reason}` },
    fn,
    'apt-get install systemd',
  )
}

/** describe() when `env.ok`; else skipped LOUDLY, or failing under SHIPSHAPE_REQUIRE_SYSTEMD=1. */
function describeOrSkip(
  name: string,
  env: { ok: true } | { ok: false; reason: string },
  fn: () => void,
  fix: string,
): void {
  if (env.ok) {
    describe(name, fn)
    return
  }
  if (REQUIRED) {
    describe(name, () => {
      test(`usable here (SHIPSHAPE_REQUIRE_SYSTEMD=1)`, () => {
        throw new Error(`${env.reason} (${fix})`)
      })
    })
    return
  }
  console.warn(`\n!!! SKIPPED "${name}": ${env.reason} (${fix})\n`)
  describe.skip(`${name} [SKIPPED: ${env.reason}]`, fn)
}

/** Where the install tests run the CLI from: a package `systemd install` accepts. */
type InstallEnvironment =
  | {
      ok: true
      /** a temp directory below a chain only root can write: configs, state, units */
      base: string
      /** the package root the CLI runs from: this checkout, or a trusted copy in `base` */
      pkg: string
      /** its dist/scripts/shipshape.js */
      cli: string
    }
  | { ok: false; reason: string }

const listProblems = (problems: readonly { path: string; why: string }[]) =>
  problems.map((p) => `${p.path}: ${p.why}`).join('; ')

/**
 * What root's units may run from, as `systemd install` judges it (trust.ts): this node, and a
 * package below a chain only root can write. The temp directory for configs, state and units is
 * the repo's .cache/ or /run (install refuses anything below /tmp). The package is this checkout
 * when install accepts it; otherwise — where CI clones it is not ours to choose (/tmp, a user's
 * home) — a copy of what it loads in that temp directory, owned by root, not group/other-writable.
 */
function installEnvironment(): InstallEnvironment {
  if (!isRoot) return { ok: false, reason: 'not root: root owns what `systemd install` accepts' }
  if (!existsSync(CLI)) return { ok: false, reason: `${CLI} is missing: npm run build first` }
  const nodeProblems = checkInstallPaths([{ what: 'node', path: realpathSync(process.execPath) }])
  if (nodeProblems.length) {
    return { ok: false, reason: `install refuses this node: ${listProblems(nodeProblems)}` }
  }
  const tried: string[] = []
  for (const dir of [path.join(REPO, '.cache'), '/run']) {
    try {
      mkdirSync(dir, { recursive: true })
    } catch (err) {
      tried.push(`${dir}: ${(err as NodeJS.ErrnoException).code}`)
      continue
    }
    const baseProblems = checkInstallPaths([{ what: 'base', path: dir }])
    if (baseProblems.length) {
      tried.push(listProblems(baseProblems))
      continue
    }
    const base = mkdtempSync(path.join(dir, 'ss-systemd-'))
    const checkout = packageProblems(REPO, base)
    if (checkout.length === 0) return { ok: true, base, pkg: REPO, cli: CLI }
    try {
      const pkg = trustedCopy(path.join(base, 'pkg'))
      // node's lookup also searches each node_modules above the copy (<repo>/node_modules
      // when below .cache/): what install checks, whole
      const problems = packageProblems(pkg, base)
      if (problems.length === 0) {
        console.info(
          `install tests: this checkout is not one install accepts (${listProblems(checkout.slice(0, 2))}${checkout.length > 2 ? '; …' : ''}); they run a copy owned by root: ${pkg}`,
        )
        return { ok: true, base, pkg, cli: cliOf(pkg) }
      }
      tried.push(`a copy in ${base}: ${listProblems(problems)}`)
    } catch (err) {
      tried.push(`a copy in ${base}: ${(err as Error).message}`)
    }
    rmSync(base, { recursive: true, force: true })
  }
  return { ok: false, reason: `no package install accepts: ${tried.join('; ')}` }
}

const cliOf = (pkg: string) => path.join(pkg, 'dist', 'scripts', 'shipshape.js')

/**
 * A copy at `pkg` of what the package loads (package.json, dist/, config/, systemd/,
 * node_modules/; each through symlinks to what it is), owned by root, none of it writable by
 * group or others.
 */
function trustedCopy(pkg: string): string {
  mkdirSync(pkg, { mode: 0o755 })
  for (const e of ['package.json', 'dist', 'config', 'systemd', 'node_modules']) {
    execFileSync('cp', ['-a', '--', realpathSync(path.join(REPO, e)), path.join(pkg, e)])
  }
  // -R does not follow the symlinks it meets (node_modules/.bin); -h changes their owner
  execFileSync('chown', ['-R', '-h', '0:0', '--', pkg])
  execFileSync('chmod', ['-R', 'go-w', '--', pkg])
  return pkg
}

/**
 * What install would say about this node and the package at `root` (run as
 * `<root>/dist/scripts/shipshape.js`), with the files it writes in `base` ([]: it accepts them).
 */
function packageProblems(root: string, base: string) {
  return checkInstallPaths(
    installTargets({
      nodePath: realpathSync(process.execPath),
      packageRoot: realpathSync(root),
      cliPath: realpathSync(cliOf(root)),
      configFile: null,
      stateDir: base,
      backupDir: base,
      environmentFile: path.join(base, 'env'),
      unitDir: base,
    }),
  )
}

const INSTALL = installEnvironment()
afterAll(() => {
  if (INSTALL.ok) rmSync(INSTALL.base, { recursive: true, force: true })
})

interface Verified {
  code: number | null
  stdout: string
  stderr: string
}

function verify(files: string[], debug = false): Promise<Verified> {
  return new Promise((resolve, reject) => {
    const child = spawn('systemd-analyze', ['verify', '--man=no', ...files], {
      env: { PATH: process.env.PATH, ...(debug ? { SYSTEMD_LOG_LEVEL: 'debug' } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 30_000,
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** The `key: value` fields of one unit in verify's debug dump (stdout). */
function dumpOf(
  stdout: string,
  unit: string,
): { fields: Map<string, string[]>; commands: string[] } {
  const from = stdout.indexOf(`-> Unit ${unit}:`)
  expect(from, `dump of ${unit}`).toBeGreaterThanOrEqual(0)
  const next = stdout.indexOf('-> Unit ', from + 1)
  const fields = new Map<string, string[]>()
  const commands: string[] = []
  for (const line of stdout.slice(from, next === -1 ? undefined : next).split('\n')) {
    const m = /^\t+([A-Za-z ]+): (.*)$/.exec(line)
    if (!m) continue
    if (m[1] === 'Command Line') commands.push(m[2]!)
    else fields.set(m[1]!, [...(fields.get(m[1]!) ?? []), m[2]!])
  }
  return { fields, commands }
}

/** Splits the dump's quoted command line: "…" with backslash escapes, or bare words. */
function splitCommandLine(s: string): string[] {
  const words: string[] = []
  let i = 0
  while (i < s.length) {
    if (s[i] === ' ') {
      i++
      continue
    }
    let w = ''
    if (s[i] === '"') {
      i++
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\') i++
        w += s[i++]
      }
      i++
    } else {
      while (i < s.length && s[i] !== ' ') w += s[i++]
    }
    words.push(w)
  }
  return words
}

const config = (yaml: string): Config => parseConfigText(yaml, 'test.yaml', { hostname: 'box1' })

let tmp: string
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ss-systemd-'))
})
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true })
})

async function writeUnits(dir: string, o: RenderOptions): Promise<string[]> {
  await mkdir(dir, { recursive: true })
  const files: string[] = []
  for (const u of renderUnits(o)) {
    const f = path.join(dir, u.name)
    await writeFile(f, u.text)
    files.push(f)
  }
  return files
}

const ourLines = (stderr: string) => stderr.split('\n').filter((l) => /shipshape/.test(l))

describeSystemd('systemd-analyze verify on the rendered units', () => {
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npm run build first`)
  })

  test('the units for this node and the built CLI load cleanly', async () => {
    const files = await writeUnits(path.join(tmp, 'plain'), {
      nodePath: process.execPath,
      cliPath: CLI,
      configPath: null,
      config: config(''),
    })
    const r = await verify(files)
    expect(ourLines(r.stderr), r.stderr).toEqual([])
    expect(r.code, r.stderr).toBe(0)
  })

  test('with a service on update: apply, the report unit (two ExecStart=) loads cleanly', async () => {
    const files = await writeUnits(path.join(tmp, 'update'), {
      nodePath: process.execPath,
      cliPath: CLI,
      configPath: null,
      config: config(
        'services:\n  cal:\n    compose: /opt/cal/docker-compose.yml\n    update: apply\n    health: { url: "http://127.0.0.1:3000/" }\n',
      ),
    })
    const report = await readFile(
      files.find((f) => f.endsWith('shipshape-report.service'))!,
      'utf8',
    )
    expect(report.match(/^ExecStart=/gm)).toHaveLength(2)
    const r = await verify(files)
    expect(ourLines(r.stderr), r.stderr).toEqual([])
    expect(r.code, r.stderr).toBe(0)
  })

  test('odd paths reach systemd as meant (spaces, %, $, quotes, backslashes; /home)', async () => {
    // a real executable at a path that needs every escape: verify fails if it cannot find it
    const binDir = path.join(tmp, 'no de%1$x')
    await mkdir(binDir, { recursive: true })
    const node = path.join(binDir, 'node')
    await symlink(process.execPath, node)
    const c = config(
      [
        'stateDir: "/home/ops/ship state/100%"',
        'backupDir: "/var/backups/b\\\\k\\"up$1"',
        'systemd:',
        '  environmentFile: "/etc/ship shape/a%b.env"',
        '  reportCalendar: "Mon..Fri *-*-* 01:30:00"',
      ].join('\n'),
    )
    const configPath = '/etc/shipshape/a $HOME "b"%.yaml'
    const files = await writeUnits(path.join(tmp, 'odd'), {
      nodePath: node,
      cliPath: CLI,
      configPath,
      config: c,
    })
    const r = await verify(files, true)
    expect(
      r.code,
      r.stderr
        .split('\n')
        .filter((l) => /shipshape|rror/.test(l))
        .join('\n'),
    ).toBe(0)

    for (const name of [
      'shipshape-report.service',
      'shipshape-prune.service',
      'shipshape-schedule.service',
    ]) {
      const { fields, commands } = dumpOf(r.stdout, name)
      expect(fields.get('Environment')).toEqual([`SHIPSHAPE_CONFIG=${configPath}`])
      expect(fields.get('EnvironmentFile')).toEqual(['-/etc/ship shape/a%b.env'])
      expect(fields.get('ReadWritePaths')).toEqual([
        '/home/ops/ship state/100% /var/backups/b\\k"up$1',
      ])
      expect(fields.get('ProtectSystem')).toEqual(['strict'])
      expect(fields.get('ProtectHome')).toEqual(['read-only'])
      expect(fields.get('PrivateTmp')).toEqual(['no']) // node is under /tmp here
      for (const k of ['PrivateDevices', 'RestrictSUIDSGID', 'LockPersonality']) {
        expect(fields.get(k), k).toEqual(['yes'])
      }
      expect(fields.get('SystemCallArchitectures')).toEqual(['native'])
      expect(fields.get('MemoryDenyWriteExecute')).toEqual(['no'])
      expect(fields.get('UMask')).toEqual(['0077'])
      expect(commands).toHaveLength(1)
      // systemd keeps `$$` until exec, where it becomes `$` (systemd.service "Command lines")
      const [exe, ...args] = splitCommandLine(commands[0]!)
      const argv = [exe, ...args.map((a) => a.replace(/\$\$/g, '$'))]
      const job = name.replace(/^shipshape-|\.service$/g, '')
      const want = {
        report: ['--quiet', 'report', '--out', '/home/ops/ship state/100%/reports', '--notify'],
        prune: ['prune', '--json'],
        schedule: ['schedule'],
      }[job]!
      expect(argv).toEqual([node, CLI, ...want])
    }
    const timer = dumpOf(r.stdout, 'shipshape-report.timer').fields
    expect(timer.get('OnCalendar')).toEqual(['Mon..Fri *-*-* 01:30:00'])
    expect(timer.get('Persistent')).toEqual(['yes'])
  })

  test('a broken unit fails verify with a message (this check can fail)', async () => {
    const missing = await writeUnits(path.join(tmp, 'missing-node'), {
      nodePath: path.join(tmp, 'no-such-dir', 'node'),
      cliPath: CLI,
      configPath: null,
      config: config(''),
    })
    const a = await verify(missing)
    expect(a.code).not.toBe(0)
    expect(a.stderr).toMatch(/no-such-dir\/node is not executable/)

    const badCalendar = await writeUnits(path.join(tmp, 'bad-calendar'), {
      nodePath: process.execPath,
      cliPath: CLI,
      configPath: null,
      config: config('systemd:\n  pruneCalendar: "every other blue moon"\n'),
    })
    const b = await verify(badCalendar)
    expect(b.code).not.toBe(0)
    expect(b.stderr).toMatch(/shipshape-prune\.timer.*(calendar|lacks value)/s)
  })

  test('`shipshape systemd print --out` from the built CLI verifies', async () => {
    const dir = path.join(tmp, 'cli-out')
    const r = await runCli(['systemd', 'print', '--out', dir])
    expect(r.code, r.stderr).toBe(0)
    const files = UNIT_NAMES.map((n) => path.join(dir, n))
    const v = await verify(files)
    expect(ourLines(v.stderr), v.stderr).toEqual([])
    expect(v.code, v.stderr).toBe(0)
    // the CLI pointed the units at itself and at this node
    const text = await readFile(files[0]!, 'utf8')
    expect(text).toContain(`ExecStart=${process.execPath} ${CLI} --quiet report --out`)
  })
})

/** `systemd-analyze security --offline=true FILE`: the overall exposure (0.0 best … 10.0). */
function exposure(file: string): Promise<{ score: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'systemd-analyze',
      ['security', '--offline=true', '--no-pager', '--man=no', file],
      {
        env: { PATH: process.env.PATH, SYSTEMD_COLORS: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 30_000,
      },
    )
    let output = ''
    child.stdout.on('data', (d: Buffer) => (output += d.toString()))
    child.stderr.on('data', (d: Buffer) => (output += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => {
      const unit = path.basename(file)
      const m = new RegExp(
        `Overall exposure level for ${unit.replace(/\./g, '\\.')}: (\\d+\\.\\d+) `,
      ).exec(output)
      if (!m) return reject(new Error(`no exposure level for ${unit} (exit ${code}):\n${output}`))
      resolve({ score: Number(m[1]), output })
    })
  })
}

/** The lines systemd-analyze marks ✗, for a failure message. */
const exposed = (output: string) =>
  output
    .split('\n')
    .filter((l) => l.startsWith('✗'))
    .map((l) => l.replace(/\s{2,}/g, '  '))
    .join('\n')

const SERVICES = [
  'shipshape-report.service',
  'shipshape-prune.service',
  'shipshape-schedule.service',
] as const

/** The highest exposure systemd-analyze may give any of the three services. */
const MAX_EXPOSURE = 2.5

describeSystemd('systemd-analyze security on the rendered services', () => {
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npm run build first`)
  })

  const configs: [string, string][] = [
    ['the defaults', ''],
    ['an engine over TCP (prune needs IP)', 'docker:\n  host: tcp://10.0.0.2:2375\n'],
    [
      // PrivateTmp=no, ProtectHome=read-only, CAP_DAC_OVERRIDE in report, kept originals
      'the loosest the config can make them',
      [
        'stateDir: /home/ops/state',
        'docker:',
        '  host: unix:///tmp/docker.sock',
        'report:',
        '  paths: [/home, /tmp]',
        'assets:',
        '  a:',
        '    source: /home/ops/data',
        '    mount: /mnt/r',
        '    dest: /mnt/r/d',
        '',
      ].join('\n'),
    ],
  ]

  test.each(configs)(`every service rates ≤ ${MAX_EXPOSURE} (%s)`, async (what, yaml) => {
    const dir = path.join(tmp, `security-${what.replace(/\W+/g, '-')}`)
    await writeUnits(dir, {
      nodePath: process.execPath,
      cliPath: CLI,
      configPath: null,
      config: config(yaml),
    })
    const scores: Record<string, number> = {}
    for (const name of SERVICES) {
      const { score, output } = await exposure(path.join(dir, name))
      scores[name] = score
      expect(
        score,
        `${name} (${what}): exposure ${score} > ${MAX_EXPOSURE}\n${exposed(output)}`,
      ).toBeLessThanOrEqual(MAX_EXPOSURE)
    }
    console.info(`systemd-analyze security (${what}): ${JSON.stringify(scores)}`)
  })

  test('the check can fail: the same units without their hardening rate above it', async () => {
    const dir = path.join(tmp, 'security-loose')
    const files = await writeUnits(dir, {
      nodePath: process.execPath,
      cliPath: CLI,
      configPath: null,
      config: config(''),
    })
    const file = files.find((f) => f.endsWith('shipshape-report.service'))!
    const loose = (await readFile(file, 'utf8'))
      .split('\n')
      .filter(
        (l) =>
          !/^(CapabilityBoundingSet|SystemCallFilter|RestrictAddressFamilies|PrivateMounts|ProtectClock|ProtectHostname)=/.test(
            l,
          ),
      )
      .join('\n')
    await writeFile(file, loose)
    const { score } = await exposure(file)
    expect(score).toBeGreaterThan(MAX_EXPOSURE)
  })
})

/** setpriv(1) (util-linux) as root: what it takes to run a job's file work as a unit would. */
function capabilityEnvironment(): { ok: true } | { ok: false; reason: string } {
  if (!isRoot) return { ok: false, reason: 'not root: a bounding set narrows root’s capabilities' }
  const r = spawnSync('setpriv', ['--version'], { encoding: 'utf8' })
  if (r.error || r.status !== 0) return { ok: false, reason: 'setpriv (util-linux) unusable' }
  return { ok: true }
}

/**
 * Runs argv as the unit would, as far as capabilities go: root with the bounding set
 * CapabilityBoundingSet= names (and nothing inherited or ambient, no new privileges). The
 * system call filter, the namespaces and the rest need systemd itself: not here.
 */
function asUnit(caps: string[], argv: string[]) {
  const bset = ['-all', ...caps.map((c) => '+' + c.replace(/^CAP_/, '').toLowerCase())].join(',')
  return spawnSync(
    'setpriv',
    [
      '--bounding-set',
      bset,
      '--inh-caps',
      '-all',
      '--ambient-caps',
      '-all',
      '--no-new-privs',
      '--',
      ...argv,
    ],
    { encoding: 'utf8', timeout: 30_000 },
  )
}

describeOrSkip(
  'each unit’s capabilities are enough for its job (setpriv)',
  capabilityEnvironment(),
  () => {
    const units = renderUnits({
      nodePath: process.execPath,
      cliPath: CLI,
      configPath: null,
      config: config(''),
    })
    /** The unit's CapabilityBoundingSet= (null: none, every capability: the test says so). */
    const capsOf = (name: string) =>
      /^CapabilityBoundingSet=(.*)$/m
        .exec(units.find((u) => u.name === name)!.text)?.[1]
        ?.split(' ') ?? null
    const report = capsOf('shipshape-report.service') ?? []
    const prune = capsOf('shipshape-prune.service') ?? []
    const schedule = capsOf('shipshape-schedule.service') ?? []

    test('each service names its capabilities', () => {
      for (const name of SERVICES) expect(capsOf(name), name).not.toBeNull()
    })

    /** Another user's tree, as report.paths and kept originals are: 0700, 0500, a sticky tmp/. */
    async function othersTree(): Promise<string> {
      const top = await mkdtemp(path.join(tmp, 'caps-'))
      const data = path.join(top, 'data')
      await mkdir(path.join(data, 'ro'), { recursive: true })
      await mkdir(path.join(data, 'tmp'))
      await writeFile(path.join(data, 'a.txt'), 'a')
      await writeFile(path.join(data, 'ro', 'f'), 'f')
      await writeFile(path.join(data, 'tmp', 'g'), 'g')
      for (const [p, uid, mode] of [
        ['tmp/g', 1001, 0o600],
        ['tmp', 1000, 0o1777],
        ['ro/f', 1000, 0o400],
        ['ro', 1000, 0o500],
        ['a.txt', 1000, 0o600],
        ['', 1000, 0o700],
      ] as const) {
        await chown(path.join(data, p), uid, uid)
        await chmod(path.join(data, p), mode)
      }
      return data
    }

    test('schedule keeps exactly what report and prune keep', () => {
      expect([...new Set([...report, ...prune])].sort()).toEqual([...schedule].sort())
    })

    test('report: du -x reads another user’s 0700 tree; without CAP_DAC_READ_SEARCH it cannot', async () => {
      const data = await othersTree()
      const du = ['du', '-x', '-a', '-0', '-B1', data]
      const ok = asUnit(report, du)
      expect(ok.status, ok.stderr).toBe(0)
      expect(ok.stdout).toContain(path.join(data, 'ro', 'f'))
      const without = asUnit([], du)
      expect(without.status).not.toBe(0)
      expect(without.stderr).toMatch(/Permission denied/)
    })

    test('report: node still sees a lock holder with all of root’s capabilities (kill 0, /proc/<pid>/stat, boot_id)', () => {
      const script = [
        "const fs = require('node:fs')",
        `process.kill(${process.pid}, 0)`,
        `const stat = fs.readFileSync('/proc/${process.pid}/stat', 'utf8')`,
        "const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()",
        "console.log(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19], boot.length)",
      ].join('\n')
      for (const caps of [report, prune]) {
        const r = asUnit(caps, [process.execPath, '-e', script])
        expect(r.status, r.stderr).toBe(0)
        expect(r.stdout.trim()).toMatch(/^\d+ 36$/)
      }
    })

    test('prune: rm -r of another user’s kept original (0500 dirs, a sticky tmp/ of a third user)', async () => {
      const rmTree = (dir: string) => [
        process.execPath,
        '-e',
        `require('node:fs').rmSync(${JSON.stringify(dir)}, { recursive: true, force: true })`,
      ]
      const data = await othersTree()
      const r = asUnit(prune, rmTree(data))
      expect(r.status, r.stderr).toBe(0)
      expect(existsSync(data)).toBe(false)
      // each capability is needed: without CAP_FOWNER the sticky tmp/ stops it, without
      // CAP_DAC_OVERRIDE the first 0700 directory does
      for (const drop of ['CAP_FOWNER', 'CAP_DAC_OVERRIDE']) {
        const again = await othersTree()
        const fails = asUnit(
          prune.filter((c) => c !== drop),
          rmTree(again),
        )
        expect(fails.status, `${drop} dropped`).not.toBe(0)
        // EPERM on the sticky tmp/g shows up as ENOTDIR: node's rimraf then tries it as a directory
        expect(fails.stderr, drop).toMatch(/EPERM|EACCES|ENOTDIR/)
        expect(existsSync(again)).toBe(true)
      }
    })
  },
  'run the tests as root; setpriv is in util-linux',
)

describe('shipshape systemd print (the built CLI)', { timeout: 30_000 }, () => {
  test('print: the five units on stdout, each after its # ===== header', async () => {
    const r = await runCli(['systemd', 'print'])
    expect(r.code, r.stderr).toBe(0)
    const headers = [...r.stdout.matchAll(/^# ===== (.+)$/gm)].map((m) => m[1])
    expect(headers).toEqual([...UNIT_NAMES])
    expect(r.stdout).toContain(`ExecStart=${process.execPath} ${CLI} prune --json`)
    // nothing to warn about where install would accept this checkout
    if (existsSync(CLI) && packageProblems(REPO, '/var/lib/shipshape').length === 0) {
      expect(r.stderr).toBe('')
    }
  })

  test('--docker-host is refused: the units would not carry it', async () => {
    const r = await runCli(['--docker-host', 'unix:///x.sock', 'systemd', 'print'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/docker\.host/)
  })
})

describeOrSkip(
  'shipshape systemd install (the built CLI, as root)',
  INSTALL,
  () => {
    /** The package install accepts (this checkout, or its trusted copy: installEnvironment). */
    const pkg = INSTALL.ok ? INSTALL.pkg : REPO
    /** Its built CLI, as runCli runs the checkout's. */
    const runPkg = (args: string[]) => runCliAt(INSTALL.ok ? INSTALL.cli : CLI, args)

    let n = 0
    /**
     * A config in its own temp dir in the trusted base: unitDir, stateDir, backupDir,
     * environmentFile all inside. Modes given: a umask letting the group write would make
     * install refuse them.
     */
    async function hostDir() {
      const d = path.join(INSTALL.ok ? INSTALL.base : tmp, `host-${++n}`)
      await mkdir(d, { recursive: true, mode: 0o755 })
      const cfg = path.join(d, 'host.yaml')
      await writeFile(
        cfg,
        [
          `stateDir: ${JSON.stringify(path.join(d, 'state dir'))}`,
          `backupDir: ${JSON.stringify(path.join(d, 'backups'))}`,
          'systemd:',
          `  unitDir: ${JSON.stringify(path.join(d, 'units'))}`,
          `  environmentFile: ${JSON.stringify(path.join(d, 'shipshape.env'))}`,
          '',
        ].join('\n'),
        { mode: 0o644 },
      )
      return { d, cfg, units: path.join(d, 'units') }
    }

    test('print --json: the versioned shape', async () => {
      const { cfg } = await hostDir()
      const r = await runPkg(['--config', cfg, '--json', 'systemd', 'print'])
      expect(r.code, r.stderr).toBe(0)
      const j = JSON.parse(r.stdout)
      expect(j).toMatchObject({ schema: 'shipshape.systemd/1', action: 'print' })
      expect(j.units.map((u: { name: string }) => u.name)).toEqual([...UNIT_NAMES])
      expect(j.units[0]).toMatchObject({ path: null, changed: false })
      // a config given with --config is pinned in the units
      expect(j.units[0].text).toContain(`Environment=SHIPSHAPE_CONFIG=${cfg}`)
    })

    test('install: writes the units and the directories, then is idempotent', async () => {
      const { d, cfg, units } = await hostDir()
      const r = await runPkg(['--config', cfg, '--json', 'systemd', 'install', '--yes'])
      expect(r.code, r.stderr).toBe(0)
      expect((await readdir(units)).sort()).toEqual([...UNIT_NAMES].sort())
      const j = JSON.parse(r.stdout)
      expect(j).toMatchObject({
        schema: 'shipshape.systemd/1',
        action: 'install',
        outcome: 'installed',
        daemonReload: false,
      })
      expect(j.units).toEqual(
        UNIT_NAMES.map((name) => ({ name, path: path.join(units, name), changed: true })),
      )
      expect((await stat(path.join(d, 'state dir'))).mode & 0o777).toBe(0o700)
      expect((await stat(path.join(units, UNIT_NAMES[0]))).mode & 0o777).toBe(0o644)
      // a temp dir is not where systemd loads units from: no daemon-reload, and it says so
      expect(r.stderr).toMatch(/not a directory systemd loads units from/)
      expect(r.stderr).toContain(
        'systemctl enable --now shipshape-report.timer shipshape-prune.timer',
      )

      const again = await runPkg(['--config', cfg, '--json', 'systemd', 'install', '--yes'])
      expect(again.code, again.stderr).toBe(0)
      const j2 = JSON.parse(again.stdout)
      expect(j2.outcome).toBe('unchanged')
      expect(j2.units.every((u: { changed: boolean }) => !u.changed)).toBe(true)
    })

    test('install refuses (exit 4) a unit file with other content unless --force', async () => {
      const { cfg, units } = await hostDir()
      expect((await runPkg(['--config', cfg, 'systemd', 'install', '--yes'])).code).toBe(0)
      const timer = path.join(units, 'shipshape-prune.timer')
      const rendered = await readFile(timer, 'utf8')
      await writeFile(timer, rendered.replace(/^OnCalendar=.*$/m, 'OnCalendar=daily'))

      const refused = await runPkg(['--config', cfg, 'systemd', 'install', '--yes'])
      expect(refused.code).toBe(4)
      expect(refused.stderr).toContain(timer)
      expect(refused.stderr).toMatch(/--force/)
      expect(await readFile(timer, 'utf8')).toMatch(/^OnCalendar=daily$/m)

      const forced = await runPkg(['--config', cfg, 'systemd', 'install', '--yes', '--force'])
      expect(forced.code, forced.stderr).toBe(0)
      expect(await readFile(timer, 'utf8')).toBe(rendered)
    })

    test('install needs --yes without a terminal (exit 4); --dry-run changes nothing', async () => {
      const { d, cfg, units } = await hostDir()
      const dry = await runPkg(['--config', cfg, 'systemd', 'install', '--dry-run'])
      expect(dry.code, dry.stderr).toBe(0)
      expect(dry.stderr).toMatch(/create\s+shipshape-report\.service/)
      expect(existsSync(units)).toBe(false)
      expect(existsSync(path.join(d, 'state dir'))).toBe(false)

      const noYes = await runPkg(['--config', cfg, 'systemd', 'install'])
      expect(noYes.code).toBe(4)
      expect(noYes.stderr).toMatch(/--yes/)
      expect(existsSync(units)).toBe(false)
    })

    test('install warns when the environment file is readable by others', async () => {
      const { d, cfg } = await hostDir()
      const env = path.join(d, 'shipshape.env')
      await writeFile(env, 'SHIPSHAPE_WEBHOOK_URL=https://example.invalid/x\n')
      await chmod(env, 0o644)
      const r = await runPkg(['--config', cfg, 'systemd', 'install', '--yes'])
      expect(r.code, r.stderr).toBe(0)
      expect(r.stderr).toMatch(/warning: .*shipshape\.env holds secrets .*mode 644/)
    })

    test('install refuses (exit 4) a config below a directory others can write; print warns', async () => {
      const { d, units } = await hostDir()
      const open = path.join(d, 'open dir')
      await mkdir(open)
      await chmod(open, 0o777)
      const cfg = path.join(open, 'host.yaml')
      await cp(path.join(d, 'host.yaml'), cfg)
      for (const args of [['--yes'], ['--dry-run']]) {
        const r = await runPkg(['--config', cfg, 'systemd', 'install', ...args])
        expect(r.code, r.stderr).toBe(4)
        expect(r.stderr).toContain(
          `${open}: writable by group and others (mode 0777) (the config file); fix: chmod go-w ${shellWord(open)}`,
        )
        expect(r.stderr).toMatch(/fix: make every path named owned by root/)
      }
      expect(existsSync(units)).toBe(false)
      expect(existsSync(path.join(d, 'state dir'))).toBe(false)

      // print only shows: the units, and a warning per path
      const p = await runPkg(['--config', cfg, 'systemd', 'print'])
      expect(p.code, p.stderr).toBe(0)
      expect(p.stdout).toContain('# ===== shipshape-report.service')
      expect(p.stderr).toMatch(/^warning: `systemd install` would refuse these units/m)
      expect(p.stderr).toContain(`warning:   ${open}: writable by group and others (mode 0777)`)
    })

    test('install refuses (exit 4) a directory owned by another user above the config', async () => {
      const { d, units } = await hostDir()
      const theirs = path.join(d, 'theirs')
      await mkdir(theirs, { mode: 0o755 })
      await chown(theirs, 1000, 1000)
      const cfg = path.join(theirs, 'host.yaml')
      await cp(path.join(d, 'host.yaml'), cfg)
      const r = await runPkg(['--config', cfg, 'systemd', 'install', '--yes'])
      expect(r.code, r.stderr).toBe(4)
      expect(r.stderr).toContain(
        `${theirs}: owned by uid 1000, not root (the config file); fix: chown root ${shellWord(theirs)}`,
      )
      expect(existsSync(units)).toBe(false)
    })

    /**
     * A copy of the package install accepts (dist/lib, dist/scripts, config/, systemd/;
     * node_modules linked to its own) in `dir`: only what is above `dir` makes it refused.
     */
    async function copyPackage(dir: string): Promise<string> {
      const copy = path.join(dir, 'shipshape')
      await mkdir(path.join(copy, 'dist'), { recursive: true, mode: 0o755 })
      for (const e of ['package.json', 'config', 'systemd', 'dist/lib', 'dist/scripts']) {
        await cp(path.join(pkg, e), path.join(copy, e), { recursive: true })
      }
      await symlink(path.join(pkg, 'node_modules'), path.join(copy, 'node_modules'))
      return cliOf(copy)
    }

    test('install refuses (exit 4) a CLI whose package sits below a directory others can write', async () => {
      const { d, cfg, units } = await hostDir()
      const open = path.join(d, 'apps')
      await mkdir(open)
      await chmod(open, 0o777)
      const cli = await copyPackage(open)
      const r = await runCliAt(cli, ['--config', cfg, 'systemd', 'install', '--yes'])
      expect(r.code, r.stderr).toBe(4)
      expect(r.stderr).toContain(
        `${open}: writable by group and others (mode 0777) (the shipshape package`,
      )
      expect(r.stderr).toContain(`fix: chmod go-w ${shellWord(open)}`)
      expect(existsSync(units)).toBe(false)

      // the same package below /tmp: refused for /tmp itself, sticky or not
      if ((lstatSync('/tmp').mode & 0o7777) !== 0o1777) return // no usual /tmp here
      const inTmp = await mkdtemp('/tmp/ss-pkg-')
      try {
        const tmpCli = await copyPackage(inTmp)
        const t = await runCliAt(tmpCli, ['--config', cfg, 'systemd', 'install', '--yes'])
        expect(t.code, t.stderr).toBe(4)
        expect(t.stderr).toMatch(
          /^ {2}\/tmp: writable by everyone \(mode 1777; the sticky bit does not help\) \(.*the shipshape package/m,
        )
        expect(existsSync(units)).toBe(false)
      } finally {
        await rm(inTmp, { recursive: true, force: true })
      }
    })

    test('install warns when the environment file points DOCKER_HOST over the network', async () => {
      const { d, cfg } = await hostDir()
      const env = path.join(d, 'shipshape.env')
      await writeFile(env, 'DOCKER_HOST=tcp://10.9.9.9:2375\n', { mode: 0o600 })
      const r = await runPkg(['--config', cfg, 'systemd', 'install', '--yes'])
      expect(r.code, r.stderr).toBe(0)
      expect(r.stderr).toMatch(
        /warning: .*shipshape\.env sets DOCKER_HOST .*the prune unit has no IP network/,
      )
      expect(r.stderr).not.toContain('10.9.9.9')
    })
  },
  "run the tests as root, with a node only root can write (e.g. /usr/bin/node) and /run or the repo's .cache/ below directories only root can write",
)

describe('install with systemd running (a fake manager)', () => {
  test('daemon-reload (argv) only when units changed in a directory systemd loads from', async () => {
    const d = await mkdtemp(path.join(tmp, 'fake-'))
    const unitDir = path.join(d, 'units')
    const calls: string[][] = []
    const systemd: SystemdPort = {
      running: async () => true,
      unitPath: [unitDir],
      systemctl: async (args) => {
        calls.push(args)
      },
    }
    const c = config(
      `stateDir: ${JSON.stringify(path.join(d, 's'))}\nbackupDir: ${JSON.stringify(path.join(d, 'b'))}\nsystemd:\n  unitDir: ${JSON.stringify(unitDir)}\n  environmentFile: ${JSON.stringify(path.join(d, 'env'))}\n`,
    )
    const ctx = {
      config: c,
      nodePath: process.execPath,
      cliPath: CLI,
      configPath: null,
      packageRoot: REPO,
      configFile: null,
      out: createOutput({ quiet: true }),
      systemd,
      // the paths are under /tmp here: what root may run from is tested above, not here
      checkPaths: () => [],
    }
    const r = await installUnits(ctx, { yes: true })
    expect(r).toMatchObject({ outcome: 'installed', daemonReload: true })
    expect(calls).toEqual([['daemon-reload']])
    const again = await installUnits(ctx, { yes: true })
    expect(again).toMatchObject({ outcome: 'unchanged', daemonReload: false })
    expect(calls).toHaveLength(1)
    // a "no" at the prompt changes nothing, exit 0
    await writeFile(path.join(unitDir, 'shipshape-report.timer'), 'x\n')
    const cancelled = await installUnits({ ...ctx, confirm: async () => false }, { force: true })
    expect(cancelled.outcome).toBe('cancelled')
    expect(await readFile(path.join(unitDir, 'shipshape-report.timer'), 'utf8')).toBe('x\n')
    expect(calls).toHaveLength(1)
  })
})
