// Each prune rule on its own (lib/prune/rules/): what it selects, what it keeps and why, and
// what it must not select. The whole pipeline is test/unit/prune/plan.test.ts.
import { describe, expect, it } from 'vitest'
import { planContext } from '../../../lib/prune/context.js'
import { imageFacts, type ImageSet } from '../../../lib/prune/facts.js'
import { keepParents } from '../../../lib/prune/parents.js'
import { RULES, RULE_RANK } from '../../../lib/prune/rules/index.js'
import { buildCache } from '../../../lib/prune/rules/build-cache.js'
import { danglingImage } from '../../../lib/prune/rules/dangling-image.js'
import { diskPressure } from '../../../lib/prune/rules/disk-pressure.js'
import { keptOriginal } from '../../../lib/prune/rules/kept-original.js'
import { migratedArchive } from '../../../lib/prune/rules/migrated-archive.js'
import { oldBackup } from '../../../lib/prune/rules/old-backup.js'
import { oldTag } from '../../../lib/prune/rules/old-tag.js'
import { stoppedContainer } from '../../../lib/prune/rules/stopped-container.js'
import { unusedImage } from '../../../lib/prune/rules/unused-image.js'
import { unusedVolume } from '../../../lib/prune/rules/unused-volume.js'
import type { Draft, Rule } from '../../../lib/prune/rules/types.js'
import type {
  Candidate,
  PruneContainer,
  PruneImage,
  PruneInventory,
  PrunePolicy,
} from '../../../lib/prune/types.js'

const NOW = new Date('2025-06-15T12:00:00.000Z')
const DAY = 86_400_000
const ago = (ms: number): string => new Date(NOW.getTime() - ms).toISOString()
const id = (s: string): string => `sha256:${s.padEnd(64, '0')}`

const policy = (over: Partial<PrunePolicy> = {}): PrunePolicy => ({
  keepTags: 1,
  backupsFor: 7 * DAY,
  unusedImagesAfter: 30 * DAY,
  stoppedContainersAfter: 7 * DAY,
  buildCacheKeep: 100,
  diskThreshold: 0.85,
  protect: { images: ['keep/*'], labels: ['shipshape.keep=true'] },
  danglingAfter: 7 * DAY,
  volumes: true,
  volumesAfter: 30 * DAY,
  apply: false,
  ...over,
})

const image = (key: string, tags: string[], over: Partial<PruneImage> = {}): PruneImage => ({
  id: id(key),
  tags,
  createdAt: ago(60 * DAY),
  sizeBytes: 100,
  sharedBytes: null,
  labels: {},
  parentId: '',
  arrivedAt: null,
  ...over,
})

const container = (
  name: string,
  imageKey: string,
  state: string,
  over: Partial<PruneContainer> = {},
): PruneContainer => ({
  id: `c-${name}`,
  name,
  imageId: id(imageKey),
  state,
  createdAt: ago(60 * DAY),
  finishedAt: state === 'running' ? null : ago(30 * DAY),
  sizeRwBytes: 10,
  labels: {},
  ...over,
})

const inventory = (over: Partial<PruneInventory> = {}): PruneInventory => ({
  images: [],
  containers: [],
  volumes: [],
  buildCache: [],
  disk: null,
  lastUsed: {},
  lastUsedVolumes: {},
  configuredProjects: {},
  pins: [],
  originals: [],
  archives: [],
  ...over,
})

/** one rule over an inventory, with the draft the rules before it would leave (or the one given) */
function run(rule: Rule, inv: PruneInventory, p = policy(), draft?: Draft) {
  const ctx = planContext(inv, p, NOW)
  const before = draft ?? stoppedContainer.select({ ctx, images: NO_IMAGES, draft: EMPTY })
  const images = imageFacts(ctx, before.candidates)
  const out = rule.select({ ctx, images, draft: before })
  const brief = (c: Candidate) => `${c.kind} ${c.name}`
  return {
    out,
    taken: out.candidates.map(brief),
    kept: out.kept.map((k) => `${k.kind} ${k.name}: ${k.reason}`),
  }
}
const EMPTY: Draft = { candidates: [], kept: [] }
const NO_IMAGES: ImageSet = { all: [], byId: new Map(), children: new Map() }

describe('the rule list', () => {
  it('runs every rule once, containers first and disk-pressure last; lists them by order', () => {
    expect(RULES.map((r) => r.id)).toEqual([
      'stopped-container',
      'old-backup',
      'dangling-image',
      'unused-image',
      'old-tag',
      'build-cache',
      'unused-volume',
      'kept-original',
      'migrated-archive',
      'disk-pressure',
    ])
    const listed = [...RULES].sort((a, b) => a.order - b.order).map((r) => r.id)
    expect(listed).toEqual([
      'stopped-container',
      'dangling-image',
      'unused-image',
      'old-tag',
      'old-backup',
      'build-cache',
      'unused-volume',
      'kept-original',
      'migrated-archive',
      'disk-pressure',
    ])
    expect(new Set(RULES.map((r) => r.order)).size).toBe(RULES.length)
    expect(RULE_RANK.get('old-backup')).toBe(5)
  })

  it('each rule emits only its own id and kinds', () => {
    const inv = inventory({
      images: [image('a', ['app:1']), image('b', ['app:2']), image('c', [])],
      containers: [container('old', 'a', 'exited')],
      volumes: [{ name: 'v', sizeBytes: 1, refCount: 0, labels: {}, createdAt: ago(90 * DAY) }],
      buildCache: [
        { id: 'b', sizeBytes: 500, inUse: false, shared: false, createdAt: null, lastUsedAt: null },
      ],
      disk: { usedBytes: 99, totalBytes: 100 },
    })
    for (const rule of RULES) {
      for (const c of run(rule, inv).out.candidates) {
        expect(c.rule).toBe(rule.id)
        expect(rule.kinds).toContain(c.kind)
      }
    }
  })
})

describe('stopped-container', () => {
  it('takes a container stopped past the limit; not a running, recent, pinned, protected or aside one', () => {
    const inv = inventory({
      containers: [
        container('old', 'a', 'exited'),
        container('run', 'a', 'running'),
        container('recent', 'a', 'exited', { finishedAt: ago(DAY) }),
        container('pinned', 'a', 'dead'),
        container('label', 'a', 'exited', { labels: { 'shipshape.keep': 'true' } }),
        container('web-shipshape-old-20250601T000000Z', 'a', 'exited'),
      ],
      pins: [{ values: ['pinned'], reason: 'named by a run' }],
    })
    const r = run(stoppedContainer, inv)
    expect(r.taken).toEqual(['container old'])
    expect(r.out.candidates[0]!.reason).toBe('exited 30d ago (stopped containers go after 7d)')
    expect(r.kept).toEqual([
      'container pinned: named by a run',
      'container label: protected by the label shipshape.keep=true',
      'container web-shipshape-old-20250601T000000Z: kept aside by a rebuild: its undo puts it back',
    ])
  })
})

describe('old-backup', () => {
  const b = (key: string, kind: 'image' | 'commit', days: number) =>
    image(key, [], {
      labels: {
        'shipshape.backup.of': 'web',
        'shipshape.backup.kind': kind,
        'shipshape.backup.created': ago(days * DAY),
      },
    })
  it('keeps the newest of each kind whatever its age, takes the older ones past backupsFor', () => {
    const inv = inventory({
      images: [b('a', 'image', 30), b('b', 'image', 20), b('c', 'commit', 30)],
    })
    const r = run(oldBackup, inv)
    expect(r.out.candidates.map((c) => c.id)).toEqual([id('a')])
    expect(r.kept).toEqual([
      `image ${id('b').slice(7, 19)}: the newest image backup of web: kept whatever its age`,
      `image ${id('c').slice(7, 19)}: the newest commit backup of web: kept whatever its age`,
    ])
  })
  it('leaves a young backup and every image that is not a backup', () => {
    const inv = inventory({
      images: [b('a', 'image', 3), b('b', 'image', 1), image('c', ['app:1'])],
    })
    expect(run(oldBackup, inv).out).toEqual({ candidates: [], kept: [] })
  })
})

describe('dangling-image', () => {
  it('takes an untagged image past danglingAfter; keeps a young one, leaves tagged ones', () => {
    const inv = inventory({
      images: [
        image('a', [], { createdAt: ago(10 * DAY) }),
        image('b', [], { createdAt: ago(DAY) }),
        image('c', ['app:1']),
      ],
    })
    const r = run(danglingImage, inv)
    expect(r.out.candidates.map((c) => c.id)).toEqual([id('a')])
    expect(r.kept).toEqual([
      `image ${id('b').slice(7, 19)}: dangling, but built or tagged here 1d ago (dangling images go after 7d)`,
    ])
  })
  it('keeps one in use by a running container', () => {
    const inv = inventory({
      images: [image('a', [], { createdAt: ago(10 * DAY) })],
      containers: [container('web', 'a', 'running')],
    })
    expect(run(danglingImage, inv).kept).toEqual([
      `image ${id('a').slice(7, 19)}: in use by web (running)`,
    ])
  })
})

describe('unused-image', () => {
  it('takes a tagged image unused past the limit; not a recently used, protected or held one', () => {
    const inv = inventory({
      images: [
        image('a', ['app:1']),
        image('b', ['app:2']),
        image('c', ['keep/db:1']),
        image('d', ['app:3', 'app:shipshape-hold-20250614T000000Z']),
      ],
      lastUsed: { [id('b')]: ago(DAY) },
    })
    const r = run(unusedImage, inv)
    expect(r.taken).toEqual(['image app:1'])
    expect(r.out.candidates[0]!.reason).toBe(
      'created 60d ago, no recorded use (unused images go after 30d)',
    )
    expect(r.kept).toEqual([
      'image keep/db:1: protected by protect.images keep/*',
      'image app:3: held by a running rebuild or rollback (app:shipshape-hold-20250614T000000Z)',
    ])
  })
  it('counts a container this plan removes as a use, and says it', () => {
    const inv = inventory({
      images: [image('a', ['app:1'])],
      containers: [container('x', 'a', 'exited', { finishedAt: ago(40 * DAY) })],
    })
    const r = run(unusedImage, inv)
    expect(r.out.candidates[0]!.reason).toBe(
      'its container x stopped 40d ago (unused images go after 30d); no container left once x goes (this plan)',
    )
  })
})

describe('old-tag', () => {
  it('untags all but the newest keepTags tags; an image left with no tag goes whole', () => {
    const inv = inventory({
      images: [
        image('a', ['app:1'], { createdAt: ago(3 * DAY) }),
        image('b', ['app:2', 'other:x'], { createdAt: ago(2 * DAY) }),
        image('c', ['app:3'], { createdAt: ago(DAY) }),
      ],
    })
    const r = run(oldTag, inv)
    expect(r.taken.sort()).toEqual(['image app:1', 'tag app:2'])
    expect(r.out.candidates.find((c) => c.kind === 'tag')!.reason).toBe(
      'the 2nd newest tag of app (keeping the newest 1 tag); the image keeps its other tags',
    )
  })
  it('does not count shipshape tags, and leaves images an earlier rule took', () => {
    const inv = inventory({
      images: [
        image('a', ['app:1'], { createdAt: ago(3 * DAY) }),
        image('b', ['app:shipshape-prev-20250101T000000Z', 'app:2'], { createdAt: ago(DAY) }),
      ],
    })
    const taken: Draft = {
      candidates: [
        {
          kind: 'image',
          name: 'app:1',
          id: id('a'),
          sizeBytes: 1,
          rule: 'unused-image',
          reason: '',
        },
      ],
      kept: [],
    }
    expect(run(oldTag, inv, policy(), taken).out.candidates).toEqual([])
  })
  it('keeps a guarded image’s extra tag, once', () => {
    const inv = inventory({
      images: [
        image('a', ['app:1'], { createdAt: ago(3 * DAY) }),
        image('b', ['app:2'], { createdAt: ago(DAY) }),
      ],
      containers: [container('web', 'a', 'running')],
    })
    expect(run(oldTag, inv).kept).toEqual(['tag app:1: in use by web (running)'])
    const already: Draft = {
      candidates: [],
      kept: [{ kind: 'image', name: 'app:1', id: id('a'), reason: 'x' }],
    }
    expect(run(oldTag, inv, policy(), already).kept).toEqual([])
  })
})

describe('build-cache', () => {
  const rec = (key: string, bytes: number, days: number, over = {}) => ({
    id: key,
    sizeBytes: bytes,
    inUse: false,
    shared: false,
    createdAt: ago(days * DAY),
    lastUsedAt: null,
    ...over,
  })
  it('over buildCacheKeep: the least recently used records until under it', () => {
    const r = run(
      buildCache,
      inventory({ buildCache: [rec('a', 80, 1), rec('b', 80, 2), rec('c', 80, 3)] }),
    )
    expect(r.out.candidates).toEqual([
      expect.objectContaining({ kind: 'build-cache', sizeBytes: 160, rule: 'build-cache' }),
    ])
    expect(r.out.candidates[0]!.reason).toMatch(/the 2 least recently used records$/)
  })
  it('nothing at or under the keep; in-use and shared records count for nothing', () => {
    const inv = inventory({
      buildCache: [
        rec('a', 100, 1),
        rec('b', 500, 2, { inUse: true }),
        rec('c', 500, 2, { shared: true }),
      ],
    })
    expect(run(buildCache, inv).out.candidates).toEqual([])
  })
})

describe('unused-volume', () => {
  const vol = (name: string, over = {}) => ({
    name,
    sizeBytes: 5,
    refCount: 0 as number | null,
    labels: {} as Record<string, string>,
    createdAt: ago(90 * DAY),
    ...over,
  })
  it('only when prune.volumes is on', () => {
    expect(
      run(unusedVolume, inventory({ volumes: [vol('v')] }), policy({ volumes: false })).out,
    ).toEqual({
      candidates: [],
      kept: [],
    })
  })
  it('takes an unused old volume; keeps in-use, uncounted, young and compose-project ones', () => {
    const inv = inventory({
      volumes: [
        vol('a'),
        vol('b', { refCount: 1 }),
        vol('c', { refCount: null }),
        vol('d', { createdAt: ago(DAY) }),
        vol('e', { labels: { 'com.docker.compose.project': 'p' } }),
      ],
      configuredProjects: { p: 'web' },
    })
    const r = run(unusedVolume, inv)
    expect(r.taken).toEqual(['volume a'])
    expect(r.kept.map((k) => k.split(':')[0])).toEqual([
      'volume b',
      'volume c',
      'volume d',
      'volume e',
    ])
  })
})

describe('kept-original and migrated-archive', () => {
  it('an original past keepUntil goes; a blocked, pinned or not yet due one does not', () => {
    const o = (p: string, days: number, blocker: string | null = null) => ({
      asset: 'media',
      path: p,
      bytes: 7,
      keepUntil: ago(days * DAY),
      blocker,
    })
    const inv = inventory({
      originals: [
        o('/a', 1),
        o('/b', 1, 'the migration no longer stands'),
        o('/c', 1),
        o('/d', -1),
      ],
      pins: [{ values: ['/c'], reason: 'pinned' }],
    })
    const r = run(keptOriginal, inv)
    expect(r.taken).toEqual(['original /a'])
    expect(r.kept).toEqual([
      'original /b: media: the migration no longer stands',
      'original /c: pinned',
    ])
  })
  it('an archive to move or remove goes; one to keep stays with its note', () => {
    const a = (n: string, action: 'move' | 'remove' | 'keep') => ({
      asset: 'media',
      path: `/bk/${n}/archive.tar.zst`,
      workDir: `/bk/${n}`,
      bytes: 3,
      action,
      note: action === 'keep' ? 'keepBackup not passed' : '2025-01-01',
    })
    const r = run(
      migratedArchive,
      inventory({ archives: [a('1', 'move'), a('2', 'remove'), a('3', 'keep')] }),
    )
    expect(r.taken).toEqual(['archive /bk/1/archive.tar.zst', 'archive /bk/2/archive.tar.zst'])
    expect(r.kept).toEqual(['archive /bk/3/archive.tar.zst: media: keepBackup not passed'])
  })
})

describe('disk-pressure', () => {
  const imgs = [
    image('a', ['app:1'], { createdAt: ago(3 * DAY), sizeBytes: 10 }),
    image('b', ['app:2'], { createdAt: ago(2 * DAY), sizeBytes: 10 }),
    image('c', ['app:3'], { createdAt: ago(DAY), sizeBytes: 10 }),
  ]
  it('under the threshold after the rest of the plan: nothing', () => {
    expect(
      run(diskPressure, inventory({ images: imgs, disk: { usedBytes: 80, totalBytes: 100 } }))
        .taken,
    ).toEqual([])
    expect(run(diskPressure, inventory({ images: imgs, disk: null })).taken).toEqual([])
  })
  it('over it: least recently used first, until under; an untag of a taken image is withdrawn', () => {
    const untag: Candidate = {
      kind: 'tag',
      name: 'app:1',
      id: id('a'),
      sizeBytes: 0,
      rule: 'old-tag',
      reason: '',
    }
    const r = run(
      diskPressure,
      inventory({ images: imgs, disk: { usedBytes: 95, totalBytes: 100 } }),
      policy(),
      {
        candidates: [untag],
        kept: [],
      },
    )
    expect(r.taken).toEqual(['image app:1'])
    expect(r.out.withdrawn).toEqual([untag])
  })
  it('passes over a guarded image and a parent whose child stays', () => {
    const inv = inventory({
      images: [
        image('a', ['app:1'], { createdAt: ago(3 * DAY), sizeBytes: 10 }),
        image('b', ['app:2'], { createdAt: ago(2 * DAY), sizeBytes: 10 }),
        image('c', ['app:3'], { createdAt: ago(DAY), sizeBytes: 10, parentId: id('b') }),
      ],
      containers: [container('web', 'a', 'running')],
      disk: { usedBytes: 99, totalBytes: 100 },
    })
    expect(run(diskPressure, inv).taken).toEqual(['image app:3'])
  })
})

describe('the parent/child pass', () => {
  it('gives back a parent whose child stays, to a fixpoint', () => {
    const inv = inventory({
      images: [
        image('p', ['app:1']),
        image('q', ['app:2'], { parentId: id('p') }),
        image('r', ['app:3'], { parentId: id('q') }),
      ],
    })
    const ctx = planContext(inv, policy(), NOW)
    const images = imageFacts(ctx, [])
    const take = (k: string): Candidate => ({
      kind: 'image',
      name: k,
      id: id(k),
      sizeBytes: 1,
      rule: 'unused-image',
      reason: '',
    })
    const d = keepParents(images, { candidates: [take('p'), take('q')], kept: [] })
    expect(d.candidates).toEqual([])
    expect(d.kept.map((k) => k.reason)).toEqual([
      'the image app:3 is built on it and stays (an image with children cannot be removed)',
      'the image app:2 is built on it and stays (an image with children cannot be removed)',
    ])
    const all = keepParents(images, { candidates: [take('p'), take('q'), take('r')], kept: [] })
    expect(all.candidates.map((c) => c.name)).toEqual(['p', 'q', 'r'])
  })
})
