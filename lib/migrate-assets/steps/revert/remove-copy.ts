import { formatBytes } from '../../../config/index.js'
import { showName } from '../../../host/names.js'
import type { Step } from '../../../runbook/index.js'
import type { RevertContext } from '../../revert-context.js'

/**
 * With --remove-copy, last, once everything is healthy: the copy on the mount removed by
 * descriptors (lib/host/safefs.ts removeTree), its parent reached from the mount's root. It
 * cannot be undone, so a failure here does not undo the revert: what stayed is reported.
 * Without the flag the copy is left (and said so).
 */
export const removeCopyStep: Step<RevertContext> = {
  id: 'remove-copy',
  title: 'Remove the copy on the mount (only with --remove-copy)',
  preview: (ctx) =>
    ctx.removeCopy
      ? [`rm -r ${ctx.paths.dest} by descriptors (cannot be undone)`]
      : [`leave the copy at ${ctx.paths.dest} (no --remove-copy)`],
  async run(ctx) {
    if (!ctx.removeCopy) return
    const { dest, mount } = ctx.paths
    const expected = await ctx.expected.get().catch(() => null)
    try {
      const r = await ctx.fs.removeTree(dest, mount)
      if (r.kept.length) throw new Error(`kept ${showName(r.kept[0]!.path)}: ${r.kept[0]!.why}`)
      ctx.facts.copyRemoved = true
      ctx.out.info(
        `removed the copy on the mount: ${dest}${expected ? ` (${expected.files} files, ${formatBytes(expected.bytes)})` : ''}`,
      )
    } catch (err) {
      ctx.facts.copyRemoved = false
      ctx.facts.copyLeftovers = [(err as Error).message]
      ctx.out.warn(
        `the revert stands, but the copy on the mount was not fully removed: ${(err as Error).message}; remove what is left of ${dest} by hand`,
      )
    }
  },
  // no undo: a removal cannot be undone (and never fails the revert, see above)
}
