/**
 * lib/doctor/checks/: each check's judge over plain facts (no ports, no I/O), and the list's
 * order; lib/runbook/operations.ts: the registry doctor and prune read.
 */
import { describe, expect, it } from 'vitest'
import { parseConfigText } from '../../../lib/config/index.js'
import {
  doctorChecks,
  judgeAsset,
  judgeConfig,
  judgeDir,
  judgeEngineDisk,
  judgeJournals,
  judgeRclone,
  judgeSystemd,
  DOCTOR_UNITS,
} from '../../../lib/doctor/checks/index.js'
import type { JournalState, JournalStepState } from '../../../lib/runbook/journal.js'
import {
  blockingOperations,
  journalTarget,
  OPERATIONS,
  rollbackBarred,
} from '../../../lib/runbook/operations.js'

const GiB = 1024 ** 3

describe('the list', () => {
  it('without a config: only what needs none; with one: assets, dirs, lock, journals, systemd', () => {
    expect(doctorChecks(null).map((c) => c.id)).toEqual([
      'config',
      'engine',
      'engine-disk',
      'compose',
      'rclone',
    ])
    const config = parseConfigText(
      'allowedRoots: [/srv]\nassets:\n  music: { source: /srv/app/music, dest: /mnt/rd/music, mount: /mnt/rd }\n',
      't.yaml',
      { hostname: 'box1' },
    )
    const ids = doctorChecks(config).map((c) => c.id)
    expect(ids.slice(5)).toEqual([
      'asset-mount:music',
      'state-dir',
      'backup-dir',
      'lock',
      'journals',
      'systemd',
    ])
    expect(
      doctorChecks(config)
        .filter((c) => c.providesEngine)
        .map((c) => c.id),
    ).toEqual(['engine'])
  })
})

describe('judges', () => {
  it('config: valid, or the problems and the check command', () => {
    expect(judgeConfig({ source: '/c.yaml', origin: 'flag', problems: [] })[0]?.status).toBe('ok')
    const [bad] = judgeConfig({ source: '/c.yaml', origin: 'flag', problems: [], error: 'boom' })
    expect(bad).toMatchObject({ status: 'fail' })
    expect(bad?.fix).toContain('shipshape --config /c.yaml config check')
  })

  it('rclone: missing is a fail only when an asset needs it', () => {
    expect(judgeRclone({ version: { ok: 'rclone v1.60.1' }, assets: [] })[0]?.status).toBe('ok')
    const missing = { error: new Error('rclone: not found') }
    expect(judgeRclone({ version: missing, assets: ['music'] })[0]).toMatchObject({
      status: 'fail',
      detail: 'rclone: not found: migrate-assets needs it for music',
    })
    expect(judgeRclone({ version: missing, assets: [] })[0]?.status).toBe('warn')
  })

  it('engine disk: nothing without an engine; remote not measured; low space warns', () => {
    expect(judgeEngineDisk(null)).toEqual([])
    const base = { storageDriver: 'overlay2', dockerRootDir: '/var/lib/docker' }
    expect(judgeEngineDisk({ ...base, address: 'tcp://h:2375' })[0]?.detail).toContain('is remote')
    const low = judgeEngineDisk({
      ...base,
      address: 'unix:///run/docker.sock',
      space: { ok: { free: 10, total: 100 }, disk: null },
    })[0]
    expect(low).toMatchObject({ status: 'warn' })
    expect(low?.detail).toContain('below 15 %')
    const unreadable = judgeEngineDisk({
      ...base,
      address: 'unix:///run/docker.sock',
      space: { error: new Error('ENOENT') },
    })[0]
    expect(unreadable?.detail).toContain('is not readable here (ENOENT)')
  })

  it('asset: not live is one fail; a root mount with allow_other: mount and allow_other ok', () => {
    const asset = { source: '/srv/m', mount: '/mnt/rd', mountType: 'fuse.rclone' }
    const down = judgeAsset({
      name: 'm',
      asset,
      state: { kind: 'not-mounted' },
      entry: null,
      bindings: null,
    })
    expect(down).toHaveLength(1)
    expect(down[0]).toMatchObject({ id: 'asset-mount:m', status: 'fail' })
    const live = judgeAsset({
      name: 'm',
      asset,
      state: { kind: 'live', fsType: 'fuse.rclone', allowOther: true, userId: 0 },
      entry: null,
      bindings: null,
    })
    expect(live.map((c) => [c.id, c.status])).toEqual([
      ['asset-mount:m', 'ok'],
      ['asset-allow-other:m', 'ok'],
    ])
  })

  it('dir: unsafe, not writable, creatable, little room', () => {
    const f = { key: 'stateDir' as const, dir: '/srv/state', uid: 0 }
    const open = judgeDir({ ...f, facts: { type: 'dir', mode: 0o777, uid: 0 } })[0]
    expect(open).toMatchObject({ id: 'state-dir', status: 'fail' })
    const ro = judgeDir({ ...f, facts: null, kind: { kind: 'dir' }, probe: 'EROFS: read-only' })[0]
    expect(ro?.fix).toContain('read-only filesystem')
    const created = judgeDir({
      ...f,
      facts: null,
      kind: { kind: 'missing' },
      parent: { path: '/srv', kind: { kind: 'dir' }, canWrite: null },
      space: { ok: { free: GiB / 2, total: 10 * GiB } },
    })[0]
    expect(created).toMatchObject({ status: 'warn' })
    expect(created?.detail).toContain('it will be created in /srv (writable)')
  })

  it('journals: none is ok; an unfinished one names its command', () => {
    const none = judgeJournals({
      dir: '/s/journal',
      uid: 0,
      files: [],
      lock: null,
      hostname: 'box1',
      configFlag: null,
    })
    expect(none[0]).toMatchObject({ id: 'journals', status: 'ok' })
    const j = {
      file: '/s/journal/rebuild-1.jsonl',
      operation: 'rebuild',
      args: { service: 'whisperx' },
      steps: new Map<string, JournalStepState>([
        ['build', { status: 'begun' } as JournalStepState],
      ]),
      plan: [{ id: 'build', title: 'Build' }],
      outcome: null,
      startedAt: '2026-01-01T00:00:00Z',
      pid: 42,
      host: 'box1',
    } as unknown as JournalState
    const [found] = judgeJournals({
      dir: '/s/journal',
      uid: 0,
      files: [{ file: j.file, facts: null, journal: j }],
      lock: { kind: 'free' },
      hostname: 'box1',
      configFlag: null,
    })
    expect(found).toMatchObject({ title: 'Unfinished rebuild of whisperx', status: 'fail' })
    expect(found?.fix).toContain('shipshape rebuild whisperx --resume')
  })

  it('systemd: not running is a warn per unit; a failed show is a warn naming it', () => {
    const off = judgeSystemd({
      unitDir: '/etc/systemd/system',
      installed: DOCTOR_UNITS.map(() => false),
      running: false,
      shown: [],
    })
    expect(off.map((c) => c.status)).toEqual(['warn', 'warn', 'warn', 'warn'])
    const on = judgeSystemd({
      unitDir: '/etc/systemd/system',
      installed: DOCTOR_UNITS.map(() => true),
      running: true,
      shown: DOCTOR_UNITS.map(() => ({ props: 'systemctl show x failed (exit 1)', service: null })),
    })
    expect(on.at(-1)).toMatchObject({ id: 'systemd-jobs', status: 'warn' })
    expect(on[0]).toMatchObject({ status: 'warn', detail: 'systemctl show x failed (exit 1)' })
  })
})

describe('the operations registry', () => {
  it('what blocks what: the migrate family by asset, rebuild/rollback/update by service', () => {
    expect(blockingOperations('migrate-assets')).toEqual([
      'migrate-assets',
      'migrate-assets-revert',
    ])
    expect(blockingOperations('migrate-assets-revert')).toEqual([
      'migrate-assets-revert',
      'migrate-assets',
      'migrate-assets-finalize',
    ])
    expect(blockingOperations('rollback')).toEqual(['rollback', 'rebuild', 'update'])
    for (const [op, spec] of Object.entries(OPERATIONS)) {
      for (const other of spec.blockedBy) {
        // blocking is mutual within a target kind
        expect(OPERATIONS[other]?.key, `${op} → ${other}`).toBe(spec.key)
      }
    }
  })

  it('rollback is barred once a rebuild passed its health check; the target by the key', () => {
    const steps = (s: string) => new Map([['health', { status: s } as JournalStepState]])
    expect(rollbackBarred({ operation: 'rebuild', steps: steps('done') })).toContain('health')
    expect(rollbackBarred({ operation: 'rebuild', steps: steps('begun') })).toBeNull()
    expect(rollbackBarred({ operation: 'migrate-assets', steps: steps('done') })).toBeNull()
    expect(journalTarget({ operation: 'rebuild', args: { service: 'w', asset: 'x' } })).toBe('w')
    expect(journalTarget({ operation: 'defrag', args: { asset: 'x' } })).toBe('x')
    expect(journalTarget({ operation: 'prune', args: {} })).toBeUndefined()
  })
})
