import type { Step } from '../../runbook/index.js'
import type { MigrateContext } from '../context.js'
import { readBackupInfo } from '../../assets/backup-info.js'

/** A backup is relied on only once it has been read back and matched the manifest. */
export const verifyBackupStep: Step<MigrateContext> = {
  id: 'verify-backup',
  title: 'Read the backup back and check it against the manifest',
  preview: (ctx) => [`read ${ctx.paths.workDir}/archive.tar… and compare every file's sha256`],
  async run(ctx) {
    const info = await readBackupInfo(ctx.fs, ctx.paths.backupInfo)
    if (!info) throw new Error(`${ctx.paths.backupInfo} is missing: the backup step did not finish`)
    const manifest = await ctx.manifest.get()
    const bar = ctx.progress('check backup', manifest.bytes)
    try {
      await ctx.backup.verify({
        archive: info.archive,
        compression: info.compression,
        manifest,
        onProgress: bar.tick,
      })
    } finally {
      bar.done()
    }
    ctx.out.info(`backup checked: ${manifest.files} files match the manifest`)
  },
}
