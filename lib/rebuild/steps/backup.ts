/**
 * Back up what runs: the image under `<repo>:shipshape-prev-<stamp>` (a labelled copy: same
 * layers, no extra bytes), the container under `<repo>:shipshape-backup-<stamp>` (`docker commit`:
 * its writable layer too, not its volumes), both labelled shipshape.backup.of/created/kind, and
 * copies of the Dockerfile and compose file in the run's work dir.
 *
 * Undo: the backups go only when nothing was lost by the run — every container it started from
 * still exists (a failed build, a plain container put back as it was). After a compose recreate the
 * old container is gone, and the commit is the only copy of its writable layer: kept.
 */
import { chmod, copyFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { mkdirDurable } from '../../host/durable.js'
import type { Step } from '../../runbook/types.js'
import { holdImages, releaseImages } from '../hold.js'
import {
  BACKUP_CREATED_LABEL,
  BACKUP_KIND_LABEL,
  BACKUP_LABEL,
  BACKUP_SOURCE_LABEL,
  COMMIT_PREFIX,
  PREV_PREFIX,
  type RebuildContext,
} from '../context.js'

const prevTag = (c: RebuildContext) => `${PREV_PREFIX}${c.stamp}`
const commitTag = (c: RebuildContext) => `${COMMIT_PREFIX}${c.stamp}`

/** A Dockerfile LABEL value: quoted, backslashes and quotes escaped. */
const quoted = (v: string) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`

async function ours(c: RebuildContext, ref: string): Promise<string | null> {
  const img = await c.engine.inspectImage(ref)
  return img && img.labels[BACKUP_LABEL] === c.service ? img.id : null
}

/** The kept copy of a file: <workDir>/<basename>, numbered when two share a name. */
export function keptName(files: string[], i: number): string {
  const base = path.basename(files[i] ?? 'file')
  const same = files.slice(0, i).filter((f) => path.basename(f) === base).length
  return same ? `${base}.${same + 1}` : base
}

export const backupStep: Step<RebuildContext> = {
  id: 'backup',
  title: 'Back up the image, the container and the build files',
  preview: (c) => [
    `tag ${c.fromImageId.slice(7, 19)} (what ${c.containers.map((x) => x.name).join(', ')} run${c.containers.length === 1 ? 's' : ''}) as ${c.repo}:${prevTag(c)}`,
    `docker commit ${c.containers[0]?.name ?? '?'} as ${c.repo}:${commitTag(c)}${c.config.commitPause ? ' (paused while committing)' : ''}; volumes are not in a commit`,
    ...(c.filesToKeep.length ? [`copy ${c.filesToKeep.join(', ')} to ${c.paths.workDir}/`] : []),
  ],
  async run(c, j) {
    await j.note({
      stamp: c.stamp,
      imageRef: c.imageRef,
      fromImageId: c.fromImageId,
      refWasId: c.refWasId,
      containers: c.containers,
      healthyBefore: c.healthyBefore,
    })
    await holdImages(c)
    // <backupDir>/rebuild/<service>/<stamp>: every level it creates 0700 (backupDir itself too)
    await mkdirDurable(c.paths.workDir, 0o700)
    for (const [i, f] of c.filesToKeep.entries()) {
      // a compose file may carry passwords in its environment: the copy is root's alone
      const kept = path.join(c.paths.workDir, keptName(c.filesToKeep, i))
      await copyFile(f, kept)
      await chmod(kept, 0o600)
    }
    const created = c.now().toISOString()
    const labels = (kind: 'image' | 'commit') => ({
      [BACKUP_LABEL]: c.service,
      [BACKUP_CREATED_LABEL]: created,
      [BACKUP_KIND_LABEL]: kind,
      [BACKUP_SOURCE_LABEL]: c.fromImageId,
    })
    const prevRef = `${c.repo}:${prevTag(c)}`
    const prev =
      (await ours(c, prevRef)) ??
      (await c.engine.labelImage(c.fromImageId, {
        repo: c.repo,
        tag: prevTag(c),
        labels: labels('image'),
      }))
    const commitRef = `${c.repo}:${commitTag(c)}`
    const first = c.containers[0]
    let commit: string | null = await ours(c, commitRef)
    if (!commit && first) {
      commit = await c.engine.commitContainer(first.id, {
        repo: c.repo,
        tag: commitTag(c),
        pause: c.config.commitPause,
        changes: Object.entries(labels('commit')).map(([k, v]) => `LABEL ${k}=${quoted(v)}`),
        comment: `shipshape rebuild ${c.service}: container ${first.name} before the rebuild`,
      })
    }
    await j.note({ prev, commit })
    c.facts.backups = [
      { tag: prevRef, id: prev, kind: 'image' },
      ...(commit ? [{ tag: commitRef, id: commit, kind: 'commit' as const }] : []),
    ]
  },
  async verify(c) {
    const prev = await ours(c, `${c.repo}:${prevTag(c)}`)
    const commit = c.containers.length ? await ours(c, `${c.repo}:${commitTag(c)}`) : 'none'
    if (prev && commit) {
      c.facts.backups = [
        { tag: `${c.repo}:${prevTag(c)}`, id: prev, kind: 'image' },
        ...(commit !== 'none'
          ? [{ tag: `${c.repo}:${commitTag(c)}`, id: commit, kind: 'commit' as const }]
          : []),
      ]
    }
    return Boolean(prev && commit)
  },
  async undo(c) {
    await releaseImages(c)
    const alive = await Promise.all(c.containers.map((x) => c.engine.inspectContainer(x.id)))
    if (alive.some((x) => x === null)) {
      c.facts.backupsKept = true
      c.out.warn(
        `backups kept: ${c.repo}:${prevTag(c)} and ${c.repo}:${commitTag(c)} (the commit holds the writable layer of a container that is gone)`,
      )
      return
    }
    for (const ref of [`${c.repo}:${commitTag(c)}`, `${c.repo}:${prevTag(c)}`]) {
      if (await ours(c, ref)) await c.engine.removeImage(ref)
    }
    c.facts.backups = []
    await rm(c.paths.workDir, { recursive: true, force: true })
  },
}
