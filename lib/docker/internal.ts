/**
 * What lib/docker's own modules (events.ts, recreate.ts) reach behind the Engine port: the API
 * client and the inspect JSON as the engine sends it. It rides on the engine object under a
 * symbol the Engine type does not name; nothing outside lib/docker imports this module (the rest
 * of shipshape asks the Engine's typed methods, normalized in normalize.ts).
 */
import type Docker from 'dockerode'
import type { Engine } from './engine.js'

export interface EngineInternals {
  /** the dockerode client, on the negotiated API version */
  readonly api: Docker
  /** GET /containers/{id}/json as the engine gives it; null when there is none */
  inspectContainerRaw(idOrName: string): Promise<Docker.ContainerInspectInfo | null>
  /** GET /images/{name}/json as the engine gives it; null when there is none */
  inspectImageRaw(ref: string): Promise<Docker.ImageInspectInfo | null>
}

export const INTERNALS: unique symbol = Symbol('shipshape.engine.internals')

/** An Engine as connectEngine() makes it: the port and, under INTERNALS, the adapter's own access. */
export type AdapterEngine = Engine & { readonly [INTERNALS]: EngineInternals }

/** The adapter's access to a connected engine (a test fake supplies its own under INTERNALS). */
export function internalsOf(engine: Engine): EngineInternals {
  const internals = (engine as Partial<AdapterEngine>)[INTERNALS]
  if (!internals) throw new Error(`engine ${engine.info.address}: no API client behind this port`)
  return internals
}
