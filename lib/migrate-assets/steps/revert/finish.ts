import path from 'node:path'
import type { Step } from '../../../runbook/index.js'
import type { RevertContext } from '../../revert-context.js'

/** original.json with or without revertedAt (finalize and prune leave a reverted migration). */
async function markOriginal(ctx: RevertContext, at: string | null): Promise<void> {
  const file = path.join(ctx.paths.migration, 'original.json')
  const j = await ctx.fs.readJson(file)
  if (!j) return
  if (at) j.revertedAt = at
  else delete j.revertedAt
  await ctx.fs.writeDurable(file, JSON.stringify(j, null, 2) + '\n')
}

/**
 * The symlink kept aside goes, and the migration is recorded as reverted: reverted.json in its
 * work dir, revertedAt in its original.json (--finalize and prune no longer treat it as
 * migrated; its backup archive stays).
 */
export const revertFinishStep: Step<RevertContext> = {
  id: 'finish',
  title: 'Drop the symlink kept aside; record the migration as reverted',
  preview: (ctx) => [
    `remove the symlink ${ctx.paths.linkAside}`,
    `write ${ctx.paths.record}; mark ${path.join(ctx.paths.migration, 'original.json')} reverted`,
  ],
  async run(ctx) {
    const side = await ctx.fs.kindOf(ctx.paths.linkAside)
    if (side.kind === 'symlink' && side.target === ctx.paths.dest) {
      await ctx.fs.unlink(ctx.paths.linkAside)
    } else if (side.kind !== 'missing') {
      throw new Error(`${ctx.paths.linkAside} is not the symlink the revert moved aside`)
    }
    const at = ctx.now().toISOString()
    await ctx.fs.writeDurable(
      ctx.paths.record,
      JSON.stringify(
        {
          revertedAt: at,
          source: ctx.paths.source,
          dest: ctx.paths.dest,
          from: ctx.from,
          manifest: ctx.paths.expected,
        },
        null,
        2,
      ) + '\n',
    )
    await markOriginal(ctx, at)
  },
  async verify(ctx) {
    return (
      (await ctx.fs.kindOf(ctx.paths.linkAside)).kind === 'missing' &&
      (await ctx.fs.readJson(ctx.paths.record)) !== null
    )
  },
  async undo(ctx) {
    await ctx.fs.unlink(ctx.paths.record)
    await markOriginal(ctx, null)
    // the swap's undo puts this link back at the source
    if ((await ctx.fs.kindOf(ctx.paths.linkAside)).kind === 'missing') {
      await ctx.fs.symlink(ctx.paths.dest, ctx.paths.linkAside)
    }
  },
}
