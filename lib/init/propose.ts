/**
 * `config init`, the pure half: what was found on the host (InitFacts) → a starting host config
 * (YAML spelling: "2GB", "7d") with the comments a person needs to review it. No I/O; render.ts
 * turns a Proposal into YAML text.
 */
import path from 'node:path'
import { checkSourcePath, PROTECTED_PATHS } from '../assets/policy.js'
import { EMBEDDED_DEFAULT } from '../config/load.js'
import { configSchema, configToInput, type Config } from '../config/schema.js'
import { formatBytes } from '../config/units.js'
import { isUnder } from '../host/mountinfo.js'
import { labelFiles } from '../rebuild/target.js'
import type { ContainerFacts, FuseMount, InitFacts, PublishedPort } from './facts.js'

export type KeyPath = (string | number)[]

/** A comment at a key: `before` as lines above it, `after` at the end of its line. */
export interface Note {
  path: KeyPath
  before?: string[]
  after?: string
}

/** An entry written as comments only, with why it is not active. */
export interface DisabledEntry {
  name: string
  why: string[]
  entry: Record<string, unknown>
  /** paths relative to the entry */
  notes: Note[]
}

export interface Proposal {
  header: string[]
  /** the config as YAML values, in the order it is written */
  config: Record<string, unknown>
  notes: Note[]
  /** per section: entries left as comments and closing remarks, after the active entries */
  trailing: Record<'services' | 'assets', { disabled: DisabledEntry[]; lines: string[] }>
  /** dotted keys whose values are guesses a person must confirm */
  guessed: string[]
  services: string[]
  assets: string[]
  protect: string[]
  warnings: string[]
}

export interface ProposeSettings {
  /** the config init ran with: thresholds (report.bigAssets), allowedRoots, stateDir, backupDir */
  config: Config
  /** where it came from: a path or 'embedded default' */
  configSource: string
  now: Date
}

const PROJECT = 'com.docker.compose.project'
const SERVICE = 'com.docker.compose.service'
const ONEOFF = 'com.docker.compose.oneoff'
/** a rebuild's old container kept aside (lib/docker/recreate.ts) */
const ASIDE = /-shipshape-old-[A-Za-z0-9_.-]+$/
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/

/** An entry name out of anything: the schema's name rule (docker's own). */
export function toName(s: string, fallback = 'entry'): string {
  const n = s.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '')
  return n || fallback
}

function uniqueName(name: string, used: Set<string>): string {
  let n = name
  for (let i = 2; used.has(n); i++) n = `${name}-${i}`
  used.add(n)
  return n
}

/** The asset name the report suggests for a path (lib/report/analyze.ts slug): its last two parts. */
export function assetSlug(p: string): string {
  return toName(
    p
      .split('/')
      .filter(Boolean)
      .slice(-2)
      .join('-')
      .replace(/[^A-Za-z0-9._-]+/g, '-')
      .toLowerCase(),
    'asset',
  )
}

/**
 * Why a bind-mounted directory cannot be an asset (migrate-assets' own path rule: a system path,
 * outside allowedRoots, shipshape's own directories), or null. gather.ts measures only those
 * that can be.
 */
export function sourceRefusal(
  source: string,
  config: Pick<Config, 'allowedRoots' | 'stateDir' | 'backupDir'>,
): string | null {
  return (
    checkSourcePath(source, {
      allowedRoots: config.allowedRoots,
      stateDir: config.stateDir,
      backupDir: config.backupDir,
    })[0]?.message ?? null
  )
}

const isSystemPath = (p: string) =>
  PROTECTED_PATHS.some((s) => p === s || (s !== '/' && (isUnder(p, s) || isUnder(s, p))))

// --- images ------------------------------------------------------------------------------------

/** Repository of a reference: 'reg:5000/a/pg:16' → 'reg:5000/a/pg', 'pg@sha256:…' → 'pg'. */
export function repoOf(ref: string): string {
  const noDigest = ref.split('@')[0] ?? ref
  const slash = noDigest.lastIndexOf('/')
  const colon = noDigest.lastIndexOf(':')
  return colon > slash ? noDigest.slice(0, colon) : noDigest
}

const DATABASES = [
  'postgres',
  'postgresql',
  'postgis',
  'timescaledb',
  'pgvector',
  'mysql',
  'mariadb',
  'percona',
  'percona-server',
  'mongo',
  'mongodb',
  'redis',
  'valkey',
  'keydb',
  'elasticsearch',
  'opensearch',
  'influxdb',
  'clickhouse',
  'couchdb',
  'couchbase',
  'neo4j',
  'rabbitmq',
  'minio',
  'cassandra',
  'scylla',
  'etcd',
  'zookeeper',
  'kafka',
  'qdrant',
  'weaviate',
  'milvus',
  'meilisearch',
  'typesense',
  'cockroach',
  'mssql-server',
]
const DATABASE_REPO = new RegExp(
  `^(?:${DATABASES.join('|')})(?:[-_](?:server|ha|community|stack|alpine|oss|standalone))*$`,
)

/** Is this image (by its reference's last path part) a database or another data store? */
export function isDatabaseImage(ref: string): boolean {
  const last = repoOf(ref).split('/').pop() ?? ''
  return DATABASE_REPO.test(last.toLowerCase())
}

const IMAGE_ID = /^(sha256:)?[0-9a-f]{12,64}$/

/** The reference a container runs by name; an image run by id falls back to one of its tags. */
function runningRef(c: ContainerFacts): string | null {
  if (!IMAGE_ID.test(c.image) && c.image) return c.image
  return c.imageTags[0] ?? null
}

/** Named volumes (not the anonymous ones, named by a 64-hex id). */
const namedVolumes = (c: ContainerFacts) =>
  c.mounts
    .filter((m) => m.type === 'volume' && m.name && !/^[0-9a-f]{64}$/.test(m.name))
    .map((m) => m.name!)

// --- health ------------------------------------------------------------------------------------

/** Ports that do not speak HTTP (databases, brokers, mail, ssh, dns). */
const NOT_HTTP = new Set([
  21, 22, 23, 25, 53, 110, 143, 389, 465, 587, 636, 993, 995, 1433, 1521, 1883, 2049, 2181, 3306,
  4222, 5432, 5672, 6379, 7687, 8883, 9042, 9092, 11211, 27017, 61616,
])
/** The usual HTTP ports, most likely first. */
const HTTP_FIRST = [80, 8080, 8000, 3000, 5000, 8888, 8081, 9000, 443, 8443]
const httpRank = (port: number) => {
  const i = HTTP_FIRST.indexOf(port)
  return i < 0 ? HTTP_FIRST.length : i
}

export interface HealthGuess {
  health: Record<string, unknown> | null
  guessed: boolean
  note: string
}

const hostFor = (ip: string) =>
  !ip || ip === '0.0.0.0' || ip === '::' ? '127.0.0.1' : ip.includes(':') ? `[${ip}]` : ip

/** The health check a container suggests: its HEALTHCHECK, else a guess at an HTTP port. */
export function guessHealth(c: ContainerFacts): HealthGuess {
  if (c.healthcheck)
    return { health: { container: true }, guessed: false, note: "the container's own HEALTHCHECK" }
  const none = {
    health: null,
    guessed: false,
    note: 'no health check found (no HEALTHCHECK, no HTTP port): rebuild needs one, add health: url:, command: or container: true',
  }
  if (isDatabaseImage(runningRef(c) ?? '')) return none
  const tcp = (p: PublishedPort) => p.protocol === 'tcp' && !NOT_HTTP.has(p.port)
  const published = c.published.filter(tcp).sort((a, b) => httpRank(a.port) - httpRank(b.port))
  const scheme = (port: number) => (port === 443 || port === 8443 ? 'https' : 'http')
  const p = published[0]
  if (p) {
    return {
      health: { url: `${scheme(p.port)}://${hostFor(p.hostIp)}:${p.hostPort}/` },
      guessed: true,
      note: `guessed: confirm (published port ${p.port}/tcp); a /health path is better`,
    }
  }
  if (c.networkMode === 'host') {
    const port = c.exposed
      .filter((x) => !NOT_HTTP.has(x))
      .sort((a, b) => httpRank(a) - httpRank(b))[0]
    if (port !== undefined) {
      return {
        health: { url: `${scheme(port)}://127.0.0.1:${port}/` },
        guessed: true,
        note: `guessed: confirm (host network, EXPOSE ${port}); a /health path is better`,
      }
    }
  }
  return none
}

const AUTH_NOTE =
  'behind basic auth? add userEnv/passwordEnv: the NAMES of environment variables holding them, never the values'

// --- the proposal ------------------------------------------------------------------------------

interface Group {
  project: string
  service: string
  containers: ContainerFacts[]
}

const byRunningThenName = (a: ContainerFacts, b: ContainerFacts) =>
  Number(b.running) - Number(a.running) || a.name.localeCompare(b.name)

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * What the config init ran with sets apart from the defaults, kept (its thresholds, allowedRoots,
 * engine address…): the proposal then follows the same policy. Services, assets and the host
 * name are proposed afresh; report.paths and prune.protect.images are merged by the caller.
 */
export function carriedSettings(config: Config): Record<string, unknown> {
  const mine = configToInput(config) as Record<string, unknown>
  const defaults = configToInput(configSchema.parse({ host: config.host })) as Record<
    string,
    unknown
  >
  const skip = new Set(['host', 'services', 'assets', 'report.paths', 'prune.protect.images'])
  const diff = (a: unknown, b: unknown, at: string): unknown => {
    if (isPlainObject(a)) {
      const out: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(a)) {
        const key = at ? `${at}.${k}` : k
        if (skip.has(key)) continue
        const d = diff(v, isPlainObject(b) ? b[k] : undefined, key)
        if (d !== undefined) out[k] = d
      }
      return Object.keys(out).length ? out : undefined
    }
    return JSON.stringify(a) === JSON.stringify(b) ? undefined : a
  }
  return (diff(mine, defaults, '') as Record<string, unknown> | undefined) ?? {}
}

/** What the parts of propose() add to besides their own section. */
interface Acc {
  notes: Note[]
  guessed: string[]
  trailing: Proposal['trailing']
}

/** facts → the starting config with its comments. Pure. */
export function propose(facts: InitFacts, s: ProposeSettings): Proposal {
  const acc: Acc = {
    notes: [],
    guessed: [],
    trailing: { services: { disabled: [], lines: [] }, assets: { disabled: [], lines: [] } },
  }
  const services = proposeServices(facts, acc)
  const { assets, roots, outside } = proposeAssets(facts, s.config, acc)
  const protect = proposeProtect(facts)
  const loadedProtect = s.config.prune.protect.images
  const protectList = [...new Set([...loadedProtect, ...protect.refs.keys()])]
  const paths = [...new Set([...s.config.report.paths, ...roots])]

  // the document, in writing order; what the config init ran with changed is kept
  const { report: carriedReport, prune: carriedPrune, ...carriedTop } = carriedSettings(s.config)
  const pruneIn = (carriedPrune ?? {}) as Record<string, unknown>
  const config: Record<string, unknown> = {
    host: facts.hostname,
    ...carriedTop,
    report: { ...(carriedReport as object | undefined), paths },
    services,
    assets,
    prune: {
      ...pruneIn,
      protect: { ...(pruneIn.protect as object | undefined), images: protectList },
    },
  }

  const notes = acc.notes
  const firstCarried = Object.keys(carriedTop)[0] ?? (carriedReport ? 'report' : null)
  if (firstCarried)
    notes.push({
      path: [firstCarried],
      before: [`kept from ${s.configSource} (where it differs from the defaults):`],
    })
  notes.push({
    path: ['report', 'paths'],
    after: paths.length
      ? 'the allowed roots holding the bind-mounted directories, measured with du'
      : 'no bind-mounted directory below allowedRoots',
  })
  if (outside.length)
    notes.push({
      path: ['report', 'paths'],
      before: [
        `bind-mounted directories outside allowedRoots (${s.config.allowedRoots.join(', ')}), not measured:`,
        ...outside.slice(0, MAX_LISTED).map((o) => `  ${o}`),
        ...(outside.length > MAX_LISTED ? [`  … and ${outside.length - MAX_LISTED} more`] : []),
      ],
    })
  notes.push({
    path: ['services'],
    before: [
      'Every compose service (found by its com.docker.compose.* labels) and plain container.',
      'gpu: from GPU requests and the images’ ENV and history only; `shipshape torch-check --all`',
      'reads the image content. A plain container needs build: (or a shipshape.build label) to be rebuilt.',
    ],
  })
  notes.push({
    path: ['assets'],
    before: [
      `Bind-mounted directories over report.bigAssets (${formatBytes(s.config.report.bigAssets)}, du -x), each with a dest on`,
      'a live rclone/FUSE mount; `shipshape migrate-assets NAME --dry-run` shows the plan first.',
    ],
  })
  notes.push({
    path: ['prune'],
    before: [
      'Images of database-like containers (every tag) and of containers holding a named volume:',
      'prune never removes them.',
    ],
  })
  protectList.forEach((ref, i) =>
    notes.push({
      path: ['prune', 'protect', 'images', i],
      after:
        protect.refs.get(ref) ??
        (loadedProtect.includes(ref) ? `kept from ${s.configSource}` : undefined),
    }),
  )
  if (protect.unprotectable.length)
    notes.push({ path: ['prune', 'protect', 'images'], before: protect.unprotectable })

  const source =
    s.configSource === EMBEDDED_DEFAULT ? 'the embedded default config' : s.configSource
  const header = [
    `Host config for ${facts.hostname}, written by \`shipshape config init\` at ${s.now.toISOString()}`,
    `from what the engine at ${facts.engine} runs (${plural(facts.containers.length, 'container')}) and the bind mounts it found;`,
    `thresholds and allowedRoots from ${source}.`,
    '',
    'Review it before relying on it: a value marked "guessed" is a guess to confirm; an entry left',
    'commented out says why. `shipshape config check FILE` validates it; keys left out take the',
    'defaults (`shipshape config show`). Secrets never go here: a health check names environment',
    'variables (userEnv/passwordEnv) or a passwordFile.',
  ]

  return {
    header,
    config,
    notes: notes.filter((n) => n.before?.length || n.after),
    trailing: acc.trailing,
    guessed: acc.guessed,
    services: Object.keys(services),
    assets: Object.keys(assets),
    protect: protectList,
    warnings: [...facts.warnings],
  }
}

const MAX_LISTED = 10

type Entry = Record<string, unknown>

/** health and gpu of a service entry, from its containers (the first is the one to ask). */
function serviceExtras(
  name: string,
  entry: Entry,
  notes: Note[],
  containers: ContainerFacts[],
  acc: Acc,
): void {
  const h = guessHealth(containers[0]!)
  if (h.health) {
    entry.health = h.health
    notes.push({ path: ['health', 'url' in h.health ? 'url' : 'container'], after: h.note })
    if (h.guessed) {
      acc.guessed.push(`services.${name}.health.url`)
      notes.push({ path: ['health'], before: [AUTH_NOTE] })
    }
  } else {
    notes.push({ path: [], before: [h.note] })
  }
  const asking = containers.find((c) => c.gpu.requested)
  if (asking) {
    entry.gpu = 'required'
    notes.push({
      path: ['gpu'],
      after: `${asking.name} requests a GPU: ${asking.gpu.reasons.join(', ')}`,
    })
    return
  }
  const hinted = containers.find((c) => c.cudaHints.length > 0)
  if (hinted) {
    entry.gpu = 'expected-unused'
    acc.guessed.push(`services.${name}.gpu`)
    notes.push({
      path: ['gpu'],
      before: [
        'guessed: no GPU is requested, and',
        ...hinted.cudaHints.map((h) => `  ${h}`),
        `Confirm with \`shipshape torch-check ${hinted.name}\` (it reads the image content).`,
      ],
    })
  }
}

/** Every compose service (by its labels), then the plain containers. */
function proposeServices(facts: InitFacts, acc: Acc): Record<string, Entry> {
  const services: Record<string, Entry> = {}
  const used = new Set<string>()
  const add = (name: string, entry: Entry, notes: Note[], why: string[]) => {
    if (why.length) {
      acc.trailing.services.disabled.push({ name, why, entry, notes })
      return
    }
    services[name] = entry
    for (const n of notes) acc.notes.push({ ...n, path: ['services', name, ...n.path] })
  }

  const groups = new Map<string, Group>()
  for (const c of facts.containers) {
    const project = c.labels[PROJECT]
    const service = c.labels[SERVICE]
    if (!project || !service || /^true$/i.test(c.labels[ONEOFF] ?? '')) continue // one-offs
    const key = `${project}\0${service}`
    const g = groups.get(key) ?? { project, service, containers: [] }
    g.containers.push(c)
    groups.set(key, g)
  }
  const sorted = [...groups.values()].sort(
    (a, b) => a.service.localeCompare(b.service) || a.project.localeCompare(b.project),
  )
  const projectsOf = new Map<string, Set<string>>()
  for (const g of sorted)
    projectsOf.set(g.service, (projectsOf.get(g.service) ?? new Set()).add(g.project))

  for (const g of sorted) {
    const containers = [...g.containers].sort(byRunningThenName)
    const c0 = containers[0]!
    // two projects with the same service name: both entries are named project-service
    const shared = (projectsOf.get(g.service)?.size ?? 0) > 1
    const name = uniqueName(
      toName(shared ? `${g.project}-${g.service}` : g.service, 'service'),
      used,
    )
    const files = labelFiles(c0)
    const stopped = containers.every((c) => !c.running)
    const notes: Note[] = [
      {
        path: [],
        before: [
          `compose project ${g.project}, service ${g.service}: ${containers.map((c) => c.name).join(', ')} (${runningRef(c0) ?? c0.imageId}${stopped ? '; stopped' : ''})`,
        ],
      },
    ]
    const why: string[] = []
    if (files.length === 0)
      why.push(
        'its containers have no com.docker.compose.project.config_files label: name its compose file',
      )
    if (!NAME.test(g.service))
      why.push(
        `the compose service name ${JSON.stringify(g.service)} is not a name the config takes`,
      )
    const entry: Entry = {
      compose:
        files[0] ??
        path.posix.join(
          c0.labels['com.docker.compose.project.working_dir'] ?? '/',
          'docker-compose.yml',
        ),
    }
    if (name !== g.service) entry.service = g.service
    if (files.length > 1)
      notes.push({
        path: ['compose'],
        after: `started with ${files.length - 1} more: ${files
          .slice(1)
          .map((f) => path.posix.basename(f))
          .join(', ')} (rebuild passes every one)`,
      })
    const read = files.map((f) => facts.composeFiles[f])
    if (read[0] && !read[0].exists) {
      notes.push({ path: ['compose'], after: 'not on this host now: rebuild refuses until it is' })
    } else if (
      read.length > 0 &&
      read.every((f) => f?.servicesWithBuild) &&
      !read.some((f) => f!.servicesWithBuild!.includes(g.service))
    ) {
      notes.push({
        path: [],
        before: [
          'no build: for it in its compose files: rebuild refuses it (report, torch-check, prune use it)',
        ],
      })
    }
    serviceExtras(name, entry, notes, containers, acc)
    add(name, entry, notes, why)
  }

  const plain = facts.containers
    .filter((c) => !c.labels[PROJECT] && !ASIDE.test(c.name))
    .sort((a, b) => a.name.localeCompare(b.name))
  for (const c of plain) {
    const name = uniqueName(toName(c.name, 'container'), used)
    const entry: Entry = { container: c.name }
    const notes: Note[] = []
    const about = `plain container ${c.name} (${runningRef(c) ?? c.imageId}${c.running ? '' : '; stopped'})`
    const why: string[] = []
    if (c.build && !c.build.problem) {
      entry.build = c.build.dir
      if (c.build.dockerfile) entry.dockerfile = c.build.dockerfile
      notes.push({ path: [], before: [about] })
      notes.push({ path: ['build'], after: 'from its shipshape.build label' })
    } else if (c.build?.problem) {
      why.push(`${about}: its shipshape.build label ${c.build.problem}`)
    } else {
      why.push(`${about}: no build context found — add build: DIR to rebuild it`)
    }
    serviceExtras(name, entry, notes, [c], acc)
    add(name, entry, notes, why)
  }
  return services
}

interface BigSource {
  source: string
  sizeBytes: number
  users: string[]
}

/**
 * Bind-mounted directories over report.bigAssets that migrate-assets' path rule allows, each with
 * a dest on the first live rclone mount (other FUSE next); commented out without one.
 */
function proposeAssets(
  facts: InitFacts,
  config: Config,
  acc: Acc,
): { assets: Record<string, Entry>; roots: string[]; outside: string[] } {
  const bigAssets = config.report.bigAssets
  const users = new Map<string, Set<string>>()
  for (const c of facts.containers)
    for (const m of c.mounts) {
      if (m.type !== 'bind' || !m.source.startsWith('/')) continue
      const src = path.posix.normalize(m.source).replace(/(.)\/+$/, '$1')
      users.set(src, (users.get(src) ?? new Set()).add(c.name))
    }
  const roots = new Set<string>()
  const outside: string[] = []
  const refused: string[] = []
  const unmeasured: string[] = []
  const big: BigSource[] = []
  let small = 0
  for (const [source, who] of [...users].sort((a, b) => a[0].localeCompare(b[0]))) {
    const sf = facts.sources[source]
    if (!sf || sf.kind !== 'dir') continue // files, sockets, symlinks (a migrated asset), missing
    const whoList = [...who].sort()
    if (!isSystemPath(source)) {
      const root = config.allowedRoots
        .filter((r) => isUnder(source, r))
        .sort((a, b) => b.length - a.length)[0]
      if (root) roots.add(root)
      else outside.push(source)
    }
    if (facts.mounts.some((m) => isUnder(source, m.mountPoint))) continue // already on a mount
    const refusal = sourceRefusal(source, config)
    if (refusal) refused.push(`${source} (${whoList.join(', ')}): ${refusal}`)
    else if (sf.sizeBytes === null) unmeasured.push(source)
    else if (sf.sizeBytes <= bigAssets) small++
    else big.push({ source, sizeBytes: sf.sizeBytes, users: whoList })
  }
  // a big directory inside another one goes with it (sorted: the outer one comes first)
  const outer: BigSource[] = []
  for (const b of big) {
    const parent = outer.find((o) => isUnder(b.source, o.source))
    if (parent) parent.users = [...new Set([...parent.users, ...b.users])].sort()
    else outer.push({ ...b })
  }

  const mounts = [
    ...facts.mounts.filter((m) => m.fsType === 'fuse.rclone'),
    ...facts.mounts.filter((m) => m.fsType !== 'fuse.rclone'),
  ]
  const assets: Record<string, Entry> = {}
  const used = new Set<string>()
  for (const b of outer) {
    const name = uniqueName(assetSlug(b.source), used)
    const about = `${formatBytes(b.sizeBytes)} (du -x), bind-mounted by ${b.users.join(', ')}`
    const mount = mounts.find(
      (m) => m.live && !isUnder(b.source, m.mountPoint) && !isUnder(m.mountPoint, b.source),
    )
    if (!mount) {
      acc.trailing.assets.disabled.push({
        name,
        why: [`${name}: ${about}`, `not proposed: ${noMountWhy(mounts)}`],
        entry: {
          source: b.source,
          dest: `/mnt/REMOTE/${name}`,
          mount: '/mnt/REMOTE',
          restart: b.users,
        },
        notes: [],
      })
      continue
    }
    assets[name] = {
      source: b.source,
      dest: path.posix.join(mount.mountPoint, name),
      mount: mount.mountPoint,
      ...(mount.fsType === 'fuse.rclone' ? {} : { mountType: mount.fsType }),
      restart: b.users,
    }
    acc.notes.push(
      { path: ['assets', name], before: [about] },
      { path: ['assets', name, 'dest'], after: 'must be absent or empty when it runs' },
      {
        path: ['assets', name, 'mount'],
        after:
          mount.fsType === 'fuse.rclone'
            ? 'a live rclone mount'
            : `a live ${mount.fsType} mount, not rclone: set remote: if rclone serves it`,
      },
    )
  }
  const lines = acc.trailing.assets.lines
  if (small > 0)
    lines.push(
      `${plural(small, 'smaller bind-mounted directory', 'smaller bind-mounted directories')} (≤ report.bigAssets) left out`,
    )
  for (const u of unmeasured) lines.push(`${u}: du could not measure it`)
  for (const r of refused.slice(0, MAX_LISTED)) lines.push(`not considered, not measured: ${r}`)
  if (refused.length > MAX_LISTED)
    lines.push(`… and ${refused.length - MAX_LISTED} more not considered`)
  return { assets, roots: [...roots].sort(), outside }
}

/**
 * Images prune must never take: a database-like container's (its repository: every tag, an old
 * major version may be what reads its data) and a named-volume holder's (the reference it runs).
 */
function proposeProtect(facts: InitFacts): {
  refs: Map<string, string>
  unprotectable: string[]
} {
  const refs = new Map<string, string>()
  const unprotectable: string[] = []
  for (const c of [...facts.containers].sort((a, b) => a.name.localeCompare(b.name))) {
    const ref = runningRef(c)
    const db = ref !== null && isDatabaseImage(ref)
    const volumes = namedVolumes(c)
    if (!db && volumes.length === 0) continue
    if (!ref) {
      unprotectable.push(
        `${c.name} runs the untagged image ${c.imageId.slice(0, 19)}: label it shipshape.keep=true`,
      )
      continue
    }
    if (db) {
      const repo = repoOf(ref)
      if (!refs.has(repo)) refs.set(repo, `${c.name} (${ref}): database-like, every tag kept`)
      continue
    }
    const tagged = ref.lastIndexOf(':') > ref.lastIndexOf('/')
    const exact = ref.includes('@')
      ? (c.imageTags[0] ?? repoOf(ref))
      : tagged
        ? ref
        : `${ref}:latest`
    if (!refs.has(exact))
      refs.set(
        exact,
        `${c.name} holds the named volume${volumes.length > 1 ? 's' : ''} ${volumes.join(', ')}`,
      )
  }
  // a bare repository already protects each of its tags
  for (const ref of [...refs.keys()])
    if (ref !== repoOf(ref) && refs.has(repoOf(ref))) refs.delete(ref)
  return { refs: new Map([...refs].sort((a, b) => a[0].localeCompare(b[0]))), unprotectable }
}

function noMountWhy(mounts: FuseMount[]): string {
  const then = 'then uncomment this with its dest and mount:'
  if (mounts.length === 0) return `no rclone/FUSE mount in /proc/self/mountinfo. Mount one, ${then}`
  const dead = mounts.map((m) => `${m.mountPoint} (${m.fsType}): ${m.problem ?? 'not usable'}`)
  return `no live rclone/FUSE mount (${dead.join('; ')}). Fix one, ${then}`
}
