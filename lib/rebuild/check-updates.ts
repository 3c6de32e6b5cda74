/**
 * `update --check` (read-only: what the registry says, never pulls) and `update --auto` (the
 * timer's: services with update: apply that have a newer image are updated).
 */
import type { Config } from '../config/index.js'
import type { Engine } from '../docker/engine.js'
import { dockerChildEnv } from '../host/run.js'
import { parseImageRef } from './context.js'
import { dockerCliOf, findService, type Command } from './prepare.js'
import {
  resultOf,
  SCHEMAS,
  type RebuildOptions,
  type RebuildResult,
  type UpdateCheck,
} from './result.js'
import { resolveTarget } from './target.js'
import { askRegistry, pullRefFor, runUpdate } from './update.js'

/**
 * `update --check` (read-only) and `update --auto` (the timer's: mode apply updates, notify only
 * says). Services: those named, else every one whose update is not off.
 */
export async function runUpdateCheck(
  c: Command,
  names: string[],
  o: { auto?: boolean; yes?: boolean; confirm?: RebuildOptions['confirm'] } = {},
): Promise<RebuildResult> {
  const checks = await checkUpdates(c, names)
  if (o.auto) {
    for (const line of checks) {
      if (line.mode !== 'apply' || line.newer !== true) continue
      try {
        const { result, error } = await runUpdate(c, line.service, {
          yes: o.yes,
          confirm: o.confirm,
        })
        line.outcome = result.outcome
        line.exitCode = error?.exitCode ?? 0
        if (error) line.error = error.message.split('\n')[0]
      } catch (err) {
        line.outcome = 'refused'
        line.exitCode = (err as { exitCode?: number }).exitCode ?? 1
        line.error = (err as Error).message.split('\n')[0]
      }
    }
  }
  return resultOf({
    schema: SCHEMAS.update,
    service: names.join(',') || '*',
    kind: 'compose',
    outcome: 'checked',
    checks,
  })
}

/**
 * What the registry says about each service's image (read-only: never pulls). Services: those
 * named, else every one whose update is not off. The nightly report shows the same.
 */
export async function checkUpdates(
  c: { config: Config; engine: Engine },
  names: string[],
): Promise<UpdateCheck[]> {
  const chosen = names.length
    ? names
    : Object.entries(c.config.services)
        .filter(([, s]) => s.update !== 'off')
        .map(([n]) => n)
  const checks: UpdateCheck[] = []
  const dockerCli = dockerCliOf(process.env)
  for (const name of chosen) {
    const service = findService(c.config, name)
    const line: UpdateCheck = {
      service: name,
      mode: service.update,
      ref: null,
      runs: null,
      remoteDigest: null,
      newer: null,
    }
    checks.push(line)
    try {
      const t = await resolveTarget({
        name,
        service,
        engine: c.engine,
        env: dockerChildEnv(c.engine.info.address, process.env),
        composeCommand: c.config.docker.compose,
        dockerCli,
        backupDir: c.config.backupDir,
        purpose: 'pull',
      })
      const runs = t.containers.find((x) => x.running)?.imageId ?? t.containers[0]?.imageId
      const parsed = t.imageRef ? parseImageRef(t.imageRef) : null
      if (!runs || !t.imageRef || !parsed) {
        line.error = t.refusals.map((r) => r.message).join('; ') || 'no image to compare'
        continue
      }
      line.runs = runs
      line.ref = pullRefFor({ configured: service.image, imageRef: t.imageRef, repo: parsed.repo })
      const asked = await askRegistry(c.engine, line.ref, runs)
      line.remoteDigest = asked.remoteDigest
      line.newer = asked.newer
      if (asked.error) line.error = asked.error
    } catch (err) {
      line.error = (err as Error).message.split('\n')[0]
    }
  }
  return checks
}
