/**
 * The names shipshape puts on the engine's objects, and the ones it reads: written by rebuild,
 * rollback and update (backup tags and labels, the hold tag), read by prune and doctor.
 */
import path from 'node:path'

/** a backup image (an older shipshape's labelled copy, or a commit): the service it backs up */
export const BACKUP_LABEL = 'shipshape.backup.of'
export const BACKUP_CREATED_LABEL = 'shipshape.backup.created'
/** 'image' or 'commit' */
export const BACKUP_KIND_LABEL = 'shipshape.backup.kind'
/** the id of the image the service ran when the backup was made (for a commit: its base) */
export const BACKUP_SOURCE_LABEL = 'shipshape.backup.source'

/** What a backup's labels say: the service, when, which kind, and the image it was made from. */
export interface BackupLabels {
  of: string
  created: string
  kind: 'image' | 'commit'
  source: string
}

/** The labels rebuild puts on a backup it makes. */
export function backupLabels(b: BackupLabels): Record<string, string> {
  return {
    [BACKUP_LABEL]: b.of,
    [BACKUP_CREATED_LABEL]: b.created,
    [BACKUP_KIND_LABEL]: b.kind,
    [BACKUP_SOURCE_LABEL]: b.source,
  }
}

/** An image's backup labels as they are read: null where one is missing; a kind not 'commit' is 'image'. */
export function readBackupLabels(labels: Record<string, string>): {
  of: string | null
  created: string | null
  kind: BackupLabels['kind']
  source: string | null
} {
  return {
    of: labels[BACKUP_LABEL] ?? null,
    created: labels[BACKUP_CREATED_LABEL] ?? null,
    kind: labels[BACKUP_KIND_LABEL] === 'commit' ? 'commit' : 'image',
    source: labels[BACKUP_SOURCE_LABEL] ?? null,
  }
}

/** `<repo>:shipshape-prev-<stamp>`: the very image a service ran, tagged for a rollback */
export const PREV_PREFIX = 'shipshape-prev-'
/** `<repo>:shipshape-backup-<stamp>`: a commit of the service's container (its writable layer) */
export const COMMIT_PREFIX = 'shipshape-backup-'
/** held during a run: the containerd image store drops an image the moment no name is left on it */
export const HOLD_PREFIX = 'shipshape-hold-'

/** compose's label on a container or volume: the project it belongs to */
export const COMPOSE_PROJECT_LABEL = 'com.docker.compose.project'
export const COMPOSE_SERVICE_LABEL = 'com.docker.compose.service'
export const COMPOSE_CONFIG_FILES_LABEL = 'com.docker.compose.project.config_files'
export const COMPOSE_WORKING_DIR_LABEL = 'com.docker.compose.project.working_dir'
export const COMPOSE_ONEOFF_LABEL = 'com.docker.compose.oneoff'

/** The compose files a container's project was started with, absolute (v1 records them as given). */
export function labelFiles(c: { labels: Record<string, string> }): string[] {
  const dir = c.labels[COMPOSE_WORKING_DIR_LABEL] ?? '/'
  return (c.labels[COMPOSE_CONFIG_FILES_LABEL] ?? '')
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean)
    .map((f) => path.resolve(dir, f))
}
