/**
 * The manifest of an asset directory: what is in it (walkTree), the document written next to the
 * backup (manifestOf, writeManifest, readManifest) and the one comparison every later check uses
 * (compareEntries: the backup's read-back, the copy on the mount).
 *
 * API
 *
 *   walkTree(root) → Promise<{ entries, problems, root }>
 *     Walk of the tree below `root` (a directory, not a symlink to one: that throws, as does a
 *     missing root) by directory descriptors (lib/host/safefs.ts): each directory opened from
 *     its parent with O_NOFOLLOW | O_DIRECTORY and checked to be the inode lstat saw, so a
 *     directory swapped for a link meanwhile is a problem, never followed. Never crosses into
 *     another filesystem. Entries carry their inode (`ino`), no hashes yet. Names are bytes:
 *     one that is not UTF-8 is listed in the surrogate-escape form (lib/host/names.ts), never
 *     refused. Problems are collected, not thrown, so a preflight can name them all at once:
 *     special files (socket, fifo, devices), mount points below the root (another st_dev; a
 *     bind mount of the same filesystem is not seen), unreadable files and directories, a
 *     directory that changed during the walk, any other error of one entry. An entry with a
 *     problem is not listed, nor is anything below it. Hard-linked files are listed as separate
 *     files. A file that vanishes during the walk is simply not listed. A problem's path is
 *     relative like an entry's ('.' for the root itself), shown escaped.
 *
 *   mtimeMsOf(bigintStat) → number   the mtime as walkTree records it (see Timestamps below)
 *
 *   comparePaths(a, b) / sortEntries(entries)
 *     THE order of a manifest: depth-first, each directory followed at once by everything below
 *     it, siblings in byte order of their names (memcmp, a name before its extensions:
 *     'a' < 'a b' < 'a-b' < 'a.b'). Equivalently: byte order of the paths' bytes with '/' counted
 *     as lower than any other byte; so 'a', 'a/x', 'a b', not 'a', 'a b', 'a/x' as plain byte
 *     order would have it. Depth-first matters for the archive: GNU tar sets a directory's
 *     mtime once it has moved on to an entry outside it, and an entry for it coming later
 *     would change it again. The order can be rebuilt from any list of paths (rclone lsjson, a
 *     tar listing) without the tree.
 *
 *   manifestOf(source, entries, now) → Manifest                                      (pure)
 *   writeManifest(file, manifest)   atomic and durable (lib/host/durable.ts), mode 0600
 *   readManifest(file) → Manifest   validated; throws an Error naming the file and the first problem
 *
 *   compareEntries(expected, actual, opts) → Mismatch[]                              (pure)
 *     Matches entries by path: 'missing' / 'extra'; for entries on both sides 'kind', then
 *     'size' and 'hash' (files), 'linkname' (symlinks), and optionally 'mode' (not for
 *     symlinks: Linux has no lchmod, their mode is always 0777), 'mtime', 'owner' (uid:gid),
 *     'inode' and 'ctime' (where both sides recorded one).
 *     With opts.hash, a file whose hash is absent on either side is a 'hash' mismatch: a check
 *     never passes for want of a hash. Mismatches come in expected's order, extras last.
 *
 * Timestamps: `mtimeMs` is the mtime in whole milliseconds, rounded down, from the BigInt
 * lstat (mtimeNs / 1e6). The float `mtimeMs` of a plain stat can round UP to the next
 * millisecond (the double has ~0.2 µs resolution today), so flooring it is not exact.
 */
import { type BigIntStats, constants as fsc } from 'node:fs'
import fs from 'node:fs/promises'
import { writeFileDurable } from '../host/durable.js'
import { nameToBytes, showName } from '../host/names.js'
import { Dir, TreeChangedError, type Ident } from '../host/safefs.js'
import type { EntryKind, HashName, Manifest, ManifestEntry } from '../shared/manifest-types.js'

export interface WalkProblem {
  /** relative to the root, '/'-separated, shown as people see it (showName: bytes as \xNN) */
  path: string
  reason: string
}

export interface WalkResult {
  entries: ManifestEntry[]
  problems: WalkProblem[]
  /** the root directory's device and inode, as opened for the walk */
  root: Ident
}

export type MismatchWhat =
  | 'missing'
  | 'extra'
  | 'size'
  | 'kind'
  | 'mode'
  | 'mtime'
  | 'hash'
  | 'linkname'
  | 'owner'
  | 'inode'
  | 'ctime'

export interface Mismatch {
  path: string
  what: MismatchWhat
  /** size and mtime: numbers (bytes, ms); mode: octal text ('0644'); owner: 'uid:gid'; others as stored */
  expected?: string | number
  actual?: string | number
}

export interface CompareOptions {
  modes: boolean
  mtimes: boolean
  owners: boolean
  /** compare this hash of every file (absent on either side = mismatch) */
  hash?: HashName
  /** compare inodes where both sides recorded one (another file put in an entry's place) */
  inodes?: boolean
  /** compare ctimes where both sides recorded one (an inode changed in any way since) */
  ctimes?: boolean
  /**
   * mtimes this far apart (ms) are equal; default 0. 999 for a store that keeps whole seconds,
   * truncated or rounded.
   */
  mtimeToleranceMs?: number
}

export const MANIFEST_SCHEMA = 'shipshape.manifest/1'

// --- order -----------------------------------------------------------------------------------

/** The sort key of a path: its bytes with '/' as 0x00 (no name holds NUL nor '/'). */
function pathKey(p: string): Buffer {
  const key = nameToBytes(p)
  for (let i = key.indexOf(0x2f); i >= 0; i = key.indexOf(0x2f, i + 1)) key[i] = 0
  return key
}

/** The manifest order (see the file header): < 0 when `a` comes first. */
export function comparePaths(a: string, b: string): number {
  return Buffer.compare(pathKey(a), pathKey(b))
}

/** A sorted copy (see comparePaths); the keys are encoded once, not once per comparison. */
export function sortEntries<T extends { path: string }>(entries: readonly T[]): T[] {
  return entries
    .map((e) => ({ e, key: pathKey(e.path) }))
    .sort((x, y) => Buffer.compare(x.key, y.key))
    .map((x) => x.e)
}

// --- walk ------------------------------------------------------------------------------------

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? (err instanceof Error ? err.message : String(err))
}

const specialKind = (st: BigIntStats): string =>
  st.isSocket()
    ? 'socket'
    : st.isFIFO()
      ? 'fifo'
      : st.isCharacterDevice()
        ? 'character device'
        : st.isBlockDevice()
          ? 'block device'
          : 'special file'

/** A BigInt stat's mtime in whole milliseconds, rounded down (see the file header). */
export function mtimeMsOf(st: BigIntStats): number {
  const ns = st.mtimeNs
  const q = ns / 1_000_000n
  // BigInt division truncates towards zero: one less before 1970
  return Number(ns < 0n && q * 1_000_000n !== ns ? q - 1n : q)
}

/** lstats of one directory's children run this many at a time */
const STAT_CONCURRENCY = 32

/** Walk the tree below `root` (see the file header). */
export async function walkTree(root: string): Promise<WalkResult> {
  const rootStat = await fs.lstat(root, { bigint: true })
  if (rootStat.isSymbolicLink()) {
    const target = await fs.readlink(root).catch(() => '?')
    throw new Error(`${root} is a symlink (to ${target}); pass the directory itself`)
  }
  if (!rootStat.isDirectory()) throw new Error(`${root} is not a directory`)
  const top = await Dir.open(root, { expect: { dev: rootStat.dev, ino: rootStat.ino } })
  const rootDev = top.ident.dev
  const entries: ManifestEntry[] = []
  const problems: WalkProblem[] = []
  const problem = (p: string, reason: string) => problems.push({ path: showName(p), reason })

  async function visit(
    dir: Dir,
    rel: string,
    name: string,
    dirs: { name: string; path: string; ino: bigint }[],
  ): Promise<void> {
    const p = rel ? `${rel}/${name}` : name
    let st
    try {
      st = await dir.lstat(name)
    } catch (err) {
      problem(p, `cannot stat (${errCode(err)})`)
      return
    }
    if (!st) return // vanished since readdir
    let kind: EntryKind
    if (st.isFile()) kind = 'file'
    else if (st.isDirectory()) kind = 'dir'
    else if (st.isSymbolicLink()) kind = 'symlink'
    else {
      problem(p, `${specialKind(st)}: only files, directories and symlinks can be migrated`)
      return
    }
    if (st.dev !== rootDev) {
      problem(p, 'mount point of another filesystem: not crossed')
      return
    }
    const e: ManifestEntry = {
      path: p,
      kind,
      size: kind === 'file' ? Number(st.size) : 0,
      mode: Number(st.mode & 0o7777n),
      mtimeMs: mtimeMsOf(st),
      uid: Number(st.uid),
      gid: Number(st.gid),
      ino: String(st.ino),
    }
    if (kind !== 'dir') e.ctimeNs = String(st.ctimeNs)
    try {
      if (kind === 'symlink') {
        const target = await dir.readlink(name)
        if (target === '') throw Object.assign(new Error('empty symlink'), { code: 'EINVAL' })
        e.linkname = target
      }
      // faccessat: a file must be readable, a directory listable AND searchable (r without x
      // fails every child's lstat)
      else await fs.access(dir.at(name), kind === 'file' ? fsc.R_OK : fsc.R_OK | fsc.X_OK)
    } catch (err) {
      if (errCode(err) === 'ENOENT') return
      problem(p, `${kind === 'dir' ? 'directory' : kind} is not readable (${errCode(err)})`)
      return
    }
    entries.push(e)
    if (kind === 'dir') dirs.push({ name, path: p, ino: st.ino })
  }

  // depth-first, each directory opened from its parent (one descriptor per level); the order
  // of the result is fixed by the sort at the end
  async function walkDir(dir: Dir, rel: string): Promise<void> {
    let names: string[]
    try {
      names = await dir.readdir()
    } catch (err) {
      problem(rel || '.', `directory cannot be read (${errCode(err)})`)
      return
    }
    const dirs: { name: string; path: string; ino: bigint }[] = []
    for (let i = 0; i < names.length; i += STAT_CONCURRENCY) {
      await Promise.all(names.slice(i, i + STAT_CONCURRENCY).map((n) => visit(dir, rel, n, dirs)))
    }
    for (const d of dirs) {
      let child: Dir
      try {
        child = await dir.openDir(d.name, { expect: d.ino })
      } catch (err) {
        if (errCode(err) === 'ENOENT') continue
        problem(
          d.path,
          err instanceof TreeChangedError
            ? `changed during the walk (${err.what})`
            : `directory cannot be opened (${errCode(err)})`,
        )
        continue
      }
      try {
        await walkDir(child, d.path)
      } finally {
        await child.close()
      }
    }
  }

  try {
    await walkDir(top, '')
  } finally {
    await top.close()
  }
  return {
    entries: sortEntries(entries),
    problems: sortEntries(problems),
    root: top.ident,
  }
}

// --- the manifest document -------------------------------------------------------------------

/** The manifest of `entries` (pure; entries are sorted, and kept as they are otherwise). */
export function manifestOf(source: string, entries: ManifestEntry[], now: Date): Manifest {
  let files = 0
  let bytes = 0
  for (const e of entries) {
    if (e.kind !== 'file') continue
    files++
    bytes += e.size
  }
  return {
    schema: MANIFEST_SCHEMA,
    source,
    createdAt: now.toISOString(),
    files,
    bytes,
    entries: sortEntries(entries),
  }
}

/** One entry per line: a manifest of 100 000 files stays readable and diffable. */
function serialize(m: Manifest): string {
  const { entries, ...head } = m
  const headJson = JSON.stringify(head, null, 2)
  const list = entries.length
    ? `[\n${entries.map((e) => `    ${JSON.stringify(e)}`).join(',\n')}\n  ]`
    : '[]'
  return `${headJson.slice(0, -2)},\n  "entries": ${list}\n}\n`
}

/** Write the manifest atomically and durably (lib/host/durable.ts). */
export async function writeManifest(file: string, manifest: Manifest): Promise<void> {
  await writeFileDurable(file, serialize(manifest), { mode: 0o600 })
}

const HASH_LENGTH: Record<HashName, number> = { sha256: 64, sha1: 40, md5: 32 }
const isInt = (v: unknown, min = 0): v is number => Number.isSafeInteger(v) && (v as number) >= min
const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/** Why `v` is not a manifest entry, or undefined when it is one. */
function entryProblem(v: unknown): string | undefined {
  if (!isRecord(v)) return 'is not an object'
  const p = v.path
  if (typeof p !== 'string' || p === '') return 'path is not a non-empty string'
  // later steps join these paths to a root: nothing may point outside it
  if (
    p.startsWith('/') ||
    p.includes('\0') ||
    p.split('/').some((s) => s === '' || s === '.' || s === '..')
  ) {
    return `path ${JSON.stringify(p)} is not a plain relative path`
  }
  try {
    nameToBytes(p)
  } catch {
    return `path ${JSON.stringify(p)} holds a lone surrogate that is no escaped byte`
  }
  if (v.ino !== undefined && (typeof v.ino !== 'string' || !/^\d{1,20}$/.test(v.ino)))
    return 'ino is not a decimal inode number'
  if (v.ctimeNs !== undefined && (typeof v.ctimeNs !== 'string' || !/^-?\d{1,25}$/.test(v.ctimeNs)))
    return 'ctimeNs is not a decimal time in nanoseconds'
  if (v.kind === 'symlink' && typeof v.linkname === 'string') {
    try {
      nameToBytes(v.linkname)
    } catch {
      return 'linkname holds a lone surrogate that is no escaped byte'
    }
  }
  if (v.kind !== 'file' && v.kind !== 'dir' && v.kind !== 'symlink')
    return 'kind is not file, dir or symlink'
  if (!isInt(v.size) || (v.kind !== 'file' && v.size !== 0)) return 'size is not a valid byte count'
  if (!isInt(v.mode) || v.mode > 0o7777) return 'mode is not permission bits'
  if (!isInt(v.mtimeMs, Number.MIN_SAFE_INTEGER)) return 'mtimeMs is not an integer'
  if (!isInt(v.uid) || !isInt(v.gid)) return 'uid/gid is not an id'
  if (
    v.kind === 'symlink'
      ? typeof v.linkname !== 'string' || v.linkname === ''
      : v.linkname !== undefined
  ) {
    return 'linkname is missing (symlink) or present (not a symlink)'
  }
  if (v.hashes !== undefined) {
    if (!isRecord(v.hashes) || v.kind !== 'file') return 'hashes is not an object of a file'
    for (const [k, h] of Object.entries(v.hashes)) {
      const len = HASH_LENGTH[k as HashName]
      if (!len) return `hashes has an unknown algorithm ${JSON.stringify(k)}`
      if (typeof h !== 'string' || h.length !== len || !/^[0-9a-f]+$/.test(h))
        return `hashes.${k} is not a hex digest`
    }
  }
  return undefined
}

/** Read and validate a manifest; the Error names the file and what is wrong with it. */
export async function readManifest(file: string): Promise<Manifest> {
  const text = await fs.readFile(file, 'utf8')
  const bad = (why: string): Error =>
    new Error(`manifest ${file} is not a valid ${MANIFEST_SCHEMA}: ${why}`)
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    throw bad(`not JSON (${err instanceof Error ? err.message : String(err)})`)
  }
  if (!isRecord(doc)) throw bad('not a JSON object')
  if (doc.schema !== MANIFEST_SCHEMA) throw bad(`schema is ${JSON.stringify(doc.schema)}`)
  if (typeof doc.source !== 'string' || doc.source === '') throw bad('source is not a path')
  if (typeof doc.createdAt !== 'string' || Number.isNaN(Date.parse(doc.createdAt))) {
    throw bad('createdAt is not a date')
  }
  if (!isInt(doc.files) || !isInt(doc.bytes)) throw bad('files/bytes are not counts')
  if (!Array.isArray(doc.entries)) throw bad('entries is not an array')
  let files = 0
  let bytes = 0
  let prev: Buffer | undefined
  for (const [i, e] of (doc.entries as unknown[]).entries()) {
    const why = entryProblem(e)
    if (why) throw bad(`entries[${i}] ${why}`)
    const entry = e as ManifestEntry
    const key = pathKey(entry.path)
    if (prev && Buffer.compare(prev, key) >= 0) {
      throw bad(`entries[${i}] (${entry.path}) is out of order or a duplicate`)
    }
    prev = key
    if (entry.kind === 'file') {
      files++
      bytes += entry.size
    }
  }
  if (files !== doc.files || bytes !== doc.bytes) {
    throw bad(
      `totals say ${doc.files} files / ${doc.bytes} bytes, entries hold ${files} / ${bytes}`,
    )
  }
  return doc as unknown as Manifest
}

// --- comparison ------------------------------------------------------------------------------

const octal = (mode: number): string => mode.toString(8).padStart(4, '0')

/** How `actual` differs from `expected` (see the file header). */
export function compareEntries(
  expected: ManifestEntry[],
  actual: ManifestEntry[],
  opts: CompareOptions,
): Mismatch[] {
  const out: Mismatch[] = []
  const byPath = new Map<string, ManifestEntry>()
  for (const a of actual) {
    if (byPath.has(a.path))
      out.push({ path: a.path, what: 'extra', actual: `second ${a.kind} entry` })
    else byPath.set(a.path, a)
  }
  const seen = new Set<string>()
  const tolerance = opts.mtimeToleranceMs ?? 0
  for (const e of expected) {
    seen.add(e.path)
    const a = byPath.get(e.path)
    if (!a) {
      out.push({ path: e.path, what: 'missing', expected: e.kind })
      continue
    }
    const diff = (
      what: MismatchWhat,
      x: string | number | undefined,
      y: string | number | undefined,
    ) => {
      if (x !== y) out.push({ path: e.path, what, expected: x, actual: y })
    }
    if (e.kind !== a.kind) {
      diff('kind', e.kind, a.kind)
      continue
    }
    if (e.kind === 'file') {
      diff('size', e.size, a.size)
      if (opts.hash) {
        const x = e.hashes?.[opts.hash]
        const y = a.hashes?.[opts.hash]
        if (x === undefined || y === undefined || x !== y) {
          out.push({ path: e.path, what: 'hash', expected: x, actual: y })
        }
      }
    }
    if (e.kind === 'symlink') diff('linkname', e.linkname, a.linkname)
    if (opts.modes && e.kind !== 'symlink') diff('mode', octal(e.mode), octal(a.mode))
    if (opts.mtimes && Math.abs(e.mtimeMs - a.mtimeMs) > tolerance) {
      out.push({ path: e.path, what: 'mtime', expected: e.mtimeMs, actual: a.mtimeMs })
    }
    if (opts.owners) diff('owner', `${e.uid}:${e.gid}`, `${a.uid}:${a.gid}`)
    if (opts.inodes && e.ino !== undefined && a.ino !== undefined) diff('inode', e.ino, a.ino)
    if (opts.ctimes && e.ctimeNs !== undefined && a.ctimeNs !== undefined)
      diff('ctime', e.ctimeNs, a.ctimeNs)
  }
  for (const a of byPath.values()) {
    if (!seen.has(a.path)) out.push({ path: a.path, what: 'extra', actual: a.kind })
  }
  return out
}
