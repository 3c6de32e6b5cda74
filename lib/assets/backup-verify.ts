/**
 * Reading the backup archive back and holding it against the manifest (lib/assets/backup.ts
 * describes the API).
 */
import { createHash } from 'node:crypto'
import { constants as fsc } from 'node:fs'
import fs, { type FileHandle } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import zlib from 'node:zlib'
import { headerStat } from '../docker/archive-format.js'
import { TarWalker, paxTimeMs, type TarHeader } from '../docker/tarwalk.js'
import { bytesToName, showName } from '../host/names.js'
import type { ManifestEntry } from '../shared/manifest-types.js'
import { handleChunks, startZstd, type ZstdChild } from './backup-io.js'
import {
  BackupCorruptError,
  BackupMismatchError,
  KiB,
  message,
  type Compression,
  type VerifyBackupOptions,
} from './backup-types.js'
import { compareEntries, type Mismatch } from './manifest.js'

/** A pax time as whole milliseconds, rounded down; undefined when it is not one. */
export function parsePaxTime(text: string): number | undefined {
  const ms = paxTimeMs(text)
  return Number.isFinite(ms) ? ms : undefined
}

/** A header as a manifest entry; a path alone for what a backup never holds (hard link, device…). */
function entryOf(h: TarHeader): ManifestEntry | string {
  const path = h.name.replace(/^(\.\/)+/, '').replace(/\/+$/, '')
  const { type: kind, size, mode, uid, gid } = headerStat(h)
  if (kind !== 'file' && kind !== 'dir' && kind !== 'symlink') return path
  const e: ManifestEntry = { path, kind, size, mode, mtimeMs: h.mtimeMs, uid, gid }
  if (kind === 'symlink') e.linkname = h.linkname
  return e
}

/** The archive's tar stream, decompressed, chunk by chunk. */
async function* tarStream(
  fh: FileHandle,
  compression: Compression,
  started: (z: ZstdChild) => void,
): AsyncGenerator<Buffer> {
  if (compression === 'zstd') {
    const z = await startZstd(['-d', '-c', '-q'], { stdin: fh.fd }, 'zstd -d')
    started(z)
    z.done.catch(() => {}) // awaited below
    for await (const chunk of z.child.stdout as AsyncIterable<Buffer>) yield chunk
    await z.done
  } else if (compression === 'gzip') {
    const gunzip = zlib.createGunzip({ chunkSize: 256 * KiB })
    const feeding = pipeline(Readable.from(handleChunks(fh), { objectMode: false }), gunzip)
    feeding.catch(() => {}) // the iteration below sees the same error
    for await (const chunk of gunzip as AsyncIterable<Buffer>) yield chunk
    await feeding
  } else {
    yield* handleChunks(fh)
  }
}

/** Read the archive back and compare it with the manifest (see the file header). */
export async function verifyBackup(opts: VerifyBackupOptions): Promise<void> {
  const { archive, compression } = opts
  const fh = await fs.open(archive, fsc.O_RDONLY | fsc.O_NOFOLLOW)
  const actual: ManifestEntry[] = []
  const foreign: Mismatch[] = []
  let zstd: ZstdChild | undefined
  let current: string | undefined
  let total = 0
  // names byte for byte (surrogate-escaped), as the manifest has them
  const walker = new TarWalker((h) => {
    const e = entryOf(h)
    if (typeof e === 'string') {
      foreign.push({ path: e, what: 'kind', actual: h.type })
      return null
    }
    actual.push(e)
    if (e.kind !== 'file') return null
    current = e.path
    const hash = createHash('sha256')
    return {
      write(chunk: Buffer) {
        hash.update(chunk)
        total += chunk.length
        opts.onProgress?.(total, e.path)
      },
      end() {
        e.hashes = { sha256: hash.digest('hex') }
        current = undefined
      },
    }
  }, bytesToName)
  try {
    try {
      for await (const chunk of tarStream(fh, compression, (z) => (zstd = z))) {
        const wait = walker.push(chunk)
        if (wait) await wait
      }
      walker.end()
    } catch (err) {
      zstd?.child.stop()
      await zstd?.done.catch(() => {})
      const where = current !== undefined ? ` (in ${showName(current)})` : ''
      throw new BackupCorruptError(
        archive,
        `backup ${archive} cannot be read back${where}: truncated or corrupt${compression === 'none' ? '' : ` (${compression})`}: ${message(err)}`,
        { cause: err },
      )
    }
  } finally {
    await fh.close()
  }
  const expectedKinds = new Map(opts.manifest.entries.map((e) => [e.path, e.kind]))
  const foreignPaths = new Set(foreign.map((m) => m.path))
  const mismatches = [
    ...compareEntries(opts.manifest.entries, actual, {
      modes: true,
      mtimes: true,
      owners: true,
      hash: 'sha256',
    }).filter((m) => !(m.what === 'missing' && foreignPaths.has(m.path))),
    ...foreign.map((m) => ({ ...m, expected: expectedKinds.get(m.path) })),
  ]
  if (mismatches.length) throw new BackupMismatchError(archive, mismatches)
}
