import type { Step } from '../../runbook/index.js'
import type { MigrateContext } from '../context.js'

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
    const manifest = await ctx.manifest.get()
    const verifiedBy = await ctx.destination.verifyDestination({
      entries: manifest.entries,
      dest: ctx.paths.dest,
      mount: ctx.asset.mount,
      remote: ctx.remote,
      uploadTimeoutMs: ctx.uploadTimeoutMs,
      out: ctx.out,
      progress: (label, total) => ctx.progress(label, total),
      onUploadWait: (ms) => (ctx.facts.uploadWaitMs = ms),
    })
    ctx.facts.verifiedBy = verifiedBy
  },
}
