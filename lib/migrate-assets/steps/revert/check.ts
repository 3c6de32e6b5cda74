import { describeFailure, describeHold } from '../../../health/check.js'
import type { Step } from '../../../runbook/index.js'
import type { RevertContext } from '../../revert-context.js'

/** The stable health gate: first pass within the timeout, then held for stableFor. */
export const revertCheckStep: Step<RevertContext> = {
  id: 'check',
  title: 'Check the containers are healthy on the local directory',
  preview: (ctx) => [
    ctx.health ? 'run the health check (held for stableFor)' : 'no health check configured',
  ],
  async run(ctx) {
    if (!ctx.health) {
      ctx.out.warn(`no health check configured for ${ctx.name}: the containers were only started`)
      return
    }
    const h = await ctx.waitHealthy(ctx.health, {
      engine: ctx.engine,
      containers: ctx.restart.map((c) => c.id),
    })
    if (!h.ok) {
      throw new Error(`health check failed after ${h.attempts} attempt(s): ${describeFailure(h)}`)
    }
    ctx.facts.health = `healthy after ${h.attempts} attempt(s)${describeHold(h)}`
    ctx.out.info(`health check passed (${h.attempts} attempt(s)${describeHold(h)})`)
  },
}
