/**
 * The engine's event stream (GET /events), container starts only, and the container start times
 * the engine remembers: the raw-API side of lib/schedule/events.ts. Event fields are read here
 * and nowhere else (a container's State: normalize.ts).
 */
import type { Socket } from 'node:net'
import type { Readable } from 'node:stream'
import { EngineError } from '../errors.js'
import type { Engine } from './engine.js'
import { internalsOf } from './internal.js'

export interface ContainerStart {
  /** the image id, when the event itself names one (the container was created from an id) */
  imageId?: string
  /** the image reference the container was created with (the event's `from`) */
  image: string
  containerId: string
  time: Date
}

const IMAGE_ID = /^sha256:[0-9a-f]{64}$/
const BARE_ID = /^[0-9a-f]{64}$/

/** A raw event (API 1.41…1.5x) → a container start, or null when it is not one. */
export function parseContainerStart(raw: unknown): ContainerStart | null {
  if (!raw || typeof raw !== 'object') return null
  const e = raw as Record<string, unknown>
  const actor = (e.Actor ?? {}) as { ID?: unknown; Attributes?: Record<string, unknown> }
  const type = e.Type ?? 'container'
  const action = e.Action ?? e.status
  if (type !== 'container' || action !== 'start') return null
  // `id`, `from` and `status` are the pre-1.22 spellings, gone in newer APIs: Actor wins
  const containerId = str(actor.ID) ?? str(e.id)
  const image = str(actor.Attributes?.image) ?? str(e.from)
  if (!containerId || !image) return null
  const nano = typeof e.timeNano === 'number' ? e.timeNano : null
  const secs = typeof e.time === 'number' ? e.time : null
  const ms = nano !== null ? Math.floor(nano / 1e6) : secs !== null ? secs * 1000 : Date.now()
  const start: ContainerStart = { image, containerId, time: new Date(ms) }
  if (IMAGE_ID.test(image)) start.imageId = image
  else if (BARE_ID.test(image)) start.imageId = `sha256:${image}`
  return start
}

const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined)

/**
 * Follows the container start events until the stream ends (resolves: the engine restarted or
 * closed it), the signal aborts (resolves) or the connection fails (rejects with EngineError).
 * `onOpen`: the engine has answered; every start from now on reaches onStart.
 */
export async function followContainerStarts(
  engine: Engine,
  onStart: (e: ContainerStart) => void,
  signal: AbortSignal,
  o: { onOpen?: () => void } = {},
): Promise<void> {
  if (signal.aborted) return
  const opts = {
    filters: JSON.stringify({ type: ['container'], event: ['start'] }),
    abortSignal: signal,
  }
  let stream: Readable
  try {
    stream = (await internalsOf(engine).api.getEvents(opts)) as Readable
  } catch (err) {
    if (signal.aborted) return
    throw new EngineError(
      `engine events: ${describe(err)}`,
      (err as { statusCode?: number }).statusCode,
    )
  }
  // The engine client abandons a socket silent for docker.callTimeout; an event stream is silent
  // for hours on a quiet host: this one socket waits for ever (the abort or the engine ends it).
  ;(stream as Readable & { socket?: Socket }).socket?.setTimeout(0)
  o.onOpen?.()
  await new Promise<void>((resolve, reject) => {
    let buf = ''
    const finish = (err?: Error) => {
      signal.removeEventListener('abort', onAbort)
      stream.destroy()
      if (err && !signal.aborted) reject(new EngineError(`engine events: ${describe(err)}`))
      else resolve()
    }
    const onAbort = () => finish()
    signal.addEventListener('abort', onAbort, { once: true })
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => {
      buf = eachEvent(buf + chunk, (raw) => {
        const start = parseContainerStart(raw)
        if (start) onStart(start)
      })
    })
    stream.once('end', () => finish())
    stream.once('close', () => finish())
    stream.on('error', (err) => finish(err))
  })
}

/** Each complete line of the event stream (JSON) to `each`; returns what is left of `buf`. */
function eachEvent(buf: string, each: (raw: unknown) => void): string {
  let nl: number
  while ((nl = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, nl).trim()
    buf = buf.slice(nl + 1)
    if (!line) continue
    let raw: unknown
    try {
      raw = JSON.parse(line)
    } catch {
      continue // not an event: nothing to record
    }
    each(raw)
  }
  return buf
}

function describe(err: unknown): string {
  const e = err as { json?: { message?: string }; message?: string; code?: string }
  return e?.json?.message ?? e?.code ?? e?.message ?? String(err)
}

/**
 * Each container (running or stopped): its image, when it last started, its named volumes and
 * until when it used them (a running one: now; a stopped one: when it stopped).
 */
export async function containerUses(
  engine: Engine,
  now: Date,
): Promise<{ imageId: string; startedAt: Date; volumes: string[]; usedUntil: Date }[]> {
  const out: { imageId: string; startedAt: Date; volumes: string[]; usedUntil: Date }[] = []
  for (const c of await engine.listContainers()) {
    const d = await engine.inspectContainer(c.id)
    if (!d) continue // removed meanwhile
    const started = Date.parse(d.startedAt)
    if (!Number.isFinite(started) || started <= 0) continue
    const finished = Date.parse(d.finishedAt ?? '')
    const until = d.running
      ? now.getTime()
      : Math.max(started, Number.isFinite(finished) ? finished : 0)
    const imageId = d.imageId || c.imageId
    const volumes = c.mounts.filter((m) => m.type === 'volume' && m.name).map((m) => m.name!)
    if (imageId)
      out.push({ imageId, startedAt: new Date(started), volumes, usedUntil: new Date(until) })
  }
  return out
}

/** A raw event → a named volume mounted (at a container's start), or null. */
export function parseVolumeMount(raw: unknown): { name: string; time: Date } | null {
  if (!raw || typeof raw !== 'object') return null
  const e = raw as Record<string, unknown>
  const actor = (e.Actor ?? {}) as { ID?: unknown }
  if (e.Type !== 'volume' || e.Action !== 'mount') return null
  const name = str(actor.ID)
  if (!name) return null
  const nano = typeof e.timeNano === 'number' ? e.timeNano : null
  const secs = typeof e.time === 'number' ? e.time : null
  const ms = nano !== null ? Math.floor(nano / 1e6) : secs !== null ? secs * 1000 : null
  return ms === null ? null : { name, time: new Date(ms) }
}

/**
 * Container starts and volume mounts the engine reports between since and until (the engine keeps
 * a bounded backlog of recent events: what is older is lost, the start times above remain).
 */
export async function usesSince(
  engine: Engine,
  since: Date,
  until: Date,
): Promise<{ starts: ContainerStart[]; mounts: { name: string; time: Date }[] }> {
  const sec = (d: Date) => Math.floor(d.getTime() / 1000)
  const opts = {
    since: sec(since),
    until: sec(until),
    filters: JSON.stringify({ type: ['container', 'volume'], event: ['start', 'mount'] }),
  }
  const stream = (await internalsOf(engine).api.getEvents(opts)) as Readable
  const starts: ContainerStart[] = []
  const mounts: { name: string; time: Date }[] = []
  let buf = ''
  stream.setEncoding('utf8')
  for await (const chunk of stream) {
    buf = eachEvent(buf + (chunk as string), (raw) => {
      const st = parseContainerStart(raw)
      if (st) starts.push(st)
      const m = parseVolumeMount(raw)
      if (m) mounts.push(m)
    })
  }
  return { starts, mounts }
}

/** When each container (running or stopped) last started, as the engine remembers it. */
export async function containerStartTimes(
  engine: Engine,
): Promise<{ imageId: string; containerId: string; time: Date }[]> {
  const out: { imageId: string; containerId: string; time: Date }[] = []
  for (const c of await engine.listContainers()) {
    const d = await engine.inspectContainer(c.id)
    if (!d) continue // removed meanwhile
    const started = Date.parse(d.startedAt)
    // "0001-01-01T00:00:00Z": created, never started
    if (!Number.isFinite(started) || started <= 0) continue
    const imageId = d.imageId || c.imageId
    if (imageId) out.push({ imageId, containerId: c.id, time: new Date(started) })
  }
  return out
}
