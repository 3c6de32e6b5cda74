/** `shipshape rebuild SERVICE`: backup → build → recreate → health gate → keep-files → cleanup. */
import { REBUILD_OPERATION, type RebuildOptions, type RebuildOutcome } from './result.js'
import type { Command } from './prepare.js'
import { runService } from './run.js'
import { rebuildSteps } from './steps/index.js'

export async function runRebuild(
  c: Command,
  name: string,
  opts: RebuildOptions = {},
): Promise<RebuildOutcome> {
  return runService(c, name, REBUILD_OPERATION, rebuildSteps, 'rebuilt', opts, async (p) => {
    c.out.info(
      `${name}: rebuild ${p.ctx.imageRef} (${p.ctx.kind === 'compose' ? `compose ${p.ctx.compose?.cli.version} project ${p.ctx.compose?.project}` : 'plain container'}; runs ${p.ctx.fromImageId.slice(7, 19)}${opts.noCache ? '; --no-cache' : ''})`,
    )
    return null
  })
}
