/**
 * Build files kept with each image (records.ts). rebuild: after the health gate, the inputs the
 * new image was built from (the run's copies, taken before the build) are saved under its id.
 * rollback: the files saved with the image it went to, against the disk — shown, and with
 * --restore-files written back (the disk's files saved aside first).
 */
import path from 'node:path'
import type { Step } from '../../runbook/types.js'
import type { RebuildContext } from '../context.js'
import { buildFilesDir, keptPath } from '../records.js'

export const keepFilesStep: Step<RebuildContext> = {
  id: 'keep-files',
  title: 'Keep the build files with the new image',
  preview: (c) => [
    `save ${c.filesToKeep.map((f) => path.basename(f.path)).join(', ')} (as found before the build) under ${path.dirname(buildFilesDir(c.backupDir, c.service, 'sha256:x'))}/<new image id>/`,
  ],
  async run(c, j) {
    const to = c.toImageId
    if (!to) throw new Error('no new image')
    const had = await c.ports.fs.readBuildFiles(c.backupDir, c.service, to)
    if (!had) await j.note({ saved: true })
    const rec = await c.ports.fs.saveRunFiles(c, to, c.operation === 'update' ? 'pulled' : 'built')
    c.out.info(
      `build files of ${to.slice(7, 19)} kept: ${rec.entries.map((e) => path.basename(e.path)).join(', ')}`,
    )
  },
  async verify(c) {
    return Boolean(
      c.toImageId && (await c.ports.fs.readBuildFiles(c.backupDir, c.service, c.toImageId)),
    )
  },
  async undo(c, j) {
    if (j.data().saved === true && c.toImageId) {
      await c.ports.fs.removeTree(buildFilesDir(c.backupDir, c.service, c.toImageId))
    }
  },
}

/** Which saved files' diffs are printed: a compose file or .env may hold passwords. */
const SHOWN_ROLES = new Set(['dockerfile', 'dockerignore'])

export const restoreFilesStep: Step<RebuildContext> = {
  id: 'restore-files',
  title: 'Compare (and with --restore-files write back) the build files of the image',
  preview: (c) => [
    c.restoreFiles
      ? `write the build files saved with ${c.toImageId?.slice(7, 19) ?? '?'} back to disk; the files there now are saved aside first`
      : `show how the build files saved with ${c.toImageId?.slice(7, 19) ?? '?'} differ from those on disk (--restore-files writes them back)`,
  ],
  async run(c, j) {
    const to = c.toImageId
    if (!to) throw new Error('no image')
    const rec = await c.ports.fs.readBuildFiles(c.backupDir, c.service, to)
    if (!rec) {
      c.facts.files = { imageId: to, origin: null, diff: [], restored: [], replacedSavedIn: null }
      c.out.info(`no build files were saved with ${to.slice(7, 19)}: nothing to compare`)
      return
    }
    const diffs = await c.ports.fs.diffBuildFiles(c.backupDir, rec)
    const changed = diffs.filter((d) => d.state !== 'same')
    for (const d of changed) {
      if (SHOWN_ROLES.has(d.role)) c.out.info(d.patch.trimEnd())
      else {
        const kept = rec.entries.find((e) => e.path === d.path)
        c.out.info(
          `${d.path} ${d.state === 'missing' ? 'is missing on disk' : 'differs'} (not shown: it may hold passwords; diff -u ${kept ? keptPath(c.backupDir, rec, kept) : '?'} ${d.path})`,
        )
      }
    }
    c.out.info(
      changed.length
        ? `the build files saved with ${to.slice(7, 19)} (${rec.origin}) differ from the disk: ${changed.map((d) => d.path).join(', ')}`
        : `the build files saved with ${to.slice(7, 19)} are those on disk`,
    )
    let restored: string[] = []
    let aside: string | null = null
    if (c.restoreFiles && changed.length) {
      // the rollback itself passed its gate: a restore that cannot be done is said, not undone
      try {
        const r = await c.ports.fs.restoreBuildFiles({
          backupDir: c.backupDir,
          rec,
          stamp: c.stamp,
          onAside: (dir) => j.note({ aside: dir }),
        })
        restored = r.restored
        aside = r.asideDir
        c.out.info(`wrote back ${restored.join(', ')}; the files they replaced are in ${aside}`)
      } catch (err) {
        c.facts.restoreFailed = (err as Error).message
        c.out.warn(`the build files were not written back: ${(err as Error).message}`)
      }
    }
    c.facts.files = {
      imageId: to,
      origin: rec.origin,
      diff: diffs.map((d) => ({ path: d.path, role: d.role, state: d.state })),
      restored,
      replacedSavedIn: aside,
    }
  },
  async undo(c, j) {
    const aside = j.data().aside
    if (typeof aside === 'string') await c.ports.fs.unrestoreBuildFiles(aside)
  },
}
