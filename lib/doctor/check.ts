/**
 * What one doctor check is: `gather` reads the host through the context's ports (ports.ts),
 * `judge` turns those facts into findings and is pure (unit-tested without I/O). index.ts runs
 * the list of checks/index.ts, a few at a time, each with its own time limit.
 */
import type { Config } from '../config/index.js'
import type { Engine } from '../docker/engine.js'
import type { EngineInfo } from '../docker/types.js'
import type { HolderState, LockInfo } from '../host/lock.js'
import type { MountEntry } from '../host/mountinfo.js'
import type { ConfigOutcome } from './checks/config.js'
import type { DoctorPorts } from './ports.js'

export type CheckStatus = 'ok' | 'warn' | 'fail'

export interface Check {
  /** stable, e.g. `engine`, `asset-mount:music`, `journal:rebuild-….jsonl` */
  id: string
  title: string
  status: CheckStatus
  /** one line: what was found */
  detail: string
  /** one line: what to do; null when there is nothing to do */
  fix: string | null
}

/** The lock as found: none, unreadable, or its holder and whether that one is alive. */
export type LockFinding =
  | { kind: 'free' }
  | { kind: 'unreadable'; file: string; why: string }
  | { kind: 'held'; file: string; info: LockInfo; state: HolderState }

/** What connecting to the engine gave; `late` when it came after the engine check's time ran out. */
export type EngineFacts = { info: EngineInfo } | { error: unknown } | { late: true }

export interface CheckContext {
  config: Config
  /** the file given by --config: repeated in the commands doctor suggests */
  configFlag: string | null
  /** how reading the config went (the config check's facts) */
  configOutcome?: ConfigOutcome
  /** null when the engine could not be reached (the engine check says why) */
  engine: Engine | null
  env: NodeJS.ProcessEnv
  ports: DoctorPorts
  /** /proc/self/mountinfo, read once */
  mounts(): Promise<MountEntry[]>
  /** the host lock, read once */
  lock(): Promise<LockFinding>
  /** opens the engine the other checks use (the engine check's gather) */
  connect?(): Promise<EngineFacts>
}

export interface DoctorCheck<F = unknown> {
  id: string
  title: string
  /** waits for the engine check, whose engine it may use */
  needsEngine?: boolean
  /** the engine check: the ones that need the engine wait for it */
  providesEngine?: boolean
  /** what to look at when it does not finish in time */
  hangFix?: string
  /** reads the host (through ctx.ports only) */
  gather(ctx: CheckContext): Promise<F>
  /** pure: the findings */
  judge(facts: F): Check[]
}

/** A check as the list holds it, whatever its facts. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyCheck = DoctorCheck<any>

/** Gathers and judges one check (no time limit: index.ts adds it). */
export async function collect<F>(check: DoctorCheck<F>, ctx: CheckContext): Promise<Check[]> {
  return check.judge(await check.gather(ctx))
}

export const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err))
export const remedyOf = (err: unknown) => (err as { remedy?: string } | null)?.remedy ?? null

/** A thrown error as a fact a judge can read. */
export type Outcome<T> = { ok: T } | { error: unknown }

export async function outcome<T>(p: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: await p() }
  } catch (error) {
    return { error }
  }
}
