import path from 'node:path'
import { formatBytes } from '../../config/index.js'
import type { Step } from '../../runbook/index.js'
import type { MigrateContext } from '../context.js'

/** Resumable: the copy log in stateDir names every file already written and checked. */
export const copyStep: Step<MigrateContext> = {
  id: 'copy',
  title: 'Copy the files onto the mount',
  preview: (ctx) => [
    `create ${ctx.paths.dest} and copy every file, directory and mtime into it`,
    `log copied files in ${ctx.paths.doneLog} (a rerun skips them)`,
  ],
  async run(ctx, journal) {
    const manifest = await ctx.manifest.get()
    // an empty dest that was there before is emptied by the undo, never removed
    if (journal.data().destExisted === undefined) {
      const existed = (await ctx.fs.kindOf(ctx.paths.dest)).kind !== 'missing'
      await journal.note({ dest: ctx.paths.dest, destExisted: existed })
    }
    await ctx.fs.mkdir(path.dirname(ctx.paths.doneLog), { recursive: true, mode: 0o700 })
    const bar = ctx.progress('copy', manifest.bytes)
    let r
    try {
      r = await ctx.fs.copyTree({
        source: ctx.paths.source,
        sourceIdent: ctx.sourceIdent ?? undefined,
        dest: ctx.paths.dest,
        mount: ctx.asset.mount,
        entries: manifest.entries,
        doneLog: ctx.paths.doneLog,
        onProgress: bar.tick,
      })
    } finally {
      bar.done()
    }
    ctx.facts.copied = r.copied
    ctx.facts.skipped = r.skipped
    ctx.facts.modesKept = r.modesKept
    ctx.out.info(
      `copied ${r.copied} files (${formatBytes(r.bytesCopied)})${r.skipped ? `, ${r.skipped} already there from an earlier run` : ''}${r.modesKept ? '' : '; the mount does not keep file modes (rclone --file-perms/--dir-perms decide them)'}`,
    )
  },
  async undo(ctx, journal) {
    const manifest = await ctx.manifest.get().catch(() => null)
    if (!manifest) return // the backup never finished: the copy never started
    const r = await ctx.fs.removeCopy({
      dest: ctx.paths.dest,
      mount: ctx.asset.mount,
      entries: manifest.entries,
      keepDest: journal.data().destExisted === true,
    })
    if (r.leftovers.length) {
      ctx.out.warn(
        `left ${r.leftovers.length} file(s) in ${ctx.paths.dest} that shipshape did not write: ${r.leftovers.slice(0, 3).join(', ')}`,
      )
    }
  },
}
