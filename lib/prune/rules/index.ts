/**
 * prune's rules, in the order they run. Each sees what the ones before it took:
 * - containers first: a stopped container this plan removes no longer keeps its image in use;
 * - then the images, each claimed by one rule at most: a backup only by old-backup, an untagged
 *   image by dangling-image, a tagged one by unused-image, else its extra tags by old-tag; then a
 *   parent whose child stays is given back (plan.ts);
 * - then build cache, volumes, kept originals and archives, and last disk-pressure (it looks at
 *   what everything else frees).
 * The plan lists candidates by each rule's `order`, which is not the order they run in.
 */
import { buildCache } from './build-cache.js'
import { danglingImage } from './dangling-image.js'
import { diskPressure } from './disk-pressure.js'
import { keptOriginal } from './kept-original.js'
import { migratedArchive } from './migrated-archive.js'
import { oldBackup } from './old-backup.js'
import { oldTag } from './old-tag.js'
import { stoppedContainer } from './stopped-container.js'
import { unusedImage } from './unused-image.js'
import { unusedVolume } from './unused-volume.js'
import type { Rule } from './types.js'

/** before the images' facts are gathered */
export const CONTAINER_RULES: readonly Rule[] = [stoppedContainer]
/** over the images' facts; the parent/child pass follows them */
export const IMAGE_RULES: readonly Rule[] = [oldBackup, danglingImage, unusedImage, oldTag]
/** after the parent/child pass */
export const LATER_RULES: readonly Rule[] = [
  buildCache,
  unusedVolume,
  keptOriginal,
  migratedArchive,
  diskPressure,
]

export const RULES: readonly Rule[] = [...CONTAINER_RULES, ...IMAGE_RULES, ...LATER_RULES]

/** rule id → where its candidates are listed */
export const RULE_RANK: ReadonlyMap<string, number> = new Map(RULES.map((r) => [r.id, r.order]))
