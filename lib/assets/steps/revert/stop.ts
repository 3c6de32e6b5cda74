import { describeFailure, waitHealthy } from '../../../health/check.js'
import type { Step } from '../../../runbook/index.js'
import type { RevertContext } from '../../revert-context.js'

function noted(data: Record<string, unknown>): { id: string; name: string }[] {
  return Array.isArray(data.containers) ? (data.containers as { id: string; name: string }[]) : []
}

/** The containers hold the mount open through their bind mounts: stopped before the swap. */
export const revertStopStep: Step<RevertContext> = {
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
      const h = await waitHealthy(ctx.health, {
        engine: ctx.engine,
        containers: containers.map((c) => c.id),
      })
      if (!h.ok) throw new Error(`back on the mount, but not healthy: ${describeFailure(h)}`)
      ctx.out.info('healthy again on the mount')
    }
  },
}
