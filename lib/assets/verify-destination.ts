import path from 'node:path'
import type { Output } from '../cli/output.js'
import { isUtf8Name, showName } from '../host/names.js'
import { remoteJoin } from '../host/rclone.js'
import { waitForRemote } from './compare.js'
import { readBackTree } from './copy-back.js'
import { compareEntries } from './manifest.js'
import type { RemoteInfo } from './preflight.js'
import type { ManifestEntry, Progress } from '../shared/manifest-types.js'

/**
 * Every file of the manifest is on the remote behind the mount, not only in its write cache
 * (rclone#4293): rclone lists the remote path until each is there with the manifest's size and
 * hash; without a hash both sides know, the files are read back through the mount (sha256). The
 * migration's check, and prune's again before the archive goes. Returns how it was verified.
 */
export interface VerifyDestinationOptions {
  entries: ManifestEntry[]
  dest: string
  mount: string
  remote: RemoteInfo | null
  uploadTimeoutMs: number
  out: Output
  progress: (label: string, total: number) => { tick: Progress; done(): void }
  onUploadWait?: (ms: number) => void
}

export async function verifyDestination(o: VerifyDestinationOptions): Promise<string> {
  const files = o.entries.filter((e) => e.kind === 'file')
  // rclone lists names as JSON (UTF-8): a name that is not UTF-8 comes back with U+FFFD in
  // it and cannot be matched; those files are read back through the mount instead
  const listed = files.filter((e) => isUtf8Name(e.path))
  const byteNames = files.filter((e) => !isUtf8Name(e.path))
  const remote = o.remote
  const t0 = Date.now()
  let hashChecked = false
  let verifiedBy = ''
  if (remote) {
    const rel = path.relative(o.mount, o.dest)
    const remotePath = remoteJoin(remote.spec, rel)
    let lastShown = -1
    let lastAt = 0
    const wait = {
      remotePath,
      display: `${remote.display} (${rel})`,
      expected: listed,
      intervalMs: 2000,
    }
    // sizes while the uploads go on (a listing with hashes makes many backends read every
    // byte: once is enough), then the hashes once everything is there
    await waitForRemote({
      ...wait,
      timeoutMs: o.uploadTimeoutMs,
      onPoll: (pending) => {
        // a line when the count moves, at most every 10 s (a timer's log stays readable)
        if (pending > 0 && pending !== lastShown && Date.now() - lastAt >= 10_000) {
          lastAt = Date.now()
          o.out.info(
            `waiting for the mount to upload ${pending} of ${listed.length} files to the remote…`,
          )
          lastShown = pending
        }
      },
    })
    const cmp = await waitForRemote({
      ...wait,
      hash: remote.hash ?? undefined,
      timeoutMs: Math.max(60_000, o.uploadTimeoutMs - (Date.now() - t0)),
    })
    o.onUploadWait?.(Date.now() - t0)
    // a backend may list no hash for some files (crypt, …): those are read back below
    hashChecked = Boolean(remote.hash) && cmp.noHash.length === 0
    verifiedBy = hashChecked ? `rclone ${remote.hash} on the remote` : 'rclone sizes on the remote'
  }
  if (!hashChecked || byteNames.length) {
    // everything when rclone could not check hashes; else the files it cannot name
    const toRead = hashChecked ? byteNames : files
    const bar = o.progress(
      'read back',
      toRead.reduce((n, e) => n + e.size, 0),
    )
    let actual
    try {
      actual = await readBackTree({
        dest: o.dest,
        mount: o.mount,
        entries: toRead,
        onProgress: bar.tick,
      })
    } finally {
      bar.done()
    }
    const bad = compareEntries(
      toRead,
      actual.filter((e) => e.kind === 'file'),
      {
        modes: false,
        mtimes: false,
        owners: false,
        hash: 'sha256',
      },
    )
    if (bad.length) {
      throw new Error(
        `${bad.length} file(s) on ${o.dest} differ from the manifest: ${bad
          .slice(0, 5)
          .map((m) => `${showName(m.path)} (${m.what})`)
          .join(', ')}`,
      )
    }
    verifiedBy = `${verifiedBy ? `${verifiedBy} + ` : ''}sha256 read back through the mount${hashChecked ? ` (${byteNames.length} file(s) whose names are not UTF-8)` : ''}`
  }
  o.out.info(
    `verified: ${files.length} files on ${o.remote ? o.remote.display : o.dest} (${verifiedBy})`,
  )
  return verifiedBy
}
