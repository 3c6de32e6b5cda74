import type { Step } from '../../runbook/index.js'
import type { MigrateContext } from '../context.js'

/** Starting resolves the bind mount again: the containers now see the symlink's target. */
export const startStep: Step<MigrateContext> = {
  id: 'start',
  title: 'Start the containers on the new location',
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
      const d = await ctx.engine.inspectContainer(c.id)
      if (!d?.running) return false
    }
    return true
  },
  // undo: stopped again, so the swap is undone under containers that are not using it
  async undo(ctx) {
    for (const c of ctx.restart) await ctx.engine.stopContainer(c.id)
  },
}
