/**
 * The report as a Prometheus textfile: names, labels, escaping, the newest good run per operation
 * and target; and promtool (Debian's prometheus package) accepts the text when it is installed.
 */
import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import {
  backupRepo,
  escapeLabel,
  lastSuccesses,
  renderMetrics,
} from '../../../lib/report/metrics.js'
import type { Report } from '../../../lib/report/types.js'

const usage = (size: number, reclaim: number) => ({
  count: 1,
  active: 1,
  sizeBytes: size,
  reclaimableBytes: reclaim,
})

const report = {
  host: 'srv1',
  generatedAt: '2026-12-08T02:00:00.000Z',
  disk: {
    images: usage(9e9, 2e9),
    containers: usage(1e6, 0),
    volumes: usage(5e8, 1e8),
    buildCache: usage(3e8, 3e8),
    totalBytes: 0,
    reclaimableBytes: 0,
  },
  images: [
    { id: 'sha256:aaa', tags: ['whisperx:latest'], big: true, sizeBytes: 8.8e9, uniqueBytes: 8e9 },
    {
      id: 'sha256:bbb',
      tags: ['web:shipshape-prev-20261201T000000Z'],
      big: false,
      sizeBytes: 2e8,
      uniqueBytes: 1e7,
    },
    {
      id: 'sha256:ccc',
      tags: ['web:shipshape-backup-20261202T000000Z'],
      big: false,
      sizeBytes: 3e8,
      uniqueBytes: null,
    },
    { id: 'sha256:ddd', tags: ['registry:5000/x/y:1'], big: false, sizeBytes: 1, uniqueBytes: 1 },
  ],
  paths: [
    { path: '/opt/"odd"\\dir', sizeBytes: 1234 },
    { path: '/gone', sizeBytes: null },
  ],
  migrations: [
    {
      asset: 'music',
      original: { path: '/srv/music.orig', bytes: 4e9, keepUntil: '' },
      archive: { where: 'local', path: '/b/a.tar.zst', bytes: 3.9e9 },
    },
  ],
} as unknown as Report

const journals = [
  {
    operation: 'rebuild',
    args: { service: 'web' },
    outcome: 'ok',
    startedAt: '2026-12-01T10:00:00.000Z',
    endedAt: '2026-12-01T10:01:30.000Z',
  },
  {
    operation: 'rebuild',
    args: { service: 'web' },
    outcome: 'ok',
    startedAt: '2026-12-05T10:00:00.000Z',
    endedAt: '2026-12-05T10:00:40.000Z',
  },
  {
    operation: 'rebuild',
    args: { service: 'web' },
    outcome: 'rolled-back',
    startedAt: '2026-12-06T10:00:00.000Z',
    endedAt: '2026-12-06T10:00:10.000Z',
  },
  {
    operation: 'prune',
    args: {},
    outcome: 'ok',
    startedAt: '2026-12-07T03:30:00.000Z',
    endedAt: '2026-12-07T03:30:05.500Z',
  },
  {
    operation: 'migrate-assets',
    args: { asset: 'music' },
    outcome: null,
    startedAt: '2026-12-07T05:00:00.000Z',
    endedAt: null,
  },
] as const

describe('report metrics (Prometheus textfile)', () => {
  const text = renderMetrics({
    report,
    durationSeconds: 3.21456,
    lastSuccess: lastSuccesses(journals.map((j) => ({ ...j, args: { ...j.args } }))),
  })
  const lines = text.split('\n')

  it('engine bytes and reclaimable by type, big images, paths, assets by place', () => {
    expect(lines).toContain('shipshape_engine_bytes{host="srv1",type="images"} 9000000000')
    expect(lines).toContain(
      'shipshape_engine_reclaimable_bytes{host="srv1",type="build_cache"} 300000000',
    )
    expect(lines).toContain('shipshape_image_bytes{host="srv1",image="whisperx:latest"} 8800000000')
    expect(text).not.toContain('image="registry:5000/x/y:1"')
    expect(lines).toContain('shipshape_path_bytes{host="srv1",path="/opt/\\"odd\\"\\\\dir"} 1234')
    expect(text).not.toContain('path="/gone"')
    expect(lines).toContain(
      'shipshape_asset_bytes{host="srv1",asset="music",place="original"} 4000000000',
    )
    expect(lines).toContain(
      'shipshape_asset_bytes{host="srv1",asset="music",place="archive_local"} 3900000000',
    )
  })

  it('backups per repository: count and own bytes (size when unknown)', () => {
    expect(lines).toContain('shipshape_backup_images{host="srv1",repository="web"} 2')
    expect(lines).toContain('shipshape_backup_bytes{host="srv1",repository="web"} 310000000')
    expect(backupRepo(['registry:5000/web:shipshape-prev-1'])).toBe('registry:5000/web')
    expect(backupRepo(['registry:5000/web'])).toBeNull()
  })

  it('the newest good run of each operation and target, as a Unix time, with its duration', () => {
    expect(lines).toContain(
      `shipshape_last_success_timestamp_seconds{host="srv1",operation="rebuild",target="web"} ${Date.parse('2026-12-05T10:00:40.000Z') / 1000}`,
    )
    expect(lines).toContain(
      'shipshape_run_duration_seconds{host="srv1",operation="rebuild",target="web"} 40',
    )
    expect(lines).toContain(
      'shipshape_run_duration_seconds{host="srv1",operation="prune",target=""} 5.5',
    )
    expect(lines).toContain(
      'shipshape_run_duration_seconds{host="srv1",operation="report",target=""} 3.215',
    )
    expect(text).not.toContain('operation="migrate-assets"')
  })

  it('one HELP and TYPE per family, a final newline; escaping of label values', () => {
    const types = lines.filter((l) => l.startsWith('# TYPE '))
    expect(new Set(types).size).toBe(types.length)
    expect(types.every((l) => l.endsWith(' gauge'))).toBe(true)
    expect(text.endsWith('\n')).toBe(true)
    expect(escapeLabel('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd')
  })

  it('promtool check metrics accepts it (skipped, said, without promtool)', (ctx) => {
    const which = spawnSync('promtool', ['--version'], { encoding: 'utf8' })
    if (which.error) {
      if (process.env.SHIPSHAPE_REQUIRE_PROMTOOL) throw new Error('promtool is not installed')
      console.warn('[metrics] promtool not installed: `promtool check metrics` skipped')
      ctx.skip()
      return
    }
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0)
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('')
  })
})
