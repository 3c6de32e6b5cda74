/**
 * Back up what runs: the image under `<repo>:shipshape-prev-<stamp>` (a tag on the very image, same
 * id: a rollback runs exactly what ran), the container under `<repo>:shipshape-backup-<stamp>`
 * (`docker commit`: its writable layer too, not its volumes; labelled shipshape.backup.*), a record
 * of each in `<stateDir>/backups/<service>/`, and a copy of the build inputs (compose files, .env,
 * Dockerfile, .dockerignore) in the run's work dir. When shipshape has no build files saved for
 * the image that runs, the files found now are saved as its own (records.ts `origin`).
 *
 * Undo: the backups go only when nothing was lost by the run — every container it started from
 * still exists (a failed build, a plain container put back as it was). After a compose recreate the
 * old container is gone, and the commit is the only copy of its writable layer: kept.
 */
import type { Step } from '../../runbook/types.js'
import { holdImages, releaseImages } from '../hold.js'
import { BACKUP_LABEL, backupLabels, COMMIT_PREFIX, PREV_PREFIX } from '../../shared/labels.js'
import type { RebuildContext } from '../context.js'
import { runCopies } from '../files.js'
import { buildFilesDir, type BackupRecord } from '../records.js'
import { firstNotes } from './build.js'

const prevTag = (c: RebuildContext) => `${PREV_PREFIX}${c.stamp}`
const commitTag = (c: RebuildContext) => `${COMMIT_PREFIX}${c.stamp}`

/** A Dockerfile LABEL value: quoted, backslashes and quotes escaped. */
const quoted = (v: string) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`

/** the commit backup of this run (a new image, labelled) */
async function ours(c: RebuildContext, ref: string): Promise<string | null> {
  const img = await c.engine.inspectImage(ref)
  return img && img.labels[BACKUP_LABEL] === c.service ? img.id : null
}

/** the prev tag of this run, while it names the image the service ran */
async function prevNamesFrom(c: RebuildContext): Promise<boolean> {
  return (await c.engine.inspectImage(`${c.repo}:${prevTag(c)}`))?.id === c.fromImageId
}

export const backupStep: Step<RebuildContext> = {
  id: 'backup',
  title: 'Back up the image, the container and the build files',
  preview: (c) => [
    `tag ${c.fromImageId.slice(7, 19)} (what ${c.containers.map((x) => x.name).join(', ')} run${c.containers.length === 1 ? 's' : ''}) as ${c.repo}:${prevTag(c)}: the very image, no copy`,
    `docker commit ${c.containers[0]?.name ?? '?'} as ${c.repo}:${commitTag(c)}${c.config.commitPause ? ' (paused while committing)' : ''}; volumes are not in a commit`,
    ...(c.filesToKeep.length
      ? [
          `copy ${c.filesToKeep.map((f) => f.path).join(', ')} (those that exist) to ${c.paths.workDir}/`,
        ]
      : []),
  ],
  async run(c, j) {
    await j.note({
      ...firstNotes(c),
      // the build inputs as found now: a --resume copies and saves these, whatever the disk says then
      filesToKeep: c.filesToKeep,
    })
    await holdImages(c)
    // <backupDir>/rebuild/<service>/<stamp>: every level it creates 0700 (backupDir itself too)
    await c.ports.fs.mkdir(c.paths.workDir, 0o700)
    for (const f of runCopies(c)) {
      // a compose file or .env may carry passwords: the copy is root's alone
      // read without following a link (host/durable.ts readIf); the copy is root's alone
      const data = await c.ports.fs.readIf(f.path)
      if (data) await c.ports.fs.writeFile(f.from as string, data, 0o600)
    }
    if (!(await c.ports.fs.readBuildFiles(c.backupDir, c.service, c.fromImageId))) {
      const rec = await c.ports.fs.saveRunFiles(
        c,
        c.fromImageId,
        c.configMatchesRunning === true
          ? 'matched-running'
          : c.configMatchesRunning === false
            ? 'edited-since-run'
            : 'found-before-build',
      )
      await j.note({ savedFromFiles: true })
      c.out.info(
        rec.origin === 'edited-since-run'
          ? `no build files were saved for ${c.fromImageId.slice(7, 19)}: the files found before this build are saved as its own, though compose's config hash says they were edited since it started (a way back runs them)`
          : rec.origin === 'matched-running'
            ? `no build files were saved for ${c.fromImageId.slice(7, 19)}: the files found before this build are saved as its own; compose's config hash says the compose files are what runs (the Dockerfile is not in that hash)`
            : `no build files were saved for ${c.fromImageId.slice(7, 19)}: the files found before this build are saved as its own (edits made since it was built are in them)`,
      )
    }
    const created = c.ports.clock.now().toISOString()
    const record = (kind: BackupRecord['kind'], tag: string, id: string): BackupRecord => ({
      schema: 'shipshape.backup-record/1',
      service: c.service,
      tag,
      id,
      kind,
      created,
      source: c.fromImageId,
      stamp: c.stamp,
    })
    const prevRef = `${c.repo}:${prevTag(c)}`
    if (!(await prevNamesFrom(c))) await c.engine.tagImage(c.fromImageId, c.repo, prevTag(c))
    await c.ports.fs.writeBackupRecord(c.stateDir, record('image', prevRef, c.fromImageId))
    const commitRef = `${c.repo}:${commitTag(c)}`
    const first = c.containers[0]
    let commit: string | null = await ours(c, commitRef)
    if (!commit && first) {
      const labels = backupLabels({ of: c.service, created, kind: 'commit', source: c.fromImageId })
      commit = await c.engine.commitContainer(first.id, {
        repo: c.repo,
        tag: commitTag(c),
        pause: c.config.commitPause,
        changes: Object.entries(labels).map(([k, v]) => `LABEL ${k}=${quoted(v)}`),
        comment: `shipshape rebuild ${c.service}: container ${first.name} before the rebuild`,
      })
    }
    if (commit) await c.ports.fs.writeBackupRecord(c.stateDir, record('commit', commitRef, commit))
    await j.note({ prev: c.fromImageId, commit })
    c.facts.backups = [
      { tag: prevRef, id: c.fromImageId, kind: 'image' },
      ...(commit ? [{ tag: commitRef, id: commit, kind: 'commit' as const }] : []),
    ]
  },
  async verify(c) {
    const prev = await prevNamesFrom(c)
    const commit = c.containers.length ? await ours(c, `${c.repo}:${commitTag(c)}`) : 'none'
    if (prev && commit) {
      c.facts.backups = [
        { tag: `${c.repo}:${prevTag(c)}`, id: c.fromImageId, kind: 'image' },
        ...(commit !== 'none'
          ? [{ tag: `${c.repo}:${commitTag(c)}`, id: commit, kind: 'commit' as const }]
          : []),
      ]
    }
    return Boolean(prev && commit)
  },
  async undo(c, j) {
    await releaseImages(c)
    const alive = await Promise.all(c.containers.map((x) => c.engine.inspectContainer(x.id)))
    if (alive.some((x) => x === null)) {
      c.facts.backupsKept = true
      c.out.warn(
        `backups kept: ${c.repo}:${prevTag(c)} and ${c.repo}:${commitTag(c)} (the commit holds the writable layer of a container that is gone)`,
      )
      return
    }
    if (await ours(c, `${c.repo}:${commitTag(c)}`)) {
      await c.engine.removeImage(`${c.repo}:${commitTag(c)}`)
    }
    // the prev tag only: the image is the one the service runs again
    if (await prevNamesFrom(c)) await c.engine.removeImage(`${c.repo}:${prevTag(c)}`)
    await c.ports.fs.removeBackupRecord(c.stateDir, c.service, c.stamp, 'commit')
    await c.ports.fs.removeBackupRecord(c.stateDir, c.service, c.stamp, 'image')
    c.facts.backups = []
    if (j.data().savedFromFiles === true) {
      await c.ports.fs.removeTree(buildFilesDir(c.backupDir, c.service, c.fromImageId))
    }
    await c.ports.fs.removeTree(c.paths.workDir)
  },
}
