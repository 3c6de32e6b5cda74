/**
 * update: pull the new image (`docker pull REF`: the CLI, so the registry credentials of
 * ~/.docker/config.json apply) and put the service's tag on it when REF is another tag. Output to
 * the run's log. A failed pull changes nothing that runs.
 *
 * Undo: the service's tag names what it did; REF, when it is another tag, names what it did
 * before the pull (or nothing). The pulled image stays for a person to look at (failedImage).
 */
import type { Step } from '../../runbook/types.js'
import type { RebuildContext } from '../context.js'
import { parseImageRef } from '../context.js'
import { retagTo } from './build.js'

export const pullArgv = (c: RebuildContext): string[] => [c.dockerCli, 'pull', c.pullRef ?? '?']

const short = (line: string) => (line.length > 100 ? `${line.slice(0, 97)}…` : line)

export const pullStep: Step<RebuildContext> = {
  id: 'pull',
  title: 'Pull the new image',
  preview: (c) => [
    c.ports.exec.show(pullArgv(c)),
    ...(c.pullRef && c.pullRef !== c.imageRef
      ? [
          `tag it as ${c.imageRef} (the tag the service runs; its compose file or container is not changed)`,
        ]
      : []),
    `output to ${c.paths.log}`,
  ],
  async run(c, j) {
    const ref = c.pullRef
    if (!ref) throw new Error('no image to pull')
    const noted = j.data().pullRefWas
    await j.note({
      log: c.paths.log,
      pullRef: ref,
      pullRefWas:
        typeof noted === 'string' || noted === null
          ? noted
          : ((await c.engine.inspectImage(ref))?.id ?? null),
    })
    const spinner = c.out.spinner(`pulling ${ref}…`)
    const t0 = c.ports.clock.ms()
    const r = await c.ports.exec.runLogged(pullArgv(c), {
      env: c.buildEnv,
      log: c.paths.log,
      onLine: (l) => spinner.update(`pulling ${ref}: ${short(l)}`),
      timeoutMs: c.config.buildTimeout,
      signal: c.signal,
    })
    if (r.timedOut || r.exitCode !== 0) {
      spinner.fail(`pull of ${ref} failed`)
      throw new Error(
        `docker pull ${ref} ${r.timedOut ? `timed out after ${c.config.buildTimeout / 1000} s` : `exited ${r.exitCode ?? r.signal}`}: ${r.tail.slice(-3).join(' | ')} (full output: ${c.paths.log})`,
      )
    }
    c.facts.buildMs = c.ports.clock.ms() - t0
    const img = await c.engine.inspectImage(ref)
    if (!img) throw new Error(`the pull left no image ${ref} (see ${c.paths.log})`)
    spinner.succeed(
      `pulled ${ref} (${img.id.slice(7, 19)}) in ${Math.round(c.facts.buildMs / 1000)} s`,
    )
    if (ref !== c.imageRef) await retagTo(c, img.id)
    if (img.id === c.fromImageId) {
      c.out.warn(`the pull gave the image that runs (${img.id.slice(7, 19)}): nothing newer`)
    }
    c.toImageId = img.id
    await j.note({ toImageId: img.id })
  },
  async verify(c) {
    const img = await c.engine.inspectImage(c.imageRef)
    return Boolean(img && c.toImageId && img.id === c.toImageId)
  },
  async undo(c, j) {
    const pulled = c.toImageId
    if (pulled && pulled !== c.refWasId && pulled !== c.fromImageId) c.facts.failedImageId = pulled
    await retagTo(c, c.refWasId)
    const ref = c.pullRef
    if (!ref || ref === c.imageRef) return
    const was = j.data().pullRefWas
    const parsed = parseImageRef(ref)
    if (!parsed) return
    if (typeof was === 'string') {
      if ((await c.engine.inspectImage(ref))?.id !== was) {
        await c.engine.tagImage(was, parsed.repo, parsed.tag)
      }
    }
    // a tag the pull made is left on the pulled image: failedImage names it for a look
  },
}
