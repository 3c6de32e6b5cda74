/**
 * The names shipshape puts on the engine's objects, and the ones it reads: written by rebuild,
 * rollback and update (backup tags and labels, the hold tag), read by prune and doctor.
 */

/** a backup image (an older shipshape's labelled copy, or a commit): the service it backs up */
export const BACKUP_LABEL = 'shipshape.backup.of'
export const BACKUP_CREATED_LABEL = 'shipshape.backup.created'
/** 'image' or 'commit' */
export const BACKUP_KIND_LABEL = 'shipshape.backup.kind'
/** the id of the image the service ran when the backup was made (for a commit: its base) */
export const BACKUP_SOURCE_LABEL = 'shipshape.backup.source'

/** `<repo>:shipshape-prev-<stamp>`: the very image a service ran, tagged for a rollback */
export const PREV_PREFIX = 'shipshape-prev-'
/** `<repo>:shipshape-backup-<stamp>`: a commit of the service's container (its writable layer) */
export const COMMIT_PREFIX = 'shipshape-backup-'
/** held during a run: the containerd image store drops an image the moment no name is left on it */
export const HOLD_PREFIX = 'shipshape-hold-'

/** compose's label on a container or volume: the project it belongs to */
export const COMPOSE_PROJECT_LABEL = 'com.docker.compose.project'
