/**
 * The health gate: the configured checks must pass within health.timeout, then hold for
 * health.stableFor with no restart (lib/health/check.ts).
 */
import {
  describeFailure,
  describeHold,
  displayHealthUrl,
  waitHealthy,
  type HealthResult,
} from '../../health/check.js'
import type { Step } from '../../runbook/types.js'
import type { RebuildContext } from '../context.js'
import { serviceContainers } from '../target.js'

export function describeHealth(c: RebuildContext): string {
  const h = c.health
  const what = [
    h.url ? `${displayHealthUrl(h.url)} answers ${h.expectStatus}` : null,
    h.command ? `\`${h.command.join(' ')}\` exits 0 in the container` : null,
    h.container ? 'the container’s HEALTHCHECK says healthy' : null,
  ].filter(Boolean)
  const hold = h.stableFor > 0 ? `, then holding for ${h.stableFor / 1000} s (no restart)` : ''
  return `${what.join(', ')} within ${h.timeout / 1000} s (${h.retries + 1} tries)${hold}`
}

/** The configured checks on `containers`, timed and waited for on the context's clock. */
export function healthGate(c: RebuildContext, containers: string[]): Promise<HealthResult> {
  return waitHealthy(c.health, {
    engine: c.engine,
    containers,
    sleep: c.ports.clock.sleep,
    now: c.ports.clock.ms,
  })
}

export const healthStep: Step<RebuildContext> = {
  id: 'health',
  title: 'Check the service’s health',
  preview: (c) => [describeHealth(c)],
  async run(c, j) {
    const t0 = c.ports.clock.ms()
    const names = (await serviceContainers(c)).map((x) => x.name)
    const spinner = c.out.spinner(`waiting for ${c.service} to be healthy…`)
    const h = await healthGate(c, names)
    c.facts.health = h
    c.facts.gateMs = c.ports.clock.ms() - t0
    await j.note({ ok: h.ok, attempts: h.attempts, ms: c.facts.gateMs, heldMs: h.heldMs })
    if (!h.ok) {
      spinner.fail(`${c.service} is not healthy`)
      throw new Error(
        `${c.service} failed its health check on ${c.toImageId?.slice(7, 19) ?? 'the new image'} after ${h.attempts} tries: ${describeFailure(h)}`,
      )
    }
    spinner.succeed(
      `${c.service} is healthy (${h.attempts} ${h.attempts === 1 ? 'try' : 'tries'}${describeHold(h)})`,
    )
  },
}
