/**
 * What `config init` proposes (a Proposal: the config as YAML values, its comments, the entries
 * left as comments) and the naming rules its parts share. Pure.
 */
import type { Config } from '../config/schema.js'

export type KeyPath = (string | number)[]

/** A comment at a key: `before` as lines above it, `after` at the end of its line. */
export interface Note {
  path: KeyPath
  before?: string[]
  after?: string
}

/** An entry written as comments only, with why it is not active. */
export interface DisabledEntry {
  name: string
  why: string[]
  entry: Record<string, unknown>
  /** paths relative to the entry */
  notes: Note[]
}

export interface Proposal {
  header: string[]
  /** the config as YAML values, in the order it is written */
  config: Record<string, unknown>
  notes: Note[]
  /** per section: entries left as comments and closing remarks, after the active entries */
  trailing: Record<'services' | 'assets', { disabled: DisabledEntry[]; lines: string[] }>
  /** dotted keys whose values are guesses a person must confirm */
  guessed: string[]
  services: string[]
  assets: string[]
  protect: string[]
  warnings: string[]
}

export interface ProposeSettings {
  /** the config init ran with: thresholds (report.bigAssets), allowedRoots, stateDir, backupDir */
  config: Config
  /** where it came from: a path or 'embedded default' */
  configSource: string
  now: Date
}

/** What the parts of propose() add to besides their own section. */
export interface Acc {
  notes: Note[]
  guessed: string[]
  trailing: Proposal['trailing']
}

export type Entry = Record<string, unknown>

/** How many paths a comment lists before "… and N more". */
export const MAX_LISTED = 10

export const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`

/** An entry name out of anything: the schema's name rule (docker's own). */
export function toName(s: string, fallback = 'entry'): string {
  const n = s.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '')
  return n || fallback
}

export function uniqueName(name: string, used: Set<string>): string {
  let n = name
  for (let i = 2; used.has(n); i++) n = `${name}-${i}`
  used.add(n)
  return n
}
