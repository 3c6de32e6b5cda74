/**
 * Recreate the service on its new image. Compose: `up -d --no-deps --no-build --force-recreate`.
 * Plain container: the old one is stopped and renamed aside, a new one with the same name, env,
 * mounts, ports, networks, labels and restart policy is created on the image and started
 * (lib/docker/recreate.ts); the old one stays until the cleanup step.
 *
 * Undo: the service goes back on the image it ran (compose: tag + up; plain: the very old
 * container back under its name), then the health check — it must pass if it passed before.
 */
import { composeUp, composeUpArgv } from '../../docker/compose.js'
import { showArgv } from '../../host/run.js'
import {
  asideName,
  planRecreate,
  recreateContainer,
  restoreContainer,
} from '../../docker/recreate.js'
import { describeFailure, waitHealthy } from '../../health/check.js'
import type { Step } from '../../runbook/types.js'
import type { RebuildContext } from '../context.js'
import { retagTo } from './build.js'
import { serviceContainers } from '../target.js'

async function running(c: RebuildContext, imageId: string): Promise<string[] | null> {
  const now = await serviceContainers(c)
  if (!now.length) return null
  const details = await Promise.all(now.map((x) => c.engine.inspectContainer(x.id)))
  if (details.some((d) => !d || !d.running || d.imageId !== imageId)) return null
  return now.map((x) => x.name)
}

export const recreateStep: Step<RebuildContext> = {
  id: 'recreate',
  title: 'Recreate the service on the image it goes to',
  preview: (c) =>
    c.compose
      ? [showArgv(composeUpArgv(c.compose))]
      : [
          `stop ${c.containers[0]?.name ?? '?'}, rename it ${asideName(c.containers[0]?.name ?? '?', c.stamp)}`,
          `create ${c.containers[0]?.name ?? '?'} again on ${c.imageRef} (same env, mounts, ports, networks, labels, restart policy) and start it`,
        ],
  async run(c, j) {
    const to = c.toImageId
    if (!to) throw new Error('no new image to run')
    const t0 = Date.now()
    if (c.kind === 'compose') {
      if (!c.compose) throw new Error(`${c.service}: the compose project is unknown`)
      await j.note({ log: c.paths.log })
      await composeUp(c.compose, { log: c.paths.log, timeoutMs: 10 * 60_000 })
    } else {
      const old = c.containers[0]
      if (!old) throw new Error(`${c.service}: no container to recreate`)
      const aside = asideName(old.name, c.stamp)
      const [raw, image] = await Promise.all([
        c.engine.inspectContainerRaw(old.id),
        c.engine.inspectImageRaw(c.fromImageId),
      ])
      if (!raw) throw new Error(`container ${old.name} (${old.id.slice(0, 12)}) is gone`)
      if (!image) throw new Error(`image ${c.fromImageId.slice(7, 19)} is gone`)
      const plan = planRecreate(raw, image, c.imageRef)
      // the old one's state before the first try (a re-run after a crash sees it stopped)
      const noted = j.data().wasRunning
      await j.note({ aside, wasRunning: typeof noted === 'boolean' ? noted : plan.wasRunning })
      // the service is meant to run (the health gate decides): start the new one in any case
      plan.wasRunning = true
      await recreateContainer(c.engine, { name: old.name, oldId: old.id, aside, plan })
    }
    c.facts.recreateMs = Date.now() - t0
    const names = await running(c, to)
    if (!names) throw new Error(`after the recreate, ${c.service} does not run ${to.slice(7, 19)}`)
    c.facts.containers = names
  },
  async verify(c) {
    return Boolean(c.toImageId && (await running(c, c.toImageId)))
  },
  async undo(c, j) {
    if (c.kind === 'compose') {
      if (!c.compose) throw new Error(`${c.service}: the compose project is unknown`)
      await retagTo(c, c.fromImageId)
      // compose never got to replace the old containers (up failed early, or never ran): leave
      // them be, a recreate would only stop a healthy service
      const now = await serviceContainers(c)
      const untouched =
        now.length > 0 &&
        c.containers.every((o) => now.some((x) => x.id === o.id)) &&
        (await Promise.all(now.map((x) => c.engine.inspectContainer(x.id)))).every(
          (d) => d?.running && d.imageId === c.fromImageId,
        )
      if (!untouched) await composeUp(c.compose, { log: c.paths.log, timeoutMs: 10 * 60_000 })
    } else {
      const old = c.containers[0]
      if (!old) return
      await restoreContainer(c.engine, {
        name: old.name,
        oldId: old.id,
        aside: asideName(old.name, c.stamp),
        wasRunning: j.data().wasRunning !== false,
      })
    }
    const names = (await serviceContainers(c)).map((x) => x.name)
    const h = await waitHealthy(c.health, { engine: c.engine, containers: names })
    if (!h.ok) {
      const why = `${c.service} is back on ${c.fromImageId.slice(7, 19)} but not healthy: ${describeFailure(h)}`
      if (c.healthyBefore) throw new Error(why)
      c.out.warn(`${why} (it was not healthy before the run either)`)
    }
  },
}
