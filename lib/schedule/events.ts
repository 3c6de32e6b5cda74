/**
 * The scheduler's watcher: follows the engine's container start events into last-used.json (the
 * store is lib/state/last-used.ts), retried with backoff while the engine is down.
 */
import type { Engine } from '../docker/engine.js'
import {
  containerStartTimes,
  followContainerStarts,
  type ContainerStart,
} from '../docker/events.js'
import { describeFailure } from '../errors.js'
import { formatElapsed } from './scheduler.js'
import { later, readLastUsed, readLastUsedDoc, writeLastUsed } from '../state/last-used.js'

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

/** The in-memory last-used records of a watch and their debounced, serialised writes. */
function recorder(file: string, images: Record<string, string>, debounceMs: number, log: Log) {
  /** named volumes of the containers that started (prune's volumesAfter), merged at each write */
  const volumes: Record<string, string> = {}
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
      .then(() => readLastUsedDoc(file, () => {}))
      .then((disk) => {
        const merged = { ...disk.volumes }
        for (const [name, at] of Object.entries(vols)) later(merged, name, new Date(at))
        return writeLastUsed(file, snapshot, { volumes: merged, recordedAt: disk.recordedAt })
      })
      .then(
        () => {
          if (writeFailing) log(`writing ${file} works again`)
          writeFailing = false
        },
        (err: unknown) => {
          if (!writeFailing) log(`cannot write ${file}: ${describeFailure(err)}`)
          writeFailing = true
          dirty = true // try again with the next change
        },
      )
    return writing
  }
  const changed = () => {
    dirty = true
    timer ??= setTimeout(() => void flush(), debounceMs)
  }
  return {
    flush,
    image(imageId: string, time: Date) {
      const prev = images[imageId]
      if (prev !== undefined && Date.parse(prev) >= time.getTime()) return
      images[imageId] = time.toISOString()
      changed()
    },
    volume(name: string, time: Date) {
      const prev = volumes[name]
      if (prev !== undefined && Date.parse(prev) >= time.getTime()) return
      volumes[name] = time.toISOString()
      changed()
    },
    /** forget the images the engine no longer has */
    keepOnly(present: Set<string>) {
      const gone = Object.keys(images).filter((id) => !present.has(id))
      for (const id of gone) delete images[id]
      if (gone.length) changed()
    },
  }
}
type Recorder = ReturnType<typeof recorder>
type Log = (line: string) => void

/** One start: its volumes, and its image id (the container's own first). */
async function recordStart(engine: Engine, e: ContainerStart, rec: Recorder, log: Log) {
  // the container's own image id first: the reference in `from` may name another image by now (a
  // tag moved by a pull or a rebuild); the reference only for a container gone already
  const c = await engine.inspectContainer(e.containerId).catch(() => null)
  for (const m of c?.mounts ?? []) {
    if (m.type === 'volume' && m.name) rec.volume(m.name, e.time)
  }
  const imageId = e.imageId ?? c?.imageId ?? (await engine.inspectImage(e.image))?.id
  if (imageId) rec.image(imageId, e.time)
  else
    log(`start of container ${e.containerId.slice(0, 12)}: image ${e.image} is gone; not recorded`)
}

/** At each (re)connection: what the engine remembers, and nothing about images it no longer has. */
async function seed(engine: Engine, rec: Recorder, log: Log) {
  try {
    // both read before anything changes: one write holds the whole seed (a debounced flush
    // between the two would write the stale records once more)
    const [starts, list] = await Promise.all([containerStartTimes(engine), engine.listImages()])
    rec.keepOnly(new Set(list.map((i) => i.id)))
    for (const s of starts) rec.image(s.imageId, s.time)
  } catch (err) {
    log(`could not read the containers' start times: ${describeFailure(err)}`)
  }
}

/**
 * Records container starts into o.file until o.signal aborts. Never rejects: an engine that is
 * down (at startup or later) is logged once per outage and retried with backoff.
 */
export async function watchStarts(source: EngineSource, o: WatchStartsOptions): Promise<void> {
  const retry = o.retryMs ?? { first: 1000, max: 60_000 }
  const log = (line: string) => o.log(`events: ${line}`)
  const rec = recorder(o.file, await readLastUsed(o.file, log), o.debounceMs ?? 2000, log)
  const pending = new Set<Promise<void>>()
  const track = (p: Promise<void>) => {
    const t = p.finally(() => pending.delete(t))
    pending.add(t)
  }
  const onStart = (engine: Engine) => (e: ContainerStart) =>
    track(
      recordStart(engine, e, rec, log).catch((err: unknown) => {
        log(
          `start of container ${e.containerId.slice(0, 12)} not recorded: ${describeFailure(err)}`,
        )
      }),
    )

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
          track(seed(e, rec, log))
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
  await rec.flush()
}
