/**
 * npm run bench — the prune planner on a large host: 500 images (tags across ~80 repositories,
 * layers shared between them, rebuild backups of 20 services, a few dangling and held ones) and
 * 300 containers in every state, plus volumes, build cache and a full disk so that every rule
 * runs. The inventory is built from a fixed seed: the same on every run.
 *
 * Times planPrune() (pure, in process): the first run (what one `shipshape prune` pays: it plans
 * once, and again under the lock), then the median of 20 runs after 60 warm-up runs (the planner
 * compiled: V8 needs about 50 runs of it to settle; 5 would measure the middle of its warm-up).
 * Target ≤ 200 ms for both.
 * BENCH_SEED changes the seed.
 */
import { performance } from 'node:perf_hooks'
import { planPrune } from '../lib/prune/plan.js'
import type { PruneContainer, PruneImage, PruneInventory, PrunePolicy } from '../lib/prune/types.js'
import { median } from './fleet.js'

const TARGET_MS = 200
const RUNS = 20
const WARMUP = 60
const IMAGES = 500
const CONTAINERS = 300
const REPOS = 80
const SERVICES = 20
const DAY = 86_400_000
const MB = 1e6
const NOW = new Date('2025-06-15T12:00:00.000Z')

/** mulberry32: a small seeded generator, enough for a reproducible inventory */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** protected by the default protect label, or these labels */
const keepLabel = (yes: boolean, other: Record<string, string>): Record<string, string> =>
  yes ? { 'shipshape.keep': 'true' } : other

export function buildInventory(seed: number): PruneInventory {
  const r = rng(seed)
  const int = (n: number) => Math.floor(r() * n)
  const pick = <T>(xs: T[]): T => xs[int(xs.length)]!
  const ago = (ms: number) => new Date(NOW.getTime() - ms).toISOString()
  const hex = () => Array.from({ length: 64 }, () => '0123456789abcdef'[int(16)]).join('')
  const stamp = (ms: number) => ago(ms).replace(/[-:]|\.\d+/g, '')

  const images: PruneImage[] = []
  const repos = Array.from({ length: REPOS }, (_, i) =>
    i % 10 === 0 ? `registry.example:5000/team${i}/app${i}` : `app${i}`,
  )
  const services = Array.from({ length: SERVICES }, (_, i) => `svc${i}`)
  const lastUsed: Record<string, string> = {}

  // backups: 20 services, image + commit pairs from several runs each (about 120 images)
  for (const [i, service] of services.entries()) {
    const runs = 2 + (i % 4)
    for (let k = 0; k < runs; k++) {
      const age = (k * 5 + int(5)) * DAY + int(DAY)
      for (const kind of ['image', 'commit'] as const) {
        const prefix = kind === 'image' ? 'shipshape-prev-' : 'shipshape-backup-'
        const size = (200 + int(4000)) * MB
        images.push({
          id: `sha256:${hex()}`,
          tags: [`${service}:${prefix}${stamp(age)}`],
          createdAt: ago(age),
          sizeBytes: size,
          sharedBytes: kind === 'image' ? size - int(5) * MB : Math.floor(size * 0.7),
          labels: {
            'shipshape.backup.of': service,
            'shipshape.backup.created': ago(age),
            'shipshape.backup.kind': kind,
          },
          parentId: '',
          arrivedAt: ago(age),
        })
      }
    }
  }
  // the rest: tagged images across the repositories, a few dangling, a few held or protected
  while (images.length < IMAGES) {
    const n = images.length
    const age = int(200) * DAY + int(DAY)
    const size = (50 + int(9000)) * MB
    const repo = pick(repos)
    const tags =
      n % 25 === 0
        ? []
        : [
            `${repo}:v${int(60)}.${int(10)}`,
            ...(r() < 0.2 ? [`${repo}:latest`] : []),
            ...(r() < 0.05 ? [`${repo}:shipshape-hold-${stamp(DAY)}`] : []),
            ...(r() < 0.05 ? [`postgres:${10 + int(7)}`] : []),
          ]
    const id = `sha256:${hex()}`
    images.push({
      id,
      tags: [...new Set(tags)],
      createdAt: ago(age),
      sizeBytes: size,
      // shared layers: most images share a base with others
      sharedBytes: r() < 0.1 ? null : Math.floor(size * r() * 0.8),
      labels: keepLabel(r() < 0.03, { 'org.opencontainers.image.title': repo }),
      // a few built on an earlier image (classic store), most pulled some time after their build
      parentId: n % 40 === 1 && images.length ? pick(images).id : '',
      arrivedAt: r() < 0.2 ? null : ago(int(age + 1)),
    })
    if (r() < 0.5) lastUsed[id] = ago(int(age + 1))
  }

  const states = ['running', 'running', 'running', 'exited', 'exited', 'created', 'dead', 'paused']
  const containers: PruneContainer[] = Array.from({ length: CONTAINERS }, (_, i) => {
    const state = pick(states)
    const created = int(120) * DAY
    return {
      id: hex(),
      name: i % 50 === 0 ? `web${i}-shipshape-old-20250601T000000Z` : `c${i}`,
      imageId: pick(images).id,
      state,
      createdAt: ago(created),
      finishedAt:
        state === 'running' || state === 'paused' || state === 'created'
          ? null
          : ago(int(created + 1)),
      sizeRwBytes: r() < 0.1 ? null : int(500) * MB,
      labels: keepLabel(r() < 0.05, { 'com.docker.compose.service': `c${i}` }),
    }
  })

  return {
    images,
    containers,
    volumes: Array.from({ length: 120 }, (_, i) => ({
      name: `vol${i}`,
      sizeBytes: r() < 0.1 ? null : int(2000) * MB,
      refCount: r() < 0.1 ? null : int(3),
      labels: keepLabel(
        i % 30 === 0,
        i % 4 === 0 ? { 'com.docker.compose.project': `p${i % 12}` } : {},
      ),
      createdAt: ago(int(200) * DAY),
    })),
    buildCache: Array.from({ length: 400 }, (_, i) => ({
      id: `bc${i}`,
      sizeBytes: int(300) * MB,
      inUse: r() < 0.05,
      shared: r() < 0.2,
      createdAt: ago(int(90) * DAY),
      lastUsedAt: r() < 0.2 ? null : ago(int(60) * DAY),
    })),
    // nearly full even after the other rules: the disk-pressure rule goes through every image
    disk: { usedBytes: 20_000_000 * MB, totalBytes: 20_400_000 * MB },
    lastUsed,
    lastUsedVolumes: Object.fromEntries(
      Array.from({ length: 60 }, (_, i) => [`vol${i * 2}`, ago(int(60) * DAY)]),
    ),
    configuredProjects: { p0: 'svc0', p3: 'svc3' },
    pins: [{ values: [images[7]!.id, 'c3'], reason: 'named by an unfinished run' }],
    archives: Array.from({ length: 10 }, (_, i) => ({
      asset: `asset${i}`,
      path: `/opt/backups/asset${i}/20250101T000000Z/archive.tar.zst`,
      workDir: `/opt/backups/asset${i}/20250101T000000Z`,
      bytes: int(5000) * MB,
      action: (['move', 'remove', 'keep'] as const)[i % 3]!,
      note: '2025-01-09T00:00:00.000Z',
    })),
    originals: Array.from({ length: 10 }, (_, i) => ({
      asset: `asset${i}`,
      path: `/opt/asset${i}.shipshape-20250101T000000Z`,
      bytes: int(5000) * MB,
      keepUntil: ago((i - 5) * DAY),
      blocker: i % 3 === 0 ? 'the migration no longer stands' : null,
    })),
  }
}

const policy: PrunePolicy = {
  keepTags: 3,
  backupsFor: 7 * DAY,
  unusedImagesAfter: 30 * DAY,
  stoppedContainersAfter: 7 * DAY,
  buildCacheKeep: 10_000 * MB,
  diskThreshold: 0.85,
  protect: {
    images: ['postgres:*', 'registry.example:5000/team0/*'],
    labels: ['shipshape.keep=true'],
  },
  danglingAfter: 7 * DAY,
  volumes: true,
  volumesAfter: 30 * DAY,
  apply: false,
}

export const pruneBenchPolicy = (): PrunePolicy => policy

function main(): void {
  const inv = buildInventory(Number(process.env.BENCH_SEED ?? 20250615))
  const t0 = performance.now()
  let plan = planPrune(inv, policy, NOW)
  const first = performance.now() - t0
  for (let i = 1; i < WARMUP; i++) plan = planPrune(inv, policy, NOW)
  const times: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now()
    plan = planPrune(inv, policy, NOW)
    times.push(performance.now() - t0)
  }
  const ms = median(times)
  const ok = ms <= TARGET_MS && first <= TARGET_MS
  const rules = [...new Set(plan.candidates.map((c) => c.rule))].join(', ')
  console.log(
    [
      `prune plan: ${inv.images.length} images, ${inv.containers.length} containers: first run ${first.toFixed(1)} ms, median ${ms.toFixed(1)} ms after ${WARMUP} runs (target ≤ ${TARGET_MS} ms) ${ok ? 'PASS' : 'FAIL'}`,
      `  plan: ${plan.totals.count} candidates (${rules}), ${plan.kept.length} kept`,
    ].join('\n'),
  )
  if (!ok) process.exitCode = 1
}

// imported for its inventory (a comparison script): no run
if (!process.env.BENCH_IMPORT) main()
