/**
 * Recreate a plain (non-compose) container on a new image, reversibly: the old container is
 * stopped and renamed aside, a new one with everything the operator set is created under its
 * name; undo puts the very old container back. The plan is pure (recreate-plan.ts: raw inspect
 * JSON in, create options out; planRecreateOn() reads that JSON from the engine); the I/O
 * functions here are idempotent so that a crash at any point can be resumed or undone.
 */
import { EngineError, NeedsPersonError, RefusedError } from '../errors.js'
import type { Engine } from './engine.js'
import { internalsOf } from './internal.js'
import {
  findDependents,
  planRecreate,
  restartPolicyOf,
  type RecreatePlan,
  type RestartPolicy,
} from './recreate-plan.js'

export type { RecreatePlan, RestartPolicy } from './recreate-plan.js'

type Raw = Record<string, unknown>

const isObj = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v)
const obj = (v: unknown): Raw => (isObj(v) ? v : {})
const str = (v: unknown): string => (typeof v === 'string' ? v : '')

/** The aside name of the old container during a recreate: `<name>-shipshape-old-<stamp>` */
export function asideName(name: string, stamp: string): string {
  // container names allow [a-zA-Z0-9_.-] only: an ISO stamp's ':' and '+' become '-'
  return `${name}-shipshape-old-${stamp.replace(/[^a-zA-Z0-9_.-]/g, '-')}`
}

// --- engine calls ----------------------------------------------------------------------------

const short = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12)

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number } | null)?.statusCode
}

function engineError(what: string, err: unknown): EngineError {
  const e = err as { statusCode?: number; json?: { message?: string }; message?: string } | null
  const msg = e?.json?.message ?? e?.message ?? String(err)
  return new EngineError(`${what}: ${msg.trim()}`, e?.statusCode)
}

/**
 * The container with exactly this name, or whose id is (or starts with) `id`. The engine also
 * answers a name with a container whose id merely starts with it: that one is not the one asked for.
 */
async function find(engine: Engine, ref: { name: string } | { id: string }): Promise<Raw | null> {
  const key = 'name' in ref ? ref.name : ref.id
  let raw: Raw
  try {
    raw = (await internalsOf(engine).api.getContainer(key).inspect()) as unknown as Raw
  } catch (err) {
    if (statusOf(err) === 404) return null
    throw engineError(`inspect of container ${key}`, err)
  }
  if ('name' in ref) return str(raw.Name) === `/${ref.name}` ? raw : null
  return sameId(str(raw.Id), ref.id) ? raw : null
}

/** `id` is the full id or an unambiguous prefix of it (12+ hex digits). */
const sameId = (full: string, id: string): boolean =>
  full === id || (id.length >= 12 && full.startsWith(id))

async function stop(engine: Engine, id: string, label: string, timeoutS?: number): Promise<void> {
  try {
    await internalsOf(engine)
      .api.getContainer(id)
      .stop(timeoutS === undefined ? {} : { t: timeoutS })
  } catch (err) {
    if (statusOf(err) === 304) return // already stopped
    throw engineError(`stop of container ${label} (${short(id)})`, err)
  }
}

async function start(engine: Engine, id: string, label: string): Promise<void> {
  try {
    await internalsOf(engine).api.getContainer(id).start()
  } catch (err) {
    if (statusOf(err) === 304) return // already running
    throw engineError(`start of container ${label} (${short(id)})`, err)
  }
}

async function rename(engine: Engine, id: string, from: string, to: string): Promise<void> {
  try {
    await internalsOf(engine).api.getContainer(id).rename({ name: to })
  } catch (err) {
    throw engineError(`rename of container ${from} (${short(id)}) to ${to}`, err)
  }
}

/** POST /containers/{id}/update with a restart policy (a stopped container too). */
async function setRestart(
  engine: Engine,
  id: string,
  label: string,
  policy: RestartPolicy,
): Promise<void> {
  try {
    await internalsOf(engine)
      .api.getContainer(id)
      .update({
        RestartPolicy: {
          Name: policy.Name || 'no',
          MaximumRetryCount: policy.MaximumRetryCount ?? 0,
        },
      })
  } catch (err) {
    throw engineError(`update of the restart policy of container ${label} (${short(id)})`, err)
  }
}

async function remove(engine: Engine, id: string, label: string): Promise<void> {
  try {
    // v: false — anonymous volumes stay (the old container's are shared with the new one)
    await internalsOf(engine).api.getContainer(id).remove({ v: false, force: true })
  } catch (err) {
    if (statusOf(err) === 404) return // already gone
    throw engineError(`removal of container ${label} (${short(id)})`, err)
  }
}

/** A container under the name while the old one is aside: ours when it runs the plan's image. */
function createdFrom(raw: Raw, plan: RecreatePlan): boolean {
  return str(obj(raw.Config).Image) === plan.create.Image
}

async function createFrom(engine: Engine, name: string, plan: RecreatePlan): Promise<string> {
  try {
    const created = await internalsOf(engine).api.createContainer({ ...plan.create, name })
    return created.id
  } catch (err) {
    if (statusOf(err) === 409) {
      // a create whose answer was lost: the container is there already
      const there = await find(engine, { name })
      if (there && createdFrom(there, plan)) return str(there.Id)
    }
    throw engineError(`create of container ${name} on ${plan.create.Image}`, err)
  }
}

/**
 * Idempotent (may be called again after a crash at any point): stop the container `name` if it is
 * still the old one (oldId), rename it to `aside`, create the new one from the plan under `name`,
 * connect the extra networks, start it if the old one was running. Returns the new container id.
 * The plan is computed by the caller from the OLD container's inspect before anything changed
 * (and kept by the caller), so after a crash the old container may already be renamed/stopped.
 */
export async function recreateContainer(
  engine: Engine,
  o: { name: string; oldId: string; aside: string; plan: RecreatePlan; stopTimeoutS?: number },
): Promise<{ newId: string }> {
  const { name, oldId, aside, plan } = o
  if (plan.create.HostConfig?.AutoRemove) {
    throw new RefusedError(`container ${name} was created with --rm: it cannot be kept aside`)
  }
  let newId: string | null = null
  const atName = await find(engine, { name })
  if (atName && sameId(str(atName.Id), oldId)) {
    // restart=no first: a dockerd restart or a reboot must not start it beside the new one
    await setRestart(engine, oldId, name, { Name: 'no' })
    await stop(engine, oldId, name, o.stopTimeoutS)
    await rename(engine, oldId, name, aside)
  } else {
    const atAside = await find(engine, { name: aside })
    if (!atAside || !sameId(str(atAside.Id), oldId)) {
      throw new NeedsPersonError(
        `recreate of ${name}: the old container ${short(oldId)} is neither under ${name} nor under ${aside}`,
        `look for it with \`docker ps -a --filter id=${oldId}\``,
      )
    }
    // renamed by hand or by an interrupted run: it must not run beside the new one
    await setRestart(engine, oldId, aside, { Name: 'no' })
    await stop(engine, oldId, aside, o.stopTimeoutS)
    if (atName) {
      if (!createdFrom(atName, plan)) {
        throw new NeedsPersonError(
          `recreate of ${name}: a container ${name} (${short(str(atName.Id))}) not made by this recreate holds the name; the old one is kept as ${aside}`,
          `remove or rename that container, or undo the run`,
        )
      }
      newId = str(atName.Id)
    }
  }
  newId ??= await createFrom(engine, name, plan)

  if (plan.connect.length) {
    const now = await find(engine, { id: newId })
    if (!now) throw new EngineError(`container ${name} (${short(newId)}) vanished after its create`)
    const attached = obj(obj(now.NetworkSettings).Networks)
    for (const { network, endpoint } of plan.connect) {
      if (network in attached) continue
      try {
        await internalsOf(engine)
          .api.getNetwork(network)
          .connect({ Container: newId, EndpointConfig: endpoint })
      } catch (err) {
        throw engineError(
          `connect of container ${name} (${short(newId)}) to network ${network}`,
          err,
        )
      }
    }
  }
  if (plan.wasRunning) await start(engine, newId, name)
  return { newId }
}

/**
 * Idempotent undo: whatever state recreateContainer left (nothing, old stopped, old renamed,
 * new created, new running), put the old container back: stop and remove a container named `name`
 * whose id is not oldId, rename `aside` (if it exists) back to `name`, start the old one if
 * `wasRunning`. Never removes the container with id oldId.
 */
export async function restoreContainer(
  engine: Engine,
  o: {
    name: string
    oldId: string
    aside: string
    wasRunning: boolean
    /** the policy it had before the recreate set restart=no (from the journal) */
    restart?: RestartPolicy
  },
): Promise<void> {
  const { name, oldId, aside } = o
  // Find the old one first: with it gone, the one under the name is all there is — keep it.
  const old = await find(engine, { id: oldId })
  if (!old) {
    throw new NeedsPersonError(
      `undo of the recreate of ${name}: the old container ${short(oldId)} is gone, nothing to put back`,
    )
  }
  const atName = await find(engine, { name })
  if (atName && !sameId(str(atName.Id), oldId)) {
    await stop(engine, str(atName.Id), name)
    await remove(engine, str(atName.Id), name)
  }
  const oldName = str(old.Name).replace(/^\//, '')
  if (oldName !== name) {
    if (oldName !== aside) {
      throw new NeedsPersonError(
        `undo of the recreate of ${name}: the old container ${short(oldId)} is now called ${oldName}, not ${aside}`,
        `rename it back by hand: docker rename ${oldName} ${name}`,
      )
    }
    await rename(engine, oldId, aside, name)
  }
  if (o.restart) await setRestart(engine, oldId, name, o.restart)
  if (o.wasRunning) await start(engine, oldId, name)
}

/**
 * Waits until the engine answers /_ping again (a dockerd restart during a run), up to `ms`; an
 * undo that starts while the engine restarts would otherwise fail on its first call.
 */
export async function waitForEngine(engine: Engine, ms = 60_000): Promise<void> {
  const end = Date.now() + ms
  for (;;) {
    try {
      await engine.ping()
      return
    } catch (err) {
      if (Date.now() > end) throw engineError('ping of the engine', err)
      await new Promise((r) => setTimeout(r, 500))
    }
  }
}

/** After success: remove the old container kept aside (only if its id is oldId); its anonymous volumes are NOT removed (the new container uses them). */
export async function dropAside(
  engine: Engine,
  o: { aside: string; oldId: string },
): Promise<void> {
  const atAside = await find(engine, { name: o.aside })
  if (!atAside) return
  if (!sameId(str(atAside.Id), o.oldId)) {
    throw new NeedsPersonError(
      `${o.aside} is container ${short(str(atAside.Id))}, not the old container ${short(o.oldId)}: left alone`,
    )
  }
  await remove(engine, o.oldId, o.aside)
}

/**
 * planRecreate() over the engine's inspect of the container and of the image it was created
 * from (read in parallel), with the restart policy it was created with; `missing` names what is
 * gone (the container first). Throws RefusedError as planRecreate() does.
 */
export async function planRecreateOn(
  engine: Engine,
  o: { containerId: string; imageId: string; newImage: string },
): Promise<{ plan: RecreatePlan; restart: RestartPolicy } | { missing: 'container' | 'image' }> {
  const raw = internalsOf(engine)
  const [container, image] = await Promise.all([
    raw.inspectContainerRaw(o.containerId),
    raw.inspectImageRaw(o.imageId),
  ])
  if (!container) return { missing: 'container' }
  if (!image) return { missing: 'image' }
  const plan = planRecreate(container, image, o.newImage)
  return { plan, restart: restartPolicyOf(container) }
}

/**
 * The containers among `others` (ids) that hold on to `target` by its id (see findDependents);
 * one gone meanwhile holds nothing.
 */
export async function dependentsOn(
  engine: Engine,
  target: { id: string; name: string },
  others: string[],
): Promise<{ name: string; how: string }[]> {
  const raw = internalsOf(engine)
  const inspected = await Promise.all(others.map((id) => raw.inspectContainerRaw(id)))
  return findDependents(
    target,
    inspected.filter((x) => x !== null),
  )
}
