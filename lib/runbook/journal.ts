/**
 * The runbook journal: append-only JSON lines in <stateDir>/journal/<operation>-<stamp>-<pid>.jsonl.
 * Every append is written and fsync'ed (the file, and the directories on creation) before it
 * resolves, and the runner awaits it before the step's side effects start: after kill -9 or power
 * loss the journal names every step that may have begun.
 *
 * A journal is unfinished while it has no 'end' record, or its last 'end' says 'needs-person'
 * (a person is to --resume or --rollback it; that run appends its own records and 'end').
 * A torn last line (power loss mid-write) is ignored when read and fenced off by a newline before
 * the next append.
 *
 * A journal drives --resume as root: listing refuses (RefusedError, exit 4) a stateDir or journal
 * directory another user could write, and a journal of the operation that is not a regular file
 * owned by this uid or that others could write (lib/host/private.ts) — never skipped silently.
 */
import { open, readdir, readFile, stat, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { fsyncDir, mkdirDurable } from '../host/durable.js'
import { checkPrivateDir, checkPrivateFile } from '../host/private.js'

export const JOURNAL_DIR = 'journal'

export type JournalOutcome = 'ok' | 'rolled-back' | 'needs-person'

/** Which run a journal is of, as its 'start' record says (and so every JournalState). */
export interface JournalOrigin {
  operation: string
  args: Record<string, unknown>
  host: string
  pid: number
}

export type JournalRecord =
  | ({
      t: 'start'
      v: 1
      at: string
      /** The runbook's steps at the start, for a person reading the file. */
      steps: { id: string; title: string }[]
    } & JournalOrigin)
  /** A later process took the journal over (--resume or --rollback). */
  | { t: 'resume'; mode: 'resume' | 'rollback'; pid: number; at: string }
  | { t: 'step-begin'; id: string; at: string }
  | { t: 'step-note'; id: string; data: Record<string, unknown>; at: string }
  | { t: 'step-done'; id: string; at: string }
  | { t: 'step-failed'; id: string; error: string; at: string }
  | { t: 'undo-begin'; id: string; at: string }
  | { t: 'undo-done'; id: string; at: string }
  | { t: 'undo-failed'; id: string; error: string; at: string }
  | { t: 'end'; outcome: JournalOutcome; at: string }

/** Where a step stands: the last of its records decides. */
export type JournalStepStatus = 'begun' | 'done' | 'failed' | 'undoing' | 'undone' | 'undo-failed'

export interface JournalStepState {
  status: JournalStepStatus
  /** Every note of the step, shallow-merged in order (across processes). */
  notes: Record<string, unknown>
  /** The last step-failed or undo-failed message. */
  error?: string
}

export interface JournalState extends JournalOrigin {
  file: string
  startedAt: string
  plan: { id: string; title: string }[]
  steps: Map<string, JournalStepState>
  /** The last 'end' record's outcome; null while none. */
  outcome: JournalOutcome | null
  /** When the last 'end' record was written; null while none. */
  endedAt: string | null
  /** Records read or written (a torn or unparsable line is not one). */
  records: number
  /** Unparsable lines skipped (a torn last line after power loss). */
  damaged: number
}

export class JournalError extends Error {}

export function journalDir(stateDir: string): string {
  return path.join(stateDir, JOURNAL_DIR)
}

const OPERATION = /^[A-Za-z0-9][A-Za-z0-9._-]*$/
const NAME = /^(.+)-(\d{8}T\d{9}Z)-(\d+)\.jsonl$/

/** Operation names become file names: letters, digits, '.', '_', '-'. */
export function checkOperation(operation: string): void {
  if (!OPERATION.test(operation)) {
    throw new JournalError(`invalid operation name for a journal: ${JSON.stringify(operation)}`)
  }
}

/** <operation>-<YYYYMMDDTHHMMSSmmmZ>-<pid>.jsonl — sorts by time within an operation. */
export function journalFileName(operation: string, at: Date, pid: number): string {
  checkOperation(operation)
  const stamp = at.toISOString().replace(/[-:.]/g, '')
  return `${operation}-${stamp}-${pid}.jsonl`
}

export function isUnfinished(state: JournalState): boolean {
  return state.outcome === null || state.outcome === 'needs-person'
}

/** The status a step has after each record of its progress (a failure's also keeps its error). */
const STATUS_AFTER = {
  'step-begin': 'begun',
  'step-done': 'done',
  'step-failed': 'failed',
  'undo-begin': 'undoing',
  'undo-done': 'undone',
  'undo-failed': 'undo-failed',
} as const satisfies Partial<Record<JournalRecord['t'], JournalStepStatus>>

/** Applies one record to a state (mutating it). */
export function applyRecord(state: JournalState, rec: JournalRecord): void {
  state.records++
  const step = (id: string): JournalStepState => {
    let s = state.steps.get(id)
    if (!s) {
      s = { status: 'begun', notes: {} }
      state.steps.set(id, s)
    }
    return s
  }
  switch (rec.t) {
    case 'start':
    case 'resume':
      break
    case 'step-note':
      Object.assign(step(rec.id).notes, rec.data)
      break
    case 'end':
      state.outcome = rec.outcome
      state.endedAt = rec.at
      break
    default: {
      const s = step(rec.id)
      s.status = STATUS_AFTER[rec.t]
      if ('error' in rec) s.error = rec.error
    }
  }
}

function fromStart(file: string, start: Extract<JournalRecord, { t: 'start' }>): JournalState {
  return {
    file,
    operation: start.operation,
    args: start.args ?? {},
    host: start.host,
    pid: start.pid,
    startedAt: start.at,
    plan: start.steps ?? [],
    steps: new Map(),
    outcome: null,
    endedAt: null,
    records: 1,
    damaged: 0,
  }
}

const TYPES = new Set([
  'start',
  'resume',
  'step-begin',
  'step-note',
  'step-done',
  'step-failed',
  'undo-begin',
  'undo-done',
  'undo-failed',
  'end',
])

function parseRecord(line: string): JournalRecord | null {
  try {
    const v = JSON.parse(line) as unknown
    if (!v || typeof v !== 'object' || !TYPES.has((v as { t?: unknown }).t as string)) return null
    const r = v as JournalRecord
    if (r.t !== 'start' && r.t !== 'resume' && r.t !== 'end' && typeof r.id !== 'string')
      return null
    if (r.t === 'step-note' && (!r.data || typeof r.data !== 'object')) return null
    return r
  } catch {
    return null
  }
}

/** Reads a journal's text back into a state. Pure. Throws JournalError without a start record. */
export function parseJournal(file: string, text: string): JournalState {
  const lines = text.split('\n').filter((l) => l.trim() !== '')
  const first = lines[0] === undefined ? null : parseRecord(lines[0])
  if (!first || first.t !== 'start' || typeof first.operation !== 'string') {
    throw new JournalError(`${file} is not a shipshape journal (no start record)`)
  }
  const state = fromStart(file, first)
  for (const line of lines.slice(1)) {
    const rec = parseRecord(line)
    if (rec && rec.t !== 'start') applyRecord(state, rec)
    else state.damaged++
  }
  return state
}

export async function readJournal(file: string): Promise<JournalState> {
  return parseJournal(file, await readFile(file, 'utf8'))
}

/**
 * Every journal of this operation (exactly; or of any of these) without a final end, newest first.
 * One listing of the directory, however many operations.
 */
export async function findUnfinishedJournals(
  stateDir: string,
  operation: string | string[],
): Promise<JournalState[]> {
  for (const op of [operation].flat()) checkOperation(op)
  return (await readJournals(stateDir, operation)).filter(isUnfinished)
}

/**
 * Every journal in stateDir — of one operation (exactly; or of any of a list) when given —
 * finished or not, newest first. A foreign or empty file is skipped; one another user could have
 * written is refused.
 */
export async function readJournals(
  stateDir: string,
  operation?: string | string[],
): Promise<JournalState[]> {
  const ops = operation === undefined ? null : new Set([operation].flat())
  const dir = journalDir(stateDir)
  // nothing there yet: nothing to trust (read-only commands work without a stateDir)
  if (!(await checkPrivateDir(stateDir, 'stateDir'))) return []
  if (!(await checkPrivateDir(dir, 'journal directory'))) return []
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw e
  }
  const mine = names
    .map((n) => ({ n, m: NAME.exec(n) }))
    .filter(({ m }) => m?.[1] !== undefined && (ops === null || ops.has(m[1])))
    .map(({ n }) => n)
  const states: JournalState[] = []
  for (const n of mine) {
    const file = path.join(dir, n)
    if (!(await checkPrivateFile(file, 'journal'))) continue // removed meanwhile
    let s: JournalState
    try {
      s = await readJournal(file)
    } catch (e) {
      if (e instanceof JournalError) continue // a foreign or empty file: not ours to resume
      throw e
    }
    if (ops === null || ops.has(s.operation)) states.push(s)
  }
  return states.sort(
    (a, b) => b.startedAt.localeCompare(a.startedAt) || b.file.localeCompare(a.file),
  )
}

/**
 * Writes one journal. Appends are serialised and each resolves after write + fsync; the state
 * follows what reached the file.
 */
export class JournalWriter {
  private queue: Promise<void> = Promise.resolve()

  private constructor(
    private readonly fh: FileHandle,
    readonly state: JournalState,
  ) {}

  get file(): string {
    return this.state.file
  }

  /** Creates a new journal with its start record, durable (file and directories) on return. */
  static async create(
    stateDir: string,
    start: Omit<Extract<JournalRecord, { t: 'start' }>, 't' | 'v'>,
  ): Promise<JournalWriter> {
    const dir = journalDir(stateDir)
    // 0700, each new directory durable in its parent before the first record is written
    await mkdirDurable(dir, 0o700)
    const rec: JournalRecord = { t: 'start', v: 1, ...start }
    let file = ''
    let fh: FileHandle | undefined
    // the name is unique per process and millisecond; a fake clock may repeat one: step past it
    for (let ms = Date.parse(start.at), tries = 0; !fh; ms++, tries++) {
      file = path.join(dir, journalFileName(start.operation, new Date(ms), start.pid))
      try {
        fh = await open(file, 'wx', 0o600)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || tries >= 1000) throw e
      }
    }
    try {
      await fh.write(JSON.stringify(rec) + '\n')
      await fh.sync()
      await fsyncDir(dir)
    } catch (e) {
      await fh.close()
      throw e
    }
    return new JournalWriter(fh, fromStart(file, rec))
  }

  /** Opens an existing journal (read back into `state`) for more records. */
  static async open(state: JournalState): Promise<JournalWriter> {
    const fh = await open(state.file, 'a')
    try {
      const { size } = await stat(state.file)
      if (size > 0) {
        const last = Buffer.alloc(1)
        const rd = await open(state.file, 'r')
        try {
          await rd.read(last, 0, 1, size - 1)
        } finally {
          await rd.close()
        }
        // fence off a torn last line so the next record stays parseable
        if (last[0] !== 0x0a) {
          await fh.write('\n')
          await fh.sync()
        }
      }
    } catch (e) {
      await fh.close()
      throw e
    }
    return new JournalWriter(fh, state)
  }

  /** Writes the record and fsyncs it; resolves when it is on disk. */
  append(rec: JournalRecord): Promise<void> {
    const line = JSON.stringify(rec) + '\n'
    const next = this.queue.then(async () => {
      await this.fh.write(line)
      await this.fh.sync()
      applyRecord(this.state, rec)
    })
    // a failed append fails its caller, not every later one
    this.queue = next.catch(() => {})
    return next
  }

  async close(): Promise<void> {
    await this.queue
    await this.fh.close()
  }
}
