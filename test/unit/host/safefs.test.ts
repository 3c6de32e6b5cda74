/**
 * lib/host/safefs.ts on a real file system (temp dirs): what it refuses and what it never does.
 */
import { execFileSync } from 'node:child_process'
import { constants as fsc, existsSync } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeBackup } from '../../../lib/assets/backup.js'
import { copyTree, readBackTree } from '../../../lib/assets/copy.js'
import { compareEntries, walkTree } from '../../../lib/assets/manifest.js'
import { Dir, TreeChangedError } from '../../../lib/host/safefs.js'
import { Tree } from '../../../lib/host/safefs-tree.js'

let tmp: string
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'ss-safefs-'))
})
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true })
})
const isRoot = process.geteuid?.() === 0

describe('safefs', () => {
  it('a device or fifo where a file was is refused, not opened; a link where a directory was too', async () => {
    const root = path.join(tmp, 'dev')
    await fs.mkdir(path.join(root, 'sub'), { recursive: true })
    execFileSync('mkfifo', [path.join(root, 'fifo')])
    if (isRoot) execFileSync('mknod', [path.join(root, 'null'), 'c', '1', '3'])
    await fs.symlink('/etc', path.join(root, 'link'))
    const d = await Dir.open(root)
    try {
      await expect(d.openFile('fifo', fsc.O_RDONLY)).rejects.toThrow(/not a regular file/)
      if (isRoot)
        await expect(d.openFile('null', fsc.O_RDONLY)).rejects.toThrow(/not a regular file/)
      await expect(d.openFile('link', fsc.O_RDONLY)).rejects.toBeInstanceOf(TreeChangedError)
      await expect(d.openDir('link')).rejects.toThrow(/now a symlink/)
      // no fd of ours is left on the fifo: a writer that needs a reader finds none (ENXIO)
      const w = await fs
        .open(path.join(root, 'fifo'), fsc.O_WRONLY | fsc.O_NONBLOCK)
        .then(async (fh) => (await fh.close(), 'opened'))
        .catch((e: NodeJS.ErrnoException) => e.code)
      expect(w).toBe('ENXIO')
    } finally {
      await d.close()
    }
    // a closed Dir builds no path from its (maybe reused) descriptor number
    expect(() => d.at('x')).toThrow(/after it was closed/)
  })

  it('a directory moved and another put in its place is another inode: refused', async () => {
    const root = path.join(tmp, 'moved')
    await fs.mkdir(path.join(root, 'a'), { recursive: true })
    const ino = (await fs.stat(path.join(root, 'a'), { bigint: true })).ino
    await fs.rename(path.join(root, 'a'), path.join(root, 'a.old'))
    await fs.mkdir(path.join(root, 'a'))
    const t = await Tree.open(root, { inodeOf: (rel) => (rel === 'a' ? ino : undefined) })
    try {
      await expect(t.withDir('a', async () => 'in')).rejects.toThrow(/inode differs/)
    } finally {
      await t.close()
    }
  })

  it('a same-size write with the mtime put back (touch -d) is seen: by the recheck, and by the backup', async () => {
    const root = path.join(tmp, 'ctime')
    await fs.mkdir(root, { recursive: true })
    const f = path.join(root, 'song.mp3')
    await fs.writeFile(f, 'aaaa')
    const t = new Date('2021-01-01T00:00:00Z')
    await fs.utimes(f, t, t)
    const before = await walkTree(root)
    await new Promise((r) => setTimeout(r, 20))
    await fs.writeFile(f, 'bbbb')
    await fs.utimes(f, t, t)
    const after = await walkTree(root)
    const opts = { modes: false, mtimes: true, owners: false }
    expect(compareEntries(before.entries, after.entries, opts)).toEqual([])
    expect(
      compareEntries(before.entries, after.entries, { ...opts, ctimes: true }).map((m) => m.what),
    ).toEqual(['ctime'])
    await expect(
      writeBackup({
        root,
        entries: before.entries,
        archive: path.join(tmp, 'ctime.tar'),
        compression: 'none',
        hashes: ['sha256'],
      }),
    ).rejects.toThrow(/song\.mp3 changed while backing up \(changed since the walk \(ctime\)\)/)
  })

  it.runIf(existsSync('/dev/shm'))(
    'a link on the way to the destination on the mount: refused, nothing written where it points',
    async () => {
      // the "mount": a tmpfs; an app with it bind-mounted planted mnt/link → a local directory
      const mnt = await fs.mkdtemp('/dev/shm/ss-mnt-')
      const elsewhere = path.join(tmp, 'elsewhere')
      await fs.mkdir(elsewhere)
      await fs.symlink(elsewhere, path.join(mnt, 'link'))
      const src = path.join(tmp, 'src-mnt')
      await fs.mkdir(src)
      await fs.writeFile(path.join(src, 'a.mp3'), 'a')
      const sha256 = execFileSync('sha256sum', [path.join(src, 'a.mp3')])
        .toString()
        .split(' ')[0]!
      const entries = (await walkTree(src)).entries.map((e) => ({ ...e, hashes: { sha256 } }))
      try {
        const dest = path.join(mnt, 'link', 'music')
        const opts = { source: src, dest, mount: mnt, entries, doneLog: path.join(tmp, 'm.log') }
        await expect(copyTree(opts)).rejects.toThrow(/link.*now a symlink/)
        expect(await fs.readdir(elsewhere)).toEqual([]) // not even the directory was made there
        await expect(readBackTree({ dest, mount: mnt, entries })).rejects.toThrow(/now a symlink/)
        // the same copy to a real directory on the mount goes through, parents made on the way
        const ok = await copyTree({ ...opts, dest: path.join(mnt, 'sub', 'music') })
        expect(ok.copied).toBe(1)
        expect(await fs.readFile(path.join(mnt, 'sub', 'music', 'a.mp3'), 'utf8')).toBe('a')
      } finally {
        await fs.rm(mnt, { recursive: true, force: true })
      }
    },
  )

  it('setuid and setgid bits are not put on the copy (root owns it)', async () => {
    const src = path.join(tmp, 'suid')
    await fs.mkdir(src, { recursive: true })
    await fs.writeFile(path.join(src, 'tool'), '#!/bin/sh\n')
    await fs.chmod(path.join(src, 'tool'), 0o6755)
    const { entries } = await walkTree(src)
    const withHash = entries.map((e) => ({
      ...e,
      hashes: {
        sha256: '2eb1a2b8a5b1c8c6c37a1b3b6c0c2d1a3c7e3f7d0e5c2a1b9a8f7e6d5c4b3a29'.replace(
          /.*/,
          execFileSync('sha256sum', [path.join(src, 'tool')])
            .toString()
            .split(' ')[0]!,
        ),
      },
    }))
    const dest = path.join(tmp, 'suid-dest')
    const r = await copyTree({
      source: src,
      dest,
      entries: withHash,
      doneLog: path.join(tmp, 'suid.log'),
    })
    expect(r.modesKept).toBe(true)
    expect((await fs.stat(path.join(dest, 'tool'))).mode & 0o7777).toBe(0o755)
  })
})
