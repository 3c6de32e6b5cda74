/**
 * lib/host/rclone.ts against real `rclone mount :local:DIR MNT` mounts (test/harness/rclone.ts).
 * The pure half (remoteJoin, displayRemote, compareRemote, the lsjson reader) is in
 * test/unit/host/rclone.test.ts.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readFile, stat, writeFile, mkdir } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, expect, test } from 'vitest'
import { copyTree, SameFilesError } from '../../lib/assets/copy.js'
import type { ManifestEntry } from '../../lib/shared/manifest-types.js'
import { UnavailableError } from '../../lib/errors.js'
import { readMountinfo } from '../../lib/host/mountinfo.js'
import {
  isNotConnected,
  listRemote,
  RcloneError,
  remoteFeatures,
  remoteHashes,
  remoteJoin,
  remoteOfMount,
  vfsStats,
} from '../../lib/host/rclone.js'
import { compareRemote, RemoteVerifyError, waitForRemote } from '../../lib/assets/compare.js'
import { mountRclone, rcloneTempDirs, unmountAll } from '../harness/rclone.js'
import { describeRclone } from '../harness/rclone-suite.js'

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

function entry(rel: string, bytes: Buffer): ManifestEntry {
  return {
    path: rel,
    kind: 'file',
    size: bytes.length,
    mode: 0o644,
    mtimeMs: 0,
    uid: 0,
    gid: 0,
    hashes: { sha256: sha256(bytes), md5: createHash('md5').update(bytes).digest('hex') },
  }
}

async function put(root: string, rel: string, bytes: Buffer): Promise<ManifestEntry> {
  await mkdir(path.dirname(path.join(root, rel)), { recursive: true })
  await writeFile(path.join(root, rel), bytes)
  return entry(rel, bytes)
}

const cleanups: (() => Promise<void>)[] = []
async function dirs() {
  const d = await rcloneTempDirs()
  cleanups.push(d.remove)
  return d
}

afterEach(async () => {
  await unmountAll()
  for (const c of cleanups.splice(0)) await c()
})

describeRclone('rclone against a real mount', () => {
  test('a destination that is another view of the source (a remote on its own directory) is refused before anything is truncated', async () => {
    const d = await dirs()
    // the remote behind the mount IS the source directory
    const files = [await put(d.remoteDir, 'a.bin', randomBytes(5000))]
    const before = await readFile(path.join(d.remoteDir, 'a.bin'))
    await mountRclone({ remoteDir: d.remoteDir, mountDir: d.mountDir })
    const err = await copyTree({
      source: d.remoteDir,
      dest: d.mountDir,
      entries: files,
      doneLog: path.join(d.remoteDir, '..', 'alias.log'),
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(SameFilesError)
    expect((await readFile(path.join(d.remoteDir, 'a.bin'))).equals(before)).toBe(true)
  })

  test('remoteOfMount reads the real mountinfo line', async () => {
    const d = await dirs()
    const m = await mountRclone({ remoteDir: d.remoteDir, mountDir: d.mountDir })
    const e = (await readMountinfo()).find((x) => x.mountPoint === d.mountDir)
    expect(e).toMatchObject({ fsType: 'fuse.rclone', source: `:local:${d.remoteDir}` })
    expect(remoteOfMount(e!)).toBe(m.remote)
    await m.unmount()
    await m.unmount()
    expect((await readMountinfo()).some((x) => x.mountPoint === d.mountDir)).toBe(false)
  })

  test('listRemote hashes what was written through the mount; odd names', async () => {
    const d = await dirs()
    const m = await mountRclone({ remoteDir: d.remoteDir, mountDir: d.mountDir })
    const names = [
      'plain.bin',
      'dir one/Ça va.mp3',
      'dir one/disc é/-lead dash',
      'e\u0301cole nfd.txt',
      'trailing space ',
      'zero.txt',
    ]
    const expected: ManifestEntry[] = []
    for (const [i, n] of names.entries()) {
      expected.push(
        await put(d.mountDir, n, n === 'zero.txt' ? Buffer.alloc(0) : randomBytes(1000 + i * 7919)),
      )
    }
    await mkdir(path.join(d.mountDir, 'empty dir'))

    expect(await remoteHashes(m.remote)).toEqual(['sha256', 'md5', 'sha1'])
    expect(await remoteFeatures(m.remote)).toMatchObject({ canHaveEmptyDirectories: true })

    const listing = await listRemote(m.remote, { hash: 'sha256' })
    for (const e of expected) {
      const r = listing.get(e.path)
      expect(r, e.path).toMatchObject({ isDir: false, size: e.size, hash: e.hashes?.sha256 })
      const onDisk = await readFile(path.join(d.remoteDir, e.path))
      expect(r?.hash).toBe(sha256(onDisk))
    }
    expect(listing.get('empty dir')).toMatchObject({ isDir: true })
    expect(listing.get('dir one')?.isDir).toBe(true)
    const withDirs = [
      ...expected,
      { ...expected[0]!, path: 'empty dir', kind: 'dir' as const, size: 0 },
    ]
    expect(compareRemote(withDirs, listing, 'sha256', { checkDirs: true }).pending).toBe(0)

    const md5 = await listRemote(remoteJoin(m.remote, 'dir one'), { hash: 'md5' })
    expect(md5.get('Ça va.mp3')?.hash).toBe(expected[1]?.hashes?.md5)
    expect(await listRemote(remoteJoin(m.remote, 'no such dir'))).toEqual(new Map())
    await m.unmount()
  })

  test('rclone failures: redacted RcloneError; a missing binary is UnavailableError', async () => {
    const err = await listRemote('nosuchremote,password=hunter2:path', {
      config: '/dev/null',
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RcloneError)
    expect((err as Error).message).toContain('nosuchremote,password=***:path')
    expect((err as Error).message).toMatch(/didn't find section in config file/)
    expect(
      JSON.stringify(err) + (err as RcloneError).stderr + (err as Error).message,
    ).not.toContain('hunter2')

    const missing = await remoteHashes(':local:/tmp', { bin: '/nonexistent/rclone' }).catch(
      (e: unknown) => e,
    )
    expect(missing).toBeInstanceOf(UnavailableError)
    expect(missing).toMatchObject({ exitCode: 3, remedy: 'apt-get install rclone' })
  })

  test('waitForRemote waits for the write-back upload', async () => {
    const d = await dirs()
    const m = await mountRclone({
      remoteDir: d.remoteDir,
      mountDir: d.mountDir,
      vfsCacheMode: 'writes',
      writeBack: '8s',
      rc: true,
    })
    const t0 = Date.now()
    const expected = [
      await put(d.mountDir, 'big.bin', randomBytes(3 * 1024 * 1024)),
      await put(d.mountDir, 'sub dir/small é.txt', Buffer.from('small')),
    ]
    // readable through the mount, absent on the remote
    expect(sha256(await readFile(path.join(d.mountDir, 'big.bin')))).toBe(
      expected[0]?.hashes?.sha256,
    )
    const before = compareRemote(expected, await listRemote(m.remote, { hash: 'sha256' }), 'sha256')
    expect(before.missing).toEqual(['big.bin', 'sub dir/small é.txt'])
    const queued = await vfsStats(m.rcAddr!)
    expect(queued.cache).toBe(true)
    expect(queued.uploadsQueued + queued.uploadsInProgress).toBe(2)

    const polls: number[] = []
    const c = await waitForRemote({
      remotePath: m.remote,
      expected,
      hash: 'sha256',
      timeoutMs: 40_000,
      intervalMs: 500,
      onPoll: (pending) => polls.push(pending),
    })
    const took = Date.now() - t0
    expect(c).toMatchObject({ files: 2, ok: 2, pending: 0 })
    expect(took).toBeGreaterThanOrEqual(5000)
    expect(polls[0]).toBe(2)
    expect(polls.at(-1)).toBe(0)
    for (const e of expected) {
      expect(sha256(await readFile(path.join(d.remoteDir, e.path)))).toBe(e.hashes?.sha256)
    }
    const after = await vfsStats(m.rcAddr!)
    expect(after.uploadsQueued + after.uploadsInProgress).toBe(0)
    console.log(`write-back 8s: on the remote after ${took} ms, ${polls.length} polls`)
    await m.unmount()
  }, 60_000)

  test('waitForRemote times out naming the missing file; a stopped mount drops its queue', async () => {
    const d = await dirs()
    const m = await mountRclone({
      remoteDir: d.remoteDir,
      mountDir: d.mountDir,
      vfsCacheMode: 'writes',
      writeBack: '60s',
    })
    const expected = [await put(d.mountDir, 'late one.bin', randomBytes(4096))]
    const t0 = Date.now()
    const err = await waitForRemote({
      remotePath: remoteJoin(m.remote, ''),
      expected,
      hash: 'sha256',
      timeoutMs: 3000,
      intervalMs: 500,
    }).catch((e: unknown) => e)
    const took = Date.now() - t0
    expect(err).toBeInstanceOf(RemoteVerifyError)
    expect(err).toMatchObject({ reason: 'timeout' })
    expect((err as Error).message).toMatch(
      /^1 of 1 file\(s\) not on :local:.* after 3 s: "late one\.bin"$/,
    )
    expect(took).toBeGreaterThanOrEqual(3000)
    expect(took).toBeLessThan(8000)
    // rclone 1.60 exits on SIGTERM without uploading what is queued (PITFALLS.md)
    await m.unmount()
    await expect(stat(path.join(d.remoteDir, 'late one.bin'))).rejects.toMatchObject({
      code: 'ENOENT',
    })
  }, 30_000)

  test('a tampered remote file is a wrong hash; a truncated one pending, a longer one wrong', async () => {
    const d = await dirs()
    const m = await mountRclone({ remoteDir: d.remoteDir, mountDir: d.mountDir })
    const bytes = randomBytes(64 * 1024)
    const expected = [
      await put(d.mountDir, 'a.bin', bytes),
      await put(d.mountDir, 'b.bin', Buffer.from('bbbb')),
    ]
    const ok = await waitForRemote({
      remotePath: m.remote,
      expected,
      hash: 'sha256',
      timeoutMs: 10_000,
      intervalMs: 200,
    })
    expect(ok.pending).toBe(0)

    const tampered = Buffer.from(bytes)
    tampered[1000] = (tampered[1000]! + 1) % 256
    await writeFile(path.join(d.remoteDir, 'a.bin'), tampered)
    const polls: number[] = []
    const t0 = Date.now()
    const err = await waitForRemote({
      remotePath: m.remote,
      expected,
      hash: 'sha256',
      timeoutMs: 20_000,
      intervalMs: 300,
      onPoll: (p) => polls.push(p),
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RemoteVerifyError)
    expect(err).toMatchObject({ reason: 'mismatch', comparison: { wrongHash: ['a.bin'] } })
    expect((err as Error).message).toContain('wrong sha256: "a.bin"')
    expect(polls).toEqual([1, 1])
    expect(Date.now() - t0).toBeLessThan(5000)

    // smaller: maybe still uploading, so it waits (and times out)
    await writeFile(path.join(d.remoteDir, 'a.bin'), bytes.subarray(0, 100))
    const partial = await waitForRemote({
      remotePath: m.remote,
      expected,
      timeoutMs: 1500,
      intervalMs: 300,
    }).catch((e: unknown) => e)
    expect(partial).toMatchObject({ reason: 'timeout' })
    expect((partial as Error).message).toContain('(1 partly uploaded)')

    // longer at the end of an upload: wrong after two polls
    await writeFile(path.join(d.remoteDir, 'b.bin'), 'bbbbb')
    await writeFile(path.join(d.remoteDir, 'a.bin'), bytes)
    const longer = await waitForRemote({
      remotePath: m.remote,
      expected,
      timeoutMs: 20_000,
      intervalMs: 300,
    }).catch((e: unknown) => e)
    expect(longer).toMatchObject({ reason: 'mismatch' })
    expect((longer as Error).message).toContain('wrong size: "b.bin"')
    await m.unmount()
  }, 60_000)

  test('waitForRemote stops when aborted', async () => {
    const d = await dirs()
    const ac = new AbortController()
    setTimeout(() => ac.abort(new Error('stop now')), 300)
    const t0 = Date.now()
    await expect(
      waitForRemote({
        remotePath: `:local:${d.remoteDir}`,
        expected: [entry('x', Buffer.from('x'))],
        timeoutMs: 30_000,
        intervalMs: 5000,
        signal: ac.signal,
      }),
    ).rejects.toThrow('stop now')
    expect(Date.now() - t0).toBeLessThan(2000)
  })

  test('a killed rclone leaves ENOTCONN until unmount', async () => {
    const d = await dirs()
    const m = await mountRclone({ remoteDir: d.remoteDir, mountDir: d.mountDir })
    await writeFile(path.join(d.mountDir, 'f'), 'x')
    await m.kill9()
    const err = await stat(d.mountDir).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'ENOTCONN' })
    expect(isNotConnected(err)).toBe(true)
    expect((await readMountinfo()).find((x) => x.mountPoint === d.mountDir)?.fsType).toBe(
      'fuse.rclone',
    )
    await m.unmount()
    expect((await stat(d.mountDir)).isDirectory()).toBe(true)
    expect((await readMountinfo()).some((x) => x.mountPoint === d.mountDir)).toBe(false)
    expect(await readFile(path.join(d.remoteDir, 'f'), 'utf8')).toBe('x')
  })
})
