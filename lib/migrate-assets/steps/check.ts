import path from 'node:path'
import type { Step } from '../../runbook/index.js'
import { describeFailure, describeHold } from '../../health/check.js'
import { isUnder } from '../../shared/paths.js'
import { isUtf8Name } from '../../host/names.js'
import type { MigrateContext } from '../context.js'

const NOT_FOUND = /executable file not found|no such file or directory.*exec|not found/i

/**
 * Each restarted container reads a file of the asset through its own bind mount, as its own
 * user (a FUSE mount without allow_other fails here), then the configured health check runs.
 */
export const checkStep: Step<MigrateContext> = {
  id: 'check',
  title: 'Check the containers see the files and are healthy',
  preview: (ctx) => [
    ...ctx.restart.map((c) => `read a file of the asset inside ${c.name}, as its user`),
    ctx.health ? 'run the health check' : 'no health check configured',
  ],
  async run(ctx) {
    const manifest = await ctx.manifest.get()
    const seenBy: string[] = []
    for (const c of ctx.restart) {
      for (const b of ctx.bindings.filter(
        (x) => x.id === c.id && isUnder(x.bindSource, ctx.paths.source),
      )) {
        const rel = path.relative(ctx.paths.source, b.bindSource)
        // a name the exec API carries as it is (JSON strings are UTF-8)
        const file = manifest.entries.find(
          (e) => e.kind === 'file' && isUtf8Name(e.path) && (rel === '' || isUnder(e.path, rel)),
        )
        const inside = file
          ? path.posix.join(
              b.destination,
              rel === '' ? file.path : path.posix.relative(rel, file.path),
            )
          : b.destination
        const argv = file ? ['head', '-c', '1', inside] : ['ls', '-A', inside]
        const r = await ctx.engine.exec(c.id, argv, { timeoutMs: 30_000, maxOutputBytes: 64 })
        if (
          r.exitCode === 126 ||
          r.exitCode === 127 ||
          (r.exitCode !== 0 && NOT_FOUND.test(r.stderr) && !r.stderr.includes(inside))
        ) {
          ctx.out.warn(`cannot check ${c.name} sees the files: the image has no ${argv[0]}`)
          continue
        }
        if (r.exitCode !== 0) {
          throw new Error(
            `container ${c.name} cannot read ${inside} as its user${b.user ? ` (${b.user})` : ''}: ${(r.stderr || r.stdout).trim().split('\n')[0] ?? `exit ${r.exitCode}`}`,
          )
        }
        seenBy.push(c.name)
      }
    }
    ctx.facts.seenBy = seenBy
    if (ctx.health) {
      const h = await ctx.waitHealthy(ctx.health, {
        engine: ctx.engine,
        containers: ctx.restart.map((c) => c.id),
      })
      if (!h.ok)
        throw new Error(`health check failed after ${h.attempts} attempt(s): ${describeFailure(h)}`)
      ctx.facts.health = `healthy after ${h.attempts} attempt(s)${describeHold(h)}`
      ctx.out.info(`health check passed (${h.attempts} attempt(s)${describeHold(h)})`)
    }
    // where the original is and until when: for the operator and a later prune (durable: a
    // crash right after this step must not leave it empty, or the original is never finalized)
    await ctx.fs.writeDurable(
      path.join(ctx.paths.workDir, 'original.json'),
      JSON.stringify(
        {
          original: ctx.paths.aside,
          source: ctx.paths.source,
          dest: ctx.paths.dest,
          keepUntil: new Date(ctx.now().getTime() + ctx.asset.keepOriginal).toISOString(),
        },
        null,
        2,
      ) + '\n',
    )
  },
}
