/**
 * The systemd units: installed, loaded, how their last run went, and whether the jobs run one way
 * (the timers or the schedule service). Read with `systemctl show` (an argument array).
 */
import path from 'node:path'
import { ENABLE_SCHEDULE, ENABLE_TIMERS } from '../../shared/systemd.js'
import type { Check, DoctorCheck } from '../check.js'

export const DOCTOR_UNITS = [
  'shipshape-report.timer',
  'shipshape-prune.timer',
  'shipshape-schedule.service',
] as const

export const SHOW_PROPERTIES = [
  'LoadState',
  'ActiveState',
  'Result',
  'ExecMainStatus',
  'LastTriggerUSec',
] as const

export function systemctlShowArgv(unit: string): string[] {
  return ['show', '-p', SHOW_PROPERTIES.join(','), unit]
}

/** `systemctl show` output (Key=Value lines) → a map. Pure. */
export function parseSystemctlShow(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=')
    if (eq <= 0) continue
    out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim()
  }
  return out
}

const never = (v: string | undefined) => !v || v === 'n/a' || v === '0'

/**
 * Pure: one unit's check. `props` is the unit's `systemctl show`; for a timer, `service` is its
 * service's (whose Result and ExecMainStatus say how the last run went).
 */
export function judgeUnit(
  unit: string,
  o: { installed: boolean; unitDir: string },
  props: Record<string, string>,
  service: Record<string, string> | null,
): Check {
  const base = { id: `systemd-unit:${unit}`, title: `Unit ${unit}` }
  const isTimer = unit.endsWith('.timer')
  const enable = unit === 'shipshape-schedule.service' ? ENABLE_SCHEDULE : ENABLE_TIMERS
  if (props.LoadState !== 'loaded') {
    return o.installed
      ? {
          ...base,
          status: 'warn',
          detail: `${path.join(o.unitDir, unit)} is there but systemd has not loaded it (LoadState=${props.LoadState || '?'})`,
          fix: 'systemctl daemon-reload (and check systemd.unitDir is a directory systemd loads units from)',
        }
      : {
          ...base,
          status: 'warn',
          detail: `not installed (no ${path.join(o.unitDir, unit)})`,
          fix: `shipshape systemd install, then ${enable}`,
        }
  }
  const svcName = isTimer ? unit.replace(/\.timer$/, '.service') : unit
  const svc = service ?? props
  const last = isTimer ? (never(props.LastTriggerUSec) ? 'never' : props.LastTriggerUSec) : null
  const result = svc.Result || 'success'
  const status = svc.ExecMainStatus || '0'
  if (svc.ActiveState === 'failed' || result !== 'success' || status !== '0') {
    return {
      ...base,
      status: 'fail',
      detail: `the last run of ${svcName} failed: Result=${result}, exit status ${status}${last ? `, triggered ${last}` : ''}`,
      fix: `journalctl -u ${svcName} -n 50 shows why; once fixed: systemctl reset-failed ${svcName}`,
    }
  }
  const where = o.installed ? '' : ` (loaded from outside ${o.unitDir})`
  if (isTimer) {
    return {
      ...base,
      status: 'ok',
      detail:
        props.ActiveState === 'active'
          ? `enabled${where}; last run: ${last}${last === 'never' ? '' : ', succeeded'}`
          : `installed${where}, not enabled (${props.ActiveState || '?'})`,
      fix: null,
    }
  }
  return {
    ...base,
    status: 'ok',
    detail:
      props.ActiveState === 'active'
        ? `running${where}`
        : `installed${where}, not running (${props.ActiveState || '?'})`,
    fix: null,
  }
}

/** Pure: are the jobs run by exactly one of the two ways? */
export function judgeJobs(active: Record<(typeof DOCTOR_UNITS)[number], boolean>): Check {
  const base = { id: 'systemd-jobs', title: 'Scheduled jobs' }
  const timers = active['shipshape-report.timer'] || active['shipshape-prune.timer']
  const schedule = active['shipshape-schedule.service']
  if (timers && schedule) {
    return {
      ...base,
      status: 'warn',
      detail: 'both the timers and the schedule service run the report and prune jobs',
      fix: 'keep one: systemctl disable --now shipshape-schedule.service (or the timers)',
    }
  }
  if (!timers && !schedule) {
    return {
      ...base,
      status: 'warn',
      detail:
        'neither the timers nor the schedule service is enabled: no nightly report, no weekly prune',
      fix: `${ENABLE_TIMERS} (or ${ENABLE_SCHEDULE})`,
    }
  }
  const which = timers
    ? `the timers (${DOCTOR_UNITS.filter((u) => u.endsWith('.timer') && active[u]).join(', ')})`
    : 'the schedule service'
  return { ...base, status: 'ok', detail: `run by ${which}`, fix: null }
}

type DoctorUnit = (typeof DOCTOR_UNITS)[number]

/** A unit's `systemctl show`, or why it could not be read. */
type Shown = Record<string, string> | string

export interface SystemdFacts {
  unitDir: string
  /** per DOCTOR_UNITS: is its file in unitDir? */
  installed: boolean[]
  /** systemd is PID 1 here */
  running: boolean
  /** per DOCTOR_UNITS when running: the unit's show, and for a timer its service's */
  shown: { props: Shown; service: Shown | null }[]
}

/** Pure. */
export function judgeSystemd(f: SystemdFacts): Check[] {
  const { unitDir, installed } = f
  if (!f.running) {
    return [
      {
        id: 'systemd',
        title: 'systemd',
        status: 'warn',
        detail:
          'systemd not running here (no /run/systemd/system): the units’ last results cannot be read',
        fix: 'nothing on a host without systemd: run `shipshape schedule` under its own supervisor instead',
      },
      ...DOCTOR_UNITS.map((u, i): Check => ({
        id: `systemd-unit:${u}`,
        title: `Unit ${u}`,
        status: installed[i] ? 'ok' : 'warn',
        detail: installed[i]
          ? `installed in ${unitDir}`
          : `not installed (no ${path.join(unitDir, u)})`,
        fix: installed[i] ? null : 'shipshape systemd install',
      })),
    ]
  }
  const out: Check[] = []
  const active = {} as Record<DoctorUnit, boolean>
  for (const [i, unit] of DOCTOR_UNITS.entries()) {
    const { props, service } = f.shown[i] ?? { props: 'not asked', service: null }
    const failed = [props, service].find((p): p is string => typeof p === 'string')
    if (failed || typeof props === 'string') {
      out.push({
        id: `systemd-unit:${unit}`,
        title: `Unit ${unit}`,
        status: 'warn',
        detail: failed ?? String(props),
        fix: `systemctl status ${unit}`,
      })
      active[unit] = false
      continue
    }
    active[unit] = props.LoadState === 'loaded' && props.ActiveState === 'active'
    out.push(
      judgeUnit(
        unit,
        { installed: installed[i] ?? false, unitDir },
        props,
        typeof service === 'string' ? null : service,
      ),
    )
  }
  out.push(judgeJobs(active))
  return out
}

export const systemdCheck: DoctorCheck<SystemdFacts> = {
  id: 'systemd',
  title: 'systemd',
  async gather(ctx) {
    const unitDir = ctx.config.systemd.unitDir
    const { ports } = ctx
    const installed = await Promise.all(
      DOCTOR_UNITS.map(async (u) => (await ports.pathKind(path.join(unitDir, u))).kind === 'file'),
    )
    const f: SystemdFacts = { unitDir, installed, running: false, shown: [] }
    if (!(await ports.systemdRunning())) return f
    f.running = true
    const show = async (unit: string): Promise<Shown> => {
      const r = await ports.systemctl(systemctlShowArgv(unit))
      if (r.exitCode !== 0) {
        return `systemctl show ${unit} failed (exit ${r.exitCode ?? '?'})${r.stderr.trim() ? `: ${r.stderr.trim().split('\n')[0]}` : ''}`
      }
      return parseSystemctlShow(r.stdout)
    }
    for (const unit of DOCTOR_UNITS) {
      const props = await show(unit)
      const service = unit.endsWith('.timer')
        ? await show(unit.replace(/\.timer$/, '.service'))
        : null
      f.shown.push({ props, service })
    }
    return f
  },
  judge: judgeSystemd,
}
