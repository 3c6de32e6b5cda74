import type { Step } from '../../runbook/index.js'
import type { MigrateContext } from '../context.js'

/**
 * rename(2) on the source's own filesystem, then a symlink in its place: at every instant the
 * path is either the original directory, absent (for microseconds), or the link to dest.
 */
export const swapStep: Step<MigrateContext> = {
  id: 'swap',
  title: 'Swap the source for a symlink to the copy',
  preview: (ctx) => [
    `rename ${ctx.paths.source} → ${ctx.paths.aside}`,
    `symlink ${ctx.paths.source} → ${ctx.paths.dest}`,
  ],
  async run(ctx, journal) {
    const { source, aside, dest } = ctx.paths
    await journal.note({ aside })
    const src = await ctx.fs.kindOf(source)
    const side = await ctx.fs.kindOf(aside)
    if (src.kind === 'dir') {
      if (side.kind !== 'missing') throw new Error(`${aside} already exists: not overwriting it`)
      await ctx.fs.rename(source, aside)
    } else if (src.kind === 'symlink' && src.target === dest && side.kind === 'dir') {
      return // done before a crash
    } else if (!(src.kind === 'missing' && side.kind === 'dir')) {
      throw new Error(`${source} is neither the original directory nor the link shipshape makes`)
    }
    await ctx.fs.symlink(dest, source)
  },
  async verify(ctx) {
    const src = await ctx.fs.kindOf(ctx.paths.source)
    const side = await ctx.fs.kindOf(ctx.paths.aside)
    return src.kind === 'symlink' && src.target === ctx.paths.dest && side.kind === 'dir'
  },
  async undo(ctx) {
    const { source, aside, dest } = ctx.paths
    const src = await ctx.fs.kindOf(source)
    const side = await ctx.fs.kindOf(aside)
    if (side.kind !== 'dir') {
      if (src.kind === 'dir') return // the rename never happened
      throw new Error(`the original ${aside} is not there: not touching ${source}`)
    }
    if (src.kind === 'symlink') {
      if (src.target !== dest)
        throw new Error(`${source} links to ${src.target}, not ${dest}: not removing it`)
      await ctx.fs.unlink(source)
    } else if (src.kind !== 'missing') {
      throw new Error(
        `${source} exists and is not the link shipshape made: not moving ${aside} back`,
      )
    }
    await ctx.fs.rename(aside, source)
  },
}
