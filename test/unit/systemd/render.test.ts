/**
 * lib/systemd/render.ts and the pure half of install.ts: the units from the package's templates,
 * escaping for unit files, the sandbox decisions, the install plan. systemd itself checks the
 * rendered units in test/host/systemd-verify.test.ts.
 */
import { jobArgv } from '../../../lib/config/jobs.js'
import { describe, expect, it } from 'vitest'
import { parseConfigText, type Config } from '../../../lib/config/index.js'
import { ExitCode, RefusedError, UsageError } from '../../../lib/errors.js'
import { planUnitFiles, refuseReplacing } from '../../../lib/systemd/install.js'
import {
  execStart,
  fillTemplate,
  jobSandbox,
  planSandbox,
  quoteExecArg,
  quoteWord,
  rawValue,
  renderUnits,
  UNIT_NAMES,
  type RenderOptions,
} from '../../../lib/systemd/render.js'

const NODE = '/usr/bin/node'
const CLI = '/opt/shipshape/dist/scripts/shipshape.js'

const config = (yaml = ''): Config => parseConfigText(yaml, 'test.yaml', { hostname: 'box1' })

const opts = (o: Partial<RenderOptions> = {}): RenderOptions => ({
  nodePath: NODE,
  cliPath: CLI,
  configPath: null,
  config: config(),
  ...o,
})

function render(o: Partial<RenderOptions> = {}) {
  const units = renderUnits(opts(o))
  return Object.fromEntries(units.map((u) => [u.name, u.text])) as Record<
    (typeof UNIT_NAMES)[number],
    string
  >
}

/** The values of `Key=` lines (comments ignored), in order. */
const values = (text: string, key: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1))
const value = (text: string, key: string) => {
  const v = values(text, key)
  expect(v, `${key}= once`).toHaveLength(1)
  return v[0]!
}

/** The [Service] lines from the sandbox marker on. */
const sandbox = (text: string) => {
  const from = text.indexOf('# --- Sandbox')
  const end = text.indexOf('\n[', from)
  return text.slice(from, end === -1 ? undefined : end)
}

const SERVICES = [
  'shipshape-report.service',
  'shipshape-prune.service',
  'shipshape-schedule.service',
] as const

describe('renderUnits', () => {
  it('renders the five units, every placeholder filled, each ending in a newline', () => {
    const units = renderUnits({ nodePath: NODE, cliPath: CLI, configPath: null, config: config() })
    expect(units.map((u) => u.name)).toEqual([
      'shipshape-report.service',
      'shipshape-report.timer',
      'shipshape-prune.service',
      'shipshape-prune.timer',
      'shipshape-schedule.service',
    ])
    for (const u of units) {
      expect(u.text).not.toMatch(/@[A-Z_]+@/)
      expect(u.text.endsWith('\n')).toBe(true)
      expect(u.text).toMatch(/^# Rendered by `shipshape systemd`/)
    }
  })

  it('ExecStart: node and the CLI by absolute path, the exact argv, never a shell', () => {
    const u = render()
    expect(jobArgv('report', { nodePath: NODE, cliPath: CLI, config: config() })).toEqual([
      NODE,
      CLI,
      '--quiet',
      'report',
      '--out',
      '/var/lib/shipshape/reports',
      '--notify',
    ])
    expect(value(u['shipshape-report.service'], 'ExecStart')).toBe(
      `${NODE} ${CLI} --quiet report --out /var/lib/shipshape/reports --notify`,
    )
    expect(value(u['shipshape-prune.service'], 'ExecStart')).toBe(`${NODE} ${CLI} prune --json`)
    expect(value(u['shipshape-schedule.service'], 'ExecStart')).toBe(`${NODE} ${CLI} schedule`)
    for (const s of SERVICES) expect(u[s]).not.toMatch(/\/bin\/(ba)?sh|sh -c/)
  })

  it('report --out follows stateDir', () => {
    const c = config('stateDir: /srv/shipshape\n')
    expect(jobArgv('report', { nodePath: NODE, cliPath: CLI, config: c }).at(-2)).toBe(
      '/srv/shipshape/reports',
    )
  })

  it('report.metricsFile: the report job writes it, and may write into its directory', () => {
    const c = config('report:\n  metricsFile: /var/lib/node-exporter/shipshape.prom\n')
    expect(jobArgv('report', { nodePath: NODE, cliPath: CLI, config: c }).slice(-2)).toEqual([
      '--metrics',
      '/var/lib/node-exporter/shipshape.prom',
    ])
    const u = render({ config: c })
    expect(values(u['shipshape-report.service'], 'ReadWritePaths').join(' ')).toContain(
      '-/var/lib/node-exporter',
    )
    expect(values(u['shipshape-prune.service'], 'ReadWritePaths').join(' ')).not.toContain(
      'node-exporter',
    )
  })

  it('services: types, restart, timeouts, syslog identifiers, the environment file', () => {
    const u = render()
    expect(value(u['shipshape-report.service'], 'Type')).toBe('oneshot')
    // schedule.timeout (default 2h) per run; a timed-out unit's whole cgroup is killed
    expect(value(u['shipshape-report.service'], 'TimeoutStartSec')).toBe('2h')
    expect(value(u['shipshape-prune.service'], 'Type')).toBe('oneshot')
    expect(value(u['shipshape-prune.service'], 'TimeoutStartSec')).toBe('2h')
    expect(value(u['shipshape-schedule.service'], 'Type')).toBe('simple')
    expect(value(u['shipshape-schedule.service'], 'Restart')).toBe('on-failure')
    expect(values(u['shipshape-schedule.service'], 'TimeoutStartSec')).toEqual([])
    for (const s of SERVICES) expect(values(u[s], 'KillMode')).toEqual(['control-group'])
    for (const s of SERVICES) {
      expect(value(u[s], 'SyslogIdentifier')).toBe(s.replace('.service', ''))
      expect(value(u[s], 'EnvironmentFile')).toBe('-/etc/shipshape/shipshape.env')
      // no config given: the units find it as the CLI does
      expect(values(u[s], 'Environment')).toEqual([])
    }
    // the alternative to the timers says so, and enforces it
    expect(u['shipshape-schedule.service']).toMatch(/OR the two timers, not both/)
    expect(value(u['shipshape-schedule.service'], 'Conflicts')).toBe(
      'shipshape-report.timer shipshape-prune.timer',
    )
  })

  it('timers: calendars from the config, persistent, randomized, pointing at their service', () => {
    const u = render({
      config: config(
        'systemd:\n  reportCalendar: "*-*-* 04:15:00"\n  pruneCalendar: "Sat *-*-* 05:00:00"\n',
      ),
    })
    const r = u['shipshape-report.timer']
    const p = u['shipshape-prune.timer']
    expect(value(r, 'OnCalendar')).toBe('*-*-* 04:15:00')
    expect(value(p, 'OnCalendar')).toBe('Sat *-*-* 05:00:00')
    expect(value(r, 'Persistent')).toBe('true')
    expect(value(p, 'Persistent')).toBe('true')
    expect(value(r, 'RandomizedDelaySec')).toBe('15min')
    expect(value(p, 'RandomizedDelaySec')).toBe('1h')
    expect(values(r, 'AccuracySec')).toHaveLength(1)
    expect(value(r, 'Unit')).toBe('shipshape-report.service')
    expect(value(p, 'Unit')).toBe('shipshape-prune.service')
    expect(value(r, 'WantedBy')).toBe('timers.target')
    // the defaults
    const d = render()
    expect(value(d['shipshape-report.timer'], 'OnCalendar')).toBe('*-*-* 02:00:00')
    expect(value(d['shipshape-prune.timer'], 'OnCalendar')).toBe('Sun *-*-* 03:30:00')
  })

  it('the sandbox: the same settings in the three services, every setting asked for', () => {
    const u = render()
    const block = sandbox(u['shipshape-report.service'])
    expect(block.length).toBeGreaterThan(100)
    // what differs by job is the values of these keys and the comment lines saying why
    const PER_JOB =
      /^(CapabilityBoundingSet|PrivateNetwork|RestrictAddressFamilies|IPAddressDeny|ReadWritePaths)=|^# (CAP_|prune |the --notify|the report job)/
    const common = (t: string) =>
      sandbox(t)
        .split('\n')
        .filter((l) => !PER_JOB.test(l))
        .join('\n')
    expect(common(u['shipshape-prune.service'])).toBe(common(u['shipshape-report.service']))
    expect(common(u['shipshape-schedule.service'])).toBe(common(u['shipshape-report.service']))
    const want: Record<string, string> = {
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ReadWritePaths: '/var/lib/shipshape /var/backups/shipshape',
      PrivateTmp: 'yes',
      ProtectHome: 'yes',
      PrivateDevices: 'yes',
      DevicePolicy: 'closed',
      PrivateMounts: 'yes',
      ProtectClock: 'yes',
      ProtectHostname: 'yes',
      ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes',
      ProtectKernelLogs: 'yes',
      ProtectControlGroups: 'yes',
      RestrictNamespaces: 'yes',
      RestrictSUIDSGID: 'yes',
      LockPersonality: 'yes',
      RestrictRealtime: 'yes',
      KeyringMode: 'private',
      UMask: '0077',
      AmbientCapabilities: '',
      SystemCallArchitectures: 'native',
      SystemCallErrorNumber: 'EPERM',
    }
    for (const s of SERVICES) {
      for (const [k, v] of Object.entries(want))
        expect(value(sandbox(u[s]), k), `${s} ${k}`).toBe(v)
      // the allow list, then the groups taken out of it (a later ~ line subtracts)
      expect(values(u[s], 'SystemCallFilter'), s).toEqual([
        '@system-service',
        '~@privileged @resources',
      ])
    }
    for (const name of UNIT_NAMES) {
      // V8's JIT; /proc/<pid> of lock holders and boot_id (lib/host/lock.ts)
      expect(u[name]).not.toMatch(/^\s*(MemoryDenyWriteExecute|ProtectProc|ProcSubset)\s*=/m)
      expect(u[name]).not.toMatch(/^\s*(User|DynamicUser|PrivateUsers)\s*=/m)
    }
    // and the reasons are written down where the next person looks
    expect(block).toMatch(/No MemoryDenyWriteExecute=: V8/)
    expect(block).toMatch(/No ProtectProc=invisible .*\n.*ptrace check hides \/proc\/<pid>/)
    expect(block).toMatch(/No ProcSubset=pid: it hides \/proc\/sys\/kernel\/random\/boot_id/)
    expect(block).toMatch(/connect\(2\) on a unix\s+#?\s*socket needs write \*permission\*/)
    expect(block).toMatch(/No FUSE needed/)
  })

  it('capabilities: each job keeps only what it needs, with the reason next to it', () => {
    const u = render()
    const caps = (s: (typeof SERVICES)[number]) => value(u[s], 'CapabilityBoundingSet')
    // report: du over report.paths of any owner; writes only in stateDir (root's)
    expect(caps('shipshape-report.service')).toBe('CAP_DAC_READ_SEARCH')
    // prune: rm -r of other users' kept originals, sticky directories among them
    expect(caps('shipshape-prune.service')).toBe('CAP_DAC_OVERRIDE CAP_FOWNER')
    // schedule runs both jobs as its children
    expect(caps('shipshape-schedule.service')).toBe(
      'CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER',
    )
    expect(u['shipshape-report.service']).toMatch(
      /^# CAP_DAC_READ_SEARCH: du -x reads report\.paths/m,
    )
    expect(u['shipshape-prune.service']).toMatch(/^# CAP_FOWNER: unlinking another user's file/m)
    expect(jobSandbox('report', { config: config() }, planSandbox(opts())).capabilities).toEqual([
      'CAP_DAC_READ_SEARCH',
    ])
    // never more than these three, whatever the config
    for (const yaml of [
      '',
      'docker:\n  host: unix:///run/user/1000/docker.sock\n',
      'docker:\n  host: tcp://10.0.0.2:2375\n',
    ]) {
      for (const s of SERVICES) {
        for (const c of value(render({ config: config(yaml) })[s], 'CapabilityBoundingSet').split(
          ' ',
        )) {
          expect(
            ['CAP_DAC_READ_SEARCH', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER'],
            `${s} ${yaml}`,
          ).toContain(c)
        }
      }
    }
  })

  it('an engine socket root may not own (rootless): the report may connect to it (CAP_DAC_OVERRIDE)', () => {
    const u = render({ config: config('docker:\n  host: unix:///run/user/1000/docker.sock\n') })
    expect(value(u['shipshape-report.service'], 'CapabilityBoundingSet')).toBe(
      'CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH',
    )
    expect(u['shipshape-report.service']).toMatch(
      /^# CAP_DAC_OVERRIDE: connect\(2\) to \/run\/user\/1000\/docker\.sock \(docker\.host\)/m,
    )
    // the default sockets are root's own
    for (const host of ['unix:///var/run/docker.sock', '/run/docker.sock']) {
      const d = render({ config: config(`docker:\n  host: ${host}\n`) })
      expect(value(d['shipshape-report.service'], 'CapabilityBoundingSet')).toBe(
        'CAP_DAC_READ_SEARCH',
      )
    }
  })

  it('network: report and schedule post the webhook (IP); prune with a unix engine gets none', () => {
    const u = render()
    for (const s of ['shipshape-report.service', 'shipshape-schedule.service'] as const) {
      expect(value(u[s], 'PrivateNetwork'), s).toBe('no')
      expect(value(u[s], 'RestrictAddressFamilies'), s).toBe('AF_UNIX AF_INET AF_INET6')
      expect(values(u[s], 'IPAddressDeny'), s).toEqual([])
    }
    const prune = u['shipshape-prune.service']
    expect(value(prune, 'PrivateNetwork')).toBe('yes')
    expect(value(prune, 'RestrictAddressFamilies')).toBe('AF_UNIX')
    expect(value(prune, 'IPAddressDeny')).toBe('any')
    expect(prune).toMatch(
      /^# prune talks only to the engine, over \/var\/run\/docker\.sock: no IP network at all$/m,
    )
    // an engine over TCP: prune needs IP to reach it
    const tcp = render({ config: config('docker:\n  host: tcp://10.0.0.2:2375\n') })[
      'shipshape-prune.service'
    ]
    expect(value(tcp, 'PrivateNetwork')).toBe('no')
    expect(value(tcp, 'RestrictAddressFamilies')).toBe('AF_UNIX AF_INET AF_INET6')
    expect(values(tcp, 'IPAddressDeny')).toEqual([])
    expect(tcp).toMatch(/^# prune talks to the engine over TCP \(tcp:\/\/10\.0\.0\.2:2375\)/m)
  })

  it('kept originals: their directories are writable for prune and schedule only (optional, "-")', () => {
    const c = config(
      [
        'assets:',
        '  uploads:',
        '    source: /srv/app/uploads',
        '    mount: /mnt/remote',
        '    dest: /mnt/remote/uploads',
        '  media:',
        '    source: /srv/app/media/',
        '    mount: /mnt/remote',
        '    dest: /mnt/remote/media',
        '  home:',
        '    source: /home/ops/data',
        '    mount: /mnt/remote',
        '    dest: /mnt/remote/data',
        '  refused:',
        '    source: /etc/app',
        '    mount: /mnt/remote',
        '    dest: /mnt/remote/etc',
      ].join('\n'),
    )
    const p = planSandbox(opts({ config: c }))
    // once per directory, never one the allowed-roots policy refuses (/etc/app → /etc)
    expect(p.originalDirs).toEqual(['/home/ops', '/srv/app'])
    // /home/ops is used: ProtectHome gives way to read-only (ReadWritePaths= opens the one)
    expect(p.homeUsedBy).toEqual([
      '/home/ops (kept originals)',
      '/root/.config/rclone (rclone config (prune checks the remote of assets))',
    ])
    const u = render({ config: c })
    const rw = '/var/lib/shipshape /var/backups/shipshape -/home/ops -/srv/app'
    expect(value(u['shipshape-prune.service'], 'ReadWritePaths')).toBe(rw)
    expect(value(u['shipshape-schedule.service'], 'ReadWritePaths')).toBe(rw)
    expect(value(u['shipshape-report.service'], 'ReadWritePaths')).toBe(
      '/var/lib/shipshape /var/backups/shipshape',
    )
    expect(u['shipshape-prune.service']).toMatch(
      /^# \/home\/ops, \/srv\/app: where migrate-assets keeps the originals$/m,
    )
    // never / itself, whatever allowedRoots says
    const top = config(
      'allowedRoots: [/]\nassets:\n  a:\n    source: /data\n    mount: /mnt/r\n    dest: /mnt/r/d\n',
    )
    expect(planSandbox(opts({ config: top })).originalDirs).toEqual([])
    // no assets: nothing more than stateDir and backupDir
    expect(planSandbox(opts()).originalDirs).toEqual([])
  })

  it('assets: prune may ask their remotes (IP network, rclone.conf readable); backupTo: remote opens the mount to prune', () => {
    const c = config(
      [
        'assets:',
        '  music:',
        '    source: /srv/app/music',
        '    mount: /mnt/rd',
        '    dest: /mnt/rd/music',
        '    backupTo: remote',
      ].join('\n'),
    )
    const u = render({ config: c })
    const prune = u['shipshape-prune.service']!
    expect(value(prune, 'PrivateNetwork')).toBe('no')
    expect(value(prune, 'ProtectHome')).toBe('read-only')
    expect(value(prune, 'ReadWritePaths')).toBe(
      '/var/lib/shipshape /var/backups/shipshape -/srv/app -/mnt/rd',
    )
    expect(prune).toMatch(/^# prune checks the remotes behind the assets’ mounts with rclone/m)
    expect(value(u['shipshape-report.service']!, 'ReadWritePaths')).toBe(
      '/var/lib/shipshape /var/backups/shipshape',
    )
    // without assets prune keeps no network at all (a unix-socket engine)
    expect(
      value(render({ config: config('') })['shipshape-prune.service']!, 'PrivateNetwork'),
    ).toBe('yes')
  })

  it('a config file given on the command line goes into SHIPSHAPE_CONFIG', () => {
    const u = render({ configPath: '/etc/shipshape/box1.yaml' })
    for (const s of SERVICES) {
      expect(value(u[s], 'Environment')).toBe('SHIPSHAPE_CONFIG=/etc/shipshape/box1.yaml')
    }
  })

  it('paths with spaces, %, $, quotes and backslashes are quoted and escaped per systemd.syntax', () => {
    const c = config(
      [
        'stateDir: "/srv/ship state/100%"',
        'backupDir: "/srv/b\\\\k\\"up"',
        'systemd:',
        '  environmentFile: "/etc/ship shape/a%b.env"',
      ].join('\n'),
    )
    expect(c.backupDir).toBe('/srv/b\\k"up')
    const u = render({
      nodePath: '/opt/no de/$bin%/node',
      cliPath: '/opt/ship shape/dist/scripts/shipshape.js',
      configPath: '/etc/a $HOME "b".yaml',
      config: c,
    })
    const s = u['shipshape-report.service']
    // the executable path is taken verbatim by systemd: `%` doubled, `$` not
    expect(value(s, 'ExecStart')).toBe(
      '"/opt/no de/$bin%%/node" "/opt/ship shape/dist/scripts/shipshape.js" --quiet report --out "/srv/ship state/100%%/reports" --notify',
    )
    expect(value(s, 'ReadWritePaths')).toBe('"/srv/ship state/100%%" "/srv/b\\\\k\\"up"')
    expect(value(s, 'Environment')).toBe('"SHIPSHAPE_CONFIG=/etc/a $HOME \\"b\\".yaml"')
    // EnvironmentFile= takes the rest of the line: no quotes, only % doubled
    expect(value(s, 'EnvironmentFile')).toBe('-/etc/ship shape/a%%b.env')
  })

  it('a path under /home, /root or /run/user makes ProtectHome read-only (and says why)', () => {
    const home = render({ config: config('stateDir: /home/ops/shipshape\n') })
    const s = home['shipshape-report.service']
    expect(value(s, 'ProtectHome')).toBe('read-only')
    expect(value(s, 'ReadWritePaths')).toBe('/home/ops/shipshape /var/backups/shipshape')
    expect(s).toMatch(/^# read-only here, for \/home\/ops\/shipshape \(stateDir\)$/m)

    expect(
      planSandbox({
        nodePath: NODE,
        cliPath: '/root/shipshape/dist/x.js',
        configPath: null,
        config: config(),
      }).protectHome,
    ).toBe('read-only')
    expect(
      planSandbox({ nodePath: '/root/.nvm/node', cliPath: CLI, configPath: null, config: config() })
        .protectHome,
    ).toBe('read-only')
    expect(
      planSandbox({ nodePath: NODE, cliPath: CLI, configPath: '/home/a/c.yaml', config: config() })
        .homeUsedBy,
    ).toEqual(['/home/a/c.yaml (the config file)'])
    const rootless = config('docker:\n  host: unix:///run/user/1000/docker.sock\n')
    expect(
      planSandbox({ nodePath: NODE, cliPath: CLI, configPath: null, config: rootless }),
    ).toMatchObject({
      protectHome: 'read-only',
      homeUsedBy: ['/run/user/1000/docker.sock (docker.host)'],
    })
    const paths = config('report:\n  paths: [/opt, /home]\n')
    expect(
      planSandbox({ nodePath: NODE, cliPath: CLI, configPath: null, config: paths }).homeUsedBy,
    ).toEqual(['/home (report.paths)'])
    // /homework is not /home; a tcp engine has no socket path
    const other = config('stateDir: /homework/s\ndocker:\n  host: tcp://10.0.0.2:2375\n')
    expect(
      planSandbox({ nodePath: NODE, cliPath: CLI, configPath: null, config: other }).protectHome,
    ).toBe('yes')
  })

  it('a socket or path under /tmp turns PrivateTmp off (a private /tmp would hide it)', () => {
    const u = render({ config: config('docker:\n  host: unix:///tmp/docker.sock\n') })
    const s = u['shipshape-prune.service']
    expect(value(s, 'PrivateTmp')).toBe('no')
    expect(s).toMatch(/^# no private \/tmp: it would hide \/tmp\/docker.sock \(docker.host\)$/m)
    expect(value(render()['shipshape-prune.service'], 'PrivateTmp')).toBe('yes')
  })

  it('the default engine socket under /run needs no ReadWritePaths entry', () => {
    const c = config('docker:\n  host: unix:///var/run/docker.sock\n')
    const p = planSandbox({ nodePath: NODE, cliPath: CLI, configPath: null, config: c })
    expect(p.readWritePaths).toEqual(['/var/lib/shipshape', '/var/backups/shipshape'])
    expect(p).toMatchObject({ protectHome: 'yes', privateTmp: true })
  })

  it('stateDir = backupDir is listed once', () => {
    const c = config('stateDir: /srv/s\nbackupDir: /srv/s\n')
    expect(value(render({ config: c })['shipshape-report.service'], 'ReadWritePaths')).toBe(
      '/srv/s',
    )
  })

  it('refuses what a unit file cannot hold: control characters, relative paths', () => {
    const bad = { ...config(), stateDir: '/srv/a\nExecStartPre=/bin/evil' }
    expect(() => render({ config: bad })).toThrow(UsageError)
    const badCal = {
      ...config(),
      systemd: { ...config().systemd, reportCalendar: 'daily\n[Service]' },
    }
    expect(() => render({ config: badCal })).toThrow(/control character/)
    expect(() => render({ nodePath: 'node' })).toThrow(/absolute/)
    expect(() => render({ configPath: 'host.yaml' })).toThrow(/absolute/)
    const trailing = { ...config(), systemd: { ...config().systemd, environmentFile: '/etc/x\\' } }
    expect(() => render({ config: trailing })).toThrow(UsageError)
  })
})

describe('unit-file escaping', () => {
  it.each([
    ['/var/lib/shipshape', '/var/lib/shipshape'],
    ['/a b', '"/a b"'],
    ['/100%', '/100%%'],
    ['/a"b', '"/a\\"b"'],
    ['/a\\b', '"/a\\\\b"'],
    ["/it's", '"/it\'s"'],
    ['/a$b', '"/a$b"'],
    ['', '""'],
    ['/é', '"/é"'],
  ])('quoteWord(%j) = %s', (input, want) => {
    expect(quoteWord(input)).toBe(want)
  })

  it('ExecStart arguments also double $ (no variable expansion); the executable path does not', () => {
    expect(quoteExecArg('/a$b')).toBe('"/a$$b"')
    expect(quoteExecArg('${HOME}')).toBe('"$${HOME}"')
    expect(execStart(['/x$y/node', '$z', 'plain'])).toBe('"/x$y/node" "$$z" plain')
    expect(() => execStart(['node', 'x'])).toThrow(/absolute/)
  })

  it('rawValue keeps the line as it is, % doubled', () => {
    expect(rawValue('/etc/a b/c%d.env')).toBe('/etc/a b/c%%d.env')
    expect(() => rawValue(' /x')).toThrow(UsageError)
    expect(() => rawValue('/x\ty')).toThrow(/control character/)
  })

  it('fillTemplate: one pass, a lone empty placeholder drops its line, unknown ones throw', () => {
    const t = 'A=@X@\n@Y@\nB=1\n'
    expect(fillTemplate('t', t, { X: '@Y@', Y: '' })).toBe('A=@Y@\nB=1\n')
    expect(fillTemplate('t', t, { X: '1', Y: 'C=2' })).toBe('A=1\nC=2\nB=1\n')
    expect(() => fillTemplate('t', t, { X: '1' })).toThrow(/unknown placeholder @Y@/)
  })
})

describe('install plan', () => {
  const units = renderUnits({ nodePath: NODE, cliPath: CLI, configPath: null, config: config() })
  const existing = new Map<string, string | null>([
    ['shipshape-report.service', units[0]!.text],
    ['shipshape-report.timer', 'hand-edited\n'],
  ])

  it('create / replace / unchanged from what the directory holds', () => {
    const plan = planUnitFiles(units, '/etc/systemd/system', existing)
    expect(plan.map((u) => [u.name, u.action, u.path])).toEqual([
      ['shipshape-report.service', 'unchanged', '/etc/systemd/system/shipshape-report.service'],
      ['shipshape-report.timer', 'replace', '/etc/systemd/system/shipshape-report.timer'],
      ['shipshape-prune.service', 'create', '/etc/systemd/system/shipshape-prune.service'],
      ['shipshape-prune.timer', 'create', '/etc/systemd/system/shipshape-prune.timer'],
      ['shipshape-schedule.service', 'create', '/etc/systemd/system/shipshape-schedule.service'],
    ])
  })

  it('a file with other content is refused (exit 4, naming it) unless --force', () => {
    const plan = planUnitFiles(units, '/etc/systemd/system', existing)
    let err: unknown
    try {
      refuseReplacing(plan, false)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(RefusedError)
    expect((err as RefusedError).exitCode).toBe(ExitCode.refused)
    expect((err as RefusedError).message).toContain('/etc/systemd/system/shipshape-report.timer')
    expect((err as RefusedError).remedy).toMatch(/--force/)
    expect(() => refuseReplacing(plan, true)).not.toThrow()
    expect(() => refuseReplacing(planUnitFiles(units, '/x', new Map()), false)).not.toThrow()
  })
})

describe('the nightly update run (services with update: apply)', () => {
  const svc = (update: string) =>
    config(
      [
        'services:',
        '  cal:',
        '    compose: /opt/cal/docker-compose.yml',
        `    update: ${update}`,
        '    health: { url: "http://127.0.0.1:3000/health" }',
        '',
      ].join('\n'),
    )
  const reportUnit = (c: Config) =>
    renderUnits({ nodePath: NODE, cliPath: CLI, configPath: null, config: c }).find(
      (u) => u.name === 'shipshape-report.service',
    )!.text
  it('runs update --auto --yes after the report, with a longer timeout', () => {
    const text = reportUnit(svc('apply'))
    const exec = text.split('\n').filter((l) => l.startsWith('ExecStart='))
    expect(exec).toHaveLength(2)
    expect(exec[0]).toContain(' report ')
    expect(exec[1]).toBe(`ExecStart=${NODE} ${CLI} --quiet update --auto --yes`)
    // two runs of schedule.timeout each (default 2h)
    expect(text).toContain('TimeoutStartSec=4h')
  })
  it('TimeoutStartSec= follows schedule.timeout (the report with update: twice it)', () => {
    const c = config(
      [
        'schedule: { timeout: 45m }',
        'services:',
        '  web:',
        '    compose: /srv/web/compose.yaml',
        '    update: apply',
        '    health: { url: "http://127.0.0.1:3000/health" }',
        '',
      ].join('\n'),
    )
    const units = renderUnits({ nodePath: NODE, cliPath: CLI, configPath: null, config: c })
    const unit = (n: string) => units.find((u) => u.name === n)!.text
    expect(unit('shipshape-report.service')).toContain('TimeoutStartSec=90m')
    expect(unit('shipshape-prune.service')).toContain('TimeoutStartSec=45m')
    expect(unit('shipshape-prune.service')).not.toContain('TimeoutStartSec=2h')
  })
  it('notify (or no service) runs the report alone: it lists newer images itself', () => {
    for (const c of [svc('notify'), config()]) {
      const text = reportUnit(c)
      expect(text.split('\n').filter((l) => l.startsWith('ExecStart='))).toHaveLength(1)
      expect(text).toContain('TimeoutStartSec=2h')
      expect(text).toContain('# no service has update: apply')
    }
  })
})
