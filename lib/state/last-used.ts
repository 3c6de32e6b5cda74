/**
 * The last-used store (a library: prune reads it, report and the scheduler's watcher write it).
 * When each image was last used — a container of it started — for prune's least-recently-used
 * rule. `schedule` follows the engine's container start events and keeps
 * <stateDir>/last-used.json = {"schema": "shipshape.last-used/1", "images": {"<image id>": "<ISO>"}}.
 *
 * At every (re)connection the file is also seeded from each container's State.StartedAt (running
 * and stopped ones): a fact the engine keeps, so the starts that happened while nobody watched (the
 * scheduler down, the engine restarting with restart policies) are not lost — and a restart of the
 * scheduler does not make every image look used "now". A time only ever moves forward.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import type { Engine } from '../docker/engine.js'
import { containerUses, usesSince } from '../docker/events.js'
import { mkdirDurable, writeFileDurable } from '../host/durable.js'
import { describeFailure } from '../errors.js'

export const LAST_USED_SCHEMA = 'shipshape.last-used/1'
export const LAST_USED_FILE = 'last-used.json'

export function lastUsedPath(stateDir: string): string {
  return path.join(stateDir, LAST_USED_FILE)
}

const stderrWarn = (line: string) => {
  process.stderr.write(`warning: ${line}\n`)
}

/** The whole file: images, volumes (name → when a container using it was last seen), and when
 * the last full record (the report's recordUse) was taken. */
export interface LastUsedDoc {
  images: Record<string, string>
  volumes: Record<string, string>
  recordedAt: string | null
}

/**
 * image id → ISO time of the last container start. A missing file is {}; an unreadable or corrupt
 * one is {} with a warning (prune then judges those images by age alone); bad entries are dropped.
 */
export async function readLastUsed(
  file: string,
  warn: (line: string) => void = stderrWarn,
): Promise<Record<string, string>> {
  return (await readLastUsedDoc(file, warn)).images
}

function times(
  v: unknown,
  file: string,
  what: string,
  warn: (line: string) => void,
): Record<string, string> {
  const out: Record<string, string> = {}
  if (v === undefined) return out
  if (!v || typeof v !== 'object' || Array.isArray(v)) {
    warn(`${file}: "${what}" is not an object; ignored`)
    return out
  }
  let bad = 0
  for (const [id, at] of Object.entries(v as Record<string, unknown>)) {
    const ms = typeof at === 'string' ? Date.parse(at) : NaN
    if (id && Number.isFinite(ms)) out[id] = new Date(ms).toISOString()
    else bad++
  }
  if (bad) warn(`${file}: ${bad} entr${bad === 1 ? 'y' : 'ies'} without a valid time ignored`)
  return out
}

export async function readLastUsedDoc(
  file: string,
  warn: (line: string) => void = stderrWarn,
): Promise<LastUsedDoc> {
  const empty = (): LastUsedDoc => ({ images: {}, volumes: {}, recordedAt: null })
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'ENOENT')
      warn(
        `${file}: unreadable (${code ?? (err as Error).message}); no image counts as recently used`,
      )
    return empty()
  }
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    warn(`${file}: not JSON (${(err as Error).message}); no image counts as recently used`)
    return empty()
  }
  const d = doc as { schema?: unknown; images?: unknown } | null
  if (!d || typeof d !== 'object' || d.schema !== LAST_USED_SCHEMA) {
    warn(`${file}: not a ${LAST_USED_SCHEMA} file; no image counts as recently used`)
    return empty()
  }
  if (!d.images || typeof d.images !== 'object' || Array.isArray(d.images)) {
    warn(`${file}: "images" is not an object; no image counts as recently used`)
    return empty()
  }
  const doc2 = d as { volumes?: unknown; recordedAt?: unknown }
  const at = typeof doc2.recordedAt === 'string' ? Date.parse(doc2.recordedAt) : NaN
  return {
    images: times(d.images, file, 'images', warn),
    volumes: times(doc2.volumes, file, 'volumes', warn),
    recordedAt: Number.isFinite(at) ? new Date(at).toISOString() : null,
  }
}

/** Writes the file atomically and durably (lib/host/durable.ts), mode 0600; its dir 0700. */
export async function writeLastUsed(
  file: string,
  images: Record<string, string>,
  more: { volumes?: Record<string, string>; recordedAt?: string | null } = {},
): Promise<void> {
  await mkdirDurable(path.dirname(file), 0o700)
  const sorted = (m: Record<string, string>) =>
    Object.fromEntries(Object.entries(m).sort(([a], [b]) => a.localeCompare(b)))
  const doc = {
    schema: LAST_USED_SCHEMA,
    images: sorted(images),
    ...(more.volumes && Object.keys(more.volumes).length ? { volumes: sorted(more.volumes) } : {}),
    ...(more.recordedAt ? { recordedAt: more.recordedAt } : {}),
  }
  await writeFileDurable(file, JSON.stringify(doc, null, 2) + '\n', { mode: 0o600 })
}

export const later = (m: Record<string, string>, key: string, at: Date) => {
  const prev = m[key]
  if (prev === undefined || Date.parse(prev) < at.getTime()) m[key] = at.toISOString()
}

/**
 * The report job's record of use (the timers have no scheduler following events): every
 * container's start time and its named volumes (a running container uses them now, a stopped one
 * until it stopped), and the starts and volume mounts the engine reports since the last record
 * (containers removed meanwhile). Merged into the file (a time only moves forward); images and
 * volumes the engine no longer has are dropped.
 */
export async function recordUse(
  engine: Engine,
  file: string,
  now: Date,
  warn: (line: string) => void = stderrWarn,
): Promise<{ images: number; volumes: number }> {
  const doc = await readLastUsedDoc(file, warn)
  const [uses, images, volumes] = await Promise.all([
    containerUses(engine, now),
    engine.listImages(),
    engine.diskUsage().then((d) => d.volumes.map((v) => v.name)),
  ])
  for (const u of uses) {
    // a stopped container used its image until it stopped; a running one uses it now
    later(doc.images, u.imageId, u.usedUntil)
    for (const v of u.volumes) later(doc.volumes, v, u.usedUntil)
  }
  if (doc.recordedAt !== null) {
    const since = new Date(doc.recordedAt)
    const seen = await usesSince(engine, since, now).catch((err: unknown) => {
      warn(`engine events since ${doc.recordedAt}: ${describeFailure(err)}`)
      return { starts: [], mounts: [] }
    })
    const present = new Map(images.map((i) => [i.id, i]))
    for (const st of seen.starts) {
      const id =
        st.imageId ??
        images.find((i) => i.tags.includes(st.image) || i.id === st.image)?.id ??
        undefined
      if (id && present.has(id)) later(doc.images, id, st.time)
    }
    for (const m of seen.mounts) later(doc.volumes, m.name, m.time)
  }
  // the scheduler's watcher may have written meanwhile: its later times win too
  const now2 = await readLastUsedDoc(file, () => {})
  for (const [id, at] of Object.entries(now2.images)) later(doc.images, id, new Date(at))
  for (const [n, at] of Object.entries(now2.volumes)) later(doc.volumes, n, new Date(at))
  const keepIds = new Set(images.map((i) => i.id))
  const keepVolumes = new Set(volumes)
  const imgs = Object.fromEntries(Object.entries(doc.images).filter(([id]) => keepIds.has(id)))
  const vols = Object.fromEntries(Object.entries(doc.volumes).filter(([n]) => keepVolumes.has(n)))
  await writeLastUsed(file, imgs, { volumes: vols, recordedAt: now.toISOString() })
  return { images: Object.keys(imgs).length, volumes: Object.keys(vols).length }
}
