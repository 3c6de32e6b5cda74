/**
 * The runbook of `systemd install` (run by lib/runbook/runner.ts): create the ReadWritePaths=
 * directories, write each unit file, `systemctl daemon-reload`. Each step is idempotent, notes in
 * the journal what its undo needs BEFORE it changes anything, and reaches the host only through
 * the context's ports (InstallFs, SystemdPort): unit tests pass fakes.
 *
 * Undo puts back exactly what was there: a unit file's previous content and mode (or removes the
 * file it created), the directories it created only while they are still empty. The runner undoes
 * in reverse order, so the daemon-reload step's undo runs before the files are put back: it only
 * marks that systemd must load them again, and each unit file's undo reloads once its file is
 * back (a crash-recovery path: several reloads are harmless).
 */
import { createHash } from 'node:crypto'
import path from 'node:path'
import type { Step, StepJournal } from '../runbook/types.js'
import type { UnitName } from './render.js'

/** A unit file as found: its content and permission bits. */
export interface FileFacts {
  text: string
  mode: number
}

/** The file operations of install (host-fs.ts on the host; a fake in tests). */
export interface InstallFs {
  /** the file's content and mode; null when absent */
  readFile(file: string): Promise<FileFacts | null>
  /** atomically and durably (the parent directory created when missing) */
  writeFile(file: string, text: string, mode: number): Promise<void>
  /** removes a regular file; absent is fine, anything else is an error */
  removeFile(file: string): Promise<void>
  /** what is at `p` */
  kind(p: string): Promise<'dir' | 'missing' | 'other'>
  /** one directory (its parent exists), created with `mode` */
  makeDir(dir: string, mode: number): Promise<void>
  /** removes `dir` when it is an empty directory; false when it is not there or not empty */
  removeEmptyDir(dir: string): Promise<boolean>
}

/** The systemd manager, as install uses it; tests pass a fake. */
export interface SystemdPort {
  /** systemd is PID 1 here (sd_booted(): /run/systemd/system exists) */
  running(): Promise<boolean>
  /** directories the manager loads units from */
  unitPath: readonly string[]
  /** systemctl with an argument array */
  systemctl(args: string[]): Promise<void>
}

/** A unit file the run writes: where, what, and what it found when the plan was made. */
export interface UnitWrite {
  name: UnitName
  path: string
  text: string
  action: 'create' | 'replace' | 'unchanged'
}

export interface InstallContext {
  fs: InstallFs
  systemd: SystemdPort
  /** directories created when missing: the ReadWritePaths= ones 0700, the unit directory 0755 */
  dirs: { path: string; mode: number }[]
  units: UnitWrite[]
  /** systemd loads from unitDir and runs here: reload after writing */
  reload: boolean
  /** set by the daemon-reload step's undo: a unit file put back must be loaded again */
  reloadAfterUndo?: boolean
}

export const UNIT_MODE = 0o644

/** sha256 of a unit's text: the journal holds what was written without holding it twice. */
const digest = (text: string) => createHash('sha256').update(text).digest('hex')

/** `dir` and the missing directories above it, top first, when it does not exist yet. */
async function missingChain(fs: InstallFs, dir: string): Promise<string[]> {
  const chain: string[] = []
  for (let p = path.resolve(dir); ; p = path.dirname(p)) {
    const k = await fs.kind(p)
    if (k === 'dir') break
    if (k === 'other') throw new Error(`${p} exists and is not a directory`)
    chain.unshift(p)
    if (path.dirname(p) === p) break
  }
  return chain
}

const noted = (j: StepJournal): string[] => {
  const c = j.data().created
  return Array.isArray(c) ? c.filter((x): x is string => typeof x === 'string') : []
}

export const directoriesStep: Step<InstallContext> = {
  id: 'directories',
  title: 'Create the missing directories (ReadWritePaths=, the unit directory)',
  preview: (ctx) => ctx.dirs.map((d) => `${d.path} (${d.mode.toString(8).padStart(4, '0')})`),
  async run(ctx, journal) {
    for (const d of ctx.dirs) {
      const chain = await missingChain(ctx.fs, d.path)
      if (!chain.length) continue
      // noted before they exist: undo removes only these, and only while empty
      await journal.note({ created: [...new Set([...noted(journal), ...chain])] })
      for (const p of chain) await ctx.fs.makeDir(p, d.mode)
    }
  },
  async verify(ctx) {
    for (const d of ctx.dirs) if ((await ctx.fs.kind(d.path)) !== 'dir') return false
    return true
  },
  async undo(ctx, journal) {
    // deepest first; one that holds anything now (the lock, a journal, a backup) stays
    for (const d of noted(journal).reverse()) await ctx.fs.removeEmptyDir(d)
  },
}

/** The step that writes one unit file. */
export function unitStep(name: UnitName): Step<InstallContext> {
  const unit = (ctx: InstallContext): UnitWrite => {
    const u = ctx.units.find((x) => x.name === name)
    if (!u) throw new Error(`no rendered unit ${name}`)
    return u
  }
  return {
    id: `unit:${name}`,
    title: `Write ${name}`,
    preview: (ctx) => {
      const u = unit(ctx)
      return [`${u.action === 'unchanged' ? 'same' : u.action} ${u.path}`]
    },
    async run(ctx, journal) {
      const u = unit(ctx)
      // what was there, noted once (a re-run after a crash finds its own file there), and what
      // is written, noted before the write: undo touches only a file that is still this
      if (!('before' in journal.data()))
        await journal.note({ before: await ctx.fs.readFile(u.path) })
      if (journal.data().written !== digest(u.text)) await journal.note({ written: digest(u.text) })
      const now = await ctx.fs.readFile(u.path)
      if (now?.text !== u.text || now.mode !== UNIT_MODE) {
        await ctx.fs.writeFile(u.path, u.text, UNIT_MODE)
      }
    },
    async verify(ctx) {
      const u = unit(ctx)
      return (await ctx.fs.readFile(u.path))?.text === u.text
    },
    async undo(ctx, journal) {
      const data = journal.data()
      if (!('before' in data)) return // never began: nothing was written
      const before = data.before as FileFacts | null
      const file = unit(ctx).path
      const now = await ctx.fs.readFile(file)
      const same =
        now === null ? before === null : now.text === before?.text && now.mode === before.mode
      if (!same) {
        if (now && digest(now.text) !== data.written) {
          throw new Error(
            `${file} changed since install wrote it: left as it is (its content before the install is in the journal)`,
          )
        }
        if (before === null) await ctx.fs.removeFile(file)
        else await ctx.fs.writeFile(file, before.text, before.mode)
      }
      if (ctx.reloadAfterUndo) await ctx.systemd.systemctl(['daemon-reload'])
    },
  }
}

export const daemonReloadStep: Step<InstallContext> = {
  id: 'daemon-reload',
  title: 'Have systemd load the units (systemctl daemon-reload)',
  preview: () => ['systemctl daemon-reload'],
  async run(ctx, journal) {
    await ctx.systemd.systemctl(['daemon-reload'])
    await journal.note({ reloaded: true })
  },
  async undo(ctx, journal) {
    // a reload that failed loaded nothing; one that ran must be done again once the files are
    // back: the unit files' undo (after this one) does it
    if (journal.data().reloaded === true) ctx.reloadAfterUndo = true
  },
}

/**
 * The steps of a run: the directories when one is missing, a step per unit file that changes,
 * the reload when systemd loads them here. `prior` (the ids of the run a --resume/--rollback
 * continues) adds the steps it had, whatever the host looks like now.
 */
export function installSteps(
  ctx: Pick<InstallContext, 'units' | 'reload'> & { createDirs: boolean },
  prior: ReadonlySet<string> = new Set(),
): Step<InstallContext>[] {
  const steps: Step<InstallContext>[] = []
  if (ctx.createDirs || prior.has(directoriesStep.id)) steps.push(directoriesStep)
  for (const u of ctx.units) {
    const s = unitStep(u.name)
    if (u.action !== 'unchanged' || prior.has(s.id)) steps.push(s)
  }
  if (ctx.reload || prior.has(daemonReloadStep.id)) steps.push(daemonReloadStep)
  return steps
}
