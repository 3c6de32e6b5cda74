/** backup.json: what the backup step made (the archive, its compression and size). */
import type { Compression } from './backup.js'
import type { AssetFs } from './ports.js'

export interface BackupInfo {
  archive: string
  compression: Compression
  archiveBytes: number
}

export async function readBackupInfo(
  fs: Pick<AssetFs, 'readJson'>,
  file: string,
): Promise<BackupInfo | null> {
  return (await fs.readJson(file)) as BackupInfo | null
}
