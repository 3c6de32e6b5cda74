/**
 * Build the new image under the service's tag: `compose build SERVICE` for a compose service,
 * `docker build -t REF` of the configured directory for a plain container. Output goes to the
 * run's log (its last line on a spinner on a TTY). A failed build changes nothing that runs.
 *
 * Undo: the tag goes back to what it named before (the build moved it to the new image).
 */
import type { Step } from '../../runbook/types.js'
import type { RebuildContext } from '../context.js'
import { holdImages, releaseImages } from '../hold.js'

export function dockerBuildArgv(c: RebuildContext): string[] {
  const b = c.build
  if (!b) throw new Error(`${c.service}: no build directory`)
  return [
    c.dockerCli,
    'build',
    '-t',
    c.imageRef,
    '-f',
    b.dockerfile,
    ...(c.noCache ? ['--no-cache'] : []),
    ...(b.network ? ['--network', b.network] : []),
    b.context,
  ]
}

/** Short for a spinner: the line, trimmed to fit. */
const short = (line: string) => (line.length > 100 ? `${line.slice(0, 97)}…` : line)

/** What the first step of a run notes: prepare.ts rebuilds the context of a --resume from it. */
export const firstNotes = (c: RebuildContext) => ({
  stamp: c.stamp,
  imageRef: c.imageRef,
  fromImageId: c.fromImageId,
  refWasId: c.refWasId,
  containers: c.containers,
  healthyBefore: c.healthyBefore,
})

export async function retagTo(c: RebuildContext, imageId: string): Promise<void> {
  const cur = await c.engine.inspectImage(c.imageRef)
  if (cur?.id !== imageId) await c.engine.tagImage(imageId, c.repo, c.tag)
}

export const buildStep: Step<RebuildContext> = {
  id: 'build',
  title: 'Build the new image',
  preview: (c) => [
    c.compose
      ? c.ports.exec.show(c.ports.compose.buildArgv(c.compose, { noCache: c.noCache }))
      : c.ports.exec.show(dockerBuildArgv(c)),
    `output to ${c.paths.log}`,
  ],
  async run(c, j) {
    await j.note({ log: c.paths.log })
    const spinner = c.out.spinner(`building ${c.imageRef}…`)
    const onLine = (l: string) => spinner.update(`building ${c.imageRef}: ${short(l)}`)
    const t0 = c.ports.clock.ms()
    try {
      if (c.kind === 'compose') {
        if (!c.compose) throw new Error(`${c.service}: the compose project is unknown`)
        await c.ports.compose.build(c.compose, {
          noCache: c.noCache,
          log: c.paths.log,
          onLine,
          timeoutMs: c.config.buildTimeout,
          signal: c.signal,
        })
      } else {
        const r = await c.ports.exec.runLogged(dockerBuildArgv(c), {
          env: c.buildEnv,
          log: c.paths.log,
          onLine,
          timeoutMs: c.config.buildTimeout,
          signal: c.signal,
        })
        if (r.timedOut || r.exitCode !== 0) {
          throw new Error(
            `docker build ${r.timedOut ? `timed out after ${c.config.buildTimeout / 1000} s` : `exited ${r.exitCode ?? r.signal}`}: ${r.tail.slice(-3).join(' | ')}`,
          )
        }
      }
    } catch (err) {
      spinner.fail(`build of ${c.imageRef} failed`)
      throw new Error(`${(err as Error).message} (full output: ${c.paths.log})`, { cause: err })
    }
    c.facts.buildMs = c.ports.clock.ms() - t0
    spinner.succeed(`built ${c.imageRef} in ${Math.round(c.facts.buildMs / 1000)} s`)
    const img = await c.engine.inspectImage(c.imageRef)
    if (!img) throw new Error(`the build left no image ${c.imageRef} (see ${c.paths.log})`)
    if (img.id === c.fromImageId) {
      c.out.warn(
        `the build gave the same image ${img.id.slice(7, 19)}: nothing changed (--no-cache rebuilds every layer)`,
      )
    }
    c.toImageId = img.id
    await j.note({ toImageId: img.id })
  },
  async verify(c) {
    const img = await c.engine.inspectImage(c.imageRef)
    return Boolean(img && c.toImageId && img.id === c.toImageId)
  },
  async undo(c) {
    const built = c.toImageId
    if (built && built !== c.refWasId && built !== c.fromImageId) c.facts.failedImageId = built
    await retagTo(c, c.refWasId)
  },
}

/** rollback: put the chosen backup under the service's tag. Undo: the tag names what it did. */
export const retagStep: Step<RebuildContext> = {
  id: 'retag',
  title: 'Put the backup under the service’s tag',
  preview: (c) => [`tag ${c.toImageId?.slice(7, 19) ?? '?'} as ${c.imageRef}`],
  async run(c, j) {
    await j.note({
      ...firstNotes(c),
      toImageId: c.toImageId,
      restoreFiles: Boolean(c.restoreFiles),
    })
    if (!c.toImageId) throw new Error('no image to roll back to')
    await holdImages(c)
    await retagTo(c, c.toImageId)
  },
  async verify(c) {
    return (await c.engine.inspectImage(c.imageRef))?.id === c.toImageId
  },
  async undo(c) {
    await retagTo(c, c.refWasId)
    await releaseImages(c)
  },
}
