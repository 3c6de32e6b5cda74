import path from 'node:path'
import { formatBytes } from '../../config/index.js'
import type { Step } from '../../runbook/index.js'
import type { Compression } from '../../assets/backup.js'
import type { MigrateContext } from '../context.js'
import { manifestOf } from '../../assets/manifest.js'
import type { HashName } from '../../shared/manifest-types.js'
import { readBackupInfo, type BackupInfo } from '../../assets/backup-info.js'

const EXT: Record<Compression, string> = { none: '.tar', zstd: '.tar.zst', gzip: '.tar.gz' }

/** Reads the source once: the archive and the manifest's hashes come from the same bytes. */
export const backupStep: Step<MigrateContext> = {
  id: 'backup',
  title: 'Back up the source with a manifest of every file',
  preview: (ctx) => [
    `write ${ctx.paths.workDir}/archive.tar[.zst|.gz] (compression chosen by sampling the content)`,
    `write ${ctx.paths.manifest} (path, size, mode, mtime, sha256 of every file)`,
  ],
  async run(ctx, journal) {
    const entries = ctx.walked
    if (!entries)
      throw new Error(`the source ${ctx.paths.source} was not read (nothing to back up)`)
    // the stamp names every path of the run: a --resume must find the same ones
    await journal.note({
      stamp: ctx.stamp,
      source: ctx.asset.source,
      dest: ctx.asset.dest,
      mount: ctx.asset.mount,
    })
    // backupDir is root's alone (lib/host/private.ts): created 0700, refused when others can write
    await ctx.fs.makeWorkDir(ctx.paths.workDir)
    // the source as walked, never a link to another directory put there since (safefs.ts)
    const rootIdent = ctx.sourceIdent ?? undefined
    const sample = await ctx.backup.chooseCompression(ctx.paths.source, entries, rootIdent)
    const compression = sample.compression
    const archive = path.join(ctx.paths.workDir, `archive${EXT[compression]}`)
    await journal.note({ archive, compression, sampledRatio: Number(sample.ratio.toFixed(3)) })
    const hashes: HashName[] = ['sha256']
    if (ctx.remote?.hash && ctx.remote.hash !== 'sha256') hashes.push(ctx.remote.hash)
    const total = entries.reduce((a, e) => a + e.size, 0)
    const bar = ctx.progress('backup', total)
    let written
    try {
      written = await ctx.backup.write({
        root: ctx.paths.source,
        rootIdent,
        entries,
        archive,
        compression,
        hashes,
        onProgress: bar.tick,
      })
    } finally {
      bar.done()
    }
    const manifest = manifestOf(ctx.paths.source, written.entries, ctx.now())
    await ctx.fs.writeManifest(ctx.paths.manifest, manifest)
    ctx.manifest.set(manifest)
    const info: BackupInfo = { archive, compression, archiveBytes: written.archiveBytes }
    await ctx.fs.writeDurable(ctx.paths.backupInfo, JSON.stringify(info, null, 2) + '\n')
    ctx.facts.compression = compression
    ctx.facts.archiveBytes = written.archiveBytes
    ctx.out.info(
      `backup: ${archive} (${formatBytes(written.archiveBytes)}, ${compression === 'none' ? 'not compressed: the content does not compress' : compression})`,
    )
  },
  async verify(ctx) {
    const info = await readBackupInfo(ctx.fs, ctx.paths.backupInfo)
    if (!info) return false
    if ((await ctx.fs.sizeOf(info.archive)) !== info.archiveBytes) return false
    // on --resume: the manifest on disk is whole and valid (read once here, then carried)
    ctx.manifest.set(await ctx.fs.readManifest(ctx.paths.manifest))
    ctx.facts.compression = info.compression
    ctx.facts.archiveBytes = info.archiveBytes
    return true
  },
  // no undo: the backup is the safety net, kept whatever happens (prune removes old ones)
}
