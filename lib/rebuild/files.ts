/**
 * The build files of a run, between the disk, the run's copy (workDir) and the saved records
 * (records.ts): which files a compose call of the run uses, and what is saved when.
 */
import path from 'node:path'
import type { ComposeTarget } from '../docker/compose.js'
import type { RebuildContext } from './context.js'
import {
  diffBuildFiles,
  keptCompose,
  keptNames,
  readBuildFiles,
  saveBuildFiles,
  type BuildFiles,
  type BuildFileSource,
} from './records.js'

/** The run's copies of its build inputs, taken before the build: `<workDir>/<kept name>`. */
export function runCopies(c: RebuildContext): BuildFileSource[] {
  const names = keptNames(c.filesToKeep.map((f) => f.path))
  return c.filesToKeep.map((f, i) => ({
    ...f,
    from: path.join(c.paths.workDir, names[i] as string),
  }))
}

/** Saves the run's copies as the build files of `imageId` (kept as they are if saved before). */
export async function saveRunFiles(
  c: RebuildContext,
  imageId: string,
  origin: BuildFiles['origin'],
): Promise<BuildFiles> {
  return saveBuildFiles({
    backupDir: c.backupDir,
    service: c.service,
    imageId,
    origin,
    compose: c.compose ? { project: c.compose.project, cwd: c.compose.cwd } : null,
    files: runCopies(c),
    now: c.now(),
  })
}

/**
 * How compose is called to run `imageId`: with the compose files and .env saved with it (an image
 * made with no .env gets an empty one, so a .env added since is not read), in the project's own
 * directory and name; with the files on disk when none were saved. Notes in `c.facts.filesFrom`
 * which files on disk differ from those it runs with.
 */
export async function composeFor(c: RebuildContext, imageId: string): Promise<ComposeTarget> {
  const live = c.compose
  if (!live) throw new Error(`${c.service}: the compose project is unknown`)
  const rec = await readBuildFiles(c.backupDir, c.service, imageId)
  const kept = rec ? keptCompose(c.backupDir, rec) : null
  if (!rec || !kept) return live
  const [file, ...extraFiles] = kept.files
  const differ = (await diffBuildFiles(c.backupDir, rec))
    .filter((d) => d.state !== 'same' && (d.role === 'compose' || d.role === 'env'))
    .map((d) => d.path)
  c.facts.filesFrom = { imageId, origin: rec.origin, differ }
  return {
    ...live,
    file: file as string,
    extraFiles,
    project: rec.compose?.project ?? live.project,
    cwd: rec.compose?.cwd ?? live.cwd,
    envFile: kept.envFile,
  }
}
