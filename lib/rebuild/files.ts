/**
 * The build files of a run, between the disk, the run's copy (workDir) and the saved records
 * (records.ts): which files a compose call of the run uses, and what is saved when.
 */
import { stat } from 'node:fs/promises'
import path from 'node:path'
import type { ComposeTarget } from '../docker/compose.js'
import type { RebuildContext } from './context.js'
import {
  diffBuildFiles,
  keptCompose,
  keptNames,
  readBackupRecords,
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
  // a commit backup (shipshape-backup-) ran with the files of the image it was made from
  let rec = await readBuildFiles(c.backupDir, c.service, imageId)
  if (!rec) {
    const source = (await readBackupRecords(c.stateDir, c.service)).find(
      (r) => r.id === imageId && r.kind === 'commit',
    )?.source
    if (source) rec = await readBuildFiles(c.backupDir, c.service, source)
  }
  const kept = rec ? keptCompose(c.backupDir, rec) : null
  const missing = kept
    ? (
        await Promise.all(
          [...kept.files, kept.envFile].map((f) =>
            stat(f).then(
              (s) => !s.isFile(),
              () => true,
            ),
          ),
        )
      ).some(Boolean)
    : true
  if (!rec || !kept || missing) {
    c.out.warn(
      `${c.service}: ${rec ? `the build files saved with ${imageId.slice(7, 19)} are incomplete` : `no build files were saved with ${imageId.slice(7, 19)}`}: compose runs it with the files on disk`,
    )
    return live
  }
  // only for the message: a file that cannot be read is not a reason to stay down
  const differ = await diffBuildFiles(c.backupDir, rec).then(
    (ds) =>
      ds
        .filter((d) => d.state !== 'same' && (d.role === 'compose' || d.role === 'env'))
        .map((d) => d.path),
    () => ['(could not compare)'],
  )
  c.facts.filesFrom = { imageId, origin: rec.origin, differ }
  const [file, ...extraFiles] = kept.files
  return {
    ...live,
    file: file as string,
    extraFiles,
    project: rec.compose?.project ?? live.project,
    cwd: rec.compose?.cwd ?? live.cwd,
    envFile: kept.envFile,
  }
}
