/**
 * `config init`: images by their references (repository, database-like, the one a container
 * runs) and the images prune must never take. Pure.
 */
import type { ContainerFacts, InitFacts } from './facts.js'

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
export function runningRef(c: ContainerFacts): string | null {
  if (!IMAGE_ID.test(c.image) && c.image) return c.image
  return c.imageTags[0] ?? null
}

/** Named volumes (not the anonymous ones, named by a 64-hex id). */
export const namedVolumes = (c: ContainerFacts) =>
  c.mounts
    .filter((m) => m.type === 'volume' && m.name && !/^[0-9a-f]{64}$/.test(m.name))
    .map((m) => m.name!)

/**
 * Images prune must never take: a database-like container's (its repository: every tag, an old
 * major version may be what reads its data) and a named-volume holder's (the reference it runs).
 */
export function proposeProtect(facts: InitFacts): {
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
