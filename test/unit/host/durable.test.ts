import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import {
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  readlink,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  mkdirDurable,
  renameDurable,
  tempPathFor,
  writeFileDurable,
} from '../../../lib/host/durable.js'

// the temp name's random part, fixed by a test that plants something at it
const fixed = vi.hoisted(() => ({ hex: null as string | null }))
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>()
  return {
    ...real,
    randomBytes: (n: number) =>
      fixed.hex === null ? real.randomBytes(n) : Buffer.from(fixed.hex, 'hex'),
  }
})

// a file system without hard links (vfat, some FUSE): link(2) answers EPERM
const noLinks = vi.hoisted(() => ({ on: false }))
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>()
  const link: typeof real.link = (a, b) =>
    noLinks.on
      ? Promise.reject(
          Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' }),
        )
      : real.link(a, b)
  return { ...real, default: { ...real, link }, link }
})

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ss-durable-'))
})
afterEach(async () => {
  fixed.hex = null
  noLinks.on = false
  await rm(dir, { recursive: true, force: true })
})

/** Names in dir that look like our temp files. */
async function temps(d = dir): Promise<string[]> {
  return (await readdir(d)).filter((n) => n.endsWith('.tmp'))
}

describe('writeFileDurable', () => {
  it('writes the whole file, replacing an old one, and leaves no temp file', async () => {
    const file = path.join(dir, 'state.json')
    await writeFileDurable(file, 'old\n')
    const big = JSON.stringify({ data: 'x'.repeat(1 << 20) })
    await writeFileDurable(file, big)
    expect(await readFile(file, 'utf8')).toBe(big)
    await writeFileDurable(file, Buffer.from([1, 2, 3]))
    expect([...(await readFile(file))]).toEqual([1, 2, 3])
    expect(await temps()).toEqual([])
  })

  it('mode 0600 by default; the mode asked for exactly, whatever the umask', async () => {
    const a = path.join(dir, 'a')
    const b = path.join(dir, 'b')
    await writeFileDurable(a, 'x')
    const old = process.umask(0o077)
    try {
      await writeFileDurable(b, 'x', { mode: 0o644 })
    } finally {
      process.umask(old)
    }
    expect((await stat(a)).mode & 0o7777).toBe(0o600)
    expect((await stat(b)).mode & 0o7777).toBe(0o644)
    // a rewrite sets the mode again (the old file's mode is not inherited)
    await writeFileDurable(b, 'y')
    expect((await stat(b)).mode & 0o7777).toBe(0o600)
  })

  it('a symlink at the file is replaced, never written through: its target stays as it was', async () => {
    const victim = path.join(dir, 'victim')
    await writeFile(victim, 'precious\n')
    const file = path.join(dir, 'last-used.json')
    await symlink(victim, file)
    await writeFileDurable(file, '{"new":true}\n')
    expect(await readFile(victim, 'utf8')).toBe('precious\n')
    expect((await lstat(file)).isSymbolicLink()).toBe(false)
    expect(await readFile(file, 'utf8')).toBe('{"new":true}\n')
  })

  it('a symlink planted at the temp name is not followed: the write fails, its target unchanged', async () => {
    const victim = path.join(dir, 'victim')
    await writeFile(victim, 'precious\n')
    const file = path.join(dir, 'state.json')
    await writeFileDurable(file, 'old\n')
    fixed.hex = 'deadbeef'
    const tmp = tempPathFor(file)
    expect(path.dirname(tmp)).toBe(dir)
    await symlink(victim, tmp)
    await expect(writeFileDurable(file, 'new\n')).rejects.toMatchObject({ code: 'EEXIST' })
    expect(await readFile(victim, 'utf8')).toBe('precious\n')
    expect(await readFile(file, 'utf8')).toBe('old\n')
    // a dangling one (a file it would create) is not followed either
    await rm(tmp)
    const target = path.join(dir, 'created-through-link')
    await symlink(target, tmp)
    await expect(writeFileDurable(file, 'new\n')).rejects.toMatchObject({ code: 'EEXIST' })
    expect(existsSync(target)).toBe(false)
    expect(await readlink(tmp)).toBe(target)
  })

  it('a failed rename (the name is a directory) leaves no temp file and the old content', async () => {
    const file = path.join(dir, 'taken')
    await mkdir(file)
    await writeFile(path.join(file, 'inside'), 'keep')
    await expect(writeFileDurable(file, 'new')).rejects.toMatchObject({ code: 'EISDIR' })
    expect(await temps()).toEqual([])
    expect((await stat(file)).isDirectory()).toBe(true)
    expect(await readFile(path.join(file, 'inside'), 'utf8')).toBe('keep')
  })

  it('a missing directory fails before anything is written', async () => {
    const file = path.join(dir, 'no', 'such', 'file')
    await expect(writeFileDurable(file, 'x')).rejects.toMatchObject({ code: 'ENOENT' })
    expect(await readdir(dir)).toEqual([])
  })

  it('noReplace: a new name is written; an existing one is EEXIST and left as it was', async () => {
    const file = path.join(dir, 'shipshape.lock')
    await writeFileDurable(file, 'first\n', { noReplace: true })
    expect(await readFile(file, 'utf8')).toBe('first\n')
    await expect(writeFileDurable(file, 'second\n', { noReplace: true })).rejects.toMatchObject({
      code: 'EEXIST',
    })
    expect(await readFile(file, 'utf8')).toBe('first\n')
    // a dangling symlink counts as taken: never created through
    const link = path.join(dir, 'planted')
    await symlink(path.join(dir, 'elsewhere'), link)
    await expect(writeFileDurable(link, 'x', { noReplace: true })).rejects.toMatchObject({
      code: 'EEXIST',
    })
    expect(existsSync(path.join(dir, 'elsewhere'))).toBe(false)
    expect(await temps()).toEqual([])
  })

  it('noReplace without hard links: refused (EPERM), nothing written — exclusive or nothing; orCheckFirst writes', async () => {
    noLinks.on = true
    const file = path.join(dir, 'lock')
    await expect(writeFileDurable(file, 'a', { noReplace: true })).rejects.toMatchObject({
      code: 'EPERM',
    })
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' })
    expect(await temps()).toEqual([])
    await writeFileDurable(file, 'b', { noReplace: 'orCheckFirst' })
    expect(await readFile(file, 'utf8')).toBe('b')
    await expect(writeFileDurable(file, 'c', { noReplace: 'orCheckFirst' })).rejects.toMatchObject({
      code: 'EEXIST',
    })
    expect(await readFile(file, 'utf8')).toBe('b')
  })

  it('parallel noReplace writers of one name: exactly one wins', async () => {
    const file = path.join(dir, 'one')
    const rs = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => writeFileDurable(file, `w${i}`, { noReplace: true })),
    )
    const won = rs.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []))
    expect(won).toHaveLength(1)
    expect(await readFile(file, 'utf8')).toBe(`w${won[0]}`)
    expect(await temps()).toEqual([])
  })
})

describe('renameDurable', () => {
  it('publishes a file written under a temp name over its name, mode kept', async () => {
    const file = path.join(dir, 'archive.tar')
    await writeFile(file, 'old')
    await writeFile(`${file}.part`, 'new', { mode: 0o600 })
    await renameDurable(`${file}.part`, file)
    expect(await readFile(file, 'utf8')).toBe('new')
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    await expect(stat(`${file}.part`)).rejects.toThrow(/ENOENT/)
  })
})

describe('mkdirDurable', () => {
  it('creates every missing level 0700 and returns the first; an existing dir: undefined', async () => {
    const deep = path.join(dir, 'a', 'b', 'c')
    expect(await mkdirDurable(deep)).toBe(path.join(dir, 'a'))
    for (const d of ['a', 'a/b', 'a/b/c'])
      expect((await stat(path.join(dir, d))).mode & 0o777).toBe(0o700)
    expect(await mkdirDurable(deep)).toBeUndefined()
    expect(await mkdirDurable(path.join(dir, 'x'), 0o750)).toBe(path.join(dir, 'x'))
    expect((await stat(path.join(dir, 'x'))).mode & 0o777).toBe(0o750)
  })
})

describe('writeFileDurable across kill -9', { timeout: 60_000 }, () => {
  const built = path.join(root, 'dist/lib/host/durable.js')
  // a child rewriting one JSON file as fast as it can, killed at a random moment
  const SCRIPT = `
import { writeFileDurable } from ${JSON.stringify(pathToFileURL(built).href)}
const file = process.argv[1]
for (let n = 0; ; n++) {
  const body = 'x'.repeat(1000 + (n % 7) * 50_000)
  await writeFileDurable(file, JSON.stringify({ n, length: body.length, body }))
  if (n === 0) process.stdout.write('written\\n')
}
`
  it.runIf(existsSync(built))(
    'the file is always absent or whole, never empty or torn (20 rounds)',
    async () => {
      const file = path.join(dir, 'state.json')
      let whole = 0
      for (let round = 0; round < 20; round++) {
        const child = spawn(process.execPath, ['--input-type=module', '-e', SCRIPT, file], {
          stdio: ['ignore', 'pipe', 'inherit'],
        })
        // half the rounds die before the first write is through, half in the middle of the loop
        if (round % 2) await once(child.stdout, 'data')
        await new Promise((r) => setTimeout(r, Math.random() * 40))
        child.kill('SIGKILL')
        await once(child, 'exit')
        let text: string
        try {
          text = await readFile(file, 'utf8')
        } catch (err) {
          expect((err as NodeJS.ErrnoException).code).toBe('ENOENT')
          continue
        }
        const doc = JSON.parse(text) as { n: number; length: number; body: string }
        expect(doc.body.length).toBe(doc.length)
        whole++
      }
      expect(whole).toBeGreaterThan(0)
    },
  )
})
