import type { Step } from '../../../runbook/index.js'
import type { RevertContext } from '../../revert-context.js'

/**
 * Two renames on the source's own filesystem: the symlink moved aside (kept for the undo), the
 * staging directory put at the source. At every instant the path is the link to the mount,
 * absent (for microseconds) or the directory brought back.
 */
export const revertSwapStep: Step<RevertContext> = {
  id: 'swap',
  title: 'Swap the symlink for the directory brought back',
  preview: (ctx) => [
    `rename ${ctx.paths.source} (the symlink) → ${ctx.paths.linkAside}`,
    `rename ${ctx.paths.staging} → ${ctx.paths.source}`,
  ],
  async run(ctx, journal) {
    const { source, staging, linkAside, dest } = ctx.paths
    const st = await ctx.fs.kindOf(staging)
    if (st.kind === 'dir')
      await journal.note({ staging: { dev: String(st.dev), ino: String(st.ino) } })
    const src = await ctx.fs.kindOf(source)
    const side = await ctx.fs.kindOf(linkAside)
    if (src.kind === 'symlink' && src.target === dest && side.kind === 'missing') {
      if (st.kind !== 'dir') throw new Error(`${staging} is not there: nothing to swap in`)
      await ctx.fs.rename(source, linkAside)
    } else if (!(src.kind === 'missing' && side.kind === 'symlink')) {
      if (src.kind === 'dir' && st.kind === 'missing' && side.kind === 'symlink') return // done
      throw new Error(
        `${source} is neither the link to ${dest} nor the directory this revert put there`,
      )
    }
    await ctx.fs.rename(staging, source)
  },
  async verify(ctx) {
    const src = await ctx.fs.kindOf(ctx.paths.source)
    const side = await ctx.fs.kindOf(ctx.paths.linkAside)
    const st = await ctx.fs.kindOf(ctx.paths.staging)
    return src.kind === 'dir' && side.kind === 'symlink' && st.kind === 'missing'
  },
  async undo(ctx, journal) {
    const { source, staging, linkAside, dest } = ctx.paths
    const src = await ctx.fs.kindOf(source)
    const side = await ctx.fs.kindOf(linkAside)
    const st = await ctx.fs.kindOf(staging)
    if (src.kind === 'symlink' && src.target === dest) {
      return // never swapped (or undone already)
    }
    if (side.kind !== 'symlink' || side.target !== dest) {
      throw new Error(`the symlink kept at ${linkAside} is not there: not touching ${source}`)
    }
    if (src.kind === 'dir') {
      const was = journal.data().staging as { dev?: string; ino?: string } | undefined
      if (was && (String(src.dev) !== was.dev || String(src.ino) !== was.ino)) {
        throw new Error(`${source} is another directory than the one the revert put there`)
      }
      if (st.kind !== 'missing') throw new Error(`${staging} exists: not moving ${source} over it`)
      await ctx.fs.rename(source, staging)
    } else if (src.kind !== 'missing') {
      throw new Error(`${source} is not the directory the revert put there: not touching it`)
    }
    await ctx.fs.rename(linkAside, source)
  },
}
