import { showName } from '../../../host/names.js'
import type { Step } from '../../../runbook/index.js'
import { compareEntries } from '../../../assets/manifest.js'
import type { RevertContext } from '../../revert-context.js'

/**
 * Nothing is swapped in before every file brought back has been read again and matched the
 * manifest's sha256: the tree walked by descriptors (nothing missing, nothing extra, every kind
 * and size), then every file hashed.
 */
export const verifyStep: Step<RevertContext> = {
  id: 'verify',
  title: "Check every file brought back against the manifest's sha256",
  preview: (ctx) => [
    `walk ${ctx.paths.staging} and read every file: sha256 as in ${ctx.paths.expected}`,
  ],
  async run(ctx) {
    const expected = await ctx.expected.get()
    const walk = await ctx.fs.walkTree(ctx.paths.staging)
    const shape = compareEntries(expected.entries, walk.entries, {
      modes: false,
      mtimes: false,
      owners: false,
    })
    const files = expected.entries.filter((e) => e.kind === 'file')
    const bar = ctx.progress('verify', expected.bytes)
    let actual
    try {
      actual = shape.length
        ? []
        : await ctx.fs.readBackTree({
            dest: ctx.paths.staging,
            entries: files,
            onProgress: bar.tick,
          })
    } finally {
      bar.done()
    }
    const bad = [
      ...shape.map((m) => `${showName(m.path)} (${m.what})`),
      ...walk.problems.map((p) => `${p.path} (${p.reason})`),
      ...(shape.length
        ? []
        : compareEntries(files, actual, {
            modes: false,
            mtimes: false,
            owners: false,
            hash: 'sha256',
          }).map((m) => `${showName(m.path)} (${m.what})`)),
    ]
    if (bad.length) {
      throw new Error(
        `${bad.length} entr${bad.length === 1 ? 'y' : 'ies'} of ${ctx.paths.staging} differ from the manifest: ${bad.slice(0, 5).join(', ')}${bad.length > 5 ? ', …' : ''}`,
      )
    }
    ctx.facts.verified = files.length
    ctx.out.info(`verified: ${files.length} files brought back match their sha256`)
  },
}
