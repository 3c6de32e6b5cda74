import type { Step } from '../../../runbook/index.js'
import type { RevertContext } from '../../revert-context.js'

/** Starting resolves the bind mount again: the containers now see the local directory. */
export const revertStartStep: Step<RevertContext> = {
  id: 'start',
  title: 'Start the containers on the local directory',
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
