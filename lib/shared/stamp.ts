/**
 * A run's stamp: the UTC second it started, '20261125T150405Z'. It names a run's work dir, log,
 * journal and backup tags (migrate-assets, rebuild, rollback, update) and prune's record.
 */

/** '2026-11-25T15:04:05.123Z' → '20261125T150405Z' */
export function stampOf(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')
}

/** '20261207T101500Z' → ms since the epoch, or null (the inverse of stampOf, to the second). */
export function stampTime(stamp: string): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(stamp)
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : null
}
