/**
 * Unfinished runs: every journal in stateDir/journal that is not closed, with the command that
 * finishes or undoes it (lib/runbook/operations.ts, the one registry of operations). A journal
 * another user could have written is a failure: every command refuses it.
 */
import path from 'node:path'
import pLimit from 'p-limit'
import { judgePrivate, type PathFacts, type PrivateProblem } from '../../host/private.js'
import {
  isUnfinished,
  JournalError,
  journalDir,
  parseJournal,
  type JournalState,
} from '../../runbook/journal.js'
import { journalCommands, journalProgress, journalTarget } from '../../runbook/operations.js'
import type { Check, DoctorCheck, LockFinding } from '../check.js'
import type { DoctorPorts } from '../ports.js'

export interface JournalFile {
  file: string
  /** lstat (null: gone, or not readable) */
  facts: PathFacts | null
  /** the journal, when it is private, there, and a journal at all */
  journal: JournalState | null
}

export interface JournalsFacts {
  dir: string
  uid: number
  /** lstat of the directory; undefined when it does not exist */
  dirFacts?: PathFacts | null
  files: JournalFile[]
  /** the host lock, read when a journal is unfinished */
  lock: LockFinding | null
  hostname: string
  /** --config, repeated in the commands suggested */
  configFlag: string | null
}

const privacy = (
  p: string,
  facts: PathFacts | null | undefined,
  kind: 'dir' | 'file',
  uid: number,
) =>
  facts
    ? judgePrivate(p, facts, { kind, uid, what: kind === 'dir' ? 'journal directory' : 'journal' })
    : null

function unsafeCheck(p: string, kind: 'dir' | 'file', bad: PrivateProblem): Check {
  return {
    id: `journal-private:${path.basename(p)}`,
    title: kind === 'dir' ? 'Journal directory' : `Journal ${path.basename(p)}`,
    status: 'fail',
    detail: `${bad.problem}; mutating and resuming commands refuse to run (exit 4)`,
    fix: bad.fix,
  }
}

/** Pure. */
export function judgeJournals(f: JournalsFacts): Check[] {
  // a journal drives --resume as root: one another user could have written is refused by every
  // command that lists journals (lib/host/private.ts), so it is a failure here too
  const badDir = privacy(f.dir, f.dirFacts, 'dir', f.uid)
  if (badDir) return [unsafeCheck(f.dir, 'dir', badDir)]
  const unsafe: Check[] = []
  for (const x of f.files) {
    const bad = privacy(x.file, x.facts, 'file', f.uid)
    if (bad) unsafe.push(unsafeCheck(x.file, 'file', bad))
  }
  const read = f.files.flatMap((x) => (x.journal ? [x.journal] : []))
  const unfinished = read
    .filter((j) => isUnfinished(j))
    .sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.file.localeCompare(b.file))
  if (!unfinished.length) {
    if (unsafe.length) return unsafe
    const finished = read.length
    return [
      {
        id: 'journals',
        title: 'Unfinished runs',
        status: 'ok',
        detail: `none in ${f.dir}${finished ? ` (${finished} finished)` : ''}`,
        fix: null,
      },
    ]
  }
  return [...unsafe, ...unfinished.map((j) => judgeUnfinished(j, f))]
}

function judgeUnfinished(j: JournalState, f: JournalsFacts): Check {
  const { lock } = f
  const target = journalTarget(j)
  const of = target !== undefined ? ` of ${target}` : ''
  const cmds = journalCommands(j, { configFile: f.configFlag })
  const running =
    lock?.kind === 'held' && lock.state.alive === true && lock.info.operation === j.operation
  const where = j.host === f.hostname ? '' : ` on ${j.host}`
  return {
    id: `journal:${path.basename(j.file)}`,
    title: `Unfinished ${j.operation}${of}`,
    status: running ? 'warn' : 'fail',
    detail: running
      ? `${j.operation}${of} started ${j.startedAt}: a ${j.operation} run (pid ${lock.info.pid}) holds the lock now, this may be it; journal ${j.file}`
      : `${j.operation}${of} started ${j.startedAt} by pid ${j.pid}${where}: ${journalProgress(j)}; journal ${j.file}`,
    fix: running
      ? `wait for pid ${lock.info.pid} to finish, then run doctor again; if it does not: ${cmds.fix}`
      : cmds.fix,
  }
}

export const journalsCheck: DoctorCheck<JournalsFacts> = {
  id: 'journals',
  title: 'Unfinished runs',
  async gather(ctx) {
    const { ports } = ctx
    const dir = journalDir(ctx.config.stateDir)
    const f: JournalsFacts = {
      dir,
      uid: ports.uid(),
      files: [],
      lock: null,
      hostname: ports.hostname(),
      configFlag: ctx.configFlag,
    }
    const listed = await ports.listDir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOTDIR') return null
      throw err
    })
    if (!listed) return f
    f.dirFacts = await ports.pathFacts(dir).catch(() => null)
    if (privacy(dir, f.dirFacts, 'dir', f.uid)) return f
    const limit = pLimit(8)
    f.files = await Promise.all(
      listed
        .filter((n) => n.endsWith('.jsonl'))
        .map((n) => limit(() => readJournalFile(ctx.ports, path.join(dir, n), f.uid))),
    )
    if (f.files.some((x) => x.journal && isUnfinished(x.journal))) f.lock = await ctx.lock()
    return f
  },
  judge: judgeJournals,
}

async function readJournalFile(
  ports: Pick<DoctorPorts, 'pathFacts' | 'readText'>,
  file: string,
  uid: number,
): Promise<JournalFile> {
  const facts = await ports.pathFacts(file).catch(() => null)
  if (privacy(file, facts, 'file', uid)) return { file, facts, journal: null }
  const text = await ports.readText(file)
  if (text === null) return { file, facts, journal: null }
  try {
    return { file, facts, journal: parseJournal(file, text) }
  } catch (err) {
    if (err instanceof JournalError) return { file, facts, journal: null } // not ours to judge
    throw err
  }
}
