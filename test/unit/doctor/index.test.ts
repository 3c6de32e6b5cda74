/**
 * lib/doctor: the pure judgements (space thresholds, fuse.conf, journal → command line, lock
 * states, systemctl show), and the checks and runDoctor() over fake ports — no engine, no host
 * reads. test/engine/doctor.test.ts runs the built CLI against a real engine and rclone mount.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseConfigText, type Config } from '../../../lib/config/index.js'
import { collect, type CheckContext, type LockFinding } from '../../../lib/doctor/check.js'
import {
  assetCheck,
  dirCheck,
  DOCTOR_UNITS,
  engineAgeProblems,
  journalsCheck,
  judgeAllowOther,
  judgeCompose,
  judgeDirFree,
  judgeDiskFree,
  judgeEngine,
  judgeJobs,
  judgeLock,
  judgeUnit,
  judgeUserAllowOther,
  mountOf,
  parseFuseConf,
  parseSystemctlShow,
  readLock,
  systemctlShowArgv,
  systemdCheck,
} from '../../../lib/doctor/checks/index.js'
import { journalCommands, journalProgress } from '../../../lib/runbook/operations.js'
import type { ContainerBinding } from '../../../lib/shared/mount.js'
import { failedSummary, runDoctor } from '../../../lib/doctor/index.js'
import type { DoctorPorts, PathKind, SystemctlResult } from '../../../lib/doctor/ports.js'
import type { PathFacts } from '../../../lib/host/private.js'
import { renderDoctor, wrap } from '../../../lib/doctor/render.js'
import type { Engine } from '../../../lib/docker/engine.js'
import type { EngineInfo } from '../../../lib/docker/types.js'
import { UnavailableError } from '../../../lib/errors.js'
import type { LockInfo } from '../../../lib/host/lock.js'
import type { MountEntry } from '../../../lib/host/mountinfo.js'
import type { JournalStepState } from '../../../lib/runbook/journal.js'

const GiB = 1024 ** 3
const NOW = new Date('2026-11-25T12:00:00.000Z')

const config = (yaml = ''): Config => parseConfigText(yaml, 'test.yaml', { hostname: 'box1' })

/** Ports that read nothing real: every call must be faked by the test that needs it. */
function fakePorts(o: Partial<DoctorPorts> = {}): DoctorPorts {
  const no = (what: string) => () => {
    throw new Error(`unexpected port call: ${what}`)
  }
  return {
    now: () => NOW,
    hostname: () => 'box1',
    connect: no('connect'),
    readMountinfo: async () => [],
    mountState: no('mountState'),
    findBindings: no('findBindings'),
    statfs: async () => ({ free: 50 * GiB, total: 100 * GiB }),
    pathKind: async () => ({ kind: 'missing' }),
    pathFacts: async () => null,
    uid: () => 0,
    canWrite: async () => null,
    probeDir: async () => null,
    readText: async () => null,
    listDir: async () => null,
    rcloneVersion: async () => 'rclone v1.60.1',
    detectCompose: async () => ({
      argv: ['docker', 'compose'],
      version: 'v2',
      versionText: 'Docker Compose version v2.26.1',
    }),
    holderState: async () => ({ alive: true, why: 'running' }),
    systemdRunning: async () => false,
    systemctl: no('systemctl'),
    fuseConf: '/etc/fuse.conf',
    ...o,
  }
}

function context(c: Config, ports: DoctorPorts, engine: Engine | null = null): CheckContext {
  return {
    config: c,
    configFlag: null,
    engine,
    env: {},
    ports,
    mounts: () => ports.readMountinfo(),
    lock: () => readLock(c.stateDir, ports),
  }
}

describe('space thresholds', () => {
  it('engine disk: warn under 15 % free, fail under 5 %', () => {
    const j = (free: number) => judgeDiskFree({ free, total: 1000 })
    expect(j(500)).toBe('ok')
    expect(j(150)).toBe('ok')
    expect(j(149)).toBe('warn')
    expect(j(50)).toBe('warn')
    expect(j(49)).toBe('fail')
    expect(j(0)).toBe('fail')
    // a filesystem reporting no size (some overlay or fuse): not judged
    expect(judgeDiskFree({ free: 0, total: 0 })).toBe('ok')
  })

  it('stateDir/backupDir: warn under 1 GiB', () => {
    expect(judgeDirFree(GiB)).toBe('ok')
    expect(judgeDirFree(GiB - 1)).toBe('warn')
    expect(judgeDirFree(0)).toBe('warn')
  })

  it('the disk of a path is the deepest mount above it', () => {
    const m = (mountPoint: string, source: string) =>
      ({
        mountPoint,
        source,
        fsType: 'ext4',
        options: [],
        superOptions: [],
        device: '',
      }) as MountEntry
    const mounts = [m('/', '/dev/vda1'), m('/var/lib/docker', '/dev/vdb1'), m('/var', '/dev/vdc')]
    expect(mountOf(mounts, '/var/lib/docker')?.source).toBe('/dev/vdb1')
    expect(mountOf(mounts, '/var/lib/dockerx')?.source).toBe('/dev/vdc')
    expect(mountOf(mounts, '/srv')?.source).toBe('/dev/vda1')
    expect(mountOf([], '/srv')).toBeNull()
  })
})

describe('fuse.conf', () => {
  it('user_allow_other only as a whole line, comments stripped as fusermount3 does', () => {
    expect(parseFuseConf('user_allow_other\n').userAllowOther).toBe(true)
    expect(parseFuseConf('  user_allow_other   \n').userAllowOther).toBe(true)
    expect(parseFuseConf('user_allow_other # needed by rclone\n').userAllowOther).toBe(true)
    expect(parseFuseConf('#user_allow_other\n').userAllowOther).toBe(false)
    expect(parseFuseConf('# user_allow_other\n').userAllowOther).toBe(false)
    expect(parseFuseConf('user_allow_other=1\n').userAllowOther).toBe(false)
    expect(parseFuseConf('user_allow_others\n').userAllowOther).toBe(false)
    expect(parseFuseConf('').userAllowOther).toBe(false)
    // Debian's shipped file: everything commented out
    const debian = [
      '# The file /etc/fuse.conf allows for the following parameters:',
      '#',
      '# user_allow_other - Using the allow_other mount option works fine as root, in',
      '# order to have it work as user you need user_allow_other in /etc/fuse.conf as',
      '#',
      '#user_allow_other',
      '#mount_max = 1000',
    ].join('\n')
    expect(parseFuseConf(debian)).toEqual({ userAllowOther: false, mountMax: null })
    expect(parseFuseConf('mount_max = 12\nuser_allow_other')).toEqual({
      userAllowOther: true,
      mountMax: 12,
    })
  })

  it('a non-root mounter without user_allow_other: fail without allow_other, warn with it', () => {
    const base = { userId: 1000, fuseConf: '/etc/fuse.conf' }
    const none = judgeUserAllowOther('music', '/mnt/rd', { ...base, allowOther: false, text: null })
    expect(none.status).toBe('fail')
    expect(none.detail).toContain('/etc/fuse.conf does not exist')
    expect(none.fix).toContain('user_allow_other')
    const commented = judgeUserAllowOther('music', '/mnt/rd', {
      ...base,
      allowOther: true,
      text: '#user_allow_other\n',
    })
    expect(commented.status).toBe('warn')
    expect(commented.detail).toContain('next mount')
    const ok = judgeUserAllowOther('music', '/mnt/rd', {
      ...base,
      allowOther: true,
      text: 'user_allow_other\n',
    })
    expect(ok.status).toBe('ok')
    expect(ok.fix).toBeNull()
  })
})

describe('allow_other', () => {
  const asset = { source: '/srv/app/music', mount: '/mnt/rd', mountType: 'fuse.rclone' }
  const binding = (user: string): ContainerBinding => ({
    id: 'c1',
    name: 'app',
    running: true,
    user,
    bindSource: '/srv/app/music',
    destination: '/music',
    seesMount: false,
  })

  it('set: ok', () => {
    const c = judgeAllowOther('music', asset, { allowOther: true, userId: 1000 }, null)
    expect(c.status).toBe('ok')
  })

  it('a non-root mounter without it: fail, dockerd cannot reach the mount', () => {
    const c = judgeAllowOther('music', asset, { allowOther: false, userId: 1000 }, [])
    expect(c.status).toBe('fail')
    expect(c.detail).toContain('uid 1000')
    expect(c.fix).toContain('--allow-other')
  })

  it('a container binding the source as non-root: fail naming it; as root: warn', () => {
    const bad = judgeAllowOther('music', asset, { allowOther: false, userId: 0 }, [
      binding('1000:1000'),
      binding('1000:1000'), // a second bind of the same container: one message
    ])
    expect(bad.status).toBe('fail')
    expect(bad.detail).toContain('container app runs as user 1000:1000')
    expect(bad.detail.split('container app').length).toBe(2)
    expect(bad.fix).toContain('--allow-other')
    const root = judgeAllowOther('music', asset, { allowOther: false, userId: 0 }, [binding('')])
    expect(root.status).toBe('warn')
    expect(root.fix).toContain('--allow-other')
  })

  it('no engine: warn, containers not checked', () => {
    const c = judgeAllowOther('music', asset, { allowOther: false, userId: 0 }, null)
    expect(c.status).toBe('warn')
    expect(c.detail).toContain('not checked')
  })
})

describe('assetCheck', () => {
  const c = config(
    'allowedRoots: [/srv]\nassets:\n  music: { source: /srv/app/music, dest: /mnt/rd/music, mount: /mnt/rd }\n',
  )
  const asset = c.assets.music!
  const live = (allowOther: boolean, userId: number | null) => async () => ({
    state: { kind: 'live' as const, fsType: 'fuse.rclone', allowOther, userId },
    entry: {
      mountPoint: '/mnt/rd',
      fsType: 'fuse.rclone',
      source: ':s3,secret_access_key=hunter2:bucket',
      options: [],
      superOptions: [],
      device: '',
    },
  })
  const engine = { info: {} } as unknown as Engine

  it('a non-root mounter: allow_other and user_allow_other from the injected fuse.conf', async () => {
    const read: string[] = []
    const ports = fakePorts({
      fuseConf: '/tmp/test-fuse.conf',
      mountState: live(false, 1000),
      findBindings: async () => [],
      readText: async (f) => {
        read.push(f)
        return '# user_allow_other\n'
      },
    })
    const checks = await collect(assetCheck('music', asset), context(c, ports, engine))
    expect(checks.map((x) => [x.id, x.status])).toEqual([
      ['asset-mount:music', 'ok'],
      ['asset-allow-other:music', 'fail'],
      ['asset-fuse-conf:music', 'fail'],
    ])
    expect(read).toEqual(['/tmp/test-fuse.conf'])
    // the remote's credentials never reach the output
    expect(checks[0]!.detail).toContain(':s3,secret_access_key=***:bucket')
    expect(JSON.stringify(checks)).not.toContain('hunter2')
  })

  it('a root mount: no user_allow_other check; the engine failing to list is a warn', async () => {
    const ports = fakePorts({
      mountState: live(false, 0),
      findBindings: async () => {
        throw new Error('container list: connection reset')
      },
    })
    const checks = await collect(assetCheck('music', asset), context(c, ports, engine))
    expect(checks.map((x) => x.id)).toEqual(['asset-mount:music', 'asset-allow-other:music'])
    expect(checks[1]).toMatchObject({ status: 'warn' })
    expect(checks[1]!.detail).toContain('container list: connection reset')
  })

  it('not mounted, wrong type, ENOTCONN: one failed check with the fix', async () => {
    const state = (s: object) =>
      fakePorts({ mountState: async () => ({ state: s as never, entry: null }) })
    const one = async (s: object) => await collect(assetCheck('music', asset), context(c, state(s)))
    const notMounted = await one({ kind: 'not-mounted' })
    expect(notMounted).toHaveLength(1)
    expect(notMounted[0]).toMatchObject({
      status: 'fail',
      fix: expect.stringContaining('findmnt /mnt/rd'),
    })
    const dead = await one({ kind: 'enotconn' })
    expect(dead[0]!.fix).toContain('fusermount3 -uz /mnt/rd')
    const wrong = await one({ kind: 'wrong-type', fsType: 'ext4' })
    expect(wrong[0]!.detail).toContain('ext4, not fuse.rclone')
  })
})

describe('journal → command line', () => {
  const steps = (s: Record<string, JournalStepState['status']>) =>
    new Map(Object.entries(s).map(([k, status]) => [k, { status, notes: {} }]))
  const j = (operation: string, args: Record<string, unknown>, s = steps({ backup: 'done' })) => ({
    file: `/var/lib/shipshape/journal/${operation}-20261125T120000000Z-42.jsonl`,
    operation,
    args,
    steps: s,
  })

  it('migrate-assets, rebuild, rollback: --resume and --rollback with the target', () => {
    expect(journalCommands(j('migrate-assets', { asset: 'impro-music' }))).toMatchObject({
      resume: 'shipshape migrate-assets impro-music --resume',
      rollback: 'shipshape migrate-assets impro-music --rollback',
    })
    const r = journalCommands(j('rebuild', { service: 'whisperx' }))
    expect(r.resume).toBe('shipshape rebuild whisperx --resume')
    expect(r.rollback).toBe('shipshape rebuild whisperx --rollback')
    expect(r.fix).toContain('`shipshape rebuild whisperx --resume`')
    expect(r.fix).toContain('`shipshape rebuild whisperx --rollback`')
    expect(journalCommands(j('rollback', { service: 'whisperx' })).resume).toBe(
      'shipshape rollback whisperx --resume',
    )
  })

  it('a rebuild past its health check can only be finished', () => {
    const r = journalCommands(
      j('rebuild', { service: 'whisperx' }, steps({ backup: 'done', health: 'done' })),
    )
    expect(r.resume).toBe('shipshape rebuild whisperx --resume')
    expect(r.rollback).toBeNull()
    expect(r.fix).not.toContain('--rollback')
  })

  it('repeats --config, quoted for a shell', () => {
    const r = journalCommands(j('rebuild', { service: 'whisperx' }), {
      configFile: "/etc/ship shape/it's.yaml",
    })
    expect(r.resume).toBe(
      `shipshape --config '/etc/ship shape/it'\\''s.yaml' rebuild whisperx --resume`,
    )
  })

  it('finalize has no --resume: says so and what a person does; unknown operations: read it', () => {
    const f = journalCommands(j('migrate-assets-finalize', { asset: 'impro-music' }))
    expect(f.resume).toBeNull()
    expect(f.fix).toContain('--finalize')
    expect(f.fix).toContain('/var/lib/shipshape/journal')
    const u = journalCommands(j('defrag', { disk: 'sda' }))
    expect(u.resume).toBeNull()
    expect(u.fix).toMatch(/^read \/var\/lib\/shipshape\/journal\/defrag-/)
    // a known operation without its target in args
    expect(journalCommands(j('rebuild', {})).resume).toBeNull()
  })

  it('says where the run stopped', () => {
    const plan = [
      { id: 'backup', title: 'Back up' },
      { id: 'copy', title: 'Copy' },
      { id: 'swap', title: 'Swap' },
    ]
    expect(
      journalProgress({ plan, outcome: null, steps: steps({ backup: 'done', copy: 'begun' }) }),
    ).toBe('interrupted in step "Copy" (1 of 3 steps done)')
    expect(
      journalProgress({ plan, outcome: null, steps: steps({ backup: 'done', copy: 'undoing' }) }),
    ).toContain('while undoing step "Copy"')
    const needs = new Map([
      ['backup', { status: 'done' as const, notes: {} }],
      ['swap', { status: 'undo-failed' as const, notes: {}, error: 'EBUSY' }],
    ])
    expect(journalProgress({ plan, outcome: 'needs-person', steps: needs })).toBe(
      'failed and could not fully roll back: undo of "Swap" failed (EBUSY)',
    )
  })
})

describe('lock states', () => {
  const info: LockInfo = {
    pid: 4711,
    startTime: '123',
    bootId: 'b',
    operation: 'rebuild',
    since: '2026-11-25T11:30:00.000Z',
    host: 'box1',
  }
  const held = (state: Extract<LockFinding, { kind: 'held' }>['state'], i = info): LockFinding => ({
    kind: 'held',
    file: '/s/shipshape.lock',
    info: i,
    state,
  })

  it('free: ok', () => {
    expect(judgeLock({ kind: 'free' }, NOW, 'box1')).toMatchObject({ status: 'ok', fix: null })
  })

  it('held by a live run: ok with who and since; for hours: warn', () => {
    const c = judgeLock(held({ alive: true, why: 'pid 4711 is running' }), NOW, 'box1')
    expect(c.status).toBe('ok')
    expect(c.detail).toContain('rebuild (pid 4711) since 2026-11-25T11:30:00.000Z (30m)')
    const long = judgeLock(
      held({ alive: true, why: '' }, { ...info, since: '2026-11-25T01:00:00.000Z' }),
      NOW,
      'box1',
    )
    expect(long.status).toBe('warn')
    expect(long.fix).toContain('4711')
  })

  it('stale (holder gone): warn, the next run recovers it', () => {
    const c = judgeLock(held({ alive: false, why: 'pid 4711 is gone' }), NOW, 'box1')
    expect(c.status).toBe('warn')
    expect(c.detail).toMatch(/^stale: .*pid 4711 is gone/)
    expect(c.fix).toContain('recovers it')
  })

  it('taken on another host or unreadable: warn, remove it if nothing runs there', () => {
    const other = judgeLock(
      held({ alive: 'unknown', why: 'taken on host box2' }, { ...info, host: 'box2' }),
      NOW,
      'box1',
    )
    expect(other.status).toBe('warn')
    expect(other.detail).toContain('on box2')
    expect(other.fix).toContain('remove /s/shipshape.lock')
    const junk = judgeLock({ kind: 'unreadable', file: '/s/shipshape.lock', why: 'x' }, NOW, 'box1')
    expect(junk.status).toBe('warn')
  })

  it('readLock: no file → free; junk → unreadable; a lock → its holder judged', async () => {
    expect(await readLock('/s', fakePorts())).toEqual({ kind: 'free' })
    const junk = fakePorts({ readText: async () => 'not json' })
    expect((await readLock('/s', junk)).kind).toBe('unreadable')
    const seen: LockInfo[] = []
    const live = fakePorts({
      readText: async (f) => (f === '/s/shipshape.lock' ? JSON.stringify(info) : null),
      holderState: async (i) => {
        seen.push(i)
        return { alive: false, why: 'pid 4711 is gone' }
      },
    })
    const r = await readLock('/s', live)
    expect(r).toMatchObject({ kind: 'held', state: { alive: false } })
    expect(seen[0]?.pid).toBe(4711)
  })
})

describe('systemctl show', () => {
  const SHOW = (o: Record<string, string>) =>
    Object.entries(o)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n') + '\n'

  it('parses Key=Value lines; values may hold "="', () => {
    expect(
      parseSystemctlShow(
        'LoadState=loaded\nActiveState=active\nLastTriggerUSec=Tue 2026-11-24 02:00:03 UTC\nX=a=b\n\n',
      ),
    ).toEqual({
      LoadState: 'loaded',
      ActiveState: 'active',
      LastTriggerUSec: 'Tue 2026-11-24 02:00:03 UTC',
      X: 'a=b',
    })
  })

  it('asks with an argument array', () => {
    expect(systemctlShowArgv('shipshape-prune.timer')).toEqual([
      'show',
      '-p',
      'LoadState,ActiveState,Result,ExecMainStatus,LastTriggerUSec',
      'shipshape-prune.timer',
    ])
  })

  const where = { installed: true, unitDir: '/etc/systemd/system' }
  const timer = {
    LoadState: 'loaded',
    ActiveState: 'active',
    Result: 'success',
    LastTriggerUSec: 'Tue 2026-11-24 02:00:03 UTC',
  }

  it('a timer whose service last failed: fail with journalctl', () => {
    const c = judgeUnit('shipshape-report.timer', where, timer, {
      LoadState: 'loaded',
      ActiveState: 'failed',
      Result: 'exit-code',
      ExecMainStatus: '3',
    })
    expect(c.status).toBe('fail')
    expect(c.detail).toContain('Result=exit-code, exit status 3')
    expect(c.detail).toContain('Tue 2026-11-24 02:00:03 UTC')
    expect(c.fix).toContain('journalctl -u shipshape-report.service')
  })

  it('an enabled timer whose service succeeded; never run; not enabled: ok', () => {
    const svc = { ActiveState: 'inactive', Result: 'success', ExecMainStatus: '0' }
    expect(judgeUnit('shipshape-report.timer', where, timer, svc)).toMatchObject({
      status: 'ok',
      detail: 'enabled; last run: Tue 2026-11-24 02:00:03 UTC, succeeded',
    })
    expect(
      judgeUnit('shipshape-report.timer', where, { ...timer, LastTriggerUSec: 'n/a' }, svc).detail,
    ).toBe('enabled; last run: never')
    expect(
      judgeUnit('shipshape-prune.timer', where, { ...timer, ActiveState: 'inactive' }, svc),
    ).toMatchObject({ status: 'ok', detail: 'installed, not enabled (inactive)' })
  })

  it('not loaded: daemon-reload when the file is there, install when not', () => {
    const p = { LoadState: 'not-found', ActiveState: 'inactive' }
    expect(judgeUnit('shipshape-schedule.service', where, p, null)).toMatchObject({
      status: 'warn',
      fix: expect.stringContaining('daemon-reload'),
    })
    const missing = judgeUnit('shipshape-schedule.service', { ...where, installed: false }, p, null)
    expect(missing.status).toBe('warn')
    expect(missing.fix).toContain('shipshape systemd install')
    expect(missing.fix).toContain('shipshape-schedule.service')
  })

  it('the jobs run one way: timers or the schedule service, not both, not neither', () => {
    const a = (r: boolean, p: boolean, s: boolean) =>
      judgeJobs({
        'shipshape-report.timer': r,
        'shipshape-prune.timer': p,
        'shipshape-schedule.service': s,
      })
    expect(a(true, true, false).status).toBe('ok')
    expect(a(false, false, true).status).toBe('ok')
    expect(a(true, true, true).status).toBe('warn')
    expect(a(false, false, false)).toMatchObject({
      status: 'warn',
      fix: expect.stringContaining('systemctl enable --now'),
    })
  })

  it('systemdCheck: without systemd a warn (never a fail), systemctl never called', async () => {
    const calls: string[][] = []
    const ports = fakePorts({
      systemdRunning: async () => false,
      pathKind: async (p) => ({ kind: p.endsWith('report.timer') ? 'file' : 'missing' }),
      systemctl: async (args) => {
        calls.push(args)
        return { exitCode: 0, stdout: '', stderr: '' }
      },
    })
    const checks = await collect(systemdCheck, context(config(), ports))
    expect(calls).toEqual([])
    expect(checks.every((c) => c.status !== 'fail')).toBe(true)
    expect(checks[0]).toMatchObject({ id: 'systemd', status: 'warn' })
    expect(checks[0]!.detail).toContain('systemd not running here')
    expect(checks.find((c) => c.id === 'systemd-unit:shipshape-report.timer')?.status).toBe('ok')
    expect(checks.find((c) => c.id === 'systemd-unit:shipshape-prune.timer')?.status).toBe('warn')
  })

  it('systemdCheck: with systemd, each unit (and a timer’s service) asked by argv', async () => {
    const calls: string[][] = []
    const answers: Record<string, Record<string, string>> = {
      'shipshape-report.timer': timer,
      'shipshape-report.service': {
        LoadState: 'loaded',
        ActiveState: 'inactive',
        Result: 'success',
        ExecMainStatus: '0',
      },
      'shipshape-prune.timer': timer,
      'shipshape-prune.service': {
        LoadState: 'loaded',
        ActiveState: 'failed',
        Result: 'exit-code',
        ExecMainStatus: '1',
      },
      'shipshape-schedule.service': {
        LoadState: 'loaded',
        ActiveState: 'inactive',
        Result: 'success',
        ExecMainStatus: '0',
      },
    }
    const ports = fakePorts({
      systemdRunning: async () => true,
      pathKind: async (): Promise<PathKind> => ({ kind: 'file' }),
      systemctl: async (args): Promise<SystemctlResult> => {
        calls.push(args)
        return { exitCode: 0, stdout: SHOW(answers[args.at(-1)!]!), stderr: '' }
      },
    })
    const checks = await collect(systemdCheck, context(config(), ports))
    expect(calls).toEqual(
      [
        'shipshape-report.timer',
        'shipshape-report.service',
        'shipshape-prune.timer',
        'shipshape-prune.service',
        'shipshape-schedule.service',
      ].map(systemctlShowArgv),
    )
    const by = Object.fromEntries(checks.map((c) => [c.id, c]))
    expect(by['systemd-unit:shipshape-report.timer']?.status).toBe('ok')
    expect(by['systemd-unit:shipshape-prune.timer']?.status).toBe('fail')
    expect(by['systemd-unit:shipshape-schedule.service']?.status).toBe('ok')
    expect(by['systemd-jobs']?.status).toBe('ok')
    expect(checks.map((c) => c.id)).toEqual([
      ...DOCTOR_UNITS.map((u) => `systemd-unit:${u}`),
      'systemd-jobs',
    ])
  })

  it('systemdCheck: a failing systemctl is a warn naming it', async () => {
    const ports = fakePorts({
      systemdRunning: async () => true,
      systemctl: async () => ({ exitCode: 1, stdout: '', stderr: 'Failed to connect to bus\n' }),
    })
    const checks = await collect(systemdCheck, context(config(), ports))
    const unit = checks.find((c) => c.id === 'systemd-unit:shipshape-report.timer')
    expect(unit).toMatchObject({ status: 'warn' })
    expect(unit?.detail).toContain('Failed to connect to bus')
  })
})

describe('engine and compose', () => {
  const info = (o: Partial<EngineInfo> = {}): EngineInfo => ({
    address: 'unix:///var/run/docker.sock',
    version: '20.10.24+dfsg1',
    apiVersion: '1.41',
    engineApiVersion: '1.41',
    os: 'linux',
    arch: 'amd64',
    storageDriver: 'overlay2',
    dockerRootDir: '/var/lib/docker',
    imageStore: 'classic',
    ...o,
  })

  it('version and API: warn below Docker 20.10 / API 1.41', () => {
    expect(engineAgeProblems('20.10.24+dfsg1', '1.41')).toEqual([])
    expect(engineAgeProblems('26.1.5+dfsg1', '1.45')).toEqual([])
    expect(engineAgeProblems('19.03.15', '1.40')).toHaveLength(2)
    expect(engineAgeProblems('20.10.0', '1.40')).toEqual(['API 1.40 is older than 1.41'])
    expect(engineAgeProblems('dev', '1.41')[0]).toContain('not understood')
    expect(judgeEngine({ info: info() })[0]?.status).toBe('ok')
    expect(
      judgeEngine({ info: info({ version: '19.03.15', engineApiVersion: '1.40' }) })[0],
    ).toMatchObject({
      status: 'warn',
      fix: expect.stringContaining('20.10'),
    })
  })

  it('unreachable: a fail carrying the remedy', () => {
    const c = judgeEngine({
      error: new UnavailableError(
        'Docker engine unreachable at unix:///x: no such socket',
        'start it',
      ),
    })[0]
    expect(c).toMatchObject({ status: 'fail', fix: 'start it' })
    expect(c?.detail).toContain('unreachable')
  })

  it('compose: v2 ok; v1 only warn, with the ContainerConfig pin from API 1.45 on', () => {
    const v1 = {
      cli: {
        argv: ['docker-compose'],
        version: 'v1' as const,
        versionText: 'docker-compose version 1.29.2, build unknown',
      },
    }
    const v2 = {
      cli: {
        argv: ['docker', 'compose'],
        version: 'v2' as const,
        versionText: 'Docker Compose version v2.26.1',
      },
    }
    expect(judgeCompose(v2, { engineApi: '1.45', needed: true }).status).toBe('ok')
    const old = judgeCompose(v1, { engineApi: '1.41', needed: true })
    expect(old.status).toBe('warn')
    expect(old.detail).not.toContain('ContainerConfig')
    const pinned = judgeCompose(v1, { engineApi: '1.45', needed: false })
    expect(pinned.status).toBe('warn')
    expect(pinned.detail).toContain('ContainerConfig')
    expect(pinned.detail).toContain('COMPOSE_API_VERSION=1.44')
    expect(judgeCompose(v1, { engineApi: null, needed: true }).detail).not.toContain(
      'ContainerConfig',
    )
  })

  it('compose missing: fail when a service uses it, warn otherwise', () => {
    const error = new UnavailableError('Docker Compose is not available', 'install it')
    expect(judgeCompose({ error }, { engineApi: '1.41', needed: true })).toMatchObject({
      status: 'fail',
      fix: 'install it',
    })
    expect(judgeCompose({ error }, { engineApi: '1.41', needed: false }).status).toBe('warn')
  })
})

describe('dirCheck', () => {
  const c = config('stateDir: /srv/x/state\nbackupDir: /srv/x/file/backups\n')

  it('missing below a regular file: fail, cannot be created', async () => {
    const ports = fakePorts({
      pathKind: async (p): Promise<PathKind> =>
        p === '/srv/x/file'
          ? { kind: 'file' }
          : p === '/srv/x' || p === '/srv'
            ? { kind: 'dir' }
            : { kind: 'missing' },
    })
    const [check] = await collect(dirCheck('backupDir'), context(c, ports))
    expect(check).toMatchObject({ id: 'backup-dir', status: 'fail' })
    expect(check?.detail).toContain('/srv/x/file is a file, not a directory')
    expect(check?.fix).toContain('backupDir')
  })

  it('missing, its parent writable: ok (created on first use), space of the parent', async () => {
    const measured: string[] = []
    const ports = fakePorts({
      pathKind: async (p): Promise<PathKind> =>
        p === '/srv/x' ? { kind: 'dir' } : { kind: 'missing' },
      statfs: async (d) => {
        measured.push(d)
        return { free: 5 * GiB, total: 10 * GiB }
      },
    })
    const [check] = await collect(dirCheck('stateDir'), context(c, ports))
    expect(check?.status).toBe('ok')
    expect(check?.detail).toContain('will be created in /srv/x')
    expect(measured).toEqual(['/srv/x'])
  })

  it('exists but the probe fails (read-only): fail; little space: warn', async () => {
    const ro = fakePorts({
      pathKind: async (): Promise<PathKind> => ({ kind: 'dir' }),
      probeDir: async () => 'EROFS: read-only file system',
    })
    const [check] = await collect(dirCheck('stateDir'), context(c, ro))
    expect(check?.status).toBe('fail')
    expect(check?.fix).toContain('read-only')
    const full = fakePorts({
      pathKind: async (): Promise<PathKind> => ({ kind: 'dir' }),
      statfs: async () => ({ free: 200 * 1024 * 1024, total: 10 * GiB }),
    })
    const [low] = await collect(dirCheck('stateDir'), context(c, full))
    expect(low).toMatchObject({ status: 'warn' })
    expect(low?.detail).toContain('less than 1 GiB')
  })

  it('writable by others, a symlink or another owner: fail with the refusal the commands give', async () => {
    const facts = (f: Partial<PathFacts>) =>
      fakePorts({
        pathKind: async (): Promise<PathKind> => ({ kind: 'dir' }),
        pathFacts: async () => ({ type: 'dir', mode: 0o700, uid: 0, ...f }),
      })
    const [open] = await collect(dirCheck('stateDir'), context(c, facts({ mode: 0o777 })))
    expect(open).toMatchObject({
      id: 'state-dir',
      status: 'fail',
      fix: 'chmod 700 /srv/x/state && chown root:root /srv/x/state',
    })
    expect(open?.detail).toContain('writable by group and others (mode 0777)')
    expect(open?.detail).toContain('refuses to act on it (exit 4)')
    const [link] = await collect(dirCheck('backupDir'), context(c, facts({ type: 'symlink' })))
    expect(link).toMatchObject({ id: 'backup-dir', status: 'fail' })
    expect(link?.fix).toContain('set backupDir in the host config to the real directory')
    const [theirs] = await collect(dirCheck('stateDir'), context(c, facts({ uid: 1000 })))
    expect(theirs?.detail).toContain('owned by uid 1000, not root (uid 0)')
    const [fine] = await collect(dirCheck('stateDir'), context(c, facts({ mode: 0o755 })))
    expect(fine?.status).toBe('ok')
  })
})

describe('journalsCheck', () => {
  const c = config('stateDir: /srv/x/state\n')
  const dir = '/srv/x/state/journal'
  const name = 'rebuild-20261125T120000000Z-42.jsonl'
  const text =
    JSON.stringify({
      t: 'start',
      v: 1,
      operation: 'rebuild',
      args: { service: 'web' },
      host: 'box1',
      pid: 42,
      at: '2026-11-25T12:00:00.000Z',
      steps: [{ id: 'backup', title: 'Back up' }],
    }) + '\n'
  const ports = (journalFacts: Partial<PathFacts>) =>
    fakePorts({
      listDir: async (d) => (d === dir ? [name] : null),
      readText: async (f) => (f === `${dir}/${name}` ? text : null),
      pathFacts: async (p) =>
        p === dir
          ? { type: 'dir', mode: 0o700, uid: 0 }
          : { type: 'file', mode: 0o600, uid: 0, ...journalFacts },
    })

  it('a private unfinished journal: the command that finishes it', async () => {
    const [j] = await collect(journalsCheck, context(c, ports({})))
    expect(j).toMatchObject({ id: `journal:${name}`, status: 'fail' })
    expect(j?.fix).toContain('shipshape rebuild web --resume')
  })

  it('one another user could have written: fail naming it, never offered for --resume', async () => {
    const checks = await collect(journalsCheck, context(c, ports({ uid: 1000, mode: 0o666 })))
    expect(checks).toHaveLength(1)
    expect(checks[0]).toMatchObject({ id: `journal-private:${name}`, status: 'fail' })
    expect(checks[0]?.detail).toContain(`the journal ${dir}/${name} is owned by uid 1000`)
    expect(checks[0]?.fix).toContain(`rm ${dir}/${name}`)
    expect(checks[0]?.fix).not.toContain('--resume')
  })

  it('a journal directory others can write: fail, even when it is empty', async () => {
    const checks = await collect(
      journalsCheck,
      context(
        c,
        fakePorts({
          listDir: async (d) => (d === dir ? [] : null),
          pathFacts: async () => ({ type: 'dir', mode: 0o777, uid: 0 }),
        }),
      ),
    )
    expect(checks).toHaveLength(1)
    expect(checks[0]).toMatchObject({ id: 'journal-private:journal', status: 'fail' })
    expect(checks[0]?.fix).toBe(`chmod 700 ${dir} && chown root:root ${dir}`)
  })
})

describe('render', () => {
  it('wraps at spaces and cuts an over-long word without losing a character', () => {
    const text = 'fusermount3 -uz /mnt/a/very/long/mount/point/name then start it'
    const w = wrap(text, 12)
    expect(w.split('\n').every((l) => l.length <= 12)).toBe(true)
    expect(w.replace(/[\n ]/g, '')).toBe(text.replace(/ /g, ''))
    expect(wrap('a b c', 3)).toBe('a b\nc')
  })
})

describe('runDoctor', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-doctor-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('an invalid config is a failed check and the engine is still checked', async () => {
    const file = path.join(dir, 'bad.yaml')
    await writeFile(file, 'stateDir: /srv/state\nreport:\n  pathz: [/opt]\n')
    let connected = 0
    const r = await runDoctor({
      configFile: file,
      env: {},
      hostname: 'box1',
      ports: fakePorts({
        connect: async () => {
          connected++
          throw new UnavailableError('Docker engine unreachable at unix:///x: no such socket')
        },
      }),
    })
    expect(connected).toBe(1)
    expect(r.ok).toBe(false)
    const cfg = r.checks.find((c) => c.id === 'config')
    expect(cfg?.status).toBe('fail')
    expect(cfg?.detail).toContain(`${file}:3:3: report.pathz`)
    expect(cfg?.fix).toContain(`--config ${file} config check`)
    expect(r.checks.find((c) => c.id === 'engine')?.status).toBe('fail')
    // what needs the config was not guessed from a default
    expect(r.checks.some((c) => c.id === 'state-dir' || c.id === 'lock')).toBe(false)
    expect(failedSummary(r)).toMatch(/^2 of \d+ checks failed: Config, Docker engine$/)
  })

  it('a hung check fails after its time limit; the others still report', async () => {
    const file = path.join(dir, 'asset.yaml')
    await writeFile(
      file,
      [
        'stateDir: /srv/state',
        'backupDir: /srv/backups',
        'allowedRoots: [/srv]',
        'assets:',
        '  music: { source: /srv/app/music, dest: /mnt/rd/music, mount: /mnt/rd }',
      ].join('\n'),
    )
    const t0 = Date.now()
    const r = await runDoctor({
      configFile: file,
      env: {},
      checkTimeoutMs: 300,
      ports: fakePorts({
        connect: async () => {
          throw new UnavailableError('unreachable')
        },
        mountState: () => new Promise(() => {}), // a FUSE mount that never answers
      }),
    })
    expect(Date.now() - t0).toBeLessThan(3000)
    const mount = r.checks.find((c) => c.id === 'asset-mount:music')
    expect(mount).toMatchObject({ status: 'fail', detail: 'no answer within 0.3 s' })
    expect(mount?.fix).toContain('fusermount3 -uz /mnt/rd')
    expect(r.checks.find((c) => c.id === 'lock')?.status).toBe('ok')
    expect(r.checks.map((c) => c.id).slice(0, 5)).toEqual([
      'config',
      'engine',
      'compose', // no engine-disk without an engine
      'rclone',
      'asset-mount:music',
    ])
    expect(r.checks.find((c) => c.id === 'rclone')?.status).toBe('ok')
  })

  it('an engine answering too late: a failed check, closed once it comes', async () => {
    let closed = 0
    const late = {
      info: { address: 'unix:///x', dockerRootDir: '/var/lib/docker', engineApiVersion: '1.41' },
      close: () => closed++,
    } as unknown as Engine
    const r = await runDoctor({
      env: {},
      hostname: 'box1',
      packageRoot: dir, // no config/hosts here: the embedded default
      checkTimeoutMs: 150,
      ports: fakePorts({
        connect: () => new Promise((res) => setTimeout(() => res(late), 400)),
      }),
    })
    expect(r.checks.find((c) => c.id === 'engine')).toMatchObject({
      status: 'fail',
      detail: 'no answer within 0.15 s',
    })
    expect(r.checks.some((c) => c.id === 'engine-disk')).toBe(false)
    await new Promise((res) => setTimeout(res, 400))
    expect(closed).toBe(1)
  })

  it('all well: ok, and the table names every check', async () => {
    const file = path.join(dir, 'good.yaml')
    await writeFile(file, 'stateDir: /srv/state\nbackupDir: /srv/backups\n')
    const engine = {
      info: {
        address: 'unix:///var/run/docker.sock',
        version: '20.10.24',
        apiVersion: '1.41',
        engineApiVersion: '1.41',
        os: 'linux',
        arch: 'amd64',
        storageDriver: 'overlay2',
        dockerRootDir: '/var/lib/docker',
        imageStore: 'classic',
      },
      close: () => {},
    } as unknown as Engine
    const r = await runDoctor({
      configFile: file,
      env: {},
      ports: fakePorts({
        connect: async () => engine,
        pathKind: async (p): Promise<PathKind> => ({
          kind: p.startsWith('/srv/') ? 'dir' : 'missing',
        }),
      }),
    })
    expect(r.schema).toBe('shipshape.doctor/1')
    expect(r.generatedAt).toBe(NOW.toISOString())
    expect(r.checks.filter((c) => c.status === 'fail')).toEqual([])
    expect(r.ok).toBe(true)
    expect(r.checks.find((c) => c.id === 'engine-disk')?.detail).toContain('50 %')
    const text = renderDoctor(r, { color: false })
    for (const c of r.checks) expect(text).toContain(c.title)
    expect(text).toMatch(/doctor: \d+ ok, \d+ warn, 0 failed$/)
    const boxed = renderDoctor(r, { color: false, width: 100 })
    expect(Math.max(...boxed.split('\n').map((l) => l.length))).toBeLessThanOrEqual(100)
  })
})
