/**
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
import {
  containerStartTimes,
  containerUses,
  followContainerStarts,
  usesSince,
  type ContainerStart,
} from '../docker/events.js'
import { mkdirDurable, writeFileDurable } from '../host/durable.js'
import { describeFailure, formatElapsed } from './scheduler.js'

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

const later = (m: Record<string, string>, key: string, at: Date) => {
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

/** An engine, or how to connect to one (retried while the engine is down). */
export type EngineSource = Engine | (() => Promise<Engine>)

export interface WatchStartsOptions {
  file: string
  log: (line: string) => void
  /** aborting stops the stream; watchStarts resolves after the last write */
  signal: AbortSignal
  /** writes are at most this often (default 2 s) */
  debounceMs?: number
  /** reconnection waits: first, doubling up to max (default 1 s → 60 s) */
  retryMs?: { first: number; max: number }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}

/**
 * Records container starts into o.file until o.signal aborts. Never rejects: an engine that is
 * down (at startup or later) is logged once per outage and retried with backoff.
 */
export async function watchStarts(source: EngineSource, o: WatchStartsOptions): Promise<void> {
  const debounceMs = o.debounceMs ?? 2000
  const retry = o.retryMs ?? { first: 1000, max: 60_000 }
  const log = (line: string) => o.log(`events: ${line}`)
  const images = await readLastUsed(o.file, log)
  /** named volumes of the containers that started (prune's volumesAfter), merged at each write */
  const volumes: Record<string, string> = {}

  // --- the file: debounced, serialised writes -------------------------------------------------
  let dirty = false
  let timer: NodeJS.Timeout | undefined
  let writing: Promise<void> = Promise.resolve()
  let writeFailing = false
  const flush = (): Promise<void> => {
    clearTimeout(timer)
    timer = undefined
    if (!dirty) return writing
    dirty = false
    const snapshot = { ...images }
    const vols = { ...volumes }
    writing = writing
      // the report job (recordUse) writes this file too: its volumes and record time are kept,
      // the later time of each volume wins
      .then(() => readLastUsedDoc(o.file, () => {}))
      .then((disk) => {
        const merged = { ...disk.volumes }
        for (const [name, at] of Object.entries(vols)) later(merged, name, new Date(at))
        return writeLastUsed(o.file, snapshot, { volumes: merged, recordedAt: disk.recordedAt })
      })
      .then(
        () => {
          if (writeFailing) log(`writing ${o.file} works again`)
          writeFailing = false
        },
        (err: unknown) => {
          if (!writeFailing) log(`cannot write ${o.file}: ${describeFailure(err)}`)
          writeFailing = true
          dirty = true // try again with the next change
        },
      )
    return writing
  }
  const record = (imageId: string, time: Date) => {
    const prev = images[imageId]
    if (prev !== undefined && Date.parse(prev) >= time.getTime()) return
    images[imageId] = time.toISOString()
    dirty = true
    timer ??= setTimeout(() => void flush(), debounceMs)
  }

  // --- one start: its image id --------------------------------------------------------------
  const pending = new Set<Promise<void>>()
  const track = (p: Promise<void>) => {
    const t = p.finally(() => pending.delete(t))
    pending.add(t)
  }
  const onStart = (engine: Engine) => (e: ContainerStart) => {
    const p = (async () => {
      // the container's own image id first: the reference in `from` may name another image by
      // now (a tag moved by a pull or a rebuild); the reference only for a container gone already
      const c = await engine.inspectContainer(e.containerId).catch(() => null)
      for (const m of c?.mounts ?? []) {
        if (m.type !== 'volume' || !m.name) continue
        const prev = volumes[m.name]
        if (prev === undefined || Date.parse(prev) < e.time.getTime()) {
          volumes[m.name] = e.time.toISOString()
          dirty = true
          timer ??= setTimeout(() => void flush(), debounceMs)
        }
      }
      const imageId = e.imageId ?? c?.imageId ?? (await engine.inspectImage(e.image))?.id
      if (imageId) record(imageId, e.time)
      else
        log(
          `start of container ${e.containerId.slice(0, 12)}: image ${e.image} is gone; not recorded`,
        )
    })().catch((err: unknown) => {
      log(`start of container ${e.containerId.slice(0, 12)} not recorded: ${describeFailure(err)}`)
    })
    track(p)
  }

  // at each (re)connection: what the engine remembers, and nothing about images it no longer has
  const seed = async (engine: Engine) => {
    try {
      // both read before anything changes: one write holds the whole seed (a debounced flush
      // between the two would write the stale records once more)
      const [starts, list] = await Promise.all([containerStartTimes(engine), engine.listImages()])
      const present = new Set(list.map((i) => i.id))
      for (const id of Object.keys(images)) {
        if (!present.has(id)) {
          delete images[id]
          dirty = true
        }
      }
      for (const s of starts) record(s.imageId, s.time)
      if (dirty) timer ??= setTimeout(() => void flush(), debounceMs)
    } catch (err) {
      log(`could not read the containers' start times: ${describeFailure(err)}`)
    }
  }

  // --- the stream, reconnected --------------------------------------------------------------
  let engine: Engine | undefined = typeof source === 'function' ? undefined : source
  let outageSince: number | null = null
  let everOpen = false
  let wait = retry.first
  while (!o.signal.aborted) {
    let openedAt: number | null = null
    let failure: unknown
    try {
      engine ??= await (source as () => Promise<Engine>)()
      const e = engine
      await followContainerStarts(e, onStart(e), o.signal, {
        onOpen: () => {
          openedAt = Date.now()
          const after =
            outageSince === null ? '' : ` (after ${formatElapsed(openedAt - outageSince)})`
          if (!everOpen) log(`following container starts on ${e.info.address}${after}`)
          else if (after) log(`following container starts again${after}`)
          everOpen = true
          outageSince = null
          wait = retry.first
          track(seed(e))
        },
      })
    } catch (err) {
      failure = err
    }
    if (o.signal.aborted) break
    // a stream that ended after a while: the engine restarted or closed it — reconnect at once
    if (failure === undefined && openedAt !== null && Date.now() - openedAt > 5000) continue
    if (outageSince === null) {
      outageSince = Date.now()
      log(
        failure === undefined
          ? 'the engine closed the event stream; reconnecting with backoff'
          : `engine unreachable (${describeFailure(failure)}); retrying with backoff`,
      )
    }
    await sleep(wait, o.signal)
    wait = Math.min(wait * 2, retry.max)
  }
  await Promise.allSettled([...pending])
  await flush()
}
