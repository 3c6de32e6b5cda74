/**
 * `shipshape update SERVICE`: a service that runs a registry image gets the newer one, guarded
 * like a rebuild. isNewer() and pullRefFor() are pure; askRegistry() never pulls.
 */
import type { Engine } from '../docker/engine.js'
import { UsageError } from '../errors.js'
import { parseImageRef } from './context.js'
import type { Command, Prepared } from './prepare.js'
import { str } from './prepare.js'
import {
  UPDATE_OPERATION,
  type RebuildOptions,
  type RebuildOutcome,
  type RebuildResult,
} from './result.js'
import { serviceRunner } from './run.js'
import { updateSteps } from './steps/index.js'

/** The registry's digest is one the image was pulled or pushed as: nothing newer (pure). */
export function isNewer(localDigests: string[], remoteDigest: string): boolean {
  return !localDigests.some((d) => d.endsWith(`@${remoteDigest}`))
}

/**
 * What an update pulls (pure): --to TAG (a tag of the service's repository) or --to REF (with a
 * ':' or '/'), else the configured services.X.image, else the reference the service runs.
 */
export function pullRefFor(o: {
  to?: string
  configured?: string
  imageRef: string
  repo: string
}): string {
  if (o.to) return /[:/@]/.test(o.to) ? o.to : `${o.repo}:${o.to}`
  return o.configured ?? o.imageRef
}

/** Asks the registry about `ref` against the image that runs: never pulls. */
export async function askRegistry(
  engine: Engine,
  ref: string,
  runs: string,
): Promise<NonNullable<RebuildResult['update']> & { error?: string }> {
  const local = (await engine.inspectImage(runs))?.digests ?? []
  try {
    const remote = await engine.registryDigest(ref)
    return { ref, remoteDigest: remote, localDigests: local, newer: isNewer(local, remote) }
  } catch (err) {
    return {
      ref,
      remoteDigest: null,
      localDigests: local,
      newer: null,
      error: (err as Error).message.split('\n')[0] ?? 'unknown',
    }
  }
}

/**
 * `shipshape update SERVICE`: a service that runs a registry image gets the newer one, guarded
 * like a rebuild: backup → pull → recreate → health gate → keep-files → cleanup, undone on failure.
 * The registry is asked first: when it gives the image that runs, nothing is done (up-to-date).
 */
export const runUpdate = serviceRunner(UPDATE_OPERATION, updateSteps, 'updated', choosePull)

/** What the update pulls; the registry asked first (a new run): nothing newer, nothing to do. */
async function choosePull(
  c: Command,
  name: string,
  p: Prepared,
  opts: RebuildOptions,
): Promise<RebuildOutcome | null> {
  const noted = str(p.prior?.steps.get('pull')?.notes.pullRef)
  const ref =
    noted ??
    pullRefFor({
      to: opts.to,
      configured: p.ctx.config.image,
      imageRef: p.ctx.imageRef,
      repo: p.ctx.repo,
    })
  if (!parseImageRef(ref)) throw new UsageError(`${ref} is not an image reference with a tag`)
  p.ctx.pullRef = ref
  if (!p.prior) {
    const asked = await askRegistry(c.engine, ref, p.ctx.fromImageId)
    const { error, ...update } = asked
    p.base.update = update
    if (error) {
      c.out.warn(`the registry could not be asked about ${ref} (${error}): pulling to see`)
    }
    if (asked.newer === false) {
      c.out.info(
        `${name} runs ${ref} as the registry has it (${asked.remoteDigest?.slice(0, 19)}…): up to date`,
      )
      return { result: { ...p.base, outcome: 'up-to-date' } }
    }
  }
  c.out.info(
    `${name}: update ${p.ctx.imageRef} to ${ref} (${p.ctx.kind === 'compose' ? `compose ${p.ctx.compose?.cli.version} project ${p.ctx.compose?.project}` : 'plain container'}; runs ${p.ctx.fromImageId.slice(7, 19)})`,
  )
  if (ref !== p.ctx.imageRef) {
    c.out.warn(
      `${ref} is not the tag ${name} runs: it is put under ${p.ctx.imageRef}; name ${ref} in the compose file (or the container) to make it last`,
    )
  }
  return null
}
