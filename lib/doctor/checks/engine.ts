/** The engine check: it opens the engine the other checks use, and judges its age. */
import { compareApiVersions } from '../../docker/normalize.js'
import type { EngineInfo } from '../../docker/types.js'
import { errorText, remedyOf, type Check, type DoctorCheck, type EngineFacts } from '../check.js'

export const MIN_ENGINE_VERSION: readonly [number, number] = [20, 10]
export const MIN_ENGINE_API = '1.41'

/** What is too old about an engine; empty when nothing is. Pure. */
export function engineAgeProblems(version: string, engineApi: string): string[] {
  const out: string[] = []
  const m = /^v?(\d+)\.(\d+)/.exec(version.trim())
  if (!m) out.push(`the engine's version "${version}" is not understood`)
  else {
    const [maj, min] = [Number(m[1]), Number(m[2])]
    const [wantMaj, wantMin] = MIN_ENGINE_VERSION
    if (maj < wantMaj || (maj === wantMaj && min < wantMin)) {
      out.push(`Docker ${version} is older than ${wantMaj}.${wantMin}`)
    }
  }
  if (!/^\d+\.\d+$/.test(engineApi) || compareApiVersions(engineApi, MIN_ENGINE_API) < 0) {
    out.push(`API ${engineApi} is older than ${MIN_ENGINE_API}`)
  }
  return out
}

/** The engine check from what connecting gave. Pure. */
export function judgeEngine(r: { info: EngineInfo } | { error: unknown }): Check[] {
  const base = { id: 'engine', title: 'Docker engine' }
  if ('error' in r) {
    return [
      {
        ...base,
        status: 'fail',
        detail: errorText(r.error),
        fix:
          remedyOf(r.error) ??
          'start the engine, or point shipshape at it with --docker-host / DOCKER_HOST / docker.host',
      },
    ]
  }
  const i = r.info
  const detail = `Docker ${i.version} at ${i.address}, API ${i.engineApiVersion} (shipshape speaks ${i.apiVersion}), ${i.os}/${i.arch}`
  const old = engineAgeProblems(i.version, i.engineApiVersion)
  if (old.length) {
    return [
      {
        ...base,
        status: 'warn',
        detail: `${detail}: ${old.join('; ')}, results may be incomplete`,
        fix: 'upgrade the engine to Docker 20.10 (API 1.41) or newer',
      },
    ]
  }
  return [{ ...base, status: 'ok', detail, fix: null }]
}

export const engineCheck: DoctorCheck<EngineFacts> = {
  id: 'engine',
  title: 'Docker engine',
  providesEngine: true,
  hangFix: 'check the engine answers (`docker version`), then run doctor again',
  gather: async (ctx) => {
    if (!ctx.connect) return { error: new Error('no way to connect to the engine') }
    return ctx.connect()
  },
  // too late: the engine check has failed already (its time ran out), nothing more to say
  judge: (facts) => ('late' in facts ? [] : judgeEngine(facts)),
}
