import type { Step } from '../../../runbook/index.js'
import type { RevertContext } from '../../revert-context.js'
import { destChangedSince } from '../../revert-policy.js'

/**
 * The containers ran while the bytes came back: once they are stopped, the destination must
 * still be what was brought back. A file the app wrote meanwhile would be lost by the swap, so
 * any difference fails the run (and undoes it: the app runs on the mount again).
 */
export const revertRecheckStep: Step<RevertContext> = {
  id: 'recheck',
  title: 'Check the app wrote nothing to the destination meanwhile',
  preview: (ctx) => [
    `walk ${ctx.paths.dest} again: every file as in ${ctx.paths.expected} (size, mtime)`,
  ],
  async run(ctx) {
    const expected = await ctx.expected.get()
    // the destination walked again from disk, right before the swap: the safety check itself
    const walk = await ctx.fs.walkTree(ctx.paths.dest)
    const changes = [
      ...destChangedSince(expected.entries, walk.entries),
      ...walk.problems.map((p) => `${p.path}: ${p.reason}`),
    ]
    if (changes.length) {
      throw new Error(
        `${ctx.paths.dest} changed while the files were brought back (${changes.slice(0, 3).join('; ')}${changes.length > 3 ? '; …' : ''}): run the revert again, it brings back what is there then`,
      )
    }
  },
}
