import { describe, expect, it } from 'vitest'
import { serviceSchema } from '../../../lib/config/schema.js'
import { parseImageRef } from '../../../lib/rebuild/context.js'
import {
  chooseRollback,
  isNewer,
  pullRefFor,
  type BackupImage,
} from '../../../lib/rebuild/index.js'
import { updateRecommendations } from '../../../lib/report/analyze.js'
import { judgeBuildSpace, judgeService } from '../../../lib/rebuild/policy.js'
import { keptNames } from '../../../lib/rebuild/records.js'
import { labelFiles } from '../../../lib/shared/labels.js'

describe('parseImageRef', () => {
  it.each([
    ['app', { repo: 'app', tag: 'latest' }],
    ['app:1.2', { repo: 'app', tag: '1.2' }],
    ['reg:5000/team/app', { repo: 'reg:5000/team/app', tag: 'latest' }],
    ['reg:5000/team/app:v3', { repo: 'reg:5000/team/app', tag: 'v3' }],
    ['whisperx_whisperx', { repo: 'whisperx_whisperx', tag: 'latest' }],
    ['app@sha256:' + 'a'.repeat(64), null],
    ['sha256:' + 'b'.repeat(64), null],
    ['0123456789ab', null],
    ['', null],
  ])('%s', (ref, want) => {
    expect(parseImageRef(ref)).toEqual(want)
  })
})

describe('judgeService', () => {
  const svc = (h: boolean) =>
    serviceSchema.parse({
      compose: '/opt/a/docker-compose.yml',
      ...(h ? { health: { url: 'http://127.0.0.1/health' } } : {}),
    })
  it('a health check is required', () => {
    const r = judgeService({
      name: 'a',
      service: svc(false),
      imageRef: 'a_a',
      containers: [{ name: 'a_a_1', running: true }],
      needRunning: true,
    })
    expect(r.map((x) => x.check)).toEqual(['health'])
    expect(r[0]?.remedy).toMatch(/services\.a\.health/)
  })
  it('an image run by id or digest has no tag to build under', () => {
    const r = judgeService({
      name: 'a',
      service: svc(true),
      imageRef: 'sha256:' + 'c'.repeat(64),
      containers: [{ name: 'a', running: true }],
      needRunning: true,
    })
    expect(r.map((x) => x.check)).toEqual(['image'])
  })
  it('rebuild needs a running service; rollback does not', () => {
    const base = {
      name: 'a',
      service: svc(true),
      imageRef: 'a_a',
      containers: [{ name: 'a_a_1', running: false }],
    }
    expect(judgeService({ ...base, needRunning: true }).map((x) => x.check)).toEqual(['containers'])
    expect(judgeService({ ...base, needRunning: false })).toEqual([])
  })
})

describe('judgeBuildSpace', () => {
  it('refuses below the need, names both sizes', () => {
    expect(judgeBuildSpace({ needBytes: 100, freeBytes: 100, dir: '/var/lib/docker' })).toEqual([])
    const r = judgeBuildSpace({ needBytes: 9e9, freeBytes: 2e9, dir: '/var/lib/docker' })
    expect(r[0]?.check).toBe('space')
    expect(r[0]?.message).toMatch(/9 GB .* 2 GB free/)
  })
})

describe('chooseRollback', () => {
  const b = (
    tag: string,
    id: string,
    created: string,
    source: string | null,
    kind: 'image' | 'commit' = 'image',
  ): BackupImage => ({ tag, id, kind, created, sizeBytes: 1, source })
  // rebuild #1: A → B (prev1 = copy of A); rebuild #2 from B failed (prev2 = copy of B)
  const prev1 = b(
    'w:shipshape-prev-20261101T000000Z',
    'sha256:p1',
    '2026-11-01T00:00:00Z',
    'sha256:A',
  )
  const commit1 = b(
    'w:shipshape-backup-20261101T000000Z',
    'sha256:c1',
    '2026-11-01T00:00:00Z',
    'sha256:A',
    'commit',
  )
  const prev2 = b(
    'w:shipshape-prev-20261102T000000Z',
    'sha256:p2',
    '2026-11-02T00:00:00Z',
    'sha256:B',
  )
  const all = [prev2, commit1, prev1]
  it('skips a copy of what runs: back to the version before', () => {
    expect(chooseRollback(all, { id: 'sha256:B', source: null, created: null })).toBe(prev1)
  })
  it('the newest other image backup otherwise; never a commit by default', () => {
    expect(chooseRollback(all, { id: 'sha256:C', source: null, created: null })).toBe(prev2)
  })
  it('a second rollback goes further back, not forward again', () => {
    // now running prev1 (a copy of A, made 11-01): prev2 is newer → not a candidate
    const r = chooseRollback(all, {
      id: 'sha256:p1',
      source: 'sha256:A',
      created: '2026-11-01T00:00:00Z',
    })
    expect(r).toBeNull()
  })
  it('backups without a source label (older shipshape) still count', () => {
    const old = b('w:shipshape-prev-20261020T000000Z', 'sha256:o', '2026-10-20T00:00:00Z', null)
    expect(chooseRollback([old], { id: 'sha256:B', source: null, created: null })).toBe(old)
    expect(chooseRollback([old], { id: 'sha256:o', source: null, created: null })).toBeNull()
  })
})

describe('keptNames and labelFiles', () => {
  it('numbers two kept files of the same name', () => {
    const files = ['/opt/a/docker-compose.yml', '/opt/a/Dockerfile', '/opt/a/sub/Dockerfile']
    expect(keptNames(files)).toEqual(['docker-compose.yml', 'Dockerfile', 'Dockerfile.2'])
  })
  it('resolves compose v1 relative config_files against the working dir', () => {
    expect(
      labelFiles({
        labels: {
          'com.docker.compose.project.config_files':
            'docker-compose.yml,docker-compose.override.yml',
          'com.docker.compose.project.working_dir': '/opt/app',
        },
      }),
    ).toEqual(['/opt/app/docker-compose.yml', '/opt/app/docker-compose.override.yml'])
    expect(
      labelFiles({
        labels: { 'com.docker.compose.project.config_files': '/srv/x/compose.yaml' },
      }),
    ).toEqual(['/srv/x/compose.yaml'])
  })
})

describe('update: isNewer, pullRefFor, the report’s recommendation', () => {
  it('a registry digest the image was pulled as is not newer', () => {
    const d = `sha256:${'a'.repeat(64)}`
    expect(isNewer([`127.0.0.1:5000/app@${d}`], d)).toBe(false)
    expect(isNewer([`127.0.0.1:5000/app@sha256:${'b'.repeat(64)}`], d)).toBe(true)
    expect(isNewer([], d)).toBe(true)
  })
  it('--to TAG is a tag of the repository, --to REF a reference; else configured, else what runs', () => {
    const o = { imageRef: 'reg:5000/team/app:1', repo: 'reg:5000/team/app' }
    expect(pullRefFor({ ...o, to: '2' })).toBe('reg:5000/team/app:2')
    expect(pullRefFor({ ...o, to: 'other/app:3' })).toBe('other/app:3')
    expect(pullRefFor({ ...o, configured: 'app:stable' })).toBe('app:stable')
    expect(pullRefFor(o)).toBe('reg:5000/team/app:1')
  })
  it('recommends shipshape update for a newer image only', () => {
    const base = { mode: 'notify', ref: 'app:1', runs: `sha256:${'c'.repeat(64)}` }
    const recs = updateRecommendations([
      { ...base, service: 'a', remoteDigest: `sha256:${'d'.repeat(64)}`, newer: true },
      { ...base, service: 'b', remoteDigest: `sha256:${'d'.repeat(64)}`, newer: false },
      { ...base, service: 'c', remoteDigest: null, newer: null, error: 'unreachable' },
    ])
    expect(recs).toHaveLength(1)
    expect(recs[0]).toMatchObject({
      kind: 'update-image',
      target: 'a',
      command: 'shipshape update a',
    })
  })
})
