import { createHash, randomBytes } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import {
  appendFile,
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  copyTree,
  CopyFailedError,
  readBackTree,
  removeCopy,
  SourceChangedError,
  TEMP_SUFFIX,
  tempNameFor,
} from '../../../lib/assets/copy.js'
import type { ManifestEntry } from '../../../lib/shared/manifest-types.js'

let root: string
let source: string
let entries: ManifestEntry[]

// A stand-in for lib/assets/manifest.ts: lstat + sha256, byte-ordered paths.
async function entriesOf(dir: string): Promise<ManifestEntry[]> {
  const out: ManifestEntry[] = []
  const walk = async (rel: string) => {
    for (const name of await readdir(path.join(dir, rel))) {
      const r = rel === '' ? name : `${rel}/${name}`
      const abs = path.join(dir, r)
      const st = await lstat(abs, { bigint: true })
      const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file'
      const e: ManifestEntry = {
        path: r,
        kind,
        size: kind === 'file' ? Number(st.size) : 0,
        mode: Number(st.mode) & 0o7777,
        mtimeMs: Number(st.mtimeNs / 1_000_000n),
        uid: Number(st.uid),
        gid: Number(st.gid),
      }
      if (kind === 'symlink') e.linkname = await readlink(abs)
      if (kind === 'file')
        e.hashes = {
          sha256: createHash('sha256')
            .update(await readFile(abs))
            .digest('hex'),
        }
      out.push(e)
      if (kind === 'dir') await walk(r)
    }
  }
  await walk('')
  return out.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)))
}

/** Every manifest path on dest matches: bytes, mtime, mode, link target. */
async function expectSameTree(dest: string, list = entries) {
  const actual = await entriesOf(dest)
  expect(actual.map((e) => e.path)).toEqual(list.map((e) => e.path))
  for (const [i, want] of list.entries()) {
    const got = actual[i] as ManifestEntry
    expect({ ...got, uid: 0, gid: 0 }, want.path).toEqual({ ...want, uid: 0, gid: 0 })
  }
}

const OLD = Date.UTC(2019, 4, 17, 8, 30, 12, 567)
const cleanups: (() => Promise<void>)[] = []

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'shipshape-copy-'))
  source = path.join(root, 'src')
  const nfc = 'Caf\u00e9'
  const nfd = 'Cafe\u0301'
  const files: [string, Buffer, number][] = [
    ['intro song.mp3', randomBytes(3 * 1024 * 1024 + 17), 0o644],
    [`${nfc}.mp3`, randomBytes(4096), 0o644],
    [`${nfd}.mp3`, randomBytes(4097), 0o644],
    ['-rf', Buffer.from('leading dash\n'), 0o600],
    ['line\nbreak.txt', Buffer.from('newline in the name'), 0o644],
    ['empty.bin', Buffer.alloc(0), 0o644],
    ['bin/run.sh', Buffer.from('#!/bin/sh\necho hi\n'), 0o755],
    ['deep/er/track 01.mp3', randomBytes(1024 * 1024), 0o600],
    ['deep/er/track 02.mp3', randomBytes(2 * 1024 * 1024 + 1), 0o644],
  ]
  for (const [rel, data, mode] of files) {
    await mkdir(path.dirname(path.join(source, rel)), { recursive: true })
    await writeFile(path.join(source, rel), data, { mode })
    await chmod(path.join(source, rel), mode)
  }
  await mkdir(path.join(source, 'empty dir/nested empty'), { recursive: true })
  await symlink('../intro song.mp3', path.join(source, 'deep/latest'))
  await chmod(path.join(source, 'bin'), 0o750)
  // mtimes with odd milliseconds, directories after their contents
  let t = OLD
  for (const e of (await entriesOf(source)).reverse()) {
    const abs = path.join(source, e.path)
    if (e.kind !== 'symlink') await utimes(abs, (t + 0.0005) / 1000, (t + 0.0005) / 1000)
    t -= 86_400_123
  }
  entries = await entriesOf(source)
  expect(entries.filter((e) => e.kind === 'file')).toHaveLength(files.length)
})

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {})
  await rm(root, { recursive: true, force: true })
})

let n = 0
async function fresh() {
  const dir = path.join(root, `case-${++n}`)
  return { dest: path.join(dir, 'dest'), doneLog: path.join(dir, 'state', 'copy.jsonl'), dir }
}

async function tempParts(dir: string): Promise<string[]> {
  const all = await readdir(dir, { recursive: true })
  return all.filter((p) => p.endsWith(TEMP_SUFFIX))
}

describe('copyTree', () => {
  it.each([false, true])(
    'copies bytes, mtimes, modes, symlinks, empty dirs, odd names (inPlace %s)',
    async (inPlace) => {
      const { dest, doneLog } = await fresh()
      const seen: number[] = []
      const onProgress = (b: number) => seen.push(b)
      const r = await copyTree({ source, dest, entries, doneLog, onProgress, inPlace })
      const files = entries.filter((e) => e.kind === 'file')
      expect(r).toEqual({
        files: files.length,
        bytes: files.reduce((s, e) => s + e.size, 0),
        copied: files.length,
        skipped: 0,
        bytesCopied: files.reduce((s, e) => s + e.size, 0),
        modesKept: true,
        symlinks: 1,
      })
      await expectSameTree(dest)
      expect(await tempParts(dest)).toEqual([])
      expect(seen.at(-1)).toBe(r.bytes)
      const log = (await readFile(doneLog, 'utf8')).trim().split('\n')
      expect(log).toHaveLength(files.length)
      expect(JSON.parse(log[0] as string)).toEqual({
        path: expect.any(String),
        size: expect.any(Number),
        mtimeMs: expect.any(Number),
        sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      })
    },
  )

  it.each([false, true])(
    'resumes: skips finished files, copies missing and changed ones (inPlace %s)',
    async (inPlace) => {
      const { dest, doneLog } = await fresh()
      await copyTree({ source, dest, entries, doneLog, concurrency: 2, inPlace })
      const files = entries.filter((e) => e.kind === 'file')
      await unlink(path.join(dest, 'intro song.mp3'))
      await unlink(path.join(dest, 'Cafe\u0301.mp3'))
      await utimes(path.join(dest, 'deep/er/track 02.mp3'), new Date(), new Date())
      // kill -9 mid-file leaves a temp part behind
      await writeFile(path.join(dest, 'deep/er', tempNameFor('track 01.mp3')), 'partial')
      const r = await copyTree({ source, dest, entries, doneLog, inPlace })
      expect(r).toMatchObject({ copied: 3, skipped: files.length - 3 })
      expect(r.bytesCopied).toBe(3 * 1024 * 1024 + 17 + 4097 + 2 * 1024 * 1024 + 1)
      await expectSameTree(dest)
      expect(await tempParts(dest)).toEqual([])
    },
  )

  it('tolerates a torn last line in the log and fences it off', async () => {
    const { dest, doneLog } = await fresh()
    await copyTree({ source, dest, entries, doneLog })
    await appendFile(doneLog, '{"path":"intro song.mp3","si')
    await unlink(path.join(dest, 'empty.bin'))
    const r = await copyTree({ source, dest, entries, doneLog })
    expect(r).toMatchObject({ copied: 1, skipped: r.files - 1 })
    const lines = (await readFile(doneLog, 'utf8')).split('\n')
    expect(lines.at(-1)).toBe('')
    expect(JSON.parse(lines.at(-2) as string)).toMatchObject({ path: 'empty.bin', size: 0 })
    await expectSameTree(dest)
  })

  it.each([false, true])(
    'refuses a source file changed since the manifest, keeps nothing of it (inPlace %s)',
    async (inPlace) => {
      const src = path.join(root, `changing-${inPlace}`)
      await mkdir(path.join(src, 'a'), { recursive: true })
      await writeFile(path.join(src, 'a/one.bin'), randomBytes(100_000))
      await writeFile(path.join(src, 'a/two.bin'), randomBytes(100_000))
      const list = await entriesOf(src)
      await writeFile(path.join(src, 'a/two.bin'), randomBytes(100_000))
      const { dest, doneLog } = await fresh()
      const err = await copyTree({
        source: src,
        dest,
        entries: list,
        doneLog,
        inPlace,
        concurrency: 1,
      }).catch((e) => e)
      expect(err).toBeInstanceOf(SourceChangedError)
      expect(err).toMatchObject({ path: 'a/two.bin' })
      expect(err.message).toContain('"a/two.bin"')
      expect(await readdir(path.join(dest, 'a'))).toEqual(['one.bin'])
      expect(await tempParts(dest)).toEqual([])
    },
  )

  it('names a source file gone since the manifest, keeping an earlier copy of it', async () => {
    const src = path.join(root, 'vanishing')
    await mkdir(src)
    await writeFile(path.join(src, 'gone.bin'), randomBytes(1000))
    const list = await entriesOf(src)
    const { dest, doneLog } = await fresh()
    await copyTree({ source: src, dest, entries: list, doneLog })
    await utimes(path.join(dest, 'gone.bin'), new Date(OLD), new Date(OLD))
    await unlink(path.join(src, 'gone.bin'))
    const err = await copyTree({ source: src, dest, entries: list, doneLog }).catch((e) => e)
    expect(err).toBeInstanceOf(CopyFailedError)
    expect(err).toMatchObject({ path: 'gone.bin', code: 'ENOENT' })
    expect(await readdir(dest)).toEqual(['gone.bin'])
  })

  it('stops mid-file on abort with an AbortError and leaves no temp part', async () => {
    const src = path.join(root, 'one-big')
    await mkdir(src)
    await writeFile(path.join(src, 'big.bin'), randomBytes(5 << 20))
    const list = await entriesOf(src)
    const { dest, doneLog } = await fresh()
    const ac = new AbortController()
    const seen: number[] = []
    const err = await copyTree({
      source: src,
      dest,
      entries: list,
      doneLog,
      onProgress: (b) => (seen.push(b), ac.abort()),
      signal: ac.signal,
    }).catch((e) => e)
    expect(err).toMatchObject({ name: 'AbortError' })
    expect(seen).toEqual([1 << 20])
    expect(await readdir(dest)).toEqual([])
    // and the next run does the job
    const r = await copyTree({ source: src, dest, entries: list, doneLog })
    expect(r).toMatchObject({ copied: 1, skipped: 0 })
    await expectSameTree(dest, list)
  })

  it('refuses manifest paths that could leave the destination', async () => {
    const { dest, doneLog } = await fresh()
    for (const p of ['../x', 'a/../../x', '/etc/x', 'a//b', './a']) {
      const bad: ManifestEntry = {
        path: p,
        kind: 'dir',
        size: 0,
        mode: 0o755,
        mtimeMs: 0,
        uid: 0,
        gid: 0,
      }
      await expect(copyTree({ source, dest, entries: [bad], doneLog })).rejects.toThrow(
        /not a clean relative path/,
      )
    }
  })

  it('rejects with ENOSPC naming a file, leaving no temp part', async (ctx) => {
    const mnt = path.join(root, 'tiny')
    await mkdir(mnt)
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { stdio: 'pipe' })
    } catch (err) {
      console.warn(`SKIPPED the ENOSPC test: cannot mount a tmpfs (${(err as Error).message})`)
      ctx.skip()
    }
    cleanups.push(async () => void execFileSync('umount', ['-l', mnt]))
    try {
      const src = path.join(root, 'big')
      await mkdir(src)
      for (const i of [1, 2, 3]) await writeFile(path.join(src, `f${i}.bin`), randomBytes(1 << 20))
      const list = await entriesOf(src)
      const dest = path.join(mnt, 'dest')
      const doneLog = path.join(root, 'enospc.jsonl')
      const err = await copyTree({ source: src, dest, entries: list, doneLog }).catch((e) => e)
      expect(err).toBeInstanceOf(CopyFailedError)
      expect(err.code).toBe('ENOSPC')
      expect(err.message).toMatch(/"f[123]\.bin".*ENOSPC/)
      expect(await tempParts(dest)).toEqual([])
    } finally {
      execFileSync('umount', [mnt])
      cleanups.pop()
    }
  })
})

describe('removeCopy', () => {
  it('removes exactly the manifest paths and reports what else is there', async () => {
    const { dest, doneLog } = await fresh()
    await copyTree({ source, dest, entries, doneLog })
    await writeFile(path.join(dest, 'deep/er', 'not mine.txt'), 'keep me')
    await writeFile(path.join(dest, 'deep/er', tempNameFor('track 01.mp3')), 'ours')
    await mkdir(path.join(dest, 'stranger/inside'), { recursive: true })
    const r = await removeCopy({ dest, entries })
    expect(r.leftovers).toEqual(['deep/er/not mine.txt', 'stranger'])
    // the manifest's entries minus the two directories holding a leftover, plus the temp part
    expect(r.removed).toBe(entries.length - 2 + 1)
    expect(await readdir(dest, { recursive: true })).toEqual(
      expect.arrayContaining(['deep', 'deep/er', 'deep/er/not mine.txt', 'stranger']),
    )
    expect(await readdir(dest, { recursive: true })).toHaveLength(5)
  })

  it('removes dest itself when nothing else was in it, and is idempotent', async () => {
    const { dest, doneLog, dir } = await fresh()
    await copyTree({ source, dest, entries, doneLog })
    expect(await removeCopy({ dest, entries })).toEqual({ removed: entries.length, leftovers: [] })
    expect(await readdir(dir)).toEqual(['state'])
    expect(await removeCopy({ dest, entries })).toEqual({ removed: 0, leftovers: [] })
  })
})

describe('readBackTree', () => {
  it('returns what is on the destination shaped like the manifest', async () => {
    const { dest, doneLog } = await fresh()
    await copyTree({ source, dest, entries, doneLog })
    await writeFile(path.join(dest, '-rf'), 'other bytes')
    await unlink(path.join(dest, 'empty.bin'))
    const back = await readBackTree({ dest, entries, hashes: ['sha256', 'md5'] })
    const want = entries.filter((e) => e.path !== 'empty.bin')
    expect(back.map((e) => e.path)).toEqual(want.map((e) => e.path))
    for (const [i, e] of back.entries()) {
      const w = want[i] as ManifestEntry
      if (e.path === '-rf') expect(e.hashes?.sha256).not.toBe(w.hashes?.sha256)
      else expect({ ...e, hashes: e.hashes?.sha256 }).toEqual({ ...w, hashes: w.hashes?.sha256 })
      if (e.kind === 'file') expect(e.hashes?.md5).toMatch(/^[0-9a-f]{32}$/)
    }
  })
})
