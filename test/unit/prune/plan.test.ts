// planPrune over small inventories at a fixed now: every rule, every guard, the edges of every
// age threshold. Each test names the exact candidates (kind, name, rule, bytes) it expects.
import { describe, expect, it } from 'vitest'
import { planPrune } from '../../../lib/prune/plan.js'
import { labelMatches, matchesGlob, repoOf, tagOf } from '../../../lib/prune/refs.js'
import type {
  PruneBuildCache,
  PruneContainer,
  PruneImage,
  PruneInventory,
  PrunePlan,
  PrunePolicy,
  PruneVolume,
} from '../../../lib/prune/types.js'

const NOW = new Date('2025-06-15T12:00:00.000Z')
const MIN = 60_000
const HOUR = 60 * MIN
const DAY = 24 * HOUR
const GB = 1e9
const ago = (ms: number): string => new Date(NOW.getTime() - ms).toISOString()
const id = (s: string): string => `sha256:${s.padEnd(64, '0')}`

function policy(over: Partial<PrunePolicy> = {}): PrunePolicy {
  return {
    keepTags: 3,
    backupsFor: 7 * DAY,
    unusedImagesAfter: 30 * DAY,
    stoppedContainersAfter: 7 * DAY,
    buildCacheKeep: 10 * GB,
    diskThreshold: 0.85,
    protect: { images: [], labels: ['shipshape.keep=true'] },
    danglingAfter: 7 * DAY,
    volumes: false,
    volumesAfter: 30 * DAY,
    apply: false,
    ...over,
  }
}

/** an image created a day ago (untagged: 10 days ago, past danglingAfter), 100 bytes, nothing shared */
function image(key: string, tags: string[], over: Partial<PruneImage> = {}): PruneImage {
  return {
    id: id(key),
    tags,
    createdAt: ago(tags.length ? DAY : 10 * DAY),
    sizeBytes: 100,
    sharedBytes: null,
    labels: {},
    parentId: '',
    arrivedAt: null,
    ...over,
  }
}

/** a container of image key, running since 60 days */
function container(
  name: string,
  imageKey: string,
  state = 'running',
  over: Partial<PruneContainer> = {},
): PruneContainer {
  return {
    id: `c-${name}`,
    name,
    imageId: id(imageKey),
    state,
    createdAt: ago(60 * DAY),
    finishedAt: null,
    sizeRwBytes: 10,
    labels: {},
    ...over,
  }
}

function backup(
  key: string,
  service: string,
  kind: 'image' | 'commit',
  createdMs: number,
  over: Partial<PruneImage> = {},
): PruneImage {
  const stamp = ago(createdMs).replace(/[-:]|\.\d+/g, '')
  const prefix = kind === 'image' ? 'shipshape-prev-' : 'shipshape-backup-'
  return image(key, [`${service}:${prefix}${stamp}`], {
    createdAt: ago(createdMs),
    labels: {
      'shipshape.backup.of': service,
      'shipshape.backup.created': ago(createdMs),
      'shipshape.backup.kind': kind,
    },
    ...over,
  })
}

function inventory(over: Partial<PruneInventory> = {}): PruneInventory {
  return {
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
  }
}

const plan = (inv: Partial<PruneInventory>, pol: Partial<PrunePolicy> = {}): PrunePlan =>
  planPrune(inventory(inv), policy(pol), NOW)

/** the candidates as [kind, name, rule, sizeBytes] */
const picked = (p: PrunePlan) => p.candidates.map((c) => [c.kind, c.name, c.rule, c.sizeBytes])
/** the kept things as [kind, name] */
const keptOf = (p: PrunePlan) => p.kept.map((k) => [k.kind, k.name])
const reasonOf = (p: PrunePlan, name: string, list: 'candidates' | 'kept' = 'candidates') =>
  (list === 'candidates' ? p.candidates : p.kept).find((c) => c.name === name)?.reason ?? ''

describe('helpers', () => {
  it('matchesGlob: * spans / and :, a bare name matches every tag, Docker Hub long names', () => {
    const rows: [string, string, boolean][] = [
      ['postgres:16', 'postgres:*', true],
      ['postgres:16', 'postgres', true],
      ['postgres', 'postgres', true],
      ['postgres-exporter:1', 'postgres', false],
      ['postgres:16', 'postgres:15', false],
      ['app:1.2', 'app:1.*', true],
      ['appx:1', 'app.:1', false],
      ['reg:5000/team/app:1', 'reg:5000/*', true],
      ['reg:5000/team/app:1', '*app:1', true],
      ['reg:5000/app:1', 'reg:5000/app', true],
      ['reg:5000/app:1', 'reg', false],
      ['docker.io/library/postgres:16', 'postgres:*', true],
      ['postgres:16', 'docker.io/library/postgres', true],
      ['ghcr.io/x/y:2', '*', true],
    ]
    expect(rows.map(([ref, glob]) => [ref, glob, matchesGlob(ref, glob)])).toEqual(rows)
  })

  it('labelMatches: key (any value) or key=value (that value)', () => {
    const rows: [Record<string, string>, string, boolean][] = [
      [{ 'shipshape.keep': 'true' }, 'shipshape.keep=true', true],
      [{ 'shipshape.keep': 'false' }, 'shipshape.keep=true', false],
      [{ 'shipshape.keep': '' }, 'shipshape.keep', true],
      [{ 'shipshape.keep': '' }, 'shipshape.keep=', true],
      [{ other: 'true' }, 'shipshape.keep', false],
      [{ a: 'x=y' }, 'a=x=y', true],
    ]
    expect(rows.map(([labels, spec]) => [labels, spec, labelMatches(labels, spec)])).toEqual(rows)
  })

  it.each([
    ['app:1', 'app', '1'],
    ['app', 'app', ''],
    ['team/app:v2', 'team/app', 'v2'],
    ['reg:5000/team/app:tag', 'reg:5000/team/app', 'tag'],
    ['reg:5000/app', 'reg:5000/app', ''],
    [`app@${id('d')}`, 'app', ''],
  ])('repoOf/tagOf(%s) → %s, %s', (ref, repo, tag) => {
    expect(repoOf(ref)).toBe(repo)
    expect(tagOf(ref)).toBe(tag)
  })
})

describe('images in use are never taken', () => {
  it.each(['running', 'paused', 'restarting', 'exited', 'created', 'dead', 'removing'])(
    'a %s container keeps its image (untagged, old, or an extra tag)',
    (state) => {
      // stopped a day ago: rule 1 does not take the container, so the images stay in use
      const stopped = { finishedAt: ago(DAY), createdAt: ago(2 * DAY) }
      const p = plan(
        {
          images: [
            image('u1', ['old:1'], { createdAt: ago(90 * DAY) }),
            image('u2', ['old:2'], { createdAt: ago(90 * DAY) }),
            image('d1', []),
            image('d2', []),
            image('t1', ['app:1'], { createdAt: ago(5 * DAY) }),
            image('t2', ['app:2'], { createdAt: ago(4 * DAY) }),
            image('t3', ['app:3'], { createdAt: ago(3 * DAY) }),
          ],
          containers: [
            container('a', 'u1', state, stopped),
            container('b', 'd1', state, stopped),
            container('c', 't1', state, stopped),
          ],
        },
        { keepTags: 2 },
      )
      // the twins nobody uses go: the rules do apply
      expect(picked(p)).toEqual([
        ['image', id('d2').slice(7, 19), 'dangling-image', 100],
        ['image', 'old:2', 'unused-image', 100],
      ])
      expect(keptOf(p)).toEqual([
        ['image', id('d1').slice(7, 19)],
        ['image', 'old:1'],
        ['tag', 'app:1'],
      ])
      expect(p.kept.map((k) => k.reason)).toEqual(
        ['b', 'a', 'c'].map((name) => `in use by ${name} (${state})`),
      )
    },
  )
})

describe('protection', () => {
  const old = { createdAt: ago(90 * DAY) }
  it.each([
    ['a glob on one of its tags', ['postgres:*'], image('p', ['mine:1', 'postgres:16'], old)],
    ['a bare name', ['postgres'], image('p', ['postgres:15-alpine'], old)],
    ['a glob with a registry', ['reg:5000/*'], image('p', ['reg:5000/x/db:1'], old)],
    [
      'a label key=value',
      [],
      image('p', ['x:1'], { ...old, labels: { 'shipshape.keep': 'true' } }),
    ],
  ])('%s protects an image', (_what, globs, protectedImage) => {
    const p = plan(
      { images: [protectedImage, image('q', ['other:1'], old)] },
      { protect: { images: globs, labels: ['shipshape.keep=true'] } },
    )
    expect(picked(p)).toEqual([['image', 'other:1', 'unused-image', 100]])
    expect(p.kept).toHaveLength(1)
    expect(p.kept[0]?.id).toBe(id('p'))
    expect(p.kept[0]?.reason).toMatch(/^protected by /)
  })

  it('a label key alone protects whatever its value; a different value does not', () => {
    const p = plan(
      {
        images: [
          image('a', ['a:1'], { createdAt: ago(90 * DAY), labels: { keep: 'no' } }),
          image('b', ['b:1'], { createdAt: ago(90 * DAY), labels: { team: 'ml' } }),
        ],
      },
      { protect: { images: [], labels: ['keep', 'team=web'] } },
    )
    expect(picked(p)).toEqual([['image', 'b:1', 'unused-image', 100]])
    expect(p.kept).toEqual([
      { kind: 'image', name: 'a:1', id: id('a'), reason: 'protected by the label keep' },
    ])
  })

  it('a protected container stays, and so its image stays in use', () => {
    const stopped = { finishedAt: ago(30 * DAY) }
    const p = plan({
      images: [image('i', ['i:1'], { createdAt: ago(90 * DAY) })],
      containers: [
        container('keepme', 'i', 'exited', { ...stopped, labels: { 'shipshape.keep': 'true' } }),
        container('goes', 'x', 'exited', stopped),
      ],
    })
    expect(picked(p)).toEqual([['container', 'goes', 'stopped-container', 10]])
    expect(p.kept).toEqual([
      {
        kind: 'container',
        name: 'keepme',
        id: 'c-keepme',
        reason: 'protected by the label shipshape.keep=true',
      },
      { kind: 'image', name: 'i:1', id: id('i'), reason: 'in use by keepme (exited)' },
    ])
  })

  it('the container a rebuild keeps aside is never removed', () => {
    const p = plan({
      containers: [
        container('web-shipshape-old-20250601T000000Z', 'i', 'exited', {
          finishedAt: ago(14 * DAY),
        }),
      ],
    })
    expect(picked(p)).toEqual([])
    expect(keptOf(p)).toEqual([['container', 'web-shipshape-old-20250601T000000Z']])
  })
})

describe('held images (shipshape-hold-)', () => {
  it('are never taken by any rule', () => {
    const held = image('h', ['app:1', 'app:shipshape-hold-20250615T110000Z'], {
      createdAt: ago(90 * DAY),
    })
    const p = plan(
      {
        images: [
          held,
          image('n1', ['app:2'], { createdAt: ago(2 * DAY) }),
          image('n2', ['app:3'], { createdAt: ago(DAY) }),
          image('o', ['other:1'], { createdAt: ago(90 * DAY) }),
        ],
        disk: { usedBytes: 990, totalBytes: 1000 },
      },
      { keepTags: 1, diskThreshold: 0.1 },
    )
    // old-tag takes app:2 (app:1 is older but held); disk pressure takes app:3, never the held one
    expect(picked(p)).toEqual([
      ['image', 'other:1', 'unused-image', 100],
      ['image', 'app:2', 'old-tag', 100],
      ['image', 'app:3', 'disk-pressure', 100],
    ])
    expect(p.kept).toEqual([
      {
        kind: 'image',
        name: 'app:1',
        id: id('h'),
        reason: 'held by a running rebuild or rollback (app:shipshape-hold-20250615T110000Z)',
      },
    ])
  })
})

describe('backups (old-backup)', () => {
  it('keep the newest image and the newest commit backup per service, however old', () => {
    const images = [
      backup('a1', 'web', 'image', 20 * DAY),
      backup('a2', 'web', 'image', 15 * DAY),
      backup('a3', 'web', 'image', 10 * DAY),
      backup('ac', 'web', 'commit', 20 * DAY, { sizeBytes: 500, sharedBytes: 100 }),
      backup('b1', 'api', 'image', 30 * DAY),
      backup('c1', 'db', 'commit', 9 * DAY),
      backup('c2', 'db', 'commit', 3 * DAY),
    ]
    const p = plan({ images })
    const tag = (key: string) => images.find((i) => i.id === id(key))!.tags[0]!
    expect(picked(p)).toEqual(
      [
        ['image', tag('a1'), 'old-backup', 100],
        ['image', tag('a2'), 'old-backup', 100],
        ['image', tag('c1'), 'old-backup', 100],
      ].sort((x, y) => ((x[1] as string) < (y[1] as string) ? -1 : 1)),
    )
    expect(reasonOf(p, tag('a1'))).toBe(
      'image backup of web from 20d ago (backups go after 7d; a newer one stays)',
    )
    // the newest of each kind is kept (and said so) only when a rule would have taken it
    expect(p.kept.map((k) => [k.name, k.reason])).toEqual([
      [tag('b1'), 'the newest image backup of api: kept whatever its age'],
      [tag('ac'), 'the newest commit backup of web: kept whatever its age'],
      [tag('a3'), 'the newest image backup of web: kept whatever its age'],
    ])
  })

  it('age from shipshape.backup.created, else the image’s creation', () => {
    const p = plan({
      images: [
        backup('new', 'web', 'image', 1 * DAY),
        // created label says 2 days: stays although the image is 60 days old
        backup('lbl', 'web', 'image', 2 * DAY, { createdAt: ago(60 * DAY) }),
        // no created label: its creation (10 days) counts
        image('nol', ['web:shipshape-prev-20250605T120000Z'], {
          createdAt: ago(10 * DAY),
          labels: { 'shipshape.backup.of': 'web' },
        }),
      ],
    })
    expect(picked(p)).toEqual([['image', 'web:shipshape-prev-20250605T120000Z', 'old-backup', 100]])
  })

  it('a prev tag on the very image (no labels): a backup of its repository, aged by its stamp', () => {
    const p = plan({
      images: [
        // tagged 20 and 2 days ago, the image itself far older
        image('p1', ['web:shipshape-prev-20250526T120000Z'], { createdAt: ago(90 * DAY) }),
        image('p2', ['web:shipshape-prev-20250613T120000Z'], { createdAt: ago(90 * DAY) }),
        // a prev tag beside a tag of its own: an image someone named, not a backup
        image('p3', ['web:shipshape-prev-20250501T120000Z', 'web:v1'], {
          createdAt: ago(90 * DAY),
        }),
      ],
    })
    const old = p.candidates.filter((c) => c.rule === 'old-backup').map((c) => c.name)
    expect(old).toEqual(['web:shipshape-prev-20250526T120000Z'])
    expect(reasonOf(p, 'web:shipshape-prev-20250526T120000Z')).toBe(
      'image backup of web from 20d ago (backups go after 7d; a newer one stays)',
    )
    expect(p.candidates.some((c) => c.id === id('p3') && c.rule === 'old-backup')).toBe(false)
  })

  it('are never taken by dangling, unused, old-tag or disk pressure; in use or held they stay', () => {
    const p = plan(
      {
        images: [
          backup('n1', 'web', 'image', 1 * DAY),
          backup('n2', 'web', 'commit', 1 * DAY),
          // old enough for old-backup, but in use / held
          backup('used', 'web', 'image', 40 * DAY, { tags: ['web:latest'] }),
          backup('hld', 'web', 'image', 50 * DAY, {
            tags: ['web:shipshape-prev-x', 'web:shipshape-hold-20250615T110000Z'],
          }),
          // untagged backup, 3 days old: not dangling, too young for old-backup
          backup('untg', 'web', 'image', 3 * DAY, { tags: [] }),
          // many web: tags, none counted by keepTags
          image('w1', ['web:1'], { createdAt: ago(2 * DAY) }),
        ],
        containers: [container('web', 'used')],
        lastUsed: { [id('n1')]: ago(300 * DAY) },
        disk: { usedBytes: 999, totalBytes: 1000 },
      },
      { keepTags: 1, unusedImagesAfter: 0 },
    )
    // unusedImagesAfter 0: every unused non-backup image goes at once; the disk stays full
    expect(picked(p)).toEqual([['image', 'web:1', 'unused-image', 100]])
    expect(p.kept.map((k) => [k.name, k.reason])).toEqual([
      ['web:latest', 'in use by web (running)'],
      [
        'web:shipshape-prev-x',
        'held by a running rebuild or rollback (web:shipshape-hold-20250615T110000Z)',
      ],
    ])
  })
})

describe('keepTags (old-tag)', () => {
  it('keeps the newest tags by creation; a tie goes to latest, then the higher tag', () => {
    const p = plan(
      {
        images: [
          image('z', ['app:z'], { createdAt: ago(10 * DAY) }),
          image('a', ['app:a'], { createdAt: ago(9 * DAY) }),
          image('v9', ['app:v9'], { createdAt: ago(2 * DAY) }),
          image('v10', ['app:v10'], { createdAt: ago(2 * DAY) }),
          image('l', ['app:latest', 'app:v11'], { createdAt: ago(DAY) }),
          // another repository: counted on its own
          image('o', ['other:1', 'other:2'], { createdAt: ago(DAY) }),
        ],
      },
      { keepTags: 2 },
    )
    // kept: app:latest, then app:v11 (same image, latest first); v10 over v9 on the tie
    expect(picked(p)).toEqual([
      ['image', 'app:a', 'old-tag', 100],
      ['image', 'app:v10', 'old-tag', 100],
      ['image', 'app:v9', 'old-tag', 100],
      ['image', 'app:z', 'old-tag', 100],
    ])
    expect(reasonOf(p, 'app:v10')).toBe(
      'the 3rd newest tag of app (keeping the newest 2 tags); its last tag, no container uses it',
    )
    expect(reasonOf(p, 'app:z')).toContain('the 6th newest tag of app')
  })

  it('an extra tag of an image that keeps another tag is an untag (0 bytes)', () => {
    const p = plan(
      {
        images: [
          image('l', ['app:latest', 'app:v3'], { createdAt: ago(DAY) }),
          image('v2', ['app:v2', 'mirror/app:v2'], { createdAt: ago(2 * DAY) }),
        ],
      },
      { keepTags: 1 },
    )
    expect(picked(p)).toEqual([
      ['tag', 'app:v2', 'old-tag', 0],
      ['tag', 'app:v3', 'old-tag', 0],
    ])
    expect(reasonOf(p, 'app:v3')).toBe(
      'the 2nd newest tag of app (keeping the newest 1 tag); the image keeps its other tags',
    )
  })

  it('never an extra tag whose image a container uses; shipshape tags are not counted', () => {
    const p = plan(
      {
        images: [
          image('1', ['app:1'], { createdAt: ago(3 * DAY) }),
          image('2', ['app:2'], { createdAt: ago(2 * DAY) }),
          image('3', ['app:3', 'app:shipshape-prev-20250614T000000Z'], { createdAt: ago(DAY) }),
          image('4', ['app:shipshape-backup-20250615T000000Z']),
        ],
        containers: [container('old', '1', 'exited', { finishedAt: ago(DAY) })],
      },
      { keepTags: 1 },
    )
    expect(picked(p)).toEqual([['image', 'app:2', 'old-tag', 100]])
    expect(p.kept).toEqual([
      { kind: 'tag', name: 'app:1', id: id('1'), reason: 'in use by old (exited)' },
    ])
  })

  it('ranks only the tags of images the other rules leave', () => {
    // v2–v4 are unused for 50 days and go as unused; v1 was used yesterday: the repo keeps it
    const p = plan(
      {
        images: [
          image('1', ['app:v1'], { createdAt: ago(100 * DAY) }),
          image('2', ['app:v2'], { createdAt: ago(50 * DAY) }),
          image('3', ['app:v3'], { createdAt: ago(50 * DAY) }),
          image('4', ['app:v4'], { createdAt: ago(50 * DAY) }),
        ],
        lastUsed: { [id('1')]: ago(DAY) },
      },
      { keepTags: 3 },
    )
    expect(picked(p)).toEqual([
      ['image', 'app:v2', 'unused-image', 100],
      ['image', 'app:v3', 'unused-image', 100],
      ['image', 'app:v4', 'unused-image', 100],
    ])
  })
})

describe('ages against the fixed now (just under → stays, just over → goes)', () => {
  const under = (d: number) => d - MIN
  const over = (d: number) => d + MIN
  it.each([
    ['stopped container, from finishedAt', 7 * DAY],
    ['unused image, from lastUsed', 30 * DAY],
    ['unused image, from createdAt', 30 * DAY],
    ['backup', 7 * DAY],
  ])('%s at %d ms', (what, threshold) => {
    const build = (age: number, key: string): Partial<PruneInventory> => {
      switch (what) {
        case 'stopped container, from finishedAt':
          return {
            containers: [
              container(key, 'x', 'exited', { createdAt: ago(90 * DAY), finishedAt: ago(age) }),
            ],
          }
        case 'unused image, from lastUsed':
          return {
            images: [image(key, [`${key}:1`], { createdAt: ago(90 * DAY) })],
            lastUsed: { [id(key)]: ago(age) },
          }
        case 'unused image, from createdAt':
          return { images: [image(key, [`${key}:1`], { createdAt: ago(age) })] }
        default:
          return {
            images: [backup(`${key}n`, 'svc', 'image', DAY), backup(key, 'svc', 'image', age)],
          }
      }
    }
    const a = build(under(threshold), 'under')
    const b = build(over(threshold), 'over')
    const exact = build(threshold, 'exact')
    const p = plan({
      images: [...(a.images ?? []), ...(b.images ?? []), ...(exact.images ?? [])],
      containers: [...(a.containers ?? []), ...(b.containers ?? []), ...(exact.containers ?? [])],
      lastUsed: { ...a.lastUsed, ...b.lastUsed, ...exact.lastUsed },
    })
    expect(p.candidates).toHaveLength(1)
    expect(p.candidates[0]?.id).toMatch(/over/)
    expect(p.candidates[0]?.id.startsWith('c-') ? 'container' : 'image').toBe(p.candidates[0]?.kind)
  })

  it('a stopped container’s age is from finishedAt, else from createdAt', () => {
    const p = plan({
      containers: [
        container('fresh', 'x', 'exited', { createdAt: ago(90 * DAY), finishedAt: ago(DAY) }),
        container('never', 'x', 'created', { createdAt: ago(8 * DAY), sizeRwBytes: null }),
        container('young', 'x', 'created', { createdAt: ago(6 * DAY) }),
        container('dead', 'x', 'dead', { finishedAt: ago(8 * DAY), sizeRwBytes: 77 }),
        container('run', 'x', 'running', { createdAt: ago(90 * DAY) }),
      ],
    })
    expect(picked(p)).toEqual([
      ['container', 'dead', 'stopped-container', 77],
      ['container', 'never', 'stopped-container', 0],
    ])
    expect(reasonOf(p, 'dead')).toBe('dead 8d ago (stopped containers go after 7d)')
    expect(reasonOf(p, 'never')).toBe(
      'created 8d ago, never started (stopped containers go after 7d)',
    )
  })

  it('an original is due once keepUntil has passed', () => {
    const at = (ms: number) => new Date(NOW.getTime() + ms).toISOString()
    const p = plan({
      originals: [
        { asset: 'a', path: '/opt/a.shipshape-1', bytes: 5, keepUntil: at(MIN), blocker: null },
        { asset: 'b', path: '/opt/b.shipshape-1', bytes: 6, keepUntil: at(-MIN), blocker: null },
        { asset: 'c', path: '/opt/c.shipshape-1', bytes: 7, keepUntil: at(0), blocker: null },
      ],
    })
    expect(picked(p)).toEqual([
      ['original', '/opt/b.shipshape-1', 'kept-original', 6],
      ['original', '/opt/c.shipshape-1', 'kept-original', 7],
    ])
  })
})

describe('a stopped container removed in the plan', () => {
  it('frees its image: dangling at once, tagged once unused long enough', () => {
    const p = plan({
      images: [
        image('d', []),
        image('old', ['old:1'], { createdAt: ago(90 * DAY), sizeBytes: 300, sharedBytes: 100 }),
        image('recent', ['recent:1'], { createdAt: ago(90 * DAY) }),
      ],
      containers: [
        container('c-d', 'd', 'exited', { finishedAt: ago(8 * DAY) }),
        container('c-old', 'old', 'exited', { finishedAt: ago(40 * DAY) }),
        // stopped 10 days ago: the container goes, its image was in use until then
        container('c-recent', 'recent', 'exited', { finishedAt: ago(10 * DAY) }),
      ],
    })
    expect(picked(p)).toEqual([
      ['container', 'c-d', 'stopped-container', 10],
      ['container', 'c-old', 'stopped-container', 10],
      ['container', 'c-recent', 'stopped-container', 10],
      ['image', id('d').slice(7, 19), 'dangling-image', 100],
      ['image', 'old:1', 'unused-image', 200],
    ])
    expect(reasonOf(p, 'old:1')).toBe(
      'its container c-old stopped 40d ago (unused images go after 30d); no container left once c-old goes (this plan)',
    )
    expect(reasonOf(p, id('d').slice(7, 19))).toBe(
      'dangling (no tag), built or tagged here 10d ago (dangling images go after 7d), no container uses it; no container left once c-d goes (this plan)',
    )
  })

  it('does not free an image another container still uses', () => {
    const p = plan({
      images: [image('i', [])],
      containers: [
        container('gone', 'i', 'exited', { finishedAt: ago(8 * DAY) }),
        container('stays', 'i', 'exited', { finishedAt: ago(DAY) }),
      ],
    })
    expect(picked(p)).toEqual([['container', 'gone', 'stopped-container', 10]])
    expect(p.kept.map((k) => k.reason)).toEqual(['in use by stays (exited)'])
  })
})

describe('dangling images', () => {
  it('go past danglingAfter, freeing their unique size; in use they stay', () => {
    const p = plan({
      images: [
        image('a', [], { createdAt: ago(8 * DAY), sizeBytes: 1000, sharedBytes: 400 }),
        image('b', [], { sizeBytes: 50 }),
        image('c', []),
      ],
      containers: [container('web', 'c')],
    })
    expect(picked(p)).toEqual([
      ['image', id('a').slice(7, 19), 'dangling-image', 600],
      ['image', id('b').slice(7, 19), 'dangling-image', 50],
    ])
    expect(p.kept).toEqual([
      { kind: 'image', name: id('c').slice(7, 19), id: id('c'), reason: 'in use by web (running)' },
    ])
  })

  it('stay within danglingAfter of being built or last tagged here (a rollback’s untagged build)', () => {
    const p = plan({
      images: [
        // built 20 days ago, tagged here until 2 days ago (a rollback took its tag)
        image('r', [], { createdAt: ago(20 * DAY), arrivedAt: ago(2 * DAY) }),
        // a failed build left for inspection an hour ago
        image('f', [], { createdAt: ago(HOUR) }),
      ],
    })
    expect(picked(p)).toEqual([])
    expect(p.kept.map((k) => [k.name, k.reason])).toEqual([
      [
        id('f').slice(7, 19),
        'dangling, but built or tagged here 1h ago (dangling images go after 7d)',
      ],
      [
        id('r').slice(7, 19),
        'dangling, but built or tagged here 2d ago (dangling images go after 7d)',
      ],
    ])
    // just past the age: it goes
    expect(picked(plan({ images: [image('f', [], { createdAt: ago(7 * DAY + MIN) })] }))).toEqual([
      ['image', id('f').slice(7, 19), 'dangling-image', 100],
    ])
  })

  it('never one an unfinished run or the last rollback names, whatever its age', () => {
    const p = plan({
      images: [image('r', [], { createdAt: ago(90 * DAY) }), image('o', [])],
      pins: [{ values: [id('r'), 'web'], reason: 'named by the last rollback of web' }],
    })
    expect(picked(p)).toEqual([['image', id('o').slice(7, 19), 'dangling-image', 100]])
    expect(p.kept).toEqual([
      {
        kind: 'image',
        name: id('r').slice(7, 19),
        id: id('r'),
        reason: 'named by the last rollback of web',
      },
    ])
  })
})

describe('parents and children (classic store: an image built on another)', () => {
  it('a parent stays while a child stays; both go when both are taken', () => {
    // old labelled prev copy (a child of the old image, which lost its tag)
    const parent = image('p', [], { createdAt: ago(30 * DAY) })
    const child = backup('k', 'web', 'image', 2 * DAY, { parentId: id('p') })
    const p = plan({ images: [parent, child] })
    expect(picked(p)).toEqual([])
    expect(p.kept.find((k) => k.id === id('p'))?.reason).toBe(
      `the image ${child.tags[0]} is built on it and stays (an image with children cannot be removed)`,
    )
    // a grandchild chain where all go: every one is a candidate
    const q = plan({
      images: [
        image('g', [], { createdAt: ago(30 * DAY) }),
        image('h', [], { createdAt: ago(30 * DAY), parentId: id('g') }),
        image('i', [], { createdAt: ago(30 * DAY), parentId: id('h') }),
      ],
    })
    expect(picked(q).map((c) => c[1])).toEqual(['g', 'h', 'i'].map((k) => id(k).slice(7, 19)))
    // the chain's leaf used by a container: the whole chain stays
    const r = plan({
      images: [
        image('g', [], { createdAt: ago(30 * DAY) }),
        image('h', [], { createdAt: ago(30 * DAY), parentId: id('g') }),
      ],
      containers: [container('app', 'h')],
    })
    expect(picked(r)).toEqual([])
    expect(r.kept.map((k) => k.id).sort()).toEqual([id('g'), id('h')])
  })
})

describe('last use without a record', () => {
  it('counts from when the image came to this host (pulled/tagged), not when it was built upstream', () => {
    const p = plan({
      images: [
        // built upstream a year ago, pulled yesterday for tomorrow's deploy
        image('n', ['pg:17'], { createdAt: ago(365 * DAY), arrivedAt: ago(DAY) }),
        // pulled 40 days ago, never used
        image('o', ['redis:7'], { createdAt: ago(365 * DAY), arrivedAt: ago(40 * DAY) }),
        // no LastTagTime (unknown): its creation time counts
        image('u', ['old:1'], { createdAt: ago(365 * DAY) }),
      ],
    })
    expect(picked(p)).toEqual([
      ['image', 'old:1', 'unused-image', 100],
      ['image', 'redis:7', 'unused-image', 100],
    ])
    expect(reasonOf(p, 'redis:7')).toBe(
      'pulled or tagged here 40d ago, no recorded use (unused images go after 30d)',
    )
    // a record older than the arrival (removed, then loaded again for a rollback) is stale
    const q = plan({
      images: [image('n', ['pg:16'], { createdAt: ago(365 * DAY), arrivedAt: ago(DAY) })],
      lastUsed: { [id('n')]: ago(100 * DAY) },
    })
    expect(picked(q)).toEqual([])
  })
})

describe('disk pressure', () => {
  // four unused images of 40 unique bytes; unused for less than unusedImagesAfter (365d)
  const images = [
    image('A', ['a:1'], { createdAt: ago(100 * DAY), sizeBytes: 50, sharedBytes: 10 }),
    image('B', ['b:1'], { createdAt: ago(25 * DAY), sizeBytes: 40 }),
    image('C', ['c:1'], { createdAt: ago(200 * DAY), sizeBytes: 40 }),
    image('D', ['d:1'], { createdAt: ago(5 * DAY), sizeBytes: 40 }),
  ]
  const lastUsed = { [id('A')]: ago(20 * DAY), [id('C')]: ago(10 * DAY) }
  const pol = { unusedImagesAfter: 365 * DAY }

  it('takes the least recently used (lastUsed over createdAt) until under the threshold', () => {
    const p = plan({ images, lastUsed, disk: { usedBytes: 950, totalBytes: 1000 } }, pol)
    // B (created 25d, never used), then A (used 20d ago, though created 100d ago), then C
    expect(picked(p)).toEqual([
      ['image', 'a:1', 'disk-pressure', 40],
      ['image', 'b:1', 'disk-pressure', 40],
      ['image', 'c:1', 'disk-pressure', 40],
    ])
    expect(reasonOf(p, 'b:1')).toBe(
      'engine disk at 95% after the rest of the plan, over 85%: least recently used first — created 25d ago, no recorded use',
    )
    expect(reasonOf(p, 'a:1')).toContain('at 91% ')
    expect(reasonOf(p, 'c:1')).toContain('at 87% ')
    expect(p.disk).toEqual({ usedBytes: 950, totalBytes: 1000, projectedBytes: 830 })
  })

  it('counts what the other rules free first, and stops at the threshold', () => {
    const p = plan(
      {
        images,
        lastUsed,
        containers: [
          container('old', 'none', 'exited', { finishedAt: ago(8 * DAY), sizeRwBytes: 60 }),
        ],
        disk: { usedBytes: 950, totalBytes: 1000 },
      },
      pol,
    )
    // 950 − 60 = 890 > 850 → B (40) → 850: 85% is not over 85%
    expect(picked(p)).toEqual([
      ['container', 'old', 'stopped-container', 60],
      ['image', 'b:1', 'disk-pressure', 40],
    ])
    expect(p.disk?.projectedBytes).toBe(850)
  })

  it('does nothing under the threshold or without a known disk', () => {
    for (const disk of [{ usedBytes: 850, totalBytes: 1000 }, null]) {
      const p = plan({ images: [...images, image('x', [])], lastUsed, disk }, pol)
      expect(picked(p)).toEqual([['image', id('x').slice(7, 19), 'dangling-image', 100]])
    }
  })

  it('never takes images in use or protected; an image with untag candidates goes whole', () => {
    const p = plan(
      {
        images: [
          image('u', ['u:1'], { createdAt: ago(300 * DAY) }),
          image('p', ['postgres:16'], { createdAt: ago(300 * DAY) }),
          image('t1', ['app:1', 'app:old'], { createdAt: ago(20 * DAY) }),
          image('t2', ['app:2'], { createdAt: ago(DAY) }),
        ],
        containers: [container('web', 'u')],
        disk: { usedBytes: 900, totalBytes: 1000 },
      },
      { ...pol, keepTags: 2, protect: { images: ['postgres'], labels: [] } },
    )
    // keepTags alone would untag app:1 (0 bytes); disk pressure takes its whole image instead
    expect(picked(p)).toEqual([['image', 'app:1', 'disk-pressure', 100]])
  })
})

describe('build cache', () => {
  const rec = (
    key: string,
    gb: number,
    lastUsedDays: number | null,
    over: Partial<PruneBuildCache> = {},
  ): PruneBuildCache => ({
    id: key,
    sizeBytes: gb * GB,
    inUse: false,
    shared: false,
    createdAt: ago(40 * DAY),
    lastUsedAt: lastUsedDays === null ? null : ago(lastUsedDays * DAY),
    ...over,
  })

  it('frees the least recently used records above buildCacheKeep', () => {
    const p = plan({
      buildCache: [
        rec('busy', 50, 0, { inUse: true }),
        rec('shared', 50, 90, { shared: true }),
        rec('r4', 4, 10),
        rec('r5', 5, 20),
        rec('r3', 3, 1),
        // never used: its creation (30 days ago) counts
        rec('r2', 2, null, { createdAt: ago(30 * DAY) }),
      ],
    })
    // 14 GB unused: r2 (30d) and r5 (20d) go → 7 GB left ≤ 10 GB
    expect(picked(p)).toEqual([['build-cache', 'build cache', 'build-cache', 7 * GB]])
    expect(p.candidates[0]?.id).toBe('')
    expect(p.candidates[0]?.reason).toBe(
      '14 GB of unused build cache, over the 10 GB kept: the 2 least recently used records',
    )
    expect(p.buildCacheKeepBytes).toBe(10 * GB)
  })

  it('nothing at or under buildCacheKeep', () => {
    const p = plan({
      buildCache: [rec('a', 6, 1), rec('b', 4, 2), rec('big', 90, 1, { inUse: true })],
    })
    expect(p.candidates).toEqual([])
    expect(p.buildCacheKeepBytes).toBeNull()
    // one byte more and the oldest record goes
    const q = plan({
      buildCache: [rec('a', 6, 1), rec('b', 4, 2), rec('c', 0, 3, { sizeBytes: 1 })],
    })
    expect(picked(q)).toEqual([['build-cache', 'build cache', 'build-cache', 1]])
  })
})

describe('volumes', () => {
  const volumes: PruneVolume[] = [
    { name: 'unused', sizeBytes: 123, refCount: 0, labels: {}, createdAt: ago(90 * DAY) },
    { name: 'nosize', sizeBytes: null, refCount: 0, labels: {}, createdAt: ago(90 * DAY) },
    { name: 'unknown', sizeBytes: 5, refCount: null, labels: {}, createdAt: ago(90 * DAY) },
    { name: 'used', sizeBytes: 5, refCount: 2, labels: {}, createdAt: ago(90 * DAY) },
    {
      name: 'kept',
      sizeBytes: 5,
      refCount: 0,
      labels: { 'shipshape.keep': 'true' },
      createdAt: ago(90 * DAY),
    },
  ]

  it('only when prune.volumes is on', () => {
    expect(plan({ volumes }).candidates).toEqual([])
    expect(plan({ volumes }).kept).toEqual([])
    const p = plan({ volumes }, { volumes: true })
    expect(picked(p)).toEqual([
      ['volume', 'nosize', 'unused-volume', 0],
      ['volume', 'unused', 'unused-volume', 123],
    ])
    expect(p.kept.map((k) => [k.name, k.reason])).toEqual([
      ['kept', 'protected by the label shipshape.keep=true'],
      ['unknown', 'the engine did not count its containers: unknown, kept'],
      ['used', 'in use by 2 containers'],
    ])
  })
})

describe('volumes of compose projects, and their age', () => {
  const vol = (name: string, over: Partial<PruneVolume> = {}): PruneVolume => ({
    name,
    sizeBytes: 10,
    refCount: 0,
    labels: {},
    createdAt: ago(90 * DAY),
    ...over,
  })
  const project = (p: string) => ({ 'com.docker.compose.project': p })

  it('a stopped project keeps its volumes; an orphan goes past volumesAfter of disuse only', () => {
    const p = plan(
      {
        volumes: [
          // `compose down` of a configured service: the database's volume stays
          vol('shop_db', { labels: project('shop') }),
          // a project with a stopped container left
          vol('blog_data', { labels: project('blog') }),
          // an orphan project's volume used 3 days ago (recorded by the report job)
          vol('old_cache', { labels: project('old') }),
          // an orphan, last used 40 days ago
          vol('gone_data', { labels: project('gone') }),
          // created yesterday, no container yet
          vol('fresh', { createdAt: ago(DAY) }),
          // named by an unfinished run
          vol('pinned'),
        ],
        containers: [
          container('blog-web-1', 'x', 'exited', {
            labels: project('blog'),
            finishedAt: ago(DAY),
          }),
          // stopped 30 days ago by a migrate-assets run that never finished
          container('m-app', 'x', 'exited', { finishedAt: ago(30 * DAY) }),
        ],
        configuredProjects: { shop: 'shop-web' },
        lastUsedVolumes: { old_cache: ago(3 * DAY), gone_data: ago(40 * DAY) },
        pins: [
          {
            values: ['pinned', 'm-app'],
            reason: 'named by the unfinished migrate-assets run of m',
          },
        ],
      },
      { volumes: true },
    )
    expect(picked(p)).toEqual([['volume', 'gone_data', 'unused-volume', 10]])
    expect(reasonOf(p, 'gone_data')).toBe(
      'no container uses it, last used 40d ago (volumes go after 30d of disuse; prune.volumes is on)',
    )
    expect(p.kept.filter((k) => k.kind === 'container').map((k) => [k.name, k.reason])).toEqual([
      ['m-app', 'named by the unfinished migrate-assets run of m'],
    ])
    expect(p.kept.filter((k) => k.kind === 'volume').map((k) => [k.name, k.reason])).toEqual([
      ['blog_data', 'its compose project blog still has the container blog-web-1'],
      [
        'fresh',
        'no container uses it, but created 1d ago, no recorded use (volumes go after 30d of disuse)',
      ],
      ['old_cache', 'no container uses it, but last used 3d ago (volumes go after 30d of disuse)'],
      ['pinned', 'named by the unfinished migrate-assets run of m'],
      [
        'shop_db',
        'its compose project shop has the configured service shop-web (a `compose up` uses it again)',
      ],
    ])
  })
})

describe('backup archives of migrations', () => {
  it('move or remove once due, with why; the ones still needed stay with why', () => {
    const a = (asset: string, action: 'move' | 'remove' | 'keep', note: string) => ({
      asset,
      path: `/opt/backups/${asset}/20261101T000000Z/archive.tar.zst`,
      workDir: `/opt/backups/${asset}/20261101T000000Z`,
      bytes: 4_100_000_000,
      action,
      note,
    })
    const p = plan({
      archives: [
        a('music', 'move', '2026-11-09T00:00:00.000Z'),
        a('photos', 'remove', '2026-11-09T00:00:00.000Z'),
        a('video', 'keep', 'kept while the original /srv/video.shipshape-x is'),
      ],
    })
    expect(picked(p)).toEqual([
      ['archive', '/opt/backups/music/20261101T000000Z/archive.tar.zst', 'migrated-archive', 4.1e9],
      [
        'archive',
        '/opt/backups/photos/20261101T000000Z/archive.tar.zst',
        'migrated-archive',
        4.1e9,
      ],
    ])
    expect(reasonOf(p, '/opt/backups/music/20261101T000000Z/archive.tar.zst')).toMatch(
      /moved onto the remote .* after the destination is verified again on the remote/,
    )
    expect(p.kept).toEqual([
      {
        kind: 'archive',
        name: '/opt/backups/video/20261101T000000Z/archive.tar.zst',
        id: '/opt/backups/video/20261101T000000Z',
        reason: 'video: kept while the original /srv/video.shipshape-x is',
      },
    ])
  })
})

describe('originals of migrate-assets', () => {
  it('due ones go, blocked ones stay with the blocker, future ones are not mentioned', () => {
    const p = plan({
      originals: [
        { asset: 'music', path: '/opt/m.old', bytes: 9, keepUntil: ago(DAY), blocker: null },
        {
          asset: 'photos',
          path: '/opt/p.old',
          bytes: 9,
          keepUntil: ago(DAY),
          blocker: 'the migration no longer stands',
        },
        { asset: 'docs', path: '/opt/d.old', bytes: 9, keepUntil: ago(-DAY), blocker: 'x' },
      ],
    })
    expect(picked(p)).toEqual([['original', '/opt/m.old', 'kept-original', 9]])
    expect(p.candidates[0]?.id).toBe('/opt/m.old')
    expect(p.kept).toEqual([
      {
        kind: 'original',
        name: '/opt/p.old',
        id: '/opt/p.old',
        reason: 'photos: the migration no longer stands',
      },
    ])
  })
})

describe('the whole plan', () => {
  const inv = inventory({
    images: [
      image('dang', [], { sizeBytes: 1000 }),
      image('old', ['old:1'], { createdAt: ago(40 * DAY), sizeBytes: 2000, sharedBytes: 500 }),
      image('t1', ['app:1', 'app:x'], { createdAt: ago(3 * DAY) }),
      image('t2', ['app:2'], { createdAt: ago(2 * DAY) }),
      backup('b1', 'web', 'image', 20 * DAY, { sizeBytes: 700 }),
      backup('b2', 'web', 'image', 10 * DAY),
    ],
    containers: [
      container('stale', 'none', 'exited', { finishedAt: ago(8 * DAY), sizeRwBytes: 300 }),
    ],
    volumes: [{ name: 'v', sizeBytes: 4000, refCount: 0, labels: {}, createdAt: ago(60 * DAY) }],
    buildCache: [
      {
        id: 'r',
        sizeBytes: 11 * GB,
        inUse: false,
        shared: false,
        createdAt: null,
        lastUsedAt: null,
      },
    ],
    originals: [{ asset: 'a', path: '/opt/a.old', bytes: 50, keepUntil: ago(DAY), blocker: null }],
    disk: { usedBytes: 100 * GB, totalBytes: 200 * GB },
  })
  const pol = policy({ keepTags: 1, volumes: true })

  it('totals count, bytes and each kind', () => {
    const p = planPrune(inv, pol, NOW)
    expect(picked(p)).toEqual([
      ['container', 'stale', 'stopped-container', 300],
      ['image', id('dang').slice(7, 19), 'dangling-image', 1000],
      ['image', 'old:1', 'unused-image', 1500],
      ['image', 'app:1', 'old-tag', 100],
      ['image', 'web:shipshape-prev-20250526T120000Z', 'old-backup', 700],
      ['build-cache', 'build cache', 'build-cache', 11 * GB],
      ['volume', 'v', 'unused-volume', 4000],
      ['original', '/opt/a.old', 'kept-original', 50],
    ])
    const bytes = 300 + 1000 + 1500 + 100 + 700 + 11 * GB + 4000 + 50
    expect(p.totals).toEqual({
      count: 8,
      bytes,
      byKind: {
        container: { count: 1, bytes: 300 },
        image: { count: 4, bytes: 3300 },
        'build-cache': { count: 1, bytes: 11 * GB },
        volume: { count: 1, bytes: 4000 },
        original: { count: 1, bytes: 50 },
      },
    })
    expect(p.disk).toEqual({
      usedBytes: 100 * GB,
      totalBytes: 200 * GB,
      projectedBytes: 100 * GB - bytes,
    })
  })

  it('is deterministic: the order of the inventory does not matter', () => {
    const shuffled: PruneInventory = {
      ...inv,
      images: [...inv.images].reverse().map((i) => ({ ...i, tags: [...i.tags].reverse() })),
      containers: [...inv.containers].reverse(),
    }
    const a = planPrune(shuffled, pol, NOW)
    expect(a.candidates).toHaveLength(8)
    expect(a.kept.map((k) => k.name)).toEqual(['web:shipshape-prev-20250605T120000Z'])
    expect(a).toEqual(planPrune(inv, pol, NOW))
  })
})
