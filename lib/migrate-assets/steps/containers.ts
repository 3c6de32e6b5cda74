/**
 * The stop and start steps of migrate-assets and of its --revert: the same containers, the same
 * journal note (the ones stopped, started again by the undo or a --resume), only the words differ.
 */
import type { Output } from '../../cli/output.js'
import type { HealthConfig } from '../../config/index.js'
import type { Engine } from '../../docker/engine.js'
import { describeFailure } from '../../health/check.js'
import type { Step } from '../../runbook/index.js'
import type { HealthGate } from '../../assets/ports.js'

export interface ContainersContext {
  /** running containers to stop and start again (on resume: the ones the stop step noted) */
  restart: { id: string; name: string }[]
  health: HealthConfig | undefined
  engine: Engine
  out: Output
  waitHealthy: HealthGate
}

function noted(data: Record<string, unknown>): { id: string; name: string }[] {
  return Array.isArray(data.containers) ? (data.containers as { id: string; name: string }[]) : []
}

/**
 * Stops the containers (noted first); the undo starts the noted ones again and waits for them
 * to be healthy `back` (on the original directory, on the mount).
 */
export function stopContainersStep<C extends ContainersContext>(back: string): Step<C> {
  return {
    id: 'stop',
    title: 'Stop the containers that use the source',
    preview: (ctx) =>
      ctx.restart.length
        ? ctx.restart.map((c) => `stop container ${c.name}`)
        : ['no running container uses it'],
    async run(ctx, journal) {
      await journal.note({ containers: ctx.restart })
      for (const c of ctx.restart) {
        await ctx.engine.stopContainer(c.id)
        ctx.out.info(`stopped ${c.name}`)
      }
    },
    async verify(ctx) {
      for (const c of ctx.restart) {
        if ((await ctx.engine.inspectContainer(c.id))?.running) return false
      }
      return true
    },
    async undo(ctx, journal) {
      const containers = noted(journal.data())
      for (const c of containers) {
        await ctx.engine.startContainer(c.id)
        ctx.out.info(`started ${c.name} again`)
      }
      if (ctx.health && containers.length) {
        const h = await ctx.waitHealthy(ctx.health, {
          engine: ctx.engine,
          containers: containers.map((c) => c.id),
        })
        if (!h.ok) throw new Error(`back ${back}, but not healthy: ${describeFailure(h)}`)
        ctx.out.info(`healthy again ${back}`)
      }
    },
  }
}

/** Starting resolves the bind mount again: the containers see what is at the source now. */
export function startContainersStep<C extends ContainersContext>(title: string): Step<C> {
  return {
    id: 'start',
    title,
    preview: (ctx) =>
      ctx.restart.length
        ? ctx.restart.map((c) => `start container ${c.name}`)
        : ['no container to start'],
    async run(ctx) {
      for (const c of ctx.restart) {
        await ctx.engine.startContainer(c.id)
        ctx.out.info(`started ${c.name}`)
      }
    },
    async verify(ctx) {
      for (const c of ctx.restart) {
        if (!(await ctx.engine.inspectContainer(c.id))?.running) return false
      }
      return true
    },
    // undo: stopped again, so the swap is undone under containers that are not using it
    async undo(ctx) {
      for (const c of ctx.restart) await ctx.engine.stopContainer(c.id)
    },
  }
}
