/**
 * stateDir and backupDir: private to the user shipshape runs as (the refusal every mutating
 * command gives), writable (a probe file, removed again) or creatable, and with room.
 */
import path from 'node:path'
import { formatBytes } from '../../config/index.js'
import { judgePrivate, type PathFacts } from '../../host/private.js'
import {
  errorText,
  outcome,
  type Check,
  type CheckStatus,
  type DoctorCheck,
  type Outcome,
} from '../check.js'
import type { DiskSpace, PathKind } from '../ports.js'

export const DIR_WARN_BELOW = 1024 ** 3

/** stateDir/backupDir: warn under 1 GiB free. Pure. */
export function judgeDirFree(freeBytes: number): CheckStatus {
  return freeBytes < DIR_WARN_BELOW ? 'warn' : 'ok'
}

const DIR_TITLES = { stateDir: 'State directory', backupDir: 'Backup directory' } as const

export type DirKey = 'stateDir' | 'backupDir'

export interface DirFacts {
  key: DirKey
  dir: string
  uid: number
  /** lstat of dir (null: nothing there, or not readable) */
  facts: PathFacts | null
  kind?: PathKind
  /** an existing dir: why the probe file could not be written (null: it could) */
  probe?: string | null
  /** a missing dir: its nearest existing ancestor, and why it cannot be written there */
  parent?: { path: string; kind: PathKind; canWrite?: string | null }
  /** free space of dir, or of the parent it will be created in */
  space?: Outcome<DiskSpace>
}

const unsafeOf = (f: Pick<DirFacts, 'facts' | 'dir' | 'uid' | 'key'>) =>
  f.facts ? judgePrivate(f.dir, f.facts, { kind: 'dir', uid: f.uid, what: f.key }) : null

/** Pure. */
export function judgeDir(f: DirFacts): Check[] {
  const { key, dir } = f
  const base = { id: key === 'stateDir' ? 'state-dir' : 'backup-dir', title: DIR_TITLES[key] }
  const fail = (detail: string, fix: string): Check[] => [{ ...base, status: 'fail', detail, fix }]
  const elsewhere = `or set ${key} in the host config to another directory`
  // the same judgment the commands refuse by (lib/host/private.ts): a symlink, another owner,
  // writable by group or others
  const unsafe = unsafeOf(f)
  if (unsafe) {
    return fail(
      `${unsafe.problem}; every mutating or resuming command refuses to act on it (exit 4)`,
      unsafe.fix,
    )
  }
  const kind = f.kind ?? { kind: 'missing' }
  let found: string
  if (kind.kind === 'dir') {
    const err = f.probe
    if (err) {
      return fail(
        `${dir} is not writable: ${err}`,
        err.startsWith('EROFS')
          ? `it is on a read-only filesystem: remount it read-write, ${elsewhere}`
          : `make it writable for the user shipshape runs as (usually root), ${elsewhere}`,
      )
    }
    found = `${dir} is writable`
  } else if (kind.kind === 'missing') {
    const parent = f.parent?.path ?? dir
    const pk = f.parent?.kind ?? kind
    if (pk.kind !== 'dir') {
      const what =
        pk.kind === 'error' ? `cannot be read (${pk.code})` : `is a ${pk.kind}, not a directory`
      return fail(
        `${dir} does not exist and cannot be created: ${parent} ${what}`,
        `set ${key} in the host config to a directory that can be created`,
      )
    }
    const err = f.parent?.canWrite
    if (err) {
      return fail(
        `${dir} does not exist and cannot be created: ${parent} is not writable (${err})`,
        err.startsWith('EROFS')
          ? `${parent} is on a read-only filesystem: set ${key} in the host config to a directory on a writable disk`
          : `create ${dir} as root, ${elsewhere}`,
      )
    }
    found = `${dir} does not exist yet; it will be created in ${parent} (writable)`
  } else if (kind.kind === 'error') {
    return fail(
      `${dir} cannot be read: ${kind.code} ${kind.message}`,
      `check the path, ${elsewhere}`,
    )
  } else {
    return fail(`${dir} exists and is not a directory`, `move it away, ${elsewhere}`)
  }
  return [judgeRoom(base, key, found, f.space)]
}

function judgeRoom(
  base: { id: string; title: string },
  key: DirKey,
  found: string,
  space: Outcome<DiskSpace> | undefined,
): Check {
  if (!space || 'error' in space) {
    const why = space ? errorText(space.error) : 'not measured'
    return { ...base, status: 'warn', detail: `${found}; free space unknown (${why})`, fix: null }
  }
  const status = judgeDirFree(space.ok.free)
  return {
    ...base,
    status,
    detail: `${found}; ${formatBytes(space.ok.free)} free${status === 'ok' ? '' : ' (less than 1 GiB)'}`,
    fix:
      status === 'ok'
        ? null
        : key === 'backupDir'
          ? 'backups need room: free space on that disk, or set backupDir to a bigger one'
          : 'journals, reports and logs need room: free space on that disk, or set stateDir elsewhere',
  }
}

export function dirCheck(key: DirKey): DoctorCheck<DirFacts> {
  return {
    id: key === 'stateDir' ? 'state-dir' : 'backup-dir',
    title: DIR_TITLES[key],
    async gather(ctx) {
      const { ports } = ctx
      const dir = ctx.config[key]
      const f: DirFacts = { key, dir, uid: ports.uid(), facts: null }
      f.facts = await ports.pathFacts(dir).catch(() => null)
      if (unsafeOf(f)) return f
      f.kind = await ports.pathKind(dir)
      let measured = dir
      if (f.kind.kind === 'dir') {
        f.probe = await ports.probeDir(dir)
        if (f.probe) return f
      } else if (f.kind.kind === 'missing') {
        let parent = dir
        let pk: PathKind = f.kind
        while (pk.kind === 'missing' && parent !== '/') {
          parent = path.dirname(parent)
          pk = await ports.pathKind(parent)
        }
        f.parent = { path: parent, kind: pk }
        if (pk.kind !== 'dir') return f
        f.parent.canWrite = await ports.canWrite(parent)
        if (f.parent.canWrite) return f
        measured = parent
      } else {
        return f
      }
      f.space = await outcome(() => ports.statfs(measured))
      return f
    },
    judge: judgeDir,
  }
}
