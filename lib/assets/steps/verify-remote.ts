import path from 'node:path'
import type { Step } from '../../runbook/index.js'
import { remoteJoin, waitForRemote } from '../../host/rclone.js'
import type { MigrateContext } from '../context.js'
import { isUtf8Name, showName } from '../../host/names.js'
import { readBackTree } from '../copy.js'
import { compareEntries, readManifest } from '../manifest.js'

/**
 * The bytes must be on the remote, not only in the mount's write cache (rclone#4293): rclone
 * lists the remote path behind the mount until every file is there with the manifest's size and
 * hash. Without a hash both sides know, the files are also read back through the mount.
 */
export const verifyRemoteStep: Step<MigrateContext> = {
  id: 'verify-remote',
  title: 'Check every file reached the remote',
  preview: (ctx) =>
    ctx.remote
      ? [
          `list ${ctx.remote.display} with rclone until every file is uploaded with its size${ctx.remote.hash ? ` and ${ctx.remote.hash}` : ''} (up to ${Math.round(ctx.uploadTimeoutMs / 60000)} min)`,
          ...(ctx.remote.hash ? [] : [`read every file back through ${ctx.paths.dest} (sha256)`]),
        ]
      : [`read every file back through ${ctx.paths.dest} (sha256)`],
  async run(ctx) {
    const manifest = await readManifest(ctx.paths.manifest)
    const files = manifest.entries.filter((e) => e.kind === 'file')
    // rclone lists names as JSON (UTF-8): a name that is not UTF-8 comes back with U+FFFD in
    // it and cannot be matched; those files are read back through the mount instead
    const listed = files.filter((e) => isUtf8Name(e.path))
    const byteNames = files.filter((e) => !isUtf8Name(e.path))
    const remote = ctx.remote
    const t0 = Date.now()
    let hashChecked = false
    if (remote) {
      const rel = path.relative(ctx.asset.mount, ctx.paths.dest)
      const remotePath = remoteJoin(remote.spec, rel)
      let lastShown = -1
      let lastAt = 0
      const wait = {
        remotePath,
        display: `${remote.display} (${rel})`,
        expected: listed,
        intervalMs: 2000,
      }
      // sizes while the uploads go on (a listing with hashes makes many backends read every
      // byte: once is enough), then the hashes once everything is there
      await waitForRemote({
        ...wait,
        timeoutMs: ctx.uploadTimeoutMs,
        onPoll: (pending) => {
          // a line when the count moves, at most every 10 s (a timer's log stays readable)
          if (pending > 0 && pending !== lastShown && Date.now() - lastAt >= 10_000) {
            lastAt = Date.now()
            ctx.out.info(
              `waiting for the mount to upload ${pending} of ${listed.length} files to the remote…`,
            )
            lastShown = pending
          }
        },
      })
      const cmp = await waitForRemote({
        ...wait,
        hash: remote.hash ?? undefined,
        timeoutMs: Math.max(60_000, ctx.uploadTimeoutMs - (Date.now() - t0)),
      })
      ctx.facts.uploadWaitMs = Date.now() - t0
      // a backend may list no hash for some files (crypt, …): those are read back below
      hashChecked = Boolean(remote.hash) && cmp.noHash.length === 0
      ctx.facts.verifiedBy = hashChecked
        ? `rclone ${remote.hash} on the remote`
        : 'rclone sizes on the remote'
    }
    if (!hashChecked || byteNames.length) {
      // everything when rclone could not check hashes; else the files it cannot name
      const toRead = hashChecked ? byteNames : files
      const bar = ctx.progress(
        'read back',
        toRead.reduce((n, e) => n + e.size, 0),
      )
      let actual
      try {
        actual = await readBackTree({
          dest: ctx.paths.dest,
          mount: ctx.asset.mount,
          entries: toRead,
          onProgress: bar.tick,
        })
      } finally {
        bar.done()
      }
      const bad = compareEntries(
        toRead,
        actual.filter((e) => e.kind === 'file'),
        {
          modes: false,
          mtimes: false,
          owners: false,
          hash: 'sha256',
        },
      )
      if (bad.length) {
        throw new Error(
          `${bad.length} file(s) on ${ctx.paths.dest} differ from the manifest: ${bad
            .slice(0, 5)
            .map((m) => `${showName(m.path)} (${m.what})`)
            .join(', ')}`,
        )
      }
      ctx.facts.verifiedBy = `${ctx.facts.verifiedBy ? `${ctx.facts.verifiedBy} + ` : ''}sha256 read back through the mount${hashChecked ? ` (${byteNames.length} file(s) whose names are not UTF-8)` : ''}`
    }
    ctx.out.info(
      `verified: ${files.length} files on ${ctx.remote ? ctx.remote.display : ctx.paths.dest} (${ctx.facts.verifiedBy})`,
    )
  },
}
