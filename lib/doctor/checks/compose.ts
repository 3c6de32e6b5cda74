/** Docker Compose: which one is here, and whether what the engine speaks suits it. */
import type { ComposeCli } from '../../docker/compose.js'
import { compareApiVersions } from '../../docker/normalize.js'
import { showArgv } from '../../host/run.js'
import { errorText, remedyOf, type Check, type DoctorCheck } from '../check.js'

/** From API 1.45 on, image inspect has no ContainerConfig, which compose v1 needs (compose#11742). */
export const COMPOSE_V1_API_CAP = '1.44'

const COMPOSE_INSTALL =
  'install compose v2: `apt-get install docker-compose` (Debian 13), Docker’s docker-compose-plugin, or the binary in ~/.docker/cli-plugins/docker-compose'

/** Pure: the compose check from what detection found. */
export function judgeCompose(
  found: { cli: ComposeCli } | { error: unknown },
  o: { engineApi: string | null; needed: boolean },
): Check {
  const base = { id: 'compose', title: 'Docker Compose' }
  if ('error' in found) {
    return {
      ...base,
      status: o.needed ? 'fail' : 'warn',
      detail: `${errorText(found.error)}${o.needed ? '' : ' (no configured service uses compose)'}`,
      fix: remedyOf(found.error) ?? COMPOSE_INSTALL,
    }
  }
  const { cli } = found
  const shown = `${cli.versionText} (\`${showArgv(cli.argv)}\`)`
  if (cli.version === 'v2') return { ...base, status: 'ok', detail: shown, fix: null }
  const pinned =
    o.engineApi && /^\d+\.\d+$/.test(o.engineApi) && compareApiVersions(o.engineApi, '1.45') >= 0
      ? `; the engine speaks API ${o.engineApi}, whose image inspect has no ContainerConfig, which compose v1 needs to recreate a container (compose#11742): shipshape pins COMPOSE_API_VERSION=${COMPOSE_V1_API_CAP} for its own compose calls, a docker-compose run by hand needs it too`
      : ''
  return {
    ...base,
    status: 'warn',
    detail: `only compose v1: ${shown}${pinned}`,
    fix: COMPOSE_INSTALL,
  }
}

export interface ComposeFacts {
  found: { cli: ComposeCli } | { error: unknown }
  engineApi: string | null
  needed: boolean
}

export const composeCheck: DoctorCheck<ComposeFacts> = {
  id: 'compose',
  title: 'Docker Compose',
  needsEngine: true,
  async gather(ctx) {
    const configured = ctx.config.docker.compose
    const needed =
      configured !== undefined || Object.values(ctx.config.services).some((s) => s.compose)
    let found: ComposeFacts['found']
    try {
      found = { cli: await ctx.ports.detectCompose({ configured, env: ctx.env }) }
    } catch (error) {
      found = { error }
    }
    return { found, engineApi: ctx.engine?.info.engineApiVersion ?? null, needed }
  },
  judge: (f) => [judgeCompose(f.found, f)],
}
