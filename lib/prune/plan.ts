/**
 * The prune planner: inventory + policy + now → what goes and why, and what a rule matched but
 * stays (and why). Pure and deterministic (sorted output); execute.ts carries the plan out.
 *
 * Containers first: a stopped container this plan removes no longer keeps its image in use. Then
 * each image is claimed by one rule at most: a backup (label shipshape.backup.of) only by
 * old-backup; an untagged one by dangling-image; a tagged one by unused-image, else its extra tags
 * by old-tag. Then build cache, volumes, kept originals and, last (it looks at what everything
 * else frees), disk-pressure. No image is touched that is held (a `shipshape-hold-` tag: a
 * rebuild or rollback is running), in use by a container that stays, or protected (a
 * protect.images glob on one of its tags, a protect.labels label).
 */
import { formatBytes, formatDuration } from '../config/units.js'
import {
  BACKUP_CREATED_LABEL,
  BACKUP_KIND_LABEL,
  BACKUP_LABEL,
  COMMIT_PREFIX,
  HOLD_PREFIX,
  PREV_PREFIX,
} from '../shared/labels.js'
import { stampTime } from '../shared/stamp.js'
import type {
  Candidate,
  CandidateKind,
  Keep,
  PruneContainer,
  PruneImage,
  PruneInventory,
  PrunePlan,
  PrunePolicy,
  PruneRule,
} from './types.js'

const RULE_ORDER: PruneRule[] = [
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
]
const KIND_ORDER: CandidateKind[] = [
  'container',
  'image',
  'tag',
  'build-cache',
  'volume',
  'original',
  'archive',
]
const STOPPED = new Set(['exited', 'created', 'dead'])
const COMPOSE_PROJECT = 'com.docker.compose.project'
const BACKUP_PREFIXES = [PREV_PREFIX, COMMIT_PREFIX, HOLD_PREFIX]
/** the container a recreate keeps aside (lib/docker/recreate.ts asideName) */
const ASIDE = /-shipshape-old-[A-Za-z0-9_.-]+$/

// --- small pure helpers ----------------------------------------------------------------------

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** true when the reference has a tag: a ':' after the last '/' (so 'reg:5000/app' has none) */
function hasTag(ref: string): boolean {
  return ref.lastIndexOf(':') > ref.lastIndexOf('/')
}

/** 'app:1' → 'app', 'reg:5000/team/app:tag' → 'reg:5000/team/app', 'app@sha256:…' → 'app'. */
export function repoOf(ref: string): string {
  const at = ref.indexOf('@')
  const name = at >= 0 ? ref.slice(0, at) : ref
  return hasTag(name) ? name.slice(0, name.lastIndexOf(':')) : name
}

/** 'app:1' → '1'; '' when the reference names no tag (a digest, a bare repository). */
export function tagOf(ref: string): string {
  if (ref.includes('@') || !hasTag(ref)) return ''
  return ref.slice(ref.lastIndexOf(':') + 1)
}

/** Docker Hub's long spellings as `docker images` prints them: 'docker.io/library/pg' → 'pg'. */
function familiar(ref: string): string {
  return ref.replace(/^(?:index\.)?docker\.io\//, '').replace(/^library\/(?=[^/]+$)/, '')
}

function globRegExp(glob: string): RegExp {
  const g = familiar(glob.trim())
  const body = g
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*')
  // a bare name protects every tag of it ('postgres' is 'postgres:<tag>' too), no other name
  const bare = !g.includes('@') && !hasTag(g)
  return new RegExp(`^${body}${bare ? '(?::[^/:@]+)?' : ''}$`)
}

/**
 * A protect.images pattern against an image reference: `*` matches any run of characters (`/` and
 * `:` included); a pattern without a tag matches every tag of that name; Docker Hub's
 * `docker.io/library/` spelling is the short one on either side.
 */
export function matchesGlob(ref: string, glob: string): boolean {
  return globRegExp(glob).test(familiar(ref))
}

/** A protect.labels entry ('key': present with any value, 'key=value': that value) on labels. */
export function labelMatches(labels: Record<string, string>, spec: string): boolean {
  const eq = spec.indexOf('=')
  if (eq < 0) return Object.hasOwn(labels, spec)
  const key = spec.slice(0, eq)
  return Object.hasOwn(labels, key) && labels[key] === spec.slice(eq + 1)
}

/** What removing the image frees: its size less the layers other images share (when known). */
export function uniqueBytes(img: Pick<PruneImage, 'sizeBytes' | 'sharedBytes'>): number {
  return img.sharedBytes === null ? img.sizeBytes : Math.max(0, img.sizeBytes - img.sharedBytes)
}

/** A tag shipshape's rebuild makes (prev, backup, hold): counted by no keepTags rule. */
export function isShipshapeTag(ref: string): boolean {
  const tag = tagOf(ref)
  return BACKUP_PREFIXES.some((p) => tag.startsWith(p))
}

const shortId = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12)

/** ms since the epoch, null for a missing, unparseable or zero ('0001-01-01…') time */
function timeOf(s: string | null | undefined): number | null {
  if (!s) return null
  const v = Date.parse(s)
  return Number.isFinite(v) && v > 0 ? v : null
}

const pct = (x: number): string => `${Number((x * 100).toFixed(1))}%`
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`
const ordinal = (n: number): string => {
  const s = n % 100 >= 11 && n % 100 <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th')
  return `${n}${s}`
}

/** Tag names of one creation time, newest first: 'latest', then 'v10' before 'v9'. */
const tagCollator = new Intl.Collator('en', { numeric: true })

// --- the planner ------------------------------------------------------------------------------

interface ImageFacts {
  img: PruneImage
  name: string
  unique: number
  /** the hold tag, when a rebuild or rollback holds it */
  held: string | null
  /** why an unfinished run (or the last rollback) still needs it */
  pinned: string | null
  protectedBy: string | null
  backup: { service: string; kind: 'image' | 'commit'; created: number | null } | null
  /** containers that stay */
  users: PruneContainer[]
  /** containers this plan removes */
  freedBy: PruneContainer[]
  lastUse: { at: number; text: string } | null
}

interface TagEntry {
  ref: string
  tag: string
  created: number
  f: ImageFacts
}

const containerName = (c: PruneContainer): string => c.name.replace(/^\//, '')

function names(cs: PruneContainer[], withState: boolean): string {
  const shown = cs
    .slice(0, 3)
    .map((c) => (withState ? `${containerName(c)} (${c.state})` : containerName(c)))
  return shown.join(', ') + (cs.length > 3 ? ` and ${cs.length - 3} more` : '')
}

export function planPrune(inv: PruneInventory, policy: PrunePolicy, now: Date): PrunePlan {
  const t = now.getTime()
  const ago = (at: number) => `${formatDuration(Math.max(0, t - at))} ago`
  const candidates: Candidate[] = []
  const kept: Keep[] = []
  const protectLabel = (labels: Record<string, string>): string | null =>
    policy.protect.labels.find((l) => labelMatches(labels, l)) ?? null
  const globs = policy.protect.images.map((g) => ({ g, re: globRegExp(g) }))
  // what unfinished runs (and the last rollbacks) name: never pruned
  const pinReason = new Map<string, string>()
  for (const p of inv.pins)
    for (const v of p.values) if (!pinReason.has(v)) pinReason.set(v, p.reason)
  const pinOf = (values: string[]): string | null => {
    for (const v of values) {
      const r = pinReason.get(v)
      if (r !== undefined) return r
    }
    return null
  }

  // 1. stopped containers
  const removedContainers = new Set<string>()
  for (const c of inv.containers) {
    if (!STOPPED.has(c.state)) continue
    const finished = timeOf(c.finishedAt)
    const at = finished ?? timeOf(c.createdAt)
    if (at === null || t - at <= policy.stoppedContainersAfter) continue
    const name = containerName(c)
    const base = { kind: 'container' as const, name, id: c.id }
    const label = protectLabel(c.labels)
    const pinned = pinOf([c.id, name])
    if (pinned) {
      kept.push({ ...base, reason: pinned })
    } else if (label) {
      kept.push({ ...base, reason: `protected by the label ${label}` })
    } else if (ASIDE.test(name)) {
      kept.push({ ...base, reason: 'kept aside by a rebuild: its undo puts it back' })
    } else {
      removedContainers.add(c.id)
      candidates.push({
        ...base,
        sizeBytes: c.sizeRwBytes ?? 0,
        rule: 'stopped-container',
        reason: `${
          finished !== null
            ? `${c.state} ${ago(at)}`
            : c.state === 'created'
              ? `created ${ago(at)}, never started`
              : `${c.state} (no stop time), created ${ago(at)}`
        } (stopped containers go after ${formatDuration(policy.stoppedContainersAfter)})`,
      })
    }
  }

  // the facts every image rule reads
  const users = new Map<string, PruneContainer[]>()
  const freed = new Map<string, PruneContainer[]>()
  for (const c of [...inv.containers].sort((a, b) => cmp(containerName(a), containerName(b)))) {
    const m = removedContainers.has(c.id) ? freed : users
    const list = m.get(c.imageId)
    if (list) list.push(c)
    else m.set(c.imageId, [c])
  }
  const facts: ImageFacts[] = [...inv.images]
    .sort((a, b) => cmp(a.id, b.id))
    .map((img) => {
      const tags = [...img.tags].sort()
      const glob = globs.find(({ re }) => tags.some((ref) => re.test(familiar(ref))))?.g
      const label = protectLabel(img.labels)
      // a backup: a labelled copy (older shipshape), or an image named only by shipshape's tags
      // with a prev tag on it (the very image a service ran, kept for a rollback)
      const prevRef = tags.find((r) => tagOf(r).startsWith(PREV_PREFIX))
      const onlyOurs = tags.length > 0 && tags.every(isShipshapeTag)
      const service =
        img.labels[BACKUP_LABEL] ?? (prevRef && onlyOurs ? repoOf(prevRef) : undefined)
      const freedBy = freed.get(img.id) ?? []
      const recorded = timeOf(inv.lastUsed[img.id])
      const created = timeOf(img.createdAt)
      const arrived = timeOf(img.arrivedAt)
      // with no recorded use, an image counts as used when it came to this host (pulled, built,
      // tagged), not when it was built upstream: yesterday's pull of a year-old image is new here
      // a record older than the image's arrival (removed, then pulled or loaded again) is stale
      let lastUse =
        recorded !== null && (arrived === null || recorded >= arrived)
          ? { at: recorded, text: `last used ${ago(recorded)}` }
          : arrived !== null && (created === null || arrived >= created)
            ? {
                at: arrived,
                text: `pulled or tagged here ${ago(arrived)}, ${recorded === null ? 'no recorded use' : 'not used since'}`,
              }
            : created !== null
              ? { at: created, text: `created ${ago(created)}, no recorded use` }
              : null
      // a container that goes in this plan was a use of its image too: the latest of them counts
      for (const c of freedBy) {
        const stop = timeOf(c.finishedAt) ?? timeOf(c.createdAt)
        if (stop !== null && (lastUse === null || stop > lastUse.at)) {
          lastUse = { at: stop, text: `its container ${containerName(c)} stopped ${ago(stop)}` }
        }
      }
      const backupTag = tags.find((r) => isShipshapeTag(r) && !tagOf(r).startsWith(HOLD_PREFIX))
      return {
        img,
        name: (service !== undefined ? backupTag : undefined) ?? tags[0] ?? shortId(img.id),
        unique: uniqueBytes(img),
        held: tags.find((r) => tagOf(r).startsWith(HOLD_PREFIX)) ?? null,
        pinned: pinOf([img.id, ...tags]),
        protectedBy: glob
          ? `protected by protect.images ${glob}`
          : label
            ? `protected by the label ${label}`
            : null,
        backup:
          service !== undefined
            ? {
                service,
                kind: img.labels[BACKUP_KIND_LABEL] === 'commit' ? 'commit' : 'image',
                created:
                  timeOf(img.labels[BACKUP_CREATED_LABEL]) ??
                  (prevRef ? stampTime(tagOf(prevRef).slice(PREV_PREFIX.length)) : null) ??
                  created,
              }
            : null,
        users: users.get(img.id) ?? [],
        freedBy,
        lastUse,
      }
    })

  /** why no rule may take the image, or null */
  const guard = (f: ImageFacts): string | null =>
    f.held
      ? `held by a running rebuild or rollback (${f.held})`
      : f.pinned
        ? f.pinned
        : f.users.length
          ? `in use by ${names(f.users, true)}`
          : f.protectedBy
  const freedNote = (f: ImageFacts): string =>
    f.freedBy.length
      ? `; no container left once ${names(f.freedBy, false)} ${f.freedBy.length === 1 ? 'goes' : 'go'} (this plan)`
      : ''
  const keptImages = new Set<string>()
  const keepImage = (f: ImageFacts, reason: string) => {
    keptImages.add(f.img.id)
    kept.push({ kind: 'image', name: f.name, id: f.img.id, reason })
  }
  /** images an image candidate removes (whole) */
  const taken = new Set<string>()
  const takeImage = (f: ImageFacts, rule: PruneRule, reason: string) => {
    taken.add(f.img.id)
    candidates.push({
      kind: 'image',
      name: f.name,
      id: f.img.id,
      sizeBytes: f.unique,
      rule,
      reason,
      tags: [...f.img.tags].sort(),
    })
  }

  // 5. backups: by service and kind. The newest of each kind stays whatever its age: the image
  // backup (shipshape-prev-) is the cheap rollback target (it shares the image's layers), the
  // commit (shipshape-backup-) the only copy of a container's writable layer once compose has
  // recreated it — one run makes both with the same created time, so "the newest per service"
  // alone would keep one of the pair at random.
  const newestBackup = new Set<string>()
  const groups = new Map<string, ImageFacts[]>()
  for (const f of facts) {
    if (!f.backup) continue
    const key = `${f.backup.service}\0${f.backup.kind}`
    const g = groups.get(key)
    if (g) g.push(f)
    else groups.set(key, [f])
  }
  for (const g of groups.values()) {
    g.sort((a, b) => (b.backup?.created ?? 0) - (a.backup?.created ?? 0) || cmp(b.img.id, a.img.id))
    if (g[0]) newestBackup.add(g[0].img.id)
  }
  for (const f of facts) {
    if (!f.backup || f.backup.created === null) continue
    if (t - f.backup.created <= policy.backupsFor) continue
    const what = `${f.backup.kind} backup of ${f.backup.service || '(no service)'}`
    const why = newestBackup.has(f.img.id) ? `the newest ${what}: kept whatever its age` : guard(f)
    if (why) keepImage(f, why)
    else {
      takeImage(
        f,
        'old-backup',
        `${what} from ${ago(f.backup.created)} (backups go after ${formatDuration(policy.backupsFor)}; a newer one stays)`,
      )
    }
  }

  // 2. dangling and 3. unused images
  const unusedFor = formatDuration(policy.unusedImagesAfter)
  for (const f of facts) {
    if (f.backup) continue
    if (!f.img.tags.length) {
      const why = guard(f)
      // dangling since at least when it was built or last tagged here: a rollback's untagged
      // newer build, a failed build left for inspection stay danglingAfter
      const since = Math.max(timeOf(f.img.createdAt) ?? 0, timeOf(f.img.arrivedAt) ?? 0) || null
      if (why) keepImage(f, why)
      else if (since === null || t - since <= policy.danglingAfter) {
        keepImage(
          f,
          `dangling, but ${since === null ? 'of unknown age' : `built or tagged here ${ago(since)}`} (dangling images go after ${formatDuration(policy.danglingAfter)})`,
        )
      } else {
        takeImage(
          f,
          'dangling-image',
          `dangling (no tag), built or tagged here ${ago(since)} (dangling images go after ${formatDuration(policy.danglingAfter)}), no container uses it${freedNote(f)}`,
        )
      }
      continue
    }
    if (!f.lastUse || t - f.lastUse.at <= policy.unusedImagesAfter) continue
    const why = guard(f)
    if (why) keepImage(f, why)
    else
      takeImage(
        f,
        'unused-image',
        `${f.lastUse.text} (unused images go after ${unusedFor})${freedNote(f)}`,
      )
  }

  // 4. all but the newest keepTags tags per repository, among the images still there
  const repos = new Map<string, TagEntry[]>()
  for (const f of facts) {
    if (taken.has(f.img.id)) continue
    for (const ref of f.img.tags) {
      if (ref.includes('@') || isShipshapeTag(ref)) continue
      const repo = repoOf(ref)
      const e = { ref, tag: tagOf(ref), created: timeOf(f.img.createdAt) ?? 0, f }
      const list = repos.get(repo)
      if (list) list.push(e)
      else repos.set(repo, [e])
    }
  }
  const extraTags = new Map<string, { e: TagEntry; rank: number; repo: string }[]>()
  for (const [repo, list] of repos) {
    if (list.length <= policy.keepTags) continue
    list.sort(
      (a, b) =>
        b.created - a.created ||
        Number(b.tag === 'latest') - Number(a.tag === 'latest') ||
        tagCollator.compare(b.tag, a.tag) ||
        cmp(b.tag, a.tag) ||
        cmp(a.f.img.id, b.f.img.id),
    )
    list.slice(policy.keepTags).forEach((e, i) => {
      const why = e.f.backup
        ? `a ${e.f.backup.kind} backup of ${e.f.backup.service}: only old-backup removes it`
        : guard(e.f)
      if (why) {
        if (!keptImages.has(e.f.img.id)) {
          kept.push({ kind: 'tag', name: e.ref, id: e.f.img.id, reason: why })
        }
        return
      }
      const x = extraTags.get(e.f.img.id)
      const item = { e, rank: policy.keepTags + i + 1, repo }
      if (x) x.push(item)
      else extraTags.set(e.f.img.id, [item])
    })
  }
  const keeping = `keeping the newest ${plural(policy.keepTags, 'tag')}`
  for (const [id, extras] of extraTags) {
    const f = extras[0]!.e.f
    extras.sort((a, b) => cmp(a.e.ref, b.e.ref))
    const why = (x: (typeof extras)[number]) =>
      `the ${ordinal(x.rank)} newest tag of ${x.repo} (${keeping})`
    if (extras.length === f.img.tags.length) {
      taken.add(id)
      candidates.push({
        kind: 'image',
        name: extras[0]!.e.ref,
        id,
        sizeBytes: f.unique,
        rule: 'old-tag',
        reason: `${extras.map(why).join('; ')}; ${extras.length === 1 ? 'its last tag' : 'all its tags'}, no container uses it`,
        tags: [...f.img.tags].sort(),
      })
    } else {
      for (const x of extras) {
        candidates.push({
          kind: 'tag',
          name: x.e.ref,
          id,
          sizeBytes: 0,
          rule: 'old-tag',
          reason: `${why(x)}; the image keeps its other tags`,
        })
      }
    }
  }

  // a parent image goes only with every image built on it: the engine refuses to remove one
  // that has children ("has dependent child images"); execute.ts removes children first
  const factsById = new Map(facts.map((f) => [f.img.id, f]))
  const children = new Map<string, string[]>()
  for (const f of facts) {
    if (!f.img.parentId || !factsById.has(f.img.parentId)) continue
    const list = children.get(f.img.parentId)
    if (list) list.push(f.img.id)
    else children.set(f.img.parentId, [f.img.id])
  }
  const stayingChild = (id: string): ImageFacts | null => {
    const c = (children.get(id) ?? []).find((x) => !taken.has(x))
    return c === undefined ? null : (factsById.get(c) ?? null)
  }
  for (let changed = true; changed;) {
    changed = false
    for (let i = candidates.length - 1; i >= 0; i--) {
      const c = candidates[i]!
      const child = c.kind === 'image' ? stayingChild(c.id) : null
      if (!child) continue
      candidates.splice(i, 1)
      taken.delete(c.id)
      changed = true
      keepImage(
        factsById.get(c.id)!,
        `the image ${child.name} is built on it and stays (an image with children cannot be removed)`,
      )
    }
  }

  // 6. build cache above buildCacheKeep; shared records count for nothing, as in
  // `docker system df`: their bytes are image layers, and removing them frees none
  let buildCacheKeepBytes: number | null = null
  const cache = inv.buildCache
    .filter((b) => !b.inUse && !b.shared)
    .map((b) => ({ b, at: timeOf(b.lastUsedAt) ?? timeOf(b.createdAt) ?? 0 }))
    .sort((x, y) => x.at - y.at || cmp(x.b.id, y.b.id))
  const cacheBytes = cache.reduce((a, x) => a + x.b.sizeBytes, 0)
  if (cacheBytes > policy.buildCacheKeep) {
    let left = cacheBytes
    let freedBytes = 0
    let n = 0
    for (const x of cache) {
      if (left <= policy.buildCacheKeep) break
      left -= x.b.sizeBytes
      freedBytes += x.b.sizeBytes
      n++
    }
    buildCacheKeepBytes = policy.buildCacheKeep
    candidates.push({
      kind: 'build-cache',
      name: 'build cache',
      id: '',
      sizeBytes: freedBytes,
      rule: 'build-cache',
      reason: `${formatBytes(cacheBytes)} of unused build cache, over the ${formatBytes(policy.buildCacheKeep)} kept: the ${plural(n, 'least recently used record')}`,
    })
  }

  // 8. volumes, only when opted in, past volumesAfter of disuse. A compose project's volumes stay
  // while the project has a configured service or any container: `compose down` keeps them for
  // the next `up` (a database's data); Docker 23+ prunes only anonymous volumes for that reason.
  if (policy.volumes) {
    const projectContainer = new Map<string, string>()
    for (const c of [...inv.containers].sort((a, b) => cmp(containerName(a), containerName(b)))) {
      const p = c.labels[COMPOSE_PROJECT]
      if (p && !projectContainer.has(p)) projectContainer.set(p, containerName(c))
    }
    const volumesAfter = formatDuration(policy.volumesAfter)
    for (const v of [...inv.volumes].sort((a, b) => cmp(a.name, b.name))) {
      const base = { kind: 'volume' as const, name: v.name, id: v.name }
      const label = protectLabel(v.labels)
      const project = v.labels[COMPOSE_PROJECT]
      const recorded = timeOf(inv.lastUsedVolumes[v.name])
      const created = timeOf(v.createdAt)
      const use =
        recorded !== null && (created === null || recorded >= created)
          ? { at: recorded, text: `last used ${ago(recorded)}` }
          : created !== null
            ? { at: created, text: `created ${ago(created)}, no recorded use` }
            : null
      const pinned = pinOf([v.name])
      const why =
        v.refCount === null
          ? 'the engine did not count its containers: unknown, kept'
          : v.refCount > 0
            ? `in use by ${plural(v.refCount, 'container')}`
            : label
              ? `protected by the label ${label}`
              : pinned
                ? pinned
                : project && inv.configuredProjects[project]
                  ? `its compose project ${project} has the configured service ${inv.configuredProjects[project]} (a \`compose up\` uses it again)`
                  : project && projectContainer.has(project)
                    ? `its compose project ${project} still has the container ${projectContainer.get(project)}`
                    : use === null
                      ? 'no known time of creation or use: kept'
                      : t - use.at <= policy.volumesAfter
                        ? `no container uses it, but ${use.text} (volumes go after ${volumesAfter} of disuse)`
                        : null
      if (why) kept.push({ ...base, reason: why })
      else {
        candidates.push({
          ...base,
          sizeBytes: v.sizeBytes ?? 0,
          rule: 'unused-volume',
          reason: `no container uses it, ${use!.text} (volumes go after ${volumesAfter} of disuse; prune.volumes is on)`,
        })
      }
    }
  }

  // 9. originals migrate-assets kept aside, past keepOriginal (as finalize.ts: due at keepUntil)
  for (const o of [...inv.originals].sort((a, b) => cmp(a.path, b.path))) {
    const until = timeOf(o.keepUntil)
    if (until === null || until > t) continue
    const base = { kind: 'original' as const, name: o.path, id: o.path }
    const pinned = pinOf([o.asset, o.path])
    if (pinned) kept.push({ ...base, reason: pinned })
    else if (o.blocker) kept.push({ ...base, reason: `${o.asset}: ${o.blocker}` })
    else {
      candidates.push({
        ...base,
        sizeBytes: o.bytes,
        rule: 'kept-original',
        reason: `${o.asset}: the original was kept until ${o.keepUntil} (${ago(until)}); the backup archive stays`,
      })
    }
  }

  // 10. backup archives of migrations whose original is finalized, past keepBackup: moved onto
  // the remote or removed (execute verifies the destination on the remote again first)
  for (const a of [...inv.archives].sort((x, y) => cmp(x.path, y.path))) {
    const base = { kind: 'archive' as const, name: a.path, id: a.workDir }
    const pinned = pinOf([a.asset, a.workDir, a.path])
    if (a.action === 'keep' || pinned) {
      kept.push({ ...base, reason: pinned ?? `${a.asset}: ${a.note}` })
      continue
    }
    candidates.push({
      ...base,
      sizeBytes: a.bytes,
      rule: 'migrated-archive',
      reason: `${a.asset}: the original was finalized ${a.note}; ${
        a.action === 'move'
          ? 'moved onto the remote (backupTo: remote) and verified there, then removed here'
          : 'removed (backupTo: local, keepBackup passed)'
      } — after the destination is verified again on the remote`,
    })
  }

  // 7. disk pressure: after everything else, least recently used images first. The originals
  // count too: on the usual one-disk host they share the engine's filesystem; where they do not,
  // counting them only makes this rule take fewer images, never more.
  const plannedBytes = () => candidates.reduce((a, c) => a + c.sizeBytes, 0)
  let disk: PrunePlan['disk'] = null
  if (inv.disk) {
    const { usedBytes, totalBytes } = inv.disk
    let projected = usedBytes - plannedBytes()
    if (totalBytes > 0 && projected / totalBytes > policy.diskThreshold) {
      const lru = facts
        .filter((f) => !f.backup && !taken.has(f.img.id) && !guard(f) && f.img.tags.length)
        // an image with no known time goes last: nothing says it is the least recently used
        .sort(
          (a, b) =>
            (a.lastUse?.at ?? Infinity) - (b.lastUse?.at ?? Infinity) || cmp(a.img.id, b.img.id),
        )
      const superseded = new Set<string>()
      for (const f of lru) {
        if (projected / totalBytes <= policy.diskThreshold) break
        if (stayingChild(f.img.id)) continue
        // its untag candidates give way to removing the whole image
        superseded.add(f.img.id)
        taken.add(f.img.id)
        candidates.push({
          kind: 'image',
          name: f.name,
          id: f.img.id,
          sizeBytes: f.unique,
          rule: 'disk-pressure',
          tags: [...f.img.tags].sort(),
          reason: `engine disk at ${pct(projected / totalBytes)} after the rest of the plan, over ${pct(policy.diskThreshold)}: least recently used first — ${f.lastUse?.text ?? 'no known time'}`,
        })
        projected -= f.unique
      }
      for (let i = candidates.length - 1; i >= 0; i--) {
        const c = candidates[i]!
        if (c.kind === 'tag' && superseded.has(c.id)) candidates.splice(i, 1)
      }
    }
    disk = { usedBytes, totalBytes, projectedBytes: Math.max(0, usedBytes - plannedBytes()) }
  }

  candidates.sort(
    (a, b) =>
      RULE_ORDER.indexOf(a.rule) - RULE_ORDER.indexOf(b.rule) ||
      cmp(a.name, b.name) ||
      cmp(a.id, b.id),
  )
  kept.sort(
    (a, b) =>
      KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) ||
      cmp(a.name, b.name) ||
      cmp(a.id, b.id),
  )
  return {
    candidates,
    kept,
    totals: totalsOf(candidates),
    buildCacheKeepBytes,
    disk,
  }
}

/** Count and bytes of candidates, in all and per kind. */
export function totalsOf(candidates: Candidate[]): PrunePlan['totals'] {
  const byKind: PrunePlan['totals']['byKind'] = {}
  for (const c of candidates) {
    const k = (byKind[c.kind] ??= { count: 0, bytes: 0 })
    k.count++
    k.bytes += c.sizeBytes
  }
  return {
    count: candidates.length,
    bytes: candidates.reduce((a, c) => a + c.sizeBytes, 0),
    byKind,
  }
}
