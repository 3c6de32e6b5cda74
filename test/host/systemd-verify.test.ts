/**
 * The rendered units against systemd's own parser (`systemd-analyze verify`, Debian package
 * `systemd`), and `shipshape systemd print|install` as the built CLI (test/cli/run.ts; `npm test`
 * builds first). verify needs no running systemd: it loads the files as the manager would,
 * checks that each ExecStart= binary exists and is executable, and exits non-zero on an
 * unloadable unit. With SYSTEMD_LOG_LEVEL=debug it also dumps each unit as parsed, which shows
 * whether the escaping of odd paths survived.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import {
  chmod,
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
import { CLI, runCli } from '../cli/run.js'

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
  if (process.env.SHIPSHAPE_REQUIRE_SYSTEMD === '1') {
    describe(name, () => {
      test('systemd-analyze is usable (SHIPSHAPE_REQUIRE_SYSTEMD=1)', () => {
        throw new Error(`systemd-analyze unusable: ${u.reason} (apt-get install systemd)`)
      })
    })
    return
  }
  console.warn(`\n!!! SKIPPED "${name}": ${u.reason} (Debian package systemd)\n`)
  describe.skip(`${name} [SKIPPED: systemd-analyze unusable: ${u.reason}]`, fn)
}

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

describe('shipshape systemd (the built CLI)', { timeout: 30_000 }, () => {
  let n = 0
  /** A config in its own temp dir: unitDir, stateDir, backupDir, environmentFile all inside. */
  async function hostDir() {
    const d = path.join(tmp, `host-${++n}`)
    await mkdir(d, { recursive: true })
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
    )
    return { d, cfg, units: path.join(d, 'units') }
  }

  test('print: the five units on stdout, each after its # ===== header', async () => {
    const r = await runCli(['systemd', 'print'])
    expect(r.code, r.stderr).toBe(0)
    const headers = [...r.stdout.matchAll(/^# ===== (.+)$/gm)].map((m) => m[1])
    expect(headers).toEqual([...UNIT_NAMES])
    expect(r.stdout).toContain(`ExecStart=${process.execPath} ${CLI} prune --json`)
    expect(r.stderr).toBe('')
  })

  test('print --json: the versioned shape', async () => {
    const { cfg } = await hostDir()
    const r = await runCli(['--config', cfg, '--json', 'systemd', 'print'])
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
    const r = await runCli(['--config', cfg, '--json', 'systemd', 'install', '--yes'])
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

    const again = await runCli(['--config', cfg, '--json', 'systemd', 'install', '--yes'])
    expect(again.code, again.stderr).toBe(0)
    const j2 = JSON.parse(again.stdout)
    expect(j2.outcome).toBe('unchanged')
    expect(j2.units.every((u: { changed: boolean }) => !u.changed)).toBe(true)
  })

  test('install refuses (exit 4) a unit file with other content unless --force', async () => {
    const { cfg, units } = await hostDir()
    expect((await runCli(['--config', cfg, 'systemd', 'install', '--yes'])).code).toBe(0)
    const timer = path.join(units, 'shipshape-prune.timer')
    const rendered = await readFile(timer, 'utf8')
    await writeFile(timer, rendered.replace(/^OnCalendar=.*$/m, 'OnCalendar=daily'))

    const refused = await runCli(['--config', cfg, 'systemd', 'install', '--yes'])
    expect(refused.code).toBe(4)
    expect(refused.stderr).toContain(timer)
    expect(refused.stderr).toMatch(/--force/)
    expect(await readFile(timer, 'utf8')).toMatch(/^OnCalendar=daily$/m)

    const forced = await runCli(['--config', cfg, 'systemd', 'install', '--yes', '--force'])
    expect(forced.code, forced.stderr).toBe(0)
    expect(await readFile(timer, 'utf8')).toBe(rendered)
  })

  test('install needs --yes without a terminal (exit 4); --dry-run changes nothing', async () => {
    const { d, cfg, units } = await hostDir()
    const dry = await runCli(['--config', cfg, 'systemd', 'install', '--dry-run'])
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stderr).toMatch(/create\s+shipshape-report\.service/)
    expect(existsSync(units)).toBe(false)
    expect(existsSync(path.join(d, 'state dir'))).toBe(false)

    const noYes = await runCli(['--config', cfg, 'systemd', 'install'])
    expect(noYes.code).toBe(4)
    expect(noYes.stderr).toMatch(/--yes/)
    expect(existsSync(units)).toBe(false)
  })

  test('install warns when the environment file is readable by others', async () => {
    const { d, cfg } = await hostDir()
    const env = path.join(d, 'shipshape.env')
    await writeFile(env, 'SHIPSHAPE_WEBHOOK_URL=https://example.invalid/x\n')
    await chmod(env, 0o644)
    const r = await runCli(['--config', cfg, 'systemd', 'install', '--yes'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/warning: .*shipshape\.env holds secrets .*mode 644/)
  })

  test('--docker-host is refused: the units would not carry it', async () => {
    const r = await runCli(['--docker-host', 'unix:///x.sock', 'systemd', 'print'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/docker\.host/)
  })
})

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
      out: createOutput({ quiet: true }),
      systemd,
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
