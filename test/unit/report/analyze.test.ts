import { describe, expect, it } from 'vitest'
import { analyzeReport, diskUsageByType, type ReportSettings } from '../../../lib/report/analyze.js'
import type { Inventory } from '../../../lib/report/gather.js'
import type { ContainerSummary, ImageSummary } from '../../../lib/docker/types.js'
import { computeGrowth } from '../../../lib/report/growth.js'
import { instruction } from '../../../lib/report/render.js'
import { jsonShapeProblems } from '../support/json-shape.js'

const GB = 1e9
const img = (
  id: string,
  tags: string[],
  size: number,
  shared: number,
  containers: number,
): ImageSummary => ({
  id,
  tags,
  digests: [],
  createdAt: '2025-12-04T00:00:00.000Z',
  sizeBytes: size,
  sharedBytes: shared,
  containers,
  labels: {},
})
const ctr = (
  name: string,
  imageId: string,
  state: string,
  sizeRw: number,
  binds: string[] = [],
): ContainerSummary => ({
  id: `id-${name}`,
  name,
  image: imageId,
  imageId,
  state,
  status: state,
  createdAt: '2025-12-04T00:00:00.000Z',
  sizeRwBytes: sizeRw,
  mounts: binds.map((source) => ({ type: 'bind', source, destination: '/data', readOnly: false })),
  labels: {},
})

function inventory(): Inventory {
  return {
    engine: {
      address: 'unix:///test.sock',
      version: '20.10.24',
      apiVersion: '1.41',
      engineApiVersion: '1.41',
      os: 'linux',
      arch: 'amd64',
      storageDriver: 'overlay2',
      dockerRootDir: '/var/lib/docker',
      imageStore: 'classic',
    },
    disk: {
      layersSize: 12 * GB,
      images: [
        img('sha256:whisper', ['whisperx_whisperx:latest'], 8.77 * GB, 0.08 * GB, 1),
        img('sha256:impro', ['impro-manager:latest'], 0.5 * GB, 0.08 * GB, 1),
        img('sha256:old', [], 2.5 * GB, 0.08 * GB, 0),
      ],
      containers: [
        ctr('whisperx', 'sha256:whisper', 'running', 1000),
        ctr('impro-manager', 'sha256:impro', 'running', 2000, ['/opt/impro-manager/music']),
        ctr('leftover', 'sha256:whisper', 'exited', 5000),
      ],
      volumes: [
        { name: 'pg', driver: 'local', mountpoint: '', sizeBytes: 300, refCount: 1, labels: {} },
        {
          name: 'orphan',
          driver: 'local',
          mountpoint: '',
          sizeBytes: 700,
          refCount: 0,
          labels: {},
        },
      ],
      buildCache: [
        {
          id: 'a',
          type: 'regular',
          description: '',
          sizeBytes: 100,
          inUse: false,
          shared: false,
          createdAt: null,
          lastUsedAt: null,
        },
        {
          id: 'b',
          type: 'regular',
          description: '',
          sizeBytes: 40,
          inUse: true,
          shared: false,
          createdAt: null,
          lastUsedAt: null,
        },
        {
          id: 'c',
          type: 'regular',
          description: '',
          sizeBytes: 999,
          inUse: false,
          shared: true,
          createdAt: null,
          lastUsedAt: null,
        },
      ],
    },
    histories: {
      'sha256:whisper': [
        {
          id: 'sha256:whisper',
          createdAt: '',
          createdBy: '/bin/sh -c #(nop)  CMD ["uvicorn"]',
          sizeBytes: 0,
          tags: [],
          comment: '',
        },
        {
          id: '<missing>',
          createdAt: '',
          createdBy: '/bin/sh -c pip install --no-cache-dir -r requirements.txt',
          sizeBytes: 7.9 * GB,
          tags: [],
          comment: '',
        },
        {
          id: '<missing>',
          createdAt: '',
          createdBy: '/bin/sh -c apt-get update && apt-get install -y ffmpeg git curl',
          sizeBytes: 0.745 * GB,
          tags: [],
          comment: '',
        },
      ],
    },
    paths: [
      {
        path: '/opt',
        exists: true,
        device: 1,
        entries: [
          { path: '/opt', sizeBytes: 5.2 * GB },
          { path: '/opt/impro-manager', sizeBytes: 5.1 * GB },
          { path: '/opt/impro-manager/music', sizeBytes: 4.1 * GB },
          { path: '/opt/impro-manager/nextjs-app', sizeBytes: 0.856 * GB },
          { path: '/opt/impro-manager/data', sizeBytes: 1.5e6 },
          { path: '/opt/whisperx', sizeBytes: 1e5 },
        ],
        mounts: [
          {
            mountPoint: '/opt/nfs',
            fsType: 'nfs4',
            source: 'srv:/x',
            options: [],
            superOptions: [],
            device: '0:50',
          },
        ],
        warnings: [],
      },
      {
        path: '/srv/missing',
        exists: false,
        device: null,
        entries: [],
        mounts: [],
        warnings: ['/srv/missing does not exist'],
      },
    ],
    bindSources: [
      { path: '/opt/impro-manager/music', isDirectory: true, onRootFs: true, sizeBytes: 4.1 * GB },
    ],
    warnings: [],
  }
}

const settings: ReportSettings = {
  host: 'srv759970',
  configSource: 'test',
  top: 2,
  bigImageBytes: 2 * GB,
  bigAssetsBytes: 1 * GB,
  assets: { 'impro-music': { source: '/opt/impro-manager/music' } },
}

describe('diskUsageByType', () => {
  it('does the arithmetic of docker system df', () => {
    const d = diskUsageByType(inventory().disk)
    // images: total LayersSize; reclaimable = total − Σ(size − shared) of used images
    expect(d.images).toEqual({
      count: 3,
      active: 2,
      sizeBytes: 12 * GB,
      reclaimableBytes: 12 * GB - (8.69 * GB + 0.42 * GB),
    })
    expect(d.containers).toEqual({ count: 3, active: 2, sizeBytes: 8000, reclaimableBytes: 5000 })
    expect(d.volumes).toEqual({ count: 2, active: 1, sizeBytes: 1000, reclaimableBytes: 700 })
    // build cache: shared records are not counted; in-use ones are not reclaimable
    expect(d.buildCache).toEqual({ count: 3, active: 1, sizeBytes: 140, reclaimableBytes: 100 })
    expect(d.totalBytes).toBe(12 * GB + 8000 + 1000 + 140)
  })
})

describe('analyzeReport', () => {
  const r = analyzeReport(inventory(), settings, new Date('2026-11-25T02:00:00Z'))

  it('fits its generated JSON Schema (schema/shipshape.report.1.json)', () => {
    expect(jsonShapeProblems(r)).toEqual([])
  })

  it('lists images by size with every history entry', () => {
    expect(r.schema).toBe('shipshape.report/1')
    expect(r.images.map((i) => i.id)).toEqual(['sha256:whisper', 'sha256:old', 'sha256:impro'])
    const w = r.images[0]!
    expect(w.big).toBe(true)
    expect(w.layers).toHaveLength(3)
    expect(w.layers[1]).toMatchObject({
      createdBy: '/bin/sh -c pip install --no-cache-dir -r requirements.txt',
      sizeBytes: 7.9 * GB,
    })
    expect(r.images[1]).toMatchObject({ dangling: true, big: true, containers: 0 })
  })

  it('attributes bind mounts to path children and keeps bind-mounted ones beyond top N', () => {
    const opt = r.paths[0]!
    expect(opt.sizeBytes).toBe(5.2 * GB)
    expect(opt.children.map((c) => c.path)).toEqual([
      '/opt/impro-manager',
      '/opt/impro-manager/music',
    ])
    expect(opt.children[1]!.mountedBy).toEqual([
      {
        container: 'impro-manager',
        source: '/opt/impro-manager/music',
        destination: '/data',
        readOnly: false,
      },
    ])
    expect(opt.children[0]!.depth).toBe(1)
    expect(opt.children[1]!.depth).toBe(2)
    expect(opt.mounts).toEqual([{ path: '/opt/nfs', fsType: 'nfs4', source: 'srv:/x' }])
  })

  it('reports a missing path as a warning, not a crash', () => {
    expect(r.paths[1]).toMatchObject({
      path: '/srv/missing',
      exists: false,
      sizeBytes: null,
      children: [],
    })
    expect(r.warnings).toContain('/srv/missing does not exist')
  })

  it('recommends prune, migrate-assets and inspect with savings, risk and command', () => {
    const byKind = Object.fromEntries(r.recommendations.map((x) => [x.kind, x]))
    expect(byKind['migrate-assets']).toMatchObject({
      target: '/opt/impro-manager/music',
      estimatedSavingsBytes: 4.1 * GB,
      risk: 'low',
      command: 'shipshape migrate-assets impro-music',
    })
    expect(byKind['prune-containers']).toMatchObject({
      estimatedSavingsBytes: 5000,
      command: 'shipshape prune',
    })
    expect(byKind['prune-build-cache']?.estimatedSavingsBytes).toBe(100)
    expect(byKind['prune-volumes']?.risk).toBe('high')
    expect(byKind['prune-dangling-images']?.estimatedSavingsBytes).toBe(2.42 * GB)
    const inspect = r.recommendations
      .filter((x) => x.kind === 'inspect-image')
      .map((x) => x.command)
    // an untagged image is named by its short id
    expect(inspect.sort()).toEqual([
      'shipshape inspect old',
      'shipshape inspect whisperx_whisperx:latest',
    ])
    // biggest savings first, unknown savings last
    expect(r.recommendations.at(-1)?.estimatedSavingsBytes).toBeNull()
  })

  it('does not recommend migrating a bind source off the root filesystem or under the threshold', () => {
    const inv = inventory()
    inv.bindSources = [
      { path: '/opt/impro-manager/music', isDirectory: true, onRootFs: false, sizeBytes: 4.1 * GB },
      { path: '/opt/small', isDirectory: true, onRootFs: true, sizeBytes: 0.5 * GB },
    ]
    const r2 = analyzeReport(inv, settings, new Date())
    expect(r2.recommendations.filter((x) => x.kind === 'migrate-assets')).toEqual([])
  })
})

describe('computeGrowth', () => {
  it('reports deltas, new and removed images, and path growth', () => {
    const before = analyzeReport(inventory(), settings, new Date('2026-11-24T02:00:00Z'))
    const inv = inventory()
    inv.disk.images[0]!.sizeBytes = 9 * GB
    inv.disk.images.pop()
    inv.disk.images.push(img('sha256:new', ['new:1'], 1 * GB, 0, 0))
    inv.paths[0]!.entries[2]!.sizeBytes = 4.6 * GB
    const after = analyzeReport(inv, settings, new Date('2026-11-25T02:00:00Z'))
    const g = computeGrowth(before, after, '/r/prev.json', 10)
    expect(g.previousAt).toBe('2026-11-24T02:00:00.000Z')
    expect(g.images).toEqual([
      {
        ref: 'whisperx_whisperx:latest',
        previousBytes: 8.77 * GB,
        currentBytes: 9 * GB,
        deltaBytes: 9 * GB - 8.77 * GB,
      },
    ])
    expect(g.newImages).toEqual([{ ref: 'new:1', sizeBytes: 1 * GB }])
    expect(g.removedImages.map((i) => i.ref)).toEqual(['old'])
    expect(g.paths).toContainEqual({
      path: '/opt/impro-manager/music',
      previousBytes: 4.1 * GB,
      currentBytes: 4.6 * GB,
      deltaBytes: 4.6 * GB - 4.1 * GB,
    })
  })
})

describe('instruction', () => {
  it('reads history like a Dockerfile', () => {
    expect(instruction('/bin/sh -c #(nop)  CMD ["sleep" "1"]')).toBe('CMD ["sleep" "1"]')
    expect(instruction('/bin/sh -c apt-get install -y git')).toBe('RUN apt-get install -y git')
    expect(instruction('RUN /bin/sh -c pip install x # buildkit')).toBe(
      'RUN /bin/sh -c pip install x # buildkit',
    )
  })
})
