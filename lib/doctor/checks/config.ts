/** The config check: how reading the host config went (read once by index.ts). */
import type { ConfigOrigin } from '../../config/index.js'
import { formatProblem } from '../../config/problems.js'
import type { ConfigProblem } from '../../errors.js'
import { showArgv } from '../../host/run.js'
import type { Check, DoctorCheck } from '../check.js'

export interface ConfigOutcome {
  source: string
  origin: ConfigOrigin
  /** every problem `config check` reports; empty when valid */
  problems: ConfigProblem[]
  /** a failure that is not a config problem */
  error?: string
}

const ORIGIN_TEXT: Record<ConfigOrigin, string> = {
  flag: 'given by --config',
  env: 'given by $SHIPSHAPE_CONFIG',
  etc: 'found in the system config directory',
  host: 'found for this hostname in the clone',
  default: 'no host config found',
}

/** The checks that need a valid config and are skipped without one. */
export const NEEDS_CONFIG = 'asset mounts, directories, lock, journals, systemd units'

/** Pure. */
export function judgeConfig(o: ConfigOutcome): Check[] {
  const where =
    o.origin === 'default'
      ? `the embedded default (${ORIGIN_TEXT.default})`
      : `${o.source} (${ORIGIN_TEXT[o.origin]})`
  const base = { id: 'config', title: 'Config' }
  if (!o.problems.length && !o.error) {
    return [{ ...base, status: 'ok', detail: `valid: ${where}`, fix: null }]
  }
  const shown = o.problems.slice(0, 3).map(formatProblem)
  const what = o.error
    ? o.error
    : `${o.problems.length} problem${o.problems.length === 1 ? '' : 's'}: ${shown.join('; ')}${o.problems.length > 3 ? '; …' : ''}`
  const check = `shipshape${o.origin === 'flag' ? ` --config ${showArgv([o.source])}` : ''} config check`
  return [
    {
      ...base,
      status: 'fail',
      detail: `${where} is not valid: ${what} (not checked without it: ${NEEDS_CONFIG})`,
      fix: `fix the lines named; \`${check}\` lists every problem`,
    },
  ]
}

export const configCheck: DoctorCheck<ConfigOutcome> = {
  id: 'config',
  title: 'Config',
  gather: async (ctx) =>
    ctx.configOutcome ?? { source: 'embedded default', origin: 'default', problems: [] },
  judge: judgeConfig,
}
