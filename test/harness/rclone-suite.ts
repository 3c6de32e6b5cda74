/**
 * describeRclone(): the vitest side of test/harness/rclone.ts, kept apart so benches can mount
 * rclone without importing vitest (which throws outside the runner).
 */
import { describe, test } from 'vitest'
import { rcloneUsableSync } from './rclone.js'

const warned = new Set<string>()

/**
 * describe() for suites that need real rclone mounts: skips LOUDLY without rclone/FUSE, and
 * fails instead when SHIPSHAPE_REQUIRE_RCLONE=1.
 */
export function describeRclone(name: string, fn: () => void): void {
  const u = rcloneUsableSync()
  if (u.ok) {
    describe(name, fn)
    return
  }
  if (process.env.SHIPSHAPE_REQUIRE_RCLONE === '1') {
    describe(name, () => {
      test('rclone and FUSE are usable (SHIPSHAPE_REQUIRE_RCLONE=1)', () => {
        throw new Error(`rclone/FUSE unusable: ${u.reason}`)
      })
    })
    return
  }
  if (!warned.has(name)) {
    warned.add(name)
    console.warn(`\n!!! SKIPPED rclone suite "${name}": rclone/FUSE unusable (${u.reason})\n`)
  }
  describe.skip(`${name} [SKIPPED: rclone/FUSE unusable: ${u.reason}]`, fn)
}
