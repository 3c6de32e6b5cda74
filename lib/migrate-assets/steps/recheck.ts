import { showName } from '../../host/names.js'
import type { Step } from '../../runbook/index.js'
import type { MigrateContext } from '../context.js'
import { compareEntries } from '../../assets/manifest.js'

/**
 * The containers ran through the backup and the copy: once they are stopped, the source must
 * still be what was copied. A file written meanwhile would exist only in the renamed-aside
 * original after the swap, so any difference fails the run (and undoes it) instead.
 */
export const recheckStep: Step<MigrateContext> = {
  id: 'recheck',
  title: 'Check nothing changed in the source meanwhile',
  preview: (ctx) => [
    `walk ${ctx.paths.source} again: every entry as in the manifest (size, mtime, inode, ctime)`,
  ],
  async run(ctx) {
    const manifest = await ctx.manifest.get()
    // run again on a --resume after the swap: the original is aside by now
    const swapped = (await ctx.fs.kindOf(ctx.paths.source)).kind === 'symlink'
    // the source walked again from disk, right before the swap: the safety check itself
    const now = await ctx.fs.walkTree(swapped ? ctx.paths.aside : ctx.paths.source)
    const bad = compareEntries(manifest.entries, now.entries, {
      modes: false,
      mtimes: true,
      owners: false,
      inodes: true,
      ctimes: true,
    })
    if (bad.length || now.problems.length) {
      const shown = [
        ...bad.map((m) => `${showName(m.path)} (${m.what})`),
        ...now.problems.map((p) => `${p.path} (${p.reason})`),
      ]
      throw new Error(
        `${shown.length} entr${shown.length === 1 ? 'y' : 'ies'} of ${ctx.paths.source} changed while it was being copied: ${shown.slice(0, 5).join(', ')}${shown.length > 5 ? ', …' : ''} — something other than the stopped containers writes there; stop it and run again`,
      )
    }
  },
}
