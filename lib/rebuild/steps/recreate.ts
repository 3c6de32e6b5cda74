/**
 * Recreate the service on its new image. Compose: `up -d --no-deps --no-build --force-recreate`.
 * Plain container: the old one gets restart=no (its policy noted in the journal), is stopped and
 * renamed aside, a new one with the same name, env,
 * mounts, ports, networks, labels and restart policy is created on the image and started
 * (lib/docker/recreate.ts); the old one stays until the cleanup step.
 *
 * A rollback's compose call runs the target image with the build files saved with it (files.ts);
 * a rebuild's runs what was just built from the files on disk.
 *
 * Undo: the service goes back on the image it ran (compose: tag + up with the files saved with
 * that image; plain: the very old container back under its name), then the health check — it
 * must pass if it passed before (else the undo fails: exit 5, journal kept); a way back that was
 * not healthy before either is finished but still exit 5.
 */
import {
  asideName,
  planRecreateOn,
  recreateContainer,
  restoreContainer,
  waitForEngine,
  type RestartPolicy,
} from '../../docker/recreate.js'
import { describeFailure } from '../../health/check.js'
import type { Step } from '../../runbook/types.js'
import type { RebuildContext } from '../context.js'
import { retagTo } from './build.js'
import { healthGate } from './health.js'
import { serviceContainers } from '../target.js'

/** After compose ran from saved files: say which files on disk differ from what runs. */
function sayFilesFrom(c: RebuildContext): void {
  const f = c.facts.filesFrom
  if (!f) return
  if (f.differ.length) {
    c.out.warn(
      `${c.service} runs with the compose files saved with ${f.imageId.slice(7, 19)}; on disk ${f.differ.join(', ')} ${f.differ.length === 1 ? 'differs' : 'differ'} (shipshape rollback ${c.service} --list; --restore-files writes the saved ones back)`,
    )
  } else {
    c.out.info(
      `compose ran with the files saved with ${f.imageId.slice(7, 19)} (the same as on disk)`,
    )
  }
}

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
      ? [c.ports.exec.show(c.ports.compose.upArgv(c.compose))]
      : [
          `stop ${c.containers[0]?.name ?? '?'}, rename it ${asideName(c.containers[0]?.name ?? '?', c.stamp)}`,
          `create ${c.containers[0]?.name ?? '?'} again on ${c.imageRef} (same env, mounts, ports, networks, labels, restart policy) and start it`,
        ],
  async run(c, j) {
    const to = c.toImageId
    if (!to) throw new Error('no new image to run')
    const t0 = c.ports.clock.ms()
    if (c.kind === 'compose') {
      if (!c.compose) throw new Error(`${c.service}: the compose project is unknown`)
      await j.note({ log: c.paths.log })
      // a rebuild runs what was just built from the files on disk; a rollback runs the image with
      // the files saved with it
      const t = c.operation === 'rollback' ? await c.ports.compose.targetFor(c, to) : c.compose
      await c.ports.compose.up(t, { log: c.paths.log, timeoutMs: 10 * 60_000 })
      if (t !== c.compose) sayFilesFrom(c)
    } else {
      const old = c.containers[0]
      if (!old) throw new Error(`${c.service}: no container to recreate`)
      const aside = asideName(old.name, c.stamp)
      const read = await planRecreateOn(c.engine, {
        containerId: old.id,
        imageId: c.fromImageId,
        newImage: c.imageRef,
      })
      if ('missing' in read) {
        throw new Error(
          read.missing === 'container'
            ? `container ${old.name} (${old.id.slice(0, 12)}) is gone`
            : `image ${c.fromImageId.slice(7, 19)} is gone`,
        )
      }
      const { plan } = read
      // the old one's state before the first try (a re-run after a crash sees it stopped)
      const noted = j.data().wasRunning
      // the policy before the aside one is set to restart=no: put back by the undo, and given to
      // the new container (a re-run after a crash reads restart=no from the old one)
      const restart = (j.data().restart as RestartPolicy | undefined) ?? read.restart
      await j.note({
        aside,
        wasRunning: typeof noted === 'boolean' ? noted : plan.wasRunning,
        restart,
      })
      plan.create.HostConfig = {
        ...plan.create.HostConfig,
        RestartPolicy: {
          Name: restart.Name || 'no',
          MaximumRetryCount: restart.MaximumRetryCount ?? 0,
        },
      }
      // the service is meant to run (the health gate decides): start the new one in any case
      plan.wasRunning = true
      await recreateContainer(c.engine, { name: old.name, oldId: old.id, aside, plan })
    }
    c.facts.recreateMs = c.ports.clock.ms() - t0
    const names = await running(c, to)
    if (!names) throw new Error(`after the recreate, ${c.service} does not run ${to.slice(7, 19)}`)
    c.facts.containers = names
  },
  async verify(c) {
    return Boolean(c.toImageId && (await running(c, c.toImageId)))
  },
  async undo(c, j) {
    await waitForEngine(c.engine)
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
      if (!untouched) {
        // the old image with the files saved with it: an edited compose file on disk is not
        // what it ran with
        c.facts.filesFrom = undefined
        const t = await c.ports.compose.targetFor(c, c.fromImageId)
        await c.ports.compose.up(t, { log: c.paths.log, timeoutMs: 10 * 60_000 })
        if (t !== c.compose) sayFilesFrom(c)
      }
    } else {
      const old = c.containers[0]
      if (!old) return
      await restoreContainer(c.engine, {
        name: old.name,
        oldId: old.id,
        aside: asideName(old.name, c.stamp),
        wasRunning: j.data().wasRunning !== false,
        restart: (j.data().restart as RestartPolicy | undefined) ?? undefined,
      })
    }
    const names = (await serviceContainers(c)).map((x) => x.name)
    const h = await healthGate(c, names)
    if (!h.ok) {
      const why = `${c.service} is back on ${c.fromImageId.slice(7, 19)} but not healthy: ${describeFailure(h)}`
      if (c.healthyBefore) throw new Error(why)
      // put back as it was, but a way back that is not healthy is for a person to look at (exit 5)
      c.facts.wayBackUnhealthy = `${why} (it was not healthy before the run either)`
      c.out.warn(c.facts.wayBackUnhealthy)
    }
  },
}
