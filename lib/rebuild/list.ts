/**
 * A service's backups: the images a rollback can go to (listBackups), which one a plain
 * `rollback` picks (chooseRollback, pure), and `rollback --list`.
 */
import type { Config } from '../config/index.js'
import type { Engine } from '../docker/engine.js'
import { BACKUP_LABEL, COMMIT_PREFIX, PREV_PREFIX, readBackupLabels } from '../shared/labels.js'
import { findService } from './prepare.js'
import { listBuildFiles, readBackupRecords, readBuildFiles } from './records.js'
import { resultOf, SCHEMAS, type BackupImage, type RebuildResult } from './result.js'

/**
 * Which backup a plain `rollback` goes to (pure): the newest image backup that is not what runs
 * (by id, or a copy of it by its source), and — when what runs is itself a backup — one made
 * before it: a second rollback goes further back, never forward again. Null: none.
 */
export function chooseRollback(
  backups: BackupImage[],
  running: { id: string; source: string | null; created: string | null },
): BackupImage | null {
  const same = (b: BackupImage) =>
    b.id === running.id ||
    b.source === running.id ||
    (running.source !== null && (b.source === running.source || b.id === running.source))
  return (
    backups
      .filter((b) => b.kind === 'image' && !same(b))
      .filter((b) => running.created === null || b.created < running.created)
      .sort((a, b) => b.created.localeCompare(a.created) || b.tag.localeCompare(a.tag))[0] ?? null
  )
}

const BACKUP_TAG = new RegExp(`:(${PREV_PREFIX}|${COMMIT_PREFIX})(\\d{8}T\\d{6}Z)$`)

/**
 * The service's backup images, newest first: the records in stateDir whose tag still names their
 * image, and backups of older shipshape versions (labelled copies, labels shipshape.backup.*).
 */
export async function listBackups(
  engine: Engine,
  service: string,
  dirs?: { stateDir: string; backupDir: string },
): Promise<BackupImage[]> {
  const out: BackupImage[] = []
  const seen = new Set<string>()
  if (dirs) {
    for (const r of await readBackupRecords(dirs.stateDir, service)) {
      const img = await engine.inspectImage(r.tag)
      if (img?.id !== r.id) continue
      seen.add(r.tag)
      out.push({
        tag: r.tag,
        id: r.id,
        kind: r.kind,
        created: r.created,
        sizeBytes: img.sizeBytes,
        source: r.source,
      })
    }
  }
  const images = await engine.listImages({ labels: [`${BACKUP_LABEL}=${service}`] })
  for (const img of images) {
    for (const tag of img.tags) {
      const m = BACKUP_TAG.exec(tag)
      if (!m || seen.has(tag)) continue
      const { kind, created, source } = readBackupLabels(img.labels)
      out.push({
        tag,
        id: img.id,
        kind,
        created: created ?? img.createdAt,
        sizeBytes: img.sizeBytes,
        source,
      })
    }
  }
  if (dirs) {
    for (const b of out) {
      const f = await readBuildFiles(dirs.backupDir, service, b.id)
      b.files = f ? { savedAt: f.savedAt, origin: f.origin } : null
    }
  }
  return out.sort((a, b) => b.created.localeCompare(a.created) || b.tag.localeCompare(a.tag))
}

export async function runListBackups(
  c: { config: Config; engine: Engine },
  name: string,
): Promise<RebuildResult> {
  const service = findService(c.config, name)
  const backups = await listBackups(c.engine, name, {
    stateDir: c.config.stateDir,
    backupDir: c.config.backupDir,
  })
  return resultOf({
    schema: SCHEMAS.rollback,
    service: name,
    kind: service.compose ? 'compose' : 'container',
    outcome: 'listed',
    backups,
    buildFiles: (await listBuildFiles(c.config.backupDir, name)).map((r) => ({
      imageId: r.imageId,
      savedAt: r.savedAt,
      origin: r.origin,
      files: r.entries.map((e) => e.path),
    })),
  })
}
