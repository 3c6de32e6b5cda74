/**
 * Where every migrated asset's bytes are, for the report: the kept original (local disk), the
 * backup archive (backupDir, or moved onto the remote), the copy on the mount — and what the
 * local disk still gets back through `--finalize` and prune (lib/assets/archive.ts).
 */
import path from 'node:path'
import type { Config } from '../config/index.js'
import { formatBytes } from '../config/units.js'
import { archiveAction, findArchives } from '../assets/archive.js'
import { findKeptOriginals } from '../assets/finalize.js'
import { measureDir } from '../host/du.js'
import type { MigratedAsset } from './types.js'

export async function gatherMigrations(config: Config, now: Date): Promise<MigratedAsset[]> {
  const out: MigratedAsset[] = []
  for (const [name, asset] of Object.entries(config.assets).sort(([a], [b]) =>
    a.localeCompare(b),
  )) {
    const archives = await findArchives(config, name)
    for (const k of await findKeptOriginals(config.backupDir, name)) {
      const a = archives.find((x) => x.kept.workDir === k.workDir) ?? null
      const original =
        k.removedAt || k.revertedAt
          ? null
          : {
              path: k.original,
              bytes: (await measureDir(k.original).catch(() => null))?.sizeBytes ?? null,
              keepUntil: k.keepUntil,
            }
      const archive = a
        ? {
            where: a.local
              ? ('local' as const)
              : a.fate.remoteArchive
                ? ('remote' as const)
                : ('removed' as const),
            path: a.local ?? a.fate.remoteArchive?.path ?? null,
            bytes: a.bytes,
          }
        : null
      const reclaimable = (original?.bytes ?? 0) + (archive?.where === 'local' ? archive.bytes : 0)
      const act = a ? archiveAction(a, asset, name, now) : null
      const next = k.revertedAt
        ? `reverted ${k.revertedAt}: ${k.source} is a local directory again`
        : original
          ? `the original (${original.bytes === null ? '?' : formatBytes(original.bytes)}) is kept until ${k.keepUntil}; then \`shipshape migrate-assets ${name} --finalize\` or prune removes it${archive?.where === 'local' ? `, and the archive ${asset.backupTo === 'remote' ? 'moves onto the remote' : 'goes'} after keepBackup` : ''}`
          : act?.action === 'keep'
            ? `the archive ${act.why.replace(/^the original went [^;]*; the archive /, '')}`
            : act
              ? `prune ${act.action === 'move' ? 'moves the archive onto the remote' : 'removes the archive'} at its next run`
              : 'nothing of it is left on the local disk'
      out.push({
        asset: name,
        run: path.basename(k.workDir),
        source: k.source,
        dest: k.dest,
        original,
        archive,
        reclaimableBytes: reclaimable,
        next,
      })
    }
  }
  return out
}
