/**
 * Private state: stateDir and backupDir (and what shipshape later trusts in them: journals, the
 * lock, records of kept originals) belong to the user shipshape runs as — root on a host. Anyone
 * else who could write there could plant a journal that `--resume` would then replay as root, or a
 * record that prune would act on. So a command refuses (RefusedError, exit 4) to act on a directory
 * that is a symbolic link, not a directory, not owned by the effective uid, or group/world-writable,
 * and on a journal that is not a regular file owned by that uid or is group/world-writable.
 *
 *   judgePrivate(path, facts, expect)   pure: lstat facts → the problem and its fix, or null
 *   pathFacts(path)                     lstat → facts, null when nothing is there
 *   checkPrivateDir(dir, what)          refuses a bad one; false when missing (nothing to trust)
 *   ensurePrivateDir(dir, what)         creates it 0700 when missing (durably), then checks it
 *   checkPrivateFile(file, what)        refuses a bad file; false when missing
 *   checkStateDirs(config)              stateDir and backupDir where they exist (before the engine)
 *
 * Directories shipshape creates are 0700; one made earlier 0755 passes (only writers matter).
 */
import { lstat } from 'node:fs/promises'
import { RefusedError } from '../errors.js'
import { mkdirDurable } from './durable.js'

/** What lstat(2) says about a path. */
export interface PathFacts {
  type: 'dir' | 'file' | 'symlink' | 'other'
  /** permission bits (st_mode & 07777) */
  mode: number
  uid: number
}

export interface PrivateExpect {
  /** a directory (stateDir, backupDir) or a regular file (a journal) */
  kind: 'dir' | 'file'
  /** the effective uid shipshape runs as (process.geteuid()) */
  uid: number
  /** how a person knows it: 'stateDir', 'backupDir', 'journal', … */
  what: string
}

export interface PrivateProblem {
  /** what is wrong, naming the path */
  problem: string
  /** the commands that make it right */
  fix: string
}

const octal = (mode: number) => mode.toString(8).padStart(4, '0')

/** chown's argument for a uid: root:root for root, the bare uid otherwise. */
function owner(uid: number): string {
  return uid === 0 ? 'root:root' : String(uid)
}

function userName(uid: number): string {
  return uid === 0 ? 'root (uid 0)' : `uid ${uid}`
}

/** Pure: is this path private enough to act on? null when it is. */
export function judgePrivate(
  p: string,
  facts: PathFacts,
  expect: PrivateExpect,
): PrivateProblem | null {
  const { kind, uid, what } = expect
  const isDir = kind === 'dir'
  const why = isDir
    ? 'another user could plant journals, locks or records there that shipshape, running as root, would act on'
    : 'another user could have written it, and --resume would replay it as root'
  const remove = `if you did not make it, remove it (rm ${p})`
  // stateDir and backupDir are config keys; a directory inside them (journal/) is not
  const key = what === 'stateDir' || what === 'backupDir' ? what : null
  if (facts.type === 'symlink') {
    const relink = `replace the link with a directory: rm ${p} && mkdir -m 700 ${p}`
    return isDir
      ? {
          problem: `${what} ${p} is a symbolic link: shipshape does not follow one there (${why})`,
          fix: key
            ? `set ${key} in the host config to the real directory (readlink -f ${p}), or ${relink}`
            : relink,
        }
      : {
          problem: `the ${what} ${p} is a symbolic link, not a file shipshape wrote (${why})`,
          fix: remove,
        }
  }
  if (facts.type !== kind) {
    return isDir
      ? {
          problem: `${what} ${p} exists and is not a directory`,
          fix: key
            ? `move it away, or set ${key} in the host config to another directory`
            : 'move it away',
        }
      : {
          problem: `the ${what} ${p} is not a regular file (${why})`,
          fix: remove,
        }
  }
  const wrong: string[] = []
  if (facts.uid !== uid) wrong.push(`owned by uid ${facts.uid}, not ${userName(uid)}`)
  const writers = [facts.mode & 0o020 ? 'group' : '', facts.mode & 0o002 ? 'others' : ''].filter(
    Boolean,
  )
  if (writers.length) wrong.push(`writable by ${writers.join(' and ')} (mode ${octal(facts.mode)})`)
  if (!wrong.length) return null
  const fixIt = `chmod ${isDir ? '700' : '600'} ${p} && chown ${owner(uid)} ${p}`
  return {
    problem: `${isDir ? what : `the ${what}`} ${p} is ${wrong.join(' and ')}: ${why}`,
    fix: isDir ? fixIt : `${remove}; if it is one of shipshape's: ${fixIt}`,
  }
}

/** lstat → facts; null when nothing is at the path (ENOENT, or ENOTDIR: a component is a file). */
export async function pathFacts(p: string): Promise<PathFacts | null> {
  let st
  try {
    st = await lstat(p)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return null
    throw err
  }
  return {
    type: st.isSymbolicLink()
      ? 'symlink'
      : st.isDirectory()
        ? 'dir'
        : st.isFile()
          ? 'file'
          : 'other',
    mode: st.mode & 0o7777,
    uid: st.uid,
  }
}

/** pathFacts, a path that cannot even be looked at (EACCES, EIO) refused with exit 4. */
async function factsOrRefuse(p: string, what: string): Promise<PathFacts | null> {
  try {
    return await pathFacts(p)
  } catch (err) {
    throw new RefusedError(
      `cannot look at ${what} ${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      'run shipshape as a user who can read and write it (usually root)',
    )
  }
}

/** The uid shipshape runs as (root on a host; the test runner's elsewhere). */
export function effectiveUid(): number {
  return process.geteuid?.() ?? 0
}

function refuse(p: string, facts: PathFacts, expect: PrivateExpect): void {
  const problem = judgePrivate(p, facts, expect)
  if (problem) throw new RefusedError(problem.problem, problem.fix)
}

/**
 * Refuses (RefusedError, exit 4) a directory that is not private to this uid; true when it is,
 * false when it does not exist (nothing in it to trust; the caller creates it with
 * ensurePrivateDir when it writes there).
 */
export async function checkPrivateDir(dir: string, what: string): Promise<boolean> {
  const facts = await factsOrRefuse(dir, what)
  if (!facts) return false
  refuse(dir, facts, { kind: 'dir', uid: effectiveUid(), what })
  return true
}

/** Creates the directory 0700 (parents too, durably) when missing, then checks it. */
export async function ensurePrivateDir(dir: string, what: string): Promise<void> {
  if (await checkPrivateDir(dir, what)) return
  await mkdirDurable(dir, 0o700)
  await checkPrivateDir(dir, what)
}

/** Refuses a file that is not a regular file private to this uid; false when it does not exist. */
export async function checkPrivateFile(file: string, what: string): Promise<boolean> {
  const facts = await factsOrRefuse(file, what)
  if (!facts) return false
  refuse(file, facts, { kind: 'file', uid: effectiveUid(), what })
  return true
}

/**
 * stateDir and backupDir, where they exist: the first thing a mutating or resuming command does,
 * before it connects to the engine. A missing one passes (it is created 0700 when written).
 */
export async function checkStateDirs(config: {
  stateDir: string
  backupDir: string
}): Promise<void> {
  await checkPrivateDir(config.stateDir, 'stateDir')
  await checkPrivateDir(config.backupDir, 'backupDir')
}
