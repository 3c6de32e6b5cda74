/**
 * What shipshape remembers about a service's images, outside the engine.
 *
 * - Backup records (`<stateDir>/backups/<service>/<stamp>-<kind>.json`): a `shipshape-prev-<stamp>`
 *   tag is a plain tag on the very image that ran (same id), so what a label used to carry —
 *   whose backup, made when, of what — is kept here. `listBackups` (index.ts) trusts a record only
 *   while its tag still names its image.
 * - Build files (`<backupDir>/build-files/<service>/<image hex>/`): the compose files, `.env`,
 *   Dockerfile and `.dockerignore` that made an image (saved after a healthy rebuild), or that were
 *   found before the first rebuild shipshape made of the service (`origin` says which). A way back
 *   to that image runs compose with these files, never with the edited ones on disk; `rollback`
 *   shows their diff against the disk and `--restore-files` writes them back.
 *
 * Reads and writes only: no engine.
 */
import { createHash } from 'node:crypto'
import { lstat, readdir, readFile, rename, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import { createTwoFilesPatch } from 'diff'
import { mkdirDurable, readIf, writeFileDurable } from '../host/durable.js'

// --- backup records ----------------------------------------------------------------------------

export const BACKUP_RECORD_SCHEMA = 'shipshape.backup-record/1'

export interface BackupRecord {
  schema: typeof BACKUP_RECORD_SCHEMA
  service: string
  /** repo:shipshape-prev-<stamp> or repo:shipshape-backup-<stamp> */
  tag: string
  /** the image the tag was put on (prev: the image the service ran, same id) */
  id: string
  kind: 'image' | 'commit'
  /** ISO time of the run */
  created: string
  /** the image the service ran when the backup was made */
  source: string
  stamp: string
}

const recordDir = (stateDir: string, service: string) => path.join(stateDir, 'backups', service)

export async function writeBackupRecord(stateDir: string, r: BackupRecord): Promise<void> {
  const dir = recordDir(stateDir, r.service)
  await mkdirDurable(dir, 0o700)
  await writeFileDurable(
    path.join(dir, `${r.stamp}-${r.kind}.json`),
    `${JSON.stringify(r, null, 2)}\n`,
  )
}

export async function removeBackupRecord(
  stateDir: string,
  service: string,
  stamp: string,
  kind: BackupRecord['kind'],
): Promise<void> {
  await rm(path.join(recordDir(stateDir, service), `${stamp}-${kind}.json`), { force: true })
}

function isRecord(v: unknown, service: string): v is BackupRecord {
  const r = v as Partial<BackupRecord> | null
  return (
    r?.schema === BACKUP_RECORD_SCHEMA &&
    r.service === service &&
    typeof r.tag === 'string' &&
    typeof r.id === 'string' &&
    (r.kind === 'image' || r.kind === 'commit') &&
    typeof r.created === 'string' &&
    typeof r.stamp === 'string'
  )
}

/** The service's backup records (unreadable or foreign files are skipped). */
export async function readBackupRecords(
  stateDir: string,
  service: string,
): Promise<BackupRecord[]> {
  const dir = recordDir(stateDir, service)
  const names = await readdir(dir).catch(() => [] as string[])
  const out: BackupRecord[] = []
  for (const n of names.filter((x) => /^\d{8}T\d{6}Z-(image|commit)\.json$/.test(x)).sort()) {
    try {
      const v: unknown = JSON.parse(await readFile(path.join(dir, n), 'utf8'))
      if (isRecord(v, service)) out.push(v)
    } catch {
      // a torn or foreign file is not a backup
    }
  }
  return out
}

/** Every service with backup records (prune's inventory). */
export async function readAllBackupRecords(stateDir: string): Promise<BackupRecord[]> {
  const services = await readdir(path.join(stateDir, 'backups')).catch(() => [] as string[])
  return (await Promise.all(services.map((s) => readBackupRecords(stateDir, s)))).flat()
}

// --- build files -------------------------------------------------------------------------------

export const BUILD_FILES_SCHEMA = 'shipshape.build-files/1'

export type BuildFileRole = 'compose' | 'env' | 'dockerfile' | 'dockerignore'

export interface BuildFileEntry {
  /** the file's path on disk (absolute) */
  path: string
  /** its copy's name in the record's directory */
  kept: string
  role: BuildFileRole
  sha256: string
  mode: number
}

export interface BuildFiles {
  schema: typeof BUILD_FILES_SCHEMA
  service: string
  imageId: string
  savedAt: string
  /**
   * built: the files the image was built from (saved after its healthy rebuild); pulled: the
   * files it ran with after its healthy update;
   * found-before-build: the files on disk before shipshape's first rebuild of the service, which
   * may already hold edits made since the image was built; matched-running: the same, and compose
   * said the compose files and .env make the config the running container was made from (config
   * hash) — the Dockerfile is not in that hash and may have been edited since the build;
   * edited-since-run: compose's hash says the compose files or .env changed since the container
   * was made (no better copy exists).
   */
  origin: 'built' | 'pulled' | 'found-before-build' | 'matched-running' | 'edited-since-run'
  /** compose services: how compose was called (files in order; the .env if there was one) */
  compose: { project: string; cwd: string } | null
  entries: BuildFileEntry[]
}

/** One file to keep: where it is on disk, and (optionally) a copy to read it from. */
export interface BuildFileSource {
  path: string
  role: BuildFileRole
  /** read from here instead of `path` (the run's copy taken before the build) */
  from?: string
}

export const buildFilesRoot = (backupDir: string, service: string) =>
  path.join(backupDir, 'build-files', service)

export const buildFilesDir = (backupDir: string, service: string, imageId: string) =>
  path.join(buildFilesRoot(backupDir, service), imageId.replace(/^sha256:/, ''))

/** The kept names: basename, numbered when two share one (`docker-compose.yml`, `….2`), unique. */
export function keptNames(paths: string[]): string[] {
  const used = new Set<string>()
  return paths.map((p) => {
    const base = path.basename(p) || 'file'
    let name = base
    for (let n = 2; used.has(name); n++) name = `${base}.${n}`
    used.add(name)
    return name
  })
}

/** the copies sit in files/ of a record: no kept name can meet files.json or no.env */
const FILES = 'files'

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/**
 * Saves the build files of `imageId` (files that do not exist are left out) into a fresh
 * directory, then renames it into place: a record is whole or absent. An existing record of the
 * image is kept as it is (returns it).
 */
export async function saveBuildFiles(o: {
  backupDir: string
  service: string
  imageId: string
  origin: BuildFiles['origin']
  compose: BuildFiles['compose']
  files: BuildFileSource[]
  now: Date
}): Promise<BuildFiles> {
  const dir = buildFilesDir(o.backupDir, o.service, o.imageId)
  const existing = await readBuildFiles(o.backupDir, o.service, o.imageId)
  if (existing) return existing
  await mkdirDurable(path.dirname(dir), 0o700)
  const tmp = `${dir}.tmp-${process.pid}`
  await rm(tmp, { recursive: true, force: true })
  await mkdirDurable(path.join(tmp, FILES), 0o700)
  const found: { src: BuildFileSource; data: Buffer; mode: number }[] = []
  for (const f of o.files) {
    const from = f.from ?? f.path
    const data = await readIf(from)
    if (!data) continue
    const mode = (await stat(f.path).catch(() => stat(from))).mode & 0o777
    found.push({ src: f, data, mode })
  }
  const names = keptNames(found.map((f) => f.src.path))
  const entries: BuildFileEntry[] = []
  for (const [i, f] of found.entries()) {
    const kept = names[i] as string
    // a compose file or .env may hold passwords: the copy is root's alone
    await writeFileDurable(path.join(tmp, FILES, kept), f.data, { mode: 0o600 })
    entries.push({ path: f.src.path, kept, role: f.src.role, sha256: sha(f.data), mode: f.mode })
  }
  const rec: BuildFiles = {
    schema: BUILD_FILES_SCHEMA,
    service: o.service,
    imageId: o.imageId,
    savedAt: o.now.toISOString(),
    origin: o.origin,
    compose: o.compose,
    entries,
  }
  // the .env of an image made with none: compose reads it instead of a .env added since
  // (compose v1 takes no /dev/null for --env-file)
  await writeFileDurable(path.join(tmp, NO_ENV), '', { mode: 0o600 })
  await writeFileDurable(path.join(tmp, 'files.json'), `${JSON.stringify(rec, null, 2)}\n`)
  await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
    await rm(tmp, { recursive: true, force: true })
    // another run saved the same image's files first: theirs stand
    if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err
  })
  return (await readBuildFiles(o.backupDir, o.service, o.imageId)) ?? rec
}

export async function readBuildFiles(
  backupDir: string,
  service: string,
  imageId: string,
): Promise<BuildFiles | null> {
  const dir = buildFilesDir(backupDir, service, imageId)
  try {
    const v = JSON.parse(await readFile(path.join(dir, 'files.json'), 'utf8')) as BuildFiles
    if (v.schema !== BUILD_FILES_SCHEMA || v.imageId !== imageId || !Array.isArray(v.entries)) {
      return null
    }
    return v
  } catch {
    return null
  }
}

/** Every saved set of the service, newest first. */
export async function listBuildFiles(backupDir: string, service: string): Promise<BuildFiles[]> {
  const root = buildFilesRoot(backupDir, service)
  const names = await readdir(root).catch(() => [] as string[])
  const out: BuildFiles[] = []
  for (const n of names.filter((x) => /^[0-9a-f]{64}$/.test(x))) {
    const r = await readBuildFiles(backupDir, service, `sha256:${n}`)
    if (r) out.push(r)
  }
  return out.sort((a, b) => b.savedAt.localeCompare(a.savedAt))
}

/** Where the record keeps its copy of an entry. */
export const keptPath = (backupDir: string, rec: BuildFiles, e: BuildFileEntry) =>
  path.join(buildFilesDir(backupDir, rec.service, rec.imageId), FILES, e.kept)

/** an empty file in every record: the --env-file of an image made with no .env */
const NO_ENV = 'no.env'

/** The compose files of a record in order, as paths of the copies; null when it has none. */
export function keptCompose(
  backupDir: string,
  rec: BuildFiles,
): { files: string[]; envFile: string } | null {
  const files = rec.entries.filter((e) => e.role === 'compose')
  if (!rec.compose || !files.length) return null
  const env = rec.entries.find((e) => e.role === 'env')
  return {
    files: files.map((e) => keptPath(backupDir, rec, e)),
    envFile: env
      ? keptPath(backupDir, rec, env)
      : path.join(buildFilesDir(backupDir, rec.service, rec.imageId), NO_ENV),
  }
}

export interface FileDiff {
  path: string
  role: BuildFileRole
  /** same: identical; changed: differs; missing: gone from disk */
  state: 'same' | 'changed' | 'missing'
  /** unified diff, saved copy (---) against disk (+++); '' when the same */
  patch: string
}

/** The record's files against the disk (text diff; a binary file is named only). */
export async function diffBuildFiles(backupDir: string, rec: BuildFiles): Promise<FileDiff[]> {
  const out: FileDiff[] = []
  for (const e of rec.entries) {
    const saved = await readFile(keptPath(backupDir, rec, e))
    const disk = await readIf(e.path)
    if (disk && sha(disk) === e.sha256) {
      out.push({ path: e.path, role: e.role, state: 'same', patch: '' })
      continue
    }
    const text = (b: Buffer | null) => (b === null ? '' : b.includes(0) ? null : b.toString('utf8'))
    const a = text(saved)
    const b = text(disk)
    const patch =
      a === null || b === null
        ? `Binary files differ: ${e.path}\n`
        : createTwoFilesPatch(
            `${e.path} (saved with ${rec.imageId.slice(7, 19)})`,
            disk ? `${e.path} (on disk)` : `${e.path} (missing on disk)`,
            a,
            b ?? '',
            undefined,
            undefined,
            { context: 3 },
          )
    out.push({ path: e.path, role: e.role, state: disk ? 'changed' : 'missing', patch })
  }
  return out
}

/**
 * Writes the record's files back where they were. Every file is looked at first (a symbolic link
 * or a missing directory where one goes stops it before anything is written); the files on disk
 * that differ are copied into `<build-files>/<service>/replaced-<stamp>/files/` (by their kept
 * names, listed in its files.json, `onAside` told before the first write); a file the same as
 * saved is left alone. Each write is atomic (temp + rename) and keeps the disk file's mode.
 */
export async function restoreBuildFiles(o: {
  backupDir: string
  rec: BuildFiles
  stamp: string
  onAside?: (dir: string) => Promise<void>
}): Promise<{ restored: string[]; asideDir: string | null }> {
  const diffs = await diffBuildFiles(o.backupDir, o.rec)
  const todo = o.rec.entries.filter((e) => diffs.find((d) => d.path === e.path)?.state !== 'same')
  if (!todo.length) return { restored: [], asideDir: null }
  for (const e of todo) {
    const st = await lstat(e.path).catch(() => null)
    if (st?.isSymbolicLink()) {
      throw new Error(`${e.path} is a symbolic link now: not written through (restore it by hand)`)
    }
    if (st && !st.isFile()) throw new Error(`${e.path} is not a regular file: nothing written`)
    const dir = await stat(path.dirname(e.path)).catch(() => null)
    if (!dir?.isDirectory()) {
      throw new Error(`${path.dirname(e.path)} is not a directory now: nothing written`)
    }
  }
  const aside = path.join(buildFilesRoot(o.backupDir, o.rec.service), `replaced-${o.stamp}`)
  await o.onAside?.(aside)
  await mkdirDurable(path.join(aside, FILES), 0o700)
  const indexFile = path.join(aside, 'files.json')
  const index: { path: string; kept: string; mode: number | null }[] = await readFile(
    indexFile,
    'utf8',
  ).then(
    (t) => JSON.parse(t) as { path: string; kept: string; mode: number | null }[],
    () => [],
  )
  for (const e of todo) {
    if (index.some((x) => x.path === e.path)) continue // a re-run: its first copy stands
    const disk = await readIf(e.path)
    let mode: number | null = null // null: there was no file (the undo removes what it made)
    if (disk) {
      mode = (await stat(e.path)).mode & 0o777
      await writeFileDurable(path.join(aside, FILES, e.kept), disk, { mode: 0o600 })
    }
    index.push({ path: e.path, kept: e.kept, mode })
    await writeFileDurable(indexFile, `${JSON.stringify(index, null, 2)}\n`)
  }
  const restored: string[] = []
  for (const e of todo) {
    const st = await lstat(e.path).catch(() => null)
    const mode = st ? st.mode & 0o777 : e.mode
    await writeFileDurable(e.path, await readFile(keptPath(o.backupDir, o.rec, e)), { mode })
    restored.push(e.path)
  }
  return { restored, asideDir: aside }
}

/** The undo of restoreBuildFiles: the files it replaced back in place, the ones it made removed. */
export async function unrestoreBuildFiles(aside: string): Promise<void> {
  const index = JSON.parse(await readFile(path.join(aside, 'files.json'), 'utf8')) as {
    path: string
    kept: string
    mode: number | null
  }[]
  for (const e of index) {
    if (e.mode === null) await rm(e.path, { force: true })
    else {
      await writeFileDurable(e.path, await readFile(path.join(aside, FILES, e.kept)), {
        mode: e.mode,
      })
    }
  }
}
