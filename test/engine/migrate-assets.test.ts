/**
 * `shipshape migrate-assets` end to end: the built CLI, a real rclone FUSE mount
 * (`rclone mount :local:REMOTE MNT`), real containers on the private engine bind-mounting the
 * asset. Every case checks the state of the disk, the remote and the container afterwards.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, expect } from 'vitest'
import { runMigrateAssets } from '../../lib/migrate-assets/index.js'
import { createOutput } from '../../lib/cli/output.js'
import { loadConfig } from '../../lib/config/index.js'
import { parseEngineAddress } from '../../lib/shared/address.js'
import { connectEngine } from '../../lib/docker/engine.js'
import { RefusedError } from '../../lib/errors.js'
import { CLI, runCli, type CliResult } from '../cli/run.js'
import { busyboxImage, docker, dockerOk } from '../harness/fixtures.js'
import { mountRclone, rcloneUsable, type RcloneMount } from '../harness/rclone.js'
import { describeEngine, engineTest as test } from '../harness/suite.js'
import { exists, treeHashes } from '../harness/tree.js'
import type { PrivateEngine } from '../harness/engine.js'

const MB = 1024 * 1024

/**
 * Like treeHashes, with names as bytes (keys: the relative path's bytes in hex): a name that is
 * not UTF-8 is compared exactly, not through a lossy decoding.
 */
async function treeHashesBytes(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const slash = Buffer.from('/')
  async function walk(rel: Buffer | null): Promise<void> {
    const abs = rel ? Buffer.concat([Buffer.from(dir), slash, rel]) : Buffer.from(dir)
    for (const d of await fs.readdir(abs, { encoding: 'buffer', withFileTypes: true })) {
      const name = d.name as unknown as Buffer
      const r = rel ? Buffer.concat([rel, slash, name]) : name
      const p = Buffer.concat([Buffer.from(dir), slash, r])
      const key = r.toString('hex')
      if (d.isDirectory()) {
        out.set(key + '/', 'dir')
        await walk(r)
      } else if (d.isSymbolicLink()) {
        out.set(key, `link:${(await fs.readlink(p, { encoding: 'buffer' })).toString('hex')}`)
      } else
        out.set(
          key,
          createHash('sha256')
            .update(await fs.readFile(p))
            .digest('hex'),
        )
    }
  }
  await walk(null)
  return out
}

/** Latin-1 (not UTF-8) names, as an old music collection has them: a directory and files. */
async function addLatin1(dir: string): Promise<void> {
  const b = (...parts: (string | number[])[]) =>
    Buffer.concat(parts.map((x) => (typeof x === 'string' ? Buffer.from(x) : Buffer.from(x))))
  const sub = b(dir, '/', 'Bj', [0xf6], 'rk') // 'Björk'
  await fs.mkdir(sub)
  await fs.writeFile(
    b(dir, '/', 'Bj', [0xf6], 'rk', '/', 'J', [0xf3], 'ga.mp3'),
    randomBytes(70_000),
  )
  await fs.writeFile(b(dir, '/', 'caf', [0xe9], '.mp3'), randomBytes(50_000))
  await fs.writeFile(b(dir, '/', 'x'.repeat(110), [0xff], '.mp3'), randomBytes(1000)) // PAX path
}

interface Fixture {
  root: string
  source: string
  remote: string
  mnt: string
  state: string
  backups: string
  config: string
  container: string
  mount: RcloneMount | null
  before: Map<string, string>
}

let seq = 0

describeEngine(
  'migrate-assets',
  (getEngine) => {
    let image: string
    let rcloneProblem: string | null = null
    const fixtures: Fixture[] = []

    beforeAll(async () => {
      image = await busyboxImage(getEngine())
      const usable = await rcloneUsable()
      if (!usable.ok) {
        rcloneProblem = usable.reason
        if (process.env.SHIPSHAPE_REQUIRE_RCLONE === '1') {
          throw new Error(`rclone/FUSE unusable (SHIPSHAPE_REQUIRE_RCLONE=1): ${usable.reason}`)
        }
        process.stderr.write(
          `\n!!! SKIPPED migrate-assets cases: rclone/FUSE unusable: ${usable.reason}\n`,
        )
      }
    })

    afterEach(async () => {
      const engine = getEngine()
      for (const f of fixtures.splice(0)) {
        await docker(engine, ['rm', '-f', f.container])
        await f.mount?.unmount()
        await fs.rm(f.root, { recursive: true, force: true }).catch(() => {})
      }
    })

    afterAll(async () => {
      for (const f of fixtures) await f.mount?.unmount()
    })

    /** Files with odd names, nested dirs, an empty dir; ~sizeMb of random bytes in `count` files. */
    async function makeSource(dir: string, count = 12, sizeMb = 3): Promise<void> {
      await fs.mkdir(path.join(dir, 'album one/disc é'), { recursive: true })
      await fs.mkdir(path.join(dir, 'empty dir'), { recursive: true })
      const names = [
        'a.mp3',
        'album one/Ça va.mp3',
        'album one/disc é/-lead dash.mp3',
        'e\u0301cole nfd.mp3',
      ]
      for (let i = 0; i < count; i++) {
        const name = names[i] ?? `album one/track ${i}.mp3`
        const size = Math.floor((sizeMb * MB) / count) + i
        await fs.writeFile(path.join(dir, name), randomBytes(size))
        await fs.utimes(
          path.join(dir, name),
          new Date('2021-03-04T05:06:07Z'),
          new Date('2021-03-04T05:06:07Z'),
        )
      }
      await fs.writeFile(path.join(dir, 'zero.txt'), '')
      await fs.chmod(path.join(dir, 'a.mp3'), 0o640)
    }

    async function setup(
      engine: PrivateEngine,
      o: {
        allowOther?: boolean
        writeBack?: string
        user?: string
        health?: string[]
        mount?: boolean
        remoteOn?: string
        count?: number
        sizeMb?: number
        source?: string
        keepOriginal?: string
      } = {},
    ): Promise<Fixture> {
      const root = await fs.mkdtemp(path.join(os.tmpdir(), 'ss-mig-'))
      const id = `${process.pid}-${++seq}`
      const f: Fixture = {
        root,
        source: path.join(root, 'srv/app/music'),
        remote: o.remoteOn ?? path.join(root, 'remote'),
        mnt: path.join(root, 'mnt'),
        state: path.join(root, 'state'),
        backups: path.join(root, 'backups'),
        config: path.join(root, 'shipshape.yaml'),
        container: `ss-mig-app-${id}`,
        mount: null,
        before: new Map(),
      }
      fixtures.push(f)
      await makeSource(f.source, o.count, o.sizeMb)
      f.before = await treeHashes(f.source)
      await fs.mkdir(f.remote, { recursive: true })
      await fs.mkdir(f.mnt, { recursive: true })
      if (o.mount !== false) {
        f.mount = await mountRclone({
          remoteDir: f.remote,
          mountDir: f.mnt,
          allowOther: o.allowOther ?? true,
          ...(o.writeBack ? { vfsCacheMode: 'writes' as const, writeBack: o.writeBack } : {}),
        })
      }
      await dockerOk(engine, [
        'run',
        '-d',
        '--name',
        f.container,
        '--network',
        'none',
        ...(o.user ? ['--user', o.user] : []),
        '-v',
        `${f.source}:/music`,
        image,
        // PID 1 ignores SIGTERM unless it traps it: without this every stop waits 10 s
        'sh',
        '-c',
        'trap "exit 0" TERM; sleep 3600 & wait',
      ])
      const health = o.health ?? ['test', '-f', '/music/a.mp3']
      await fs.writeFile(
        f.config,
        [
          `stateDir: ${JSON.stringify(f.state)}`,
          `backupDir: ${JSON.stringify(f.backups)}`,
          `allowedRoots: [${JSON.stringify(path.join(root, 'srv'))}]`,
          'assets:',
          '  music:',
          `    source: ${JSON.stringify(o.source ?? f.source)}`,
          `    dest: ${JSON.stringify(path.join(f.mnt, 'music'))}`,
          `    mount: ${JSON.stringify(f.mnt)}`,
          `    restart: [${f.container}]`,
          `    health: { command: ${JSON.stringify(health)}, timeout: 15s, retries: 2, stableFor: 2s }`,
          '    uploadTimeout: 2m',
          ...(o.keepOriginal ? [`    keepOriginal: ${o.keepOriginal}`] : []),
        ].join('\n') + '\n',
      )
      return f
    }

    const cli = (engine: PrivateEngine, f: Fixture, args: string[]): Promise<CliResult> =>
      runCli(['--config', f.config, '--docker-host', engine.dockerHost, ...args], {}, 240_000)

    const running = async (engine: PrivateEngine, name: string) =>
      (await dockerOk(engine, ['inspect', '-f', '{{.State.Running}}', name])).trim() === 'true'

    /** The original is back as a real directory with the same bytes, and the app runs on it. */
    async function expectOriginal(engine: PrivateEngine, f: Fixture): Promise<void> {
      expect((await fs.lstat(f.source)).isDirectory()).toBe(true)
      expect(await treeHashes(f.source)).toEqual(f.before)
      expect(await running(engine, f.container)).toBe(true)
      const seen = await dockerOk(engine, ['exec', f.container, 'ls', '/music'])
      expect(seen).toContain('a.mp3')
    }

    /** A migration whose keepOriginal (1 s) has passed: the kept original is due. */
    async function migratedPastKeep(engine: PrivateEngine): Promise<{ f: Fixture; aside: string }> {
      const f = await setup(engine, { keepOriginal: '1s' })
      const r = await cli(engine, f, ['migrate-assets', 'music', '--yes', '--json'])
      expect(r.code, r.stderr).toBe(0)
      const aside = JSON.parse(r.stdout).original.path as string
      await new Promise((res) => setTimeout(res, 1500))
      return { f, aside }
    }

    function skipWithoutRclone(): boolean {
      if (rcloneProblem) return true
      return false
    }

    test('happy path: backed up, copied, on the remote, swapped, container sees it, healthy', async ({
      engine,
    }) => {
      if (skipWithoutRclone()) return
      const f = await setup(engine)
      const r = await cli(engine, f, ['migrate-assets', 'music', '--yes', '--json'])
      expect(r.code, r.stderr).toBe(0)
      const j = JSON.parse(r.stdout)
      expect(j.schema).toBe('shipshape.migrate-assets/1')
      expect(j.outcome).toBe('migrated')
      const files = [...f.before.entries()].filter(([, v]) => v !== 'dir')
      expect(j.files).toBe(files.length)
      expect(j.verified.files).toBe(files.length)
      // source is the symlink, the original kept aside, byte for byte
      expect(await fs.readlink(f.source)).toBe(path.join(f.mnt, 'music'))
      expect(await treeHashes(j.original.path)).toEqual(f.before)
      // the remote itself (not the mount) holds every file, equal; empty dir too
      expect(await treeHashes(path.join(f.remote, 'music'))).toEqual(f.before)
      const st = await fs.stat(path.join(f.remote, 'music', 'album one/Ça va.mp3'))
      expect(st.mtime.toISOString()).toBe('2021-03-04T05:06:07.000Z')
      // the backup archive exists and is named in the result
      expect((await fs.stat(j.backup.archive)).size).toBeGreaterThan(3 * MB)
      expect(j.backup.compression).toBe('none') // random bytes: not worth compressing
      // the container was restarted and reads the files through the symlink
      expect(await running(engine, f.container)).toBe(true)
      const inside = await dockerOk(engine, ['exec', f.container, 'sha256sum', '/music/a.mp3'])
      expect(inside.split(' ')[0]).toBe(f.before.get('a.mp3'))
      // a second run: already migrated, exit 0, nothing done
      const again = await cli(engine, f, ['migrate-assets', 'music', '--yes', '--json'])
      expect(again.code, again.stderr).toBe(0)
      expect(JSON.parse(again.stdout).outcome).toBe('already-migrated')
      // the original is kept for keepOriginal (7d): --finalize leaves it
      const fin = await cli(engine, f, ['migrate-assets', 'music', '--finalize', '--yes', '--json'])
      expect(fin.code, fin.stderr).toBe(0)
      expect(JSON.parse(fin.stdout).outcome).toBe('nothing-to-finalize')
      expect(await exists(j.original.path)).toBe(true)
    })

    test('--finalize removes the original once keepOriginal has passed, the migration intact', async ({
      engine,
    }) => {
      if (skipWithoutRclone()) return
      const { f, aside } = await migratedPastKeep(engine)
      // a file gone from dest: the original must stay
      const gone = path.join(f.mnt, 'music', 'zero.txt') // through the mount: its cache knows
      await fs.rename(gone, `${gone}.away`)
      const held = await cli(engine, f, [
        'migrate-assets',
        'music',
        '--finalize',
        '--yes',
        '--json',
      ])
      expect(held.code, held.stderr).toBe(0)
      expect(JSON.parse(held.stdout).outcome).toBe('nothing-to-finalize')
      expect(held.stderr).toMatch(/missing or changed/)
      expect(await exists(aside)).toBe(true)
      await fs.rename(`${gone}.away`, gone)
      const fin = await cli(engine, f, ['migrate-assets', 'music', '--finalize', '--yes', '--json'])
      expect(fin.code, fin.stderr).toBe(0)
      const j = JSON.parse(fin.stdout)
      expect(j.outcome).toBe('finalized')
      expect(j.finalize.removed).toEqual([aside])
      expect(await exists(aside)).toBe(false)
      expect(await fs.readlink(f.source)).toBe(path.join(f.mnt, 'music'))
      expect(await treeHashes(path.join(f.remote, 'music'))).toEqual(f.before)
    })

    test('names that are not UTF-8 migrate byte for byte; a failed run puts them back byte for byte', async ({
      engine,
    }) => {
      if (skipWithoutRclone()) return
      const f = await setup(engine)
      await addLatin1(f.source)
      const before = await treeHashesBytes(f.source)
      const r = await cli(engine, f, ['migrate-assets', 'music', '--yes', '--json'])
      expect(r.code, r.stderr).toBe(0)
      const j = JSON.parse(r.stdout)
      expect(j.outcome).toBe('migrated')
      expect(j.files).toBe([...before.values()].filter((v) => v !== 'dir').length)
      // through the mount, and in the original kept aside: the same bytes under the same names
      expect(await treeHashesBytes(path.join(f.mnt, 'music'))).toEqual(before)
      expect(await treeHashesBytes(j.original.path)).toEqual(before)
      expect(j.verified.by).toMatch(/not UTF-8/)
      // the app reads one through the symlink
      const seen = await dockerOk(engine, ['exec', f.container, 'ls', '/music'])
      expect(Buffer.from(seen, 'latin1').length).toBeGreaterThan(0)
      expect(seen).toContain('.mp3')

      // a run that fails after the swap: the same names and bytes are back at the source
      const g = await setup(engine, {
        allowOther: false,
        health: ['su', '-s', '/bin/sh', 'nobody', '-c', 'head -c 1 /music/zero.txt >/dev/null'],
      })
      await addLatin1(g.source)
      const gBefore = await treeHashesBytes(g.source)
      const rb = await cli(engine, g, ['migrate-assets', 'music', '--yes', '--json'])
      expect(rb.code, rb.stderr).toBe(1)
      expect(JSON.parse(rb.stdout).outcome).toBe('rolled-back')
      expect((await fs.lstat(g.source)).isDirectory()).toBe(true)
      expect(await treeHashesBytes(g.source)).toEqual(gBefore)
      expect(await exists(path.join(g.remote, 'music'))).toBe(false)
    })

    test('two runs confirmed one after the other: the second is refused (exit 4), the destination unchanged', async ({
      engine,
    }) => {
      if (skipWithoutRclone()) return
      const f = await setup(engine)
      const { config } = await loadConfig({ file: f.config })
      const port = await connectEngine(parseEngineAddress(engine.dockerHost))
      let asked: () => void = () => {}
      const waiting = new Promise<void>((r) => (asked = r))
      let go: (yes: boolean) => void = () => {}
      const goAhead = new Promise<boolean>((r) => (go = r))
      // the second terminal: walked the source, shows its plan, the operator reads it…
      const second = runMigrateAssets(
        { config, engine: port, out: createOutput({ json: true, quiet: true }) },
        'music',
        {
          confirm: () => {
            asked()
            return goAhead
          },
        },
      ).then(
        () => null,
        (e: unknown) => e,
      )
      try {
        await waiting
        // …meanwhile the first terminal migrates the asset
        const first = await cli(engine, f, ['migrate-assets', 'music', '--yes', '--json'])
        expect(first.code, first.stderr).toBe(0)
        const dest = path.join(f.mnt, 'music')
        const destBefore = await treeHashes(dest)
        expect(destBefore).toEqual(f.before)
        // …and the second operator says yes to a plan that is stale by now
        go(true)
        const err = await second
        expect(err).toBeInstanceOf(RefusedError)
        expect((err as RefusedError).exitCode).toBe(4)
        expect(String((err as Error).message)).toMatch(/changed while the plan was shown/)
        expect(await treeHashes(dest)).toEqual(destBefore)
        expect(await fs.readlink(f.source)).toBe(dest)
        expect(await treeHashes(path.join(f.remote, 'music'))).toEqual(f.before)
        expect(await running(engine, f.container)).toBe(true)
      } finally {
        go(false)
        await second
        port.close()
      }
    })

    test('a file written into the kept original after the swap: --finalize and prune keep it', async ({
      engine,
    }) => {
      if (skipWithoutRclone()) return
      const { f, aside } = await migratedPastKeep(engine)
      // a writer the preflight did not see keeps writing into the old directory
      await fs.writeFile(path.join(aside, 'album one', 'late.txt'), 'written after the swap\n')
      const plan = await cli(engine, f, ['prune', '--json'])
      expect(plan.code, plan.stderr).toBe(0)
      const p = JSON.parse(plan.stdout)
      expect(p.candidates.filter((c: { kind: string }) => c.kind === 'original')).toEqual([])
      expect(p.kept).toContainEqual(
        expect.objectContaining({
          kind: 'original',
          name: aside,
          reason: expect.stringMatching(/written to after the migration.*late\.txt: added/),
        }),
      )
      const fin = await cli(engine, f, ['migrate-assets', 'music', '--finalize', '--yes', '--json'])
      expect(fin.code, fin.stderr).toBe(1)
      const j = JSON.parse(fin.stdout)
      expect(j.finalize.removed).toEqual([])
      expect(j.finalize.kept[0].why).toMatch(/late\.txt: added after the migration/)
      expect(fin.stderr).toMatch(/written to after the migration; kept whole/)
      expect(await fs.readFile(path.join(aside, 'album one', 'late.txt'), 'utf8')).toBe(
        'written after the swap\n',
      )
      const left = await treeHashes(aside)
      left.delete('album one/late.txt')
      expect(left).toEqual(f.before)
    })

    test('dry run: prints the plan, changes nothing', async ({ engine }) => {
      if (skipWithoutRclone()) return
      const f = await setup(engine)
      const r = await cli(engine, f, ['migrate-assets', 'music', '--dry-run'])
      expect(r.code, r.stderr).toBe(0)
      expect(r.stderr).toContain('Back up the source')
      expect(r.stderr).toContain(`rename ${f.source}`)
      expect(await exists(f.backups)).toBe(false)
      expect(await fs.readdir(f.remote)).toEqual([])
      await expectOriginal(engine, f)
    })

    test('mount not mounted (a plain empty directory) → exit 4, nothing written', async ({
      engine,
    }) => {
      if (skipWithoutRclone()) return
      const f = await setup(engine, { mount: false })
      const r = await cli(engine, f, ['migrate-assets', 'music', '--yes'])
      expect(r.code, r.stderr).toBe(4)
      expect(r.stderr).toMatch(/not a mount point/)
      expect(await fs.readdir(f.mnt)).toEqual([])
      expect(await exists(f.backups)).toBe(false)
      await expectOriginal(engine, f)
    })

    test('a dead rclone (ENOTCONN) → exit 4 naming fusermount3', async ({ engine }) => {
      if (skipWithoutRclone()) return
      const f = await setup(engine)
      await f.mount!.kill9()
      const r = await cli(engine, f, ['migrate-assets', 'music', '--yes'])
      expect(r.code, r.stderr).toBe(4)
      expect(r.stderr).toMatch(/not connected.*fusermount3 -uz/s)
      await expectOriginal(engine, f)
    })

    test('source /etc → refused (exit 4)', async ({ engine }) => {
      if (skipWithoutRclone()) return
      const f = await setup(engine, { source: '/etc/ssl' })
      const r = await cli(engine, f, ['migrate-assets', 'music', '--yes'])
      expect(r.code, r.stderr).toBe(4)
      expect(r.stderr).toMatch(/system path/)
      expect(await exists(f.backups)).toBe(false)
    })

    test('a uid-1000 container and a mount without allow_other → refused before anything changed', async ({
      engine,
    }) => {
      if (skipWithoutRclone()) return
      const f = await setup(engine, { allowOther: false, user: '1000' })
      const r = await cli(engine, f, ['migrate-assets', 'music', '--yes'])
      expect(r.code, r.stderr).toBe(4)
      expect(r.stderr).toMatch(/allow_other/)
      expect(await exists(f.backups)).toBe(false)
      await expectOriginal(engine, f)
    })

    test('health fails after the swap (the app reads as nobody, no allow_other) → rolled back, exit 1', async ({
      engine,
    }) => {
      if (skipWithoutRclone()) return
      const f = await setup(engine, {
        allowOther: false,
        health: [
          'su',
          '-s',
          '/bin/sh',
          'nobody',
          '-c',
          'head -c 1 /music/zero.txt >/dev/null && ls /music/album\\ one >/dev/null',
        ],
      })
      const r = await cli(engine, f, ['migrate-assets', 'music', '--yes', '--json'])
      expect(r.code, r.stderr).toBe(1)
      expect(r.stderr).toMatch(/health check failed/)
      const j = JSON.parse(r.stdout)
      expect(j.outcome).toBe('rolled-back')
      await expectOriginal(engine, f)
      // the copy on the mount is gone again; the backup is kept
      expect(await exists(path.join(f.remote, 'music'))).toBe(false)
      expect(await exists(j.backup.archive)).toBe(true)
      // the original health check passes on the original directory
      const h = await docker(engine, [
        'exec',
        f.container,
        'su',
        '-s',
        '/bin/sh',
        'nobody',
        '-c',
        'head -c 1 /music/zero.txt >/dev/null && ls /music/album\\ one >/dev/null',
      ])
      expect(h.exitCode).toBe(0)
    })

    test('a long --vfs-write-back: success only once every file is on the remote', async ({
      engine,
    }) => {
      if (skipWithoutRclone()) return
      const f = await setup(engine, { writeBack: '12s' })
      const t0 = Date.now()
      const r = await cli(engine, f, ['migrate-assets', 'music', '--yes', '--json'])
      expect(r.code, r.stderr).toBe(0)
      expect(Date.now() - t0).toBeGreaterThan(10_000)
      expect(r.stderr).toMatch(/waiting for the mount to upload/)
      expect(await treeHashes(path.join(f.remote, 'music'))).toEqual(f.before)
    })

    test('destination full (a small tmpfs behind the remote) → exit 1, source untouched', async ({
      engine,
    }) => {
      if (skipWithoutRclone()) return
      const small = await fs.mkdtemp(path.join(os.tmpdir(), 'ss-full-'))
      const mounted = await new Promise<number | null>((resolve) =>
        spawn('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', small]).on('close', resolve),
      )
      if (mounted !== 0) {
        process.stderr.write('\n!!! SKIPPED destination-full case: cannot mount a tmpfs here\n')
        return
      }
      try {
        const f = await setup(engine, { remoteOn: small, sizeMb: 6 })
        const r = await cli(engine, f, ['migrate-assets', 'music', '--yes', '--json'])
        expect(r.code, r.stderr).toBe(1)
        expect(r.stderr).toMatch(/ENOSPC|EIO|no space/i)
        await expectOriginal(engine, f)
        expect(JSON.parse(r.stdout).outcome).toBe('rolled-back')
        await f.mount?.unmount()
      } finally {
        await new Promise((resolve) => spawn('umount', ['-l', small]).on('close', resolve))
        await fs.rm(small, { recursive: true, force: true })
      }
    })

    test('a concurrent run → exit 4 naming the holder', async ({ engine }) => {
      if (skipWithoutRclone()) return
      const f = await setup(engine, { writeBack: '20s' })
      const first = runCli(
        [
          '--config',
          f.config,
          '--docker-host',
          engine.dockerHost,
          'migrate-assets',
          'music',
          '--yes',
        ],
        {},
        240_000,
      )
      // wait until the first run holds the lock
      const lock = path.join(f.state, 'shipshape.lock')
      for (let i = 0; i < 100 && !(await exists(lock)); i++)
        await new Promise((r) => setTimeout(r, 100))
      const second = await cli(engine, f, ['migrate-assets', 'music', '--yes'])
      expect(second.code, second.stderr).toBe(4)
      expect(second.stderr).toMatch(/lock|held|running/i)
      const r = await first
      expect(r.code, r.stderr).toBe(0)
    })

    /** `migrate-assets music --yes` as a child process (to kill it, or to read stderr as it comes). */
    function spawnMigrate(engine: PrivateEngine, f: Fixture, stderr: 'ignore' | 'pipe') {
      return spawn(
        process.execPath,
        [
          CLI,
          '--config',
          f.config,
          '--docker-host',
          engine.dockerHost,
          'migrate-assets',
          'music',
          '--yes',
        ],
        {
          stdio: ['ignore', 'ignore', stderr],
          env: { PATH: process.env.PATH, HOME: process.env.HOME },
        },
      )
    }

    /** Starts the CLI, waits for `ready()`, kills it with SIGKILL. */
    async function killWhen(
      engine: PrivateEngine,
      f: Fixture,
      ready: () => Promise<boolean>,
    ): Promise<void> {
      const child = spawnMigrate(engine, f, 'ignore')
      const closed = new Promise((r) => child.on('close', r))
      for (let i = 0; i < 1200; i++) {
        if (await ready()) break
        if (child.exitCode !== null)
          throw new Error(`the run ended (exit ${child.exitCode}) before the kill point`)
        await new Promise((r) => setTimeout(r, 25))
      }
      child.kill('SIGKILL')
      await closed
    }

    test('kill -9 during the copy → --resume completes, every hash equal', async ({ engine }) => {
      if (skipWithoutRclone()) return
      const f = await setup(engine, { count: 200, sizeMb: 200 })
      const copied = async () => {
        const dir = path.join(f.state, 'migrate-assets')
        const logs = await fs.readdir(dir).catch(() => [] as string[])
        for (const l of logs) {
          const text = await fs.readFile(path.join(dir, l), 'utf8').catch(() => '')
          if (text.split('\n').length > 20) return true
        }
        return false
      }
      await killWhen(engine, f, copied)
      expect((await fs.lstat(f.source)).isDirectory()).toBe(true)
      const plain = await cli(engine, f, ['migrate-assets', 'music', '--yes'])
      expect(plain.code, plain.stderr).toBe(4) // an unfinished run: resume or roll back first
      expect(plain.stderr).toMatch(/--resume/)
      const r = await cli(engine, f, ['migrate-assets', 'music', '--resume', '--yes', '--json'])
      expect(r.code, r.stderr).toBe(0)
      const j = JSON.parse(r.stdout)
      expect(j.outcome).toBe('migrated')
      expect(await treeHashes(path.join(f.remote, 'music'))).toEqual(f.before)
      expect(await treeHashes(j.original.path)).toEqual(f.before)
      expect(r.stderr).toMatch(/already there from an earlier run/)
    })

    test('kill -9 after the swap → --rollback restores the original, container on it', async ({
      engine,
    }) => {
      if (skipWithoutRclone()) return
      const f = await setup(engine, { health: ['sh', '-c', 'sleep 4; test -f /music/a.mp3'] })
      await killWhen(
        engine,
        f,
        async () => (await fs.lstat(f.source).catch(() => null))?.isSymbolicLink() === true,
      )
      const r = await cli(engine, f, ['migrate-assets', 'music', '--rollback', '--yes'])
      expect(r.code, r.stderr).toBe(0)
      await expectOriginal(engine, f)
      expect(await exists(path.join(f.remote, 'music'))).toBe(false)
    })

    test('kill -9 after the swap → --resume finishes', async ({ engine }) => {
      if (skipWithoutRclone()) return
      const f = await setup(engine, { health: ['sh', '-c', 'sleep 4; test -f /music/a.mp3'] })
      await killWhen(
        engine,
        f,
        async () => (await fs.lstat(f.source).catch(() => null))?.isSymbolicLink() === true,
      )
      const r = await cli(engine, f, ['migrate-assets', 'music', '--resume', '--yes', '--json'])
      expect(r.code, r.stderr).toBe(0)
      expect(await fs.readlink(f.source)).toBe(path.join(f.mnt, 'music'))
      expect(await treeHashes(path.join(f.remote, 'music'))).toEqual(f.before)
      expect(await running(engine, f.container)).toBe(true)
    })

    test('an unhealthy service before the run → refused (exit 4), JSON lists the refusal', async ({
      engine,
    }) => {
      if (skipWithoutRclone()) return
      const f = await setup(engine, { health: ['test', '-f', '/music/not-there'] })
      const r = await cli(engine, f, ['migrate-assets', 'music', '--yes', '--json'])
      expect(r.code, r.stderr).toBe(4)
      const j = JSON.parse(r.stdout)
      expect(j.outcome).toBe('refused')
      expect(j.refusals.map((x: { check: string }) => x.check)).toEqual(['health'])
      expect(await exists(f.backups)).toBe(false)
      await expectOriginal(engine, f)
    })

    test('a file written into the source during the copy → rolled back (exit 1), nothing lost', async ({
      engine,
    }) => {
      if (skipWithoutRclone()) return
      const f = await setup(engine, { writeBack: '8s' })
      const child = spawnMigrate(engine, f, 'pipe')
      let stderr = ''
      let wrote = false
      const done = new Promise<number | null>((resolve) => child.on('close', resolve))
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString()
        if (!wrote && stderr.includes('waiting for the mount to upload')) {
          wrote = true
          void fs.writeFile(path.join(f.source, 'late.mp3'), 'written while migrating')
        }
      })
      const code = await done
      expect(wrote).toBe(true)
      expect(code, stderr).toBe(1)
      expect(stderr).toMatch(/late\.mp3 \(missing\)|late\.mp3.*changed while/s)
      expect((await fs.lstat(f.source)).isDirectory()).toBe(true)
      expect(await fs.readFile(path.join(f.source, 'late.mp3'), 'utf8')).toBe(
        'written while migrating',
      )
      const now = await treeHashes(f.source)
      now.delete('late.mp3')
      expect(now).toEqual(f.before)
      expect(await running(engine, f.container)).toBe(true)
    })

    test('an inner symlink and a mount that cannot store symlinks → refused, naming it', async ({
      engine,
    }) => {
      if (skipWithoutRclone()) return
      const f = await setup(engine)
      await fs.symlink('a.mp3', path.join(f.source, 'latest.mp3'))
      const r = await cli(engine, f, ['migrate-assets', 'music', '--yes'])
      expect(r.code, r.stderr).toBe(4)
      expect(r.stderr).toMatch(/latest\.mp3.*cannot store symlinks/s)
    })
  },
  // the subject is rclone and the asset tree, not the engine: one engine of CI's matrix is enough
  { anyEngine: true },
)
