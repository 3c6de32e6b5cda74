/**
 * Putting the rendered units into a directory: planUnitFiles() (pure: rendered units + what the
 * directory holds → create / replace / unchanged), refuseReplacing() (the --force rule), and the
 * file operations (an atomic write per unit, the ReadWritePaths= directories).
 */
import { constants } from 'node:fs'
import { access, lstat, mkdir, readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { writeFileDurable } from '../host/durable.js'
import { RefusedError, UsageError } from '../errors.js'
import type { RenderedUnit, UnitName } from './render.js'

/** systemd's system unit search path (systemd.unit(5); `systemd-analyze unit-paths`). */
export const SYSTEM_UNIT_PATH: readonly string[] = [
  '/etc/systemd/system.control',
  '/run/systemd/system.control',
  '/run/systemd/transient',
  '/run/systemd/generator.early',
  '/etc/systemd/system',
  '/etc/systemd/system.attached',
  '/run/systemd/system',
  '/run/systemd/system.attached',
  '/run/systemd/generator',
  '/usr/local/lib/systemd/system',
  '/lib/systemd/system',
  '/usr/lib/systemd/system',
  '/run/systemd/generator.late',
]

export type UnitAction = 'create' | 'replace' | 'unchanged'

export interface PlannedUnit {
  name: UnitName
  path: string
  action: UnitAction
  text: string
}

/** What writing `units` into `dir` does, given the current content of each file (null: none). */
export function planUnitFiles(
  units: RenderedUnit[],
  dir: string,
  existing: ReadonlyMap<string, string | null>,
): PlannedUnit[] {
  return units.map((u) => {
    const now = existing.get(u.name) ?? null
    const action: UnitAction = now === null ? 'create' : now === u.text ? 'unchanged' : 'replace'
    return { name: u.name, path: path.join(dir, u.name), action, text: u.text }
  })
}

/**
 * A unit file with other content (edited by hand, an older render) is replaced only with --force.
 */
export function refuseReplacing(plan: PlannedUnit[], force: boolean): void {
  const differ = plan.filter((u) => u.action === 'replace')
  if (differ.length === 0 || force) return
  throw new RefusedError(
    `${differ.map((u) => u.path).join(', ')} ${differ.length === 1 ? 'exists' : 'exist'} with other content`,
    'compare with `shipshape systemd print` (e.g. diff it against the file), then run again with --force to replace',
  )
}

/** The current content of each unit file in `dir` (null: absent). */
export async function readUnitFiles(
  dir: string,
  names: readonly string[],
): Promise<Map<string, string | null>> {
  const found = new Map<string, string | null>()
  for (const name of names) {
    const file = path.join(dir, name)
    try {
      // a link (a masked unit points at /dev/null), a fifo, a device: never read through it,
      // never replaced (its undo could not put back what it was)
      const st = await lstat(file)
      if (!st.isFile()) {
        throw new RefusedError(
          `${file} is not a regular file (${st.isSymbolicLink() ? 'a symbolic link: a masked or linked unit?' : 'not a file'}): not replaced`,
          `look at it (ls -l ${file}); remove or unmask it yourself if it should go, then install again`,
        )
      }
      found.set(name, await readFile(file, 'utf8'))
    } catch (err) {
      if (err instanceof RefusedError) throw err
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'ENOENT') throw new UsageError(`cannot read ${file}: ${code ?? err}`)
      found.set(name, null)
    }
  }
  return found
}

/** Refused before anything changes when `dir` cannot be written (not root, read-only…). */
export async function checkWritableDir(dir: string): Promise<void> {
  let target = dir
  // the nearest existing ancestor decides whether dir can be created
  for (;;) {
    const st = await stat(target).catch(() => undefined)
    if (st) {
      if (!st.isDirectory()) throw new UsageError(`${target} is not a directory`)
      break
    }
    const parent = path.dirname(target)
    if (parent === target) break
    target = parent
  }
  try {
    await access(target, constants.W_OK)
  } catch (err) {
    throw new RefusedError(
      `cannot write into ${dir}: ${(err as NodeJS.ErrnoException).code ?? err}`,
      'run as root (or set systemd.unitDir to a directory you can write)',
    )
  }
}

/**
 * Writes a unit file atomically and durably (lib/host/durable.ts), mode 0644: units hold no
 * secrets. A leftover temp file ends in .tmp: not a unit name systemd would load.
 */
export async function writeUnitFile(file: string, text: string): Promise<void> {
  try {
    await mkdir(path.dirname(file), { recursive: true })
    await writeFileDurable(file, text, { mode: 0o644 })
  } catch (err) {
    throw new UsageError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`)
  }
}

/** The directories out of `dirs` that do not exist yet. */
export async function missingDirs(dirs: readonly string[]): Promise<string[]> {
  const missing: string[] = []
  for (const d of new Set(dirs)) {
    const st = await stat(d).catch(() => undefined)
    if (!st) missing.push(d)
    else if (!st.isDirectory()) throw new UsageError(`${d} exists and is not a directory`)
  }
  return missing
}
