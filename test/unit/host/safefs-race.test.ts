/**
 * A tree that changes under root: a subdirectory of the asset (or of the destination, or of the
 * kept original) becomes a symlink to a victim directory whose files have the SAME names, sizes
 * and mtimes as the real ones — so a path-based open (O_NOFOLLOW guards the last component
 * only) and a size/mtime recheck would take the victim's bytes for the asset's, and a path-based
 * rm -r would delete the victim's files.
 *
 * First at the worst moment, deterministically (through the operation's own callbacks); then as
 * a real race: another process flips the subdirectory as fast as it can while the operation runs,
 * many rounds each. Whatever the outcome of a round (done, or stopped with the path named), no
 * victim byte is in a backup or a copy, no victim hash is reported as the tree's, and no victim
 * file is gone.
 */
import { createHash } from 'node:crypto'
import { renameSync, symlinkSync } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeBackup } from '../../../lib/assets/backup.js'
import { copyTree, readBackTree, removeCopy } from '../../../lib/assets/copy.js'
import { walkTree } from '../../../lib/assets/manifest.js'
import type { ManifestEntry } from '../../../lib/shared/manifest-types.js'
import { Dir, TreeChangedError } from '../../../lib/host/safefs.js'
import { removeTree } from '../../../lib/host/safefs-remove.js'
import { filesHolding, startFlipper, VICTIM_MARK, victimNow } from '../../support/flipper.js'

const ROUNDS = Number(process.env.SHIPSHAPE_RACE_ROUNDS ?? 8)
const FILES = 40
const SIZE = 3000
const MTIME = new Date('2020-05-06T07:08:09.123Z')

let tmp: string
let seq = 0

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'ss-race-'))
})
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true })
})

const body = (tag: string, i: number) => {
  const head = `${tag} ${i} `
  return head + 'x'.repeat(SIZE - head.length - 1) + '\n'
}

interface Scene {
  root: string
  src: string
  victim: string
  victimHashes: Map<string, string>
}

/**
 * src/{a,sub,z}/f0..f39 (real content), victim/f0..f39 (VICTIM_MARK): same names, sizes and
 * mtimes, so only the inode tells them apart.
 */
async function scene(): Promise<Scene> {
  const root = path.join(tmp, `s${++seq}`)
  const src = path.join(root, 'src')
  const victim = path.join(root, 'victim')
  for (const d of ['a', 'sub', 'z']) {
    await fs.mkdir(path.join(src, d), { recursive: true })
    for (let i = 0; i < FILES; i++) {
      const f = path.join(src, d, `f${i}`)
      await fs.writeFile(f, body(`real-${d}`, i))
      await fs.utimes(f, MTIME, MTIME)
    }
  }
  await fs.mkdir(victim, { recursive: true })
  const victimHashes = new Map<string, string>()
  for (let i = 0; i < FILES; i++) {
    const b = body(VICTIM_MARK, i)
    const f = path.join(victim, `f${i}`)
    await fs.writeFile(f, b)
    await fs.utimes(f, MTIME, MTIME)
    victimHashes.set(`f${i}`, createHash('sha256').update(b).digest('hex'))
  }
  return { root, src, victim, victimHashes }
}

/** `dir` becomes a symlink to `victim` (the real one moved aside, as a container can do). */
async function swapForLink(dir: string, victim: string): Promise<void> {
  await fs.rename(dir, `${dir}.real`)
  await fs.symlink(victim, dir)
}

async function withHashes(root: string, entries: ManifestEntry[]): Promise<ManifestEntry[]> {
  return Promise.all(
    entries.map(async (e) =>
      e.kind !== 'file'
        ? e
        : {
            ...e,
            hashes: {
              sha256: createHash('sha256')
                .update(await fs.readFile(path.join(root, e.path)))
                .digest('hex'),
            },
          },
    ),
  )
}

const settle = <T>(p: Promise<T>) =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  )

describe('at the worst moment (deterministic)', () => {
  it('backup: a directory swapped for a link mid-backup → stopped naming it, no victim byte archived', async () => {
    const s = await scene()
    const { entries } = await walkTree(s.src)
    const archive = path.join(s.root, 'backup.tar')
    // at the first progress (a/…), before the backup opens anything below sub/
    const swap = swapOnce(path.join(s.src, 'sub'), s.victim)
    const r = await settle(
      writeBackup({
        root: s.src,
        entries,
        archive,
        compression: 'none',
        hashes: ['sha256'],
        onProgress: swap.now,
      }),
    )
    expect(swap.done()).toBe(true)
    expect(r.ok).toBe(false)
    expect(r.ok ? '' : String(r.error)).toMatch(/sub.*now a symlink/)
    expect(r.ok ? null : r.error).toBeInstanceOf(TreeChangedError)
    // the mark is in the victim's own files, nowhere else (no archive, no .part)
    expect((await filesHolding(s.root, VICTIM_MARK)).sort()).toEqual(
      [...s.victimHashes.keys()].map((n) => path.join(s.victim, n)).sort(),
    )
    expect(await fs.readdir(s.root)).not.toContain('backup.tar')
    expect(await victimNow(s.victim)).toEqual(s.victimHashes)
  })

  it('copy: a source directory swapped for a link mid-copy → stopped, no victim byte on the destination', async () => {
    const s = await scene()
    const entries = await withHashes(s.src, (await walkTree(s.src)).entries)
    const dest = path.join(s.root, 'dest')
    const swap = swapOnce(path.join(s.src, 'sub'), s.victim)
    const r = await settle(
      copyTree({
        source: s.src,
        dest,
        entries,
        doneLog: path.join(s.root, 'copied.log'),
        concurrency: 1,
        onProgress: swap.now,
      }),
    )
    expect(swap.done()).toBe(true)
    expect(r.ok).toBe(false)
    expect(await filesHolding(dest, VICTIM_MARK)).toEqual([])
    expect(await victimNow(s.victim)).toEqual(s.victimHashes)
  })

  it('read-back and undo of a copy whose destination holds a link to the victim: victim neither read nor deleted', async () => {
    const s = await scene()
    const entries = await withHashes(s.src, (await walkTree(s.src)).entries)
    const dest = path.join(s.root, 'dest')
    await copyTree({ source: s.src, dest, entries, doneLog: path.join(s.root, 'copied.log') })
    // an app writing into the destination after the swap plants the link
    await swapForLink(path.join(dest, 'sub'), s.victim)
    const back = await settle(readBackTree({ dest, entries }))
    const victimSet = new Set(s.victimHashes.values())
    if (back.ok) {
      expect(back.value.filter((e) => victimSet.has(e.hashes?.sha256 ?? ''))).toEqual([])
    } else {
      expect(back.error).toBeInstanceOf(TreeChangedError)
    }
    const removed = await removeCopy({ dest, entries })
    expect(removed.leftovers).toContain('sub')
    expect(await victimNow(s.victim)).toEqual(s.victimHashes)
    // the rest went: a.* and z.* are not there any more
    expect((await fs.readdir(dest)).sort()).toEqual(['sub', 'sub.real'])
  })

  it('removal: a subdirectory swapped for a link after it was looked at → stopped, victim intact', async () => {
    const s = await scene()
    const parent = await Dir.open(s.root)
    try {
      const r = await settle(
        removeTree(parent, 'src', {
          keep: (rel) => {
            if (rel === 'sub') swapNow(path.join(s.src, 'sub'), s.victim)
            return null
          },
        }),
      )
      expect(r.ok).toBe(false)
      expect(r.ok ? null : r.error).toBeInstanceOf(TreeChangedError)
      expect(String(r.ok ? '' : r.error)).toMatch(/src\/sub.*now a symlink/)
    } finally {
      await parent.close()
    }
    expect(await victimNow(s.victim)).toEqual(s.victimHashes)
  })

  it('removal: swapped once its directory is open → the walked directory is emptied, never the victim', async () => {
    const s = await scene()
    const parent = await Dir.open(s.root)
    try {
      await settle(
        removeTree(parent, 'src', {
          keep: (rel) => {
            if (rel === 'sub/f0') swapNow(path.join(s.src, 'sub'), s.victim)
            return null
          },
        }),
      )
    } finally {
      await parent.close()
    }
    expect(await victimNow(s.victim)).toEqual(s.victimHashes)
    // the unlinks went to the directory that was opened (moved aside to sub.real)
    expect(await fs.readdir(path.join(s.src, 'sub.real'))).toEqual([])
  })
})

/** A callback that swaps `dir` for a link the first time it is called. */
function swapOnce(dir: string, victim: string): { now: () => void; done: () => boolean } {
  let swapped = false
  return {
    now: () => {
      if (swapped) return
      swapped = true
      swapNow(dir, victim)
    },
    done: () => swapped,
  }
}

/** A synchronous swap (from inside an operation's callback: it gets no turn in between). */
function swapNow(dir: string, victim: string): void {
  renameSync(dir, `${dir}.real`)
  symlinkSync(victim, dir)
}

describe(
  `as a race: another process flips a subdirectory (${ROUNDS} rounds each)`,
  { timeout: 180_000 },
  () => {
    /** ROUNDS fresh scenes; after each, every victim file is still there, unchanged */
    const rounds = async (body: (s: Scene) => Promise<void>) => {
      for (let round = 0; round < ROUNDS; round++) {
        const s = await scene()
        await body(s)
        expect(await victimNow(s.victim)).toEqual(s.victimHashes)
      }
    }
    /** `op` while another process flips `dir` to a link to the victim and back */
    const whileFlipping = async <T>(s: Scene, dir: string, op: () => Promise<T>) => {
      const f = await startFlipper(dir, s.victim)
      try {
        return await settle(op())
      } finally {
        await f.stop()
      }
    }
    const victimHashesIn = (s: Scene, entries: ManifestEntry[]) => {
      const victim = new Set(s.victimHashes.values())
      return entries.filter((e) => victim.has(e.hashes?.sha256 ?? ''))
    }

    it('walk: never lists a victim file', async () => {
      await rounds(async (s) => {
        const inodes = new Set<string>()
        for (const n of s.victimHashes.keys())
          inodes.add(String((await fs.lstat(path.join(s.victim, n))).ino))
        const r = await whileFlipping(s, path.join(s.src, 'sub'), () => walkTree(s.src))
        if (r.ok) expect(r.value.entries.filter((e) => inodes.has(e.ino ?? ''))).toEqual([])
      })
    })

    it('backup: never archives a victim byte', async () => {
      await rounds(async (s) => {
        const { entries } = await walkTree(s.src)
        const archive = path.join(s.root, 'backup.tar')
        const r = await whileFlipping(s, path.join(s.src, 'sub'), () =>
          writeBackup({ root: s.src, entries, archive, compression: 'none', hashes: ['sha256'] }),
        )
        if (r.ok) expect(victimHashesIn(s, r.value.entries)).toEqual([])
        expect(
          (await fs.readFile(archive).catch(() => Buffer.alloc(0))).includes(VICTIM_MARK),
        ).toBe(false)
      })
    })

    it('copy: never copies a victim byte onto the destination', async () => {
      await rounds(async (s) => {
        const entries = await withHashes(s.src, (await walkTree(s.src)).entries)
        const dest = path.join(s.root, 'dest')
        await whileFlipping(s, path.join(s.src, 'sub'), () =>
          copyTree({ source: s.src, dest, entries, doneLog: path.join(s.root, 'copied.log') }),
        )
        expect(await filesHolding(dest, VICTIM_MARK)).toEqual([])
      })
    })

    it('read-back and undo on a destination with a flipping subdirectory: victim neither read nor deleted', async () => {
      await rounds(async (s) => {
        const entries = await withHashes(s.src, (await walkTree(s.src)).entries)
        const dest = path.join(s.root, 'dest')
        await copyTree({ source: s.src, dest, entries, doneLog: path.join(s.root, 'copied.log') })
        const flipping = path.join(dest, 'sub')
        const back = await whileFlipping(s, flipping, () => readBackTree({ dest, entries }))
        if (back.ok) expect(victimHashesIn(s, back.value)).toEqual([])
        await whileFlipping(s, flipping, () => removeCopy({ dest, entries }))
      })
    })

    it('removal of a kept original: never deletes a victim file', async () => {
      await rounds(async (s) => {
        const parent = await Dir.open(s.root)
        try {
          await whileFlipping(s, path.join(s.src, 'sub'), () => removeTree(parent, 'src'))
        } finally {
          await parent.close()
        }
      })
    })
  },
)
