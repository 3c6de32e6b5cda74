/**
 * `shipshape migrate-assets NAME --revert` end to end: the built CLI, a real rclone FUSE mount
 * (`rclone mount :local:REMOTE MNT`), a real container on the private engine bind-mounting the
 * asset. A migration runs first (the real one); each case then checks the disk, the remote and
 * the container after the revert. Setup as in migrate-assets.test.ts.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, expect } from 'vitest'
import { CLI, runCli, type CliResult } from '../cli/run.js'
import { busyboxImage, docker, dockerOk } from '../harness/fixtures.js'
import { mountRclone, rcloneUsable, type RcloneMount } from '../harness/rclone.js'
import { describeEngine, engineTest as test } from '../harness/suite.js'
import { exists, treeHashes } from '../harness/tree.js'
import type { PrivateEngine } from '../harness/engine.js'

const MB = 1024 * 1024

interface Fixture {
  root: string
  source: string
  remote: string
  mnt: string
  dest: string
  state: string
  backups: string
  config: string
  container: string
  mount: RcloneMount | null
  before: Map<string, string>
}

let seq = 0

/** passes on the rclone mount, fails on a local directory: a health gate only a revert fails */
const ON_FUSE = ['sh', '-c', 'grep -q " /music fuse" /proc/mounts && test -f /music/a.mp3']

describeEngine(
  'migrate-assets --revert',
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
          `\n!!! SKIPPED migrate-assets --revert cases: rclone/FUSE unusable: ${usable.reason}\n`,
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

    /** Nested dirs, odd names, an empty dir, a 0640 file; ~3 MB of random bytes. */
    async function makeSource(dir: string): Promise<void> {
      await fs.mkdir(path.join(dir, 'album one/disc é'), { recursive: true })
      await fs.mkdir(path.join(dir, 'empty dir'), { recursive: true })
      const names = ['a.mp3', 'album one/Ça va.mp3', 'album one/disc é/-lead dash.mp3']
      for (let i = 0; i < 8; i++) {
        const name = names[i] ?? `album one/track ${i}.mp3`
        await fs.writeFile(path.join(dir, name), randomBytes(Math.floor((3 * MB) / 8) + i))
        const t = new Date('2021-03-04T05:06:07Z')
        await fs.utimes(path.join(dir, name), t, t)
      }
      await fs.writeFile(path.join(dir, 'zero.txt'), '')
      await fs.chmod(path.join(dir, 'a.mp3'), 0o640)
    }

    async function writeConfig(
      f: Fixture,
      o: { health?: string[]; keepOriginal?: string } = {},
    ): Promise<void> {
      const health = o.health ?? ['test', '-f', '/music/a.mp3']
      await fs.writeFile(
        f.config,
        [
          `stateDir: ${JSON.stringify(f.state)}`,
          `backupDir: ${JSON.stringify(f.backups)}`,
          `allowedRoots: [${JSON.stringify(path.join(f.root, 'srv'))}]`,
          'assets:',
          '  music:',
          `    source: ${JSON.stringify(f.source)}`,
          `    dest: ${JSON.stringify(f.dest)}`,
          `    mount: ${JSON.stringify(f.mnt)}`,
          `    restart: [${f.container}]`,
          `    health: { command: ${JSON.stringify(health)}, timeout: 15s, retries: 2, stableFor: 2s }`,
          '    uploadTimeout: 2m',
          ...(o.keepOriginal ? [`    keepOriginal: ${o.keepOriginal}`] : []),
        ].join('\n') + '\n',
      )
    }

    async function setup(
      engine: PrivateEngine,
      o: { keepOriginal?: string; beforeSource?: (appDir: string) => Promise<void> } = {},
    ) {
      const root = await fs.mkdtemp(path.join(os.tmpdir(), 'ss-rev-'))
      const id = `${process.pid}-${++seq}`
      const f: Fixture = {
        root,
        source: path.join(root, 'srv/app/music'),
        remote: path.join(root, 'remote'),
        mnt: path.join(root, 'mnt'),
        dest: path.join(root, 'mnt', 'music'),
        state: path.join(root, 'state'),
        backups: path.join(root, 'backups'),
        config: path.join(root, 'shipshape.yaml'),
        container: `ss-rev-app-${id}`,
        mount: null,
        before: new Map(),
      }
      fixtures.push(f)
      await fs.mkdir(path.dirname(f.source), { recursive: true })
      await o.beforeSource?.(path.dirname(f.source))
      await makeSource(f.source)
      f.before = await treeHashes(f.source)
      await fs.mkdir(f.remote, { recursive: true })
      await fs.mkdir(f.mnt, { recursive: true })
      f.mount = await mountRclone({ remoteDir: f.remote, mountDir: f.mnt, allowOther: true })
      await dockerOk(engine, [
        'run',
        '-d',
        '--name',
        f.container,
        '--network',
        'none',
        '-v',
        `${f.source}:/music`,
        image,
        'sh',
        '-c',
        'trap "exit 0" TERM; sleep 3600 & wait',
      ])
      await writeConfig(f, o)
      return f
    }

    const cli = (engine: PrivateEngine, f: Fixture, args: string[]): Promise<CliResult> =>
      runCli(['--config', f.config, '--docker-host', engine.dockerHost, ...args], {}, 240_000)

    const running = async (engine: PrivateEngine, name: string) =>
      (await dockerOk(engine, ['inspect', '-f', '{{.State.Running}}', name])).trim() === 'true'

    /** A finished migration of the fixture; returns where the original is kept. */
    async function migrate(engine: PrivateEngine, f: Fixture): Promise<string> {
      const r = await cli(engine, f, ['migrate-assets', 'music', '--yes', '--json'])
      expect(r.code, r.stderr).toBe(0)
      const j = JSON.parse(r.stdout)
      expect(j.outcome).toBe('migrated')
      expect(await fs.readlink(f.source)).toBe(f.dest)
      return j.original.path as string
    }

    /** The source is a directory again with every hash equal, the app on it, on local disk. */
    async function expectLocal(engine: PrivateEngine, f: Fixture): Promise<void> {
      const st = await fs.lstat(f.source)
      expect(st.isDirectory()).toBe(true)
      expect(await treeHashes(f.source)).toEqual(f.before)
      expect(await running(engine, f.container)).toBe(true)
      const inside = await dockerOk(engine, ['exec', f.container, 'sha256sum', '/music/a.mp3'])
      expect(inside.split(' ')[0]).toBe(f.before.get('a.mp3'))
      const mounts = await dockerOk(engine, ['exec', f.container, 'cat', '/proc/mounts'])
      const line = mounts.split('\n').find((l) => l.split(' ')[1] === '/music')
      expect(line).toBeDefined()
      expect(line).not.toMatch(/ fuse/)
      // nothing of the revert left beside the source
      const beside = await fs.readdir(path.dirname(f.source))
      expect(
        beside.filter((n) => n.includes('.shipshape-revert-') || n.includes('-link-')),
      ).toEqual([])
    }

    const skip = (): boolean => rcloneProblem !== null

    test('right after a migration: the kept original comes back, every hash equal, healthy; the copy is left and said so', async ({
      engine,
    }) => {
      if (skip()) return
      const f = await setup(engine)
      const aside = await migrate(engine, f)
      const r = await cli(engine, f, ['migrate-assets', 'music', '--revert', '--yes', '--json'])
      expect(r.code, r.stderr).toBe(0)
      const j = JSON.parse(r.stdout)
      expect(j.schema).toBe('shipshape.migrate-assets/1')
      expect(j.outcome).toBe('reverted')
      expect(j.revert.from).toBe('original')
      const files = [...f.before.values()].filter((v) => v !== 'dir').length
      expect(j.revert.verified).toBe(files)
      expect(j.revert.copy).toMatchObject({ path: f.dest, files, remove: false, removed: false })
      expect(j.revert.health).toMatch(/healthy/)
      await expectLocal(engine, f)
      // the original itself is back (same inode tree: its 0640 file kept)
      expect(await exists(aside)).toBe(false)
      expect((await fs.stat(path.join(f.source, 'a.mp3'))).mode & 0o777).toBe(0o640)
      // the copy on the mount (and the remote) is left, whole, and the output says where
      expect(await treeHashes(path.join(f.remote, 'music'))).toEqual(f.before)
      expect(r.stderr).toContain(`the copy on the mount was left at ${f.dest}`)
      // recorded as reverted: --finalize leaves it, a second --revert is refused (exit 4)
      const [stamp] = await fs.readdir(path.join(f.backups, 'music'))
      const record = JSON.parse(
        await fs.readFile(path.join(f.backups, 'music', stamp!, 'reverted.json'), 'utf8'),
      )
      expect(record).toMatchObject({ source: f.source, dest: f.dest, from: 'original' })
      const fin = await cli(engine, f, ['migrate-assets', 'music', '--finalize', '--yes', '--json'])
      expect(fin.code, fin.stderr).toBe(0)
      expect(JSON.parse(fin.stdout)).toMatchObject({ outcome: 'nothing-to-finalize' })
      expect(JSON.parse(fin.stdout).finalize.kept).toEqual([])
      const again = await cli(engine, f, ['migrate-assets', 'music', '--revert', '--yes'])
      expect(again.code, again.stderr).toBe(4)
      expect(again.stderr).toMatch(/not migrated: .* a directory/)
    })

    test('after --finalize removed the original and the archive is gone: the bytes come back from the destination, every hash equal', async ({
      engine,
    }) => {
      if (skip()) return
      const f = await setup(engine, { keepOriginal: '1s' })
      // an app's own files: owned by its uid, which the copy on the mount does not keep
      await fs.chown(path.join(f.source, 'album one'), 1000, 1001)
      await fs.chown(path.join(f.source, 'album one/Ça va.mp3'), 1000, 1001)
      const aside = await migrate(engine, f)
      await new Promise((res) => setTimeout(res, 1500))
      const fin = await cli(engine, f, ['migrate-assets', 'music', '--finalize', '--yes', '--json'])
      expect(fin.code, fin.stderr).toBe(0)
      expect(JSON.parse(fin.stdout).outcome).toBe('finalized')
      expect(await exists(aside)).toBe(false)
      // nothing local left: the backup archive goes too
      const [stamp] = await fs.readdir(path.join(f.backups, 'music'))
      const work = path.join(f.backups, 'music', stamp!)
      for (const n of await fs.readdir(work)) {
        if (n.startsWith('archive.tar')) await fs.rm(path.join(work, n))
      }
      expect((await fs.readdir(work)).some((n) => n.startsWith('archive'))).toBe(false)

      const r = await cli(engine, f, ['migrate-assets', 'music', '--revert', '--yes', '--json'])
      expect(r.code, r.stderr).toBe(0)
      const j = JSON.parse(r.stdout)
      expect(j.outcome).toBe('reverted')
      expect(j.revert.from).toBe('destination')
      expect(j.revert.verified).toBe([...f.before.values()].filter((v) => v !== 'dir').length)
      await expectLocal(engine, f)
      // owners and modes as the manifest had them, not the mount's
      expect((await fs.stat(path.join(f.source, 'a.mp3'))).mode & 0o777).toBe(0o640)
      for (const p of ['album one', 'album one/Ça va.mp3']) {
        const st = await fs.lstat(path.join(f.source, p))
        expect([p, st.uid, st.gid]).toEqual([p, 1000, 1001])
      }
      expect((await fs.lstat(path.join(f.source, 'zero.txt'))).uid).toBe(0)
      // an empty directory came back too
      expect((await fs.readdir(path.join(f.source, 'empty dir'))).length).toBe(0)
      expect(await treeHashes(f.dest)).toEqual(f.before) // left on the mount
    })

    test('--remove-copy: the copy on the mount goes, last, once healthy', async ({ engine }) => {
      if (skip()) return
      const f = await setup(engine)
      await migrate(engine, f)
      const r = await cli(engine, f, [
        'migrate-assets',
        'music',
        '--revert',
        '--remove-copy',
        '--yes',
        '--json',
      ])
      expect(r.code, r.stderr).toBe(0)
      const j = JSON.parse(r.stdout)
      expect(j.outcome).toBe('reverted')
      expect(j.revert.copy).toMatchObject({ remove: true, removed: true })
      expect(j.steps.map((s: { id: string }) => s.id).at(-1)).toBe('remove-copy')
      await expectLocal(engine, f)
      expect(await exists(f.dest)).toBe(false)
      expect(await exists(path.join(f.remote, 'music'))).toBe(false)
      expect(r.stderr).toContain(`removed the copy on the mount: ${f.dest}`)
    })

    test('the app wrote to the destination since the swap: that is what comes back (the stale original stays)', async ({
      engine,
    }) => {
      if (skip()) return
      const f = await setup(engine)
      const aside = await migrate(engine, f)
      await dockerOk(engine, ['exec', f.container, 'sh', '-c', 'echo later > /music/late.txt'])
      const r = await cli(engine, f, ['migrate-assets', 'music', '--revert', '--yes', '--json'])
      expect(r.code, r.stderr).toBe(0)
      const j = JSON.parse(r.stdout)
      expect(j.revert.from).toBe('destination')
      expect(j.revert.destChanged).toBe(1)
      expect(j.revert.originalLeft).toContain(aside)
      expect(await fs.readFile(path.join(f.source, 'late.txt'), 'utf8')).toBe('later\n')
      const now = await treeHashes(f.source)
      now.delete('late.txt')
      expect(now).toEqual(f.before)
      // the kept original is left as it was (older than the destination)
      expect(await treeHashes(aside)).toEqual(f.before)
    })

    test("a file on the destination whose bytes are not the manifest's (same size and mtime) → the copy back fails, undone (exit 1)", async ({
      engine,
    }) => {
      if (skip()) return
      const f = await setup(engine, { keepOriginal: '1s' })
      await migrate(engine, f)
      await new Promise((res) => setTimeout(res, 1500))
      const fin = await cli(engine, f, ['migrate-assets', 'music', '--finalize', '--yes'])
      expect(fin.code, fin.stderr).toBe(0)
      // bit rot behind the mount: other bytes, same size, the mtime put back
      const rotten = path.join(f.remote, 'music', 'album one/Ça va.mp3')
      const st = await fs.stat(rotten)
      await fs.writeFile(rotten, randomBytes(st.size))
      await fs.utimes(rotten, st.atime, st.mtime)
      const r = await cli(engine, f, ['migrate-assets', 'music', '--revert', '--yes', '--json'])
      expect(r.code, r.stderr).toBe(1)
      expect(r.stderr).toMatch(/Ça va\.mp3.*changed since the manifest was made/)
      expect(JSON.parse(r.stdout).outcome).toBe('rolled-back')
      expect(await fs.readlink(f.source)).toBe(f.dest)
      expect(await running(engine, f.container)).toBe(true)
      expect(await fs.readdir(path.dirname(f.source))).toEqual([path.basename(f.source)])
    })

    test('the health gate fails after the swap → undone: the symlink back, the app on the mount, the original kept', async ({
      engine,
    }) => {
      if (skip()) return
      const f = await setup(engine)
      const aside = await migrate(engine, f)
      await writeConfig(f, { health: ON_FUSE })
      const r = await cli(engine, f, ['migrate-assets', 'music', '--revert', '--yes', '--json'])
      expect(r.code, r.stderr).toBe(1)
      expect(r.stderr).toMatch(/health check failed/)
      const j = JSON.parse(r.stdout)
      expect(j.outcome).toBe('rolled-back')
      expect(await fs.readlink(f.source)).toBe(f.dest)
      expect(await running(engine, f.container)).toBe(true)
      const h = await docker(engine, ['exec', f.container, ...ON_FUSE])
      expect(h.exitCode).toBe(0)
      expect(await treeHashes(aside)).toEqual(f.before)
      expect(await treeHashes(f.dest)).toEqual(f.before)
      const beside = (await fs.readdir(path.dirname(f.source))).sort()
      expect(beside).toEqual([path.basename(f.source), path.basename(aside)].sort())
      // still migrated: a --revert may run again
      const [stamp] = await fs.readdir(path.join(f.backups, 'music'))
      expect(await exists(path.join(f.backups, 'music', stamp!, 'reverted.json'))).toBe(false)
    })

    test('--dry-run prints the plan and touches nothing', async ({ engine }) => {
      if (skip()) return
      const f = await setup(engine)
      const aside = await migrate(engine, f)
      const journals = await fs.readdir(path.join(f.state, 'journal'))
      const r = await cli(engine, f, ['migrate-assets', 'music', '--revert', '--dry-run'])
      expect(r.code, r.stderr).toBe(0)
      expect(r.stderr).toContain('Bring the files back beside the source')
      expect(r.stderr).toContain(`rename the kept original ${aside}`)
      expect(r.stderr).toContain(`leave the copy at ${f.dest}`)
      expect(await fs.readlink(f.source)).toBe(f.dest)
      expect(await treeHashes(aside)).toEqual(f.before)
      expect(await fs.readdir(path.join(f.state, 'journal'))).toEqual(journals)
      expect(await running(engine, f.container)).toBe(true)
      const beside = (await fs.readdir(path.dirname(f.source))).sort()
      expect(beside).toEqual([path.basename(f.source), path.basename(aside)].sort())
    })

    /** `migrate-assets music --revert --yes` as a child, killed with SIGKILL once `ready()`. */
    async function killRevertWhen(
      engine: PrivateEngine,
      f: Fixture,
      ready: () => Promise<boolean>,
    ): Promise<void> {
      const child = spawn(
        process.execPath,
        [
          CLI,
          '--config',
          f.config,
          '--docker-host',
          engine.dockerHost,
          'migrate-assets',
          'music',
          '--revert',
          '--yes',
        ],
        { stdio: 'ignore', env: { PATH: process.env.PATH, HOME: process.env.HOME } },
      )
      const closed = new Promise((r) => child.on('close', r))
      let hit = false
      for (let i = 0; i < 1200 && !hit; i++) {
        hit = await ready()
        if (!hit && child.exitCode !== null)
          throw new Error(`the revert ended (exit ${child.exitCode}) before the kill point`)
        if (!hit) await new Promise((r) => setTimeout(r, 25))
      }
      expect(hit).toBe(true)
      child.kill('SIGKILL')
      await closed
    }

    const swapped = (f: Fixture) => async () =>
      (await fs.lstat(f.source).catch(() => null))?.isDirectory() === true

    test('kill -9 after the swap → --revert --rollback: the symlink back, the app on the mount', async ({
      engine,
    }) => {
      if (skip()) return
      const f = await setup(engine)
      const aside = await migrate(engine, f)
      await writeConfig(f, { health: ['sh', '-c', 'sleep 4; test -f /music/a.mp3'] })
      await killRevertWhen(engine, f, swapped(f))
      // an unfinished revert blocks a new one and a migration (exit 4)
      const blocked = await cli(engine, f, ['migrate-assets', 'music', '--revert', '--yes'])
      expect(blocked.code, blocked.stderr).toBe(4)
      expect(blocked.stderr).toMatch(/unfinished migrate-assets-revert run/)
      const r = await cli(engine, f, [
        'migrate-assets',
        'music',
        '--revert',
        '--rollback',
        '--yes',
        '--json',
      ])
      expect(r.code, r.stderr).toBe(0)
      expect(JSON.parse(r.stdout).outcome).toBe('rolled-back')
      expect(await fs.readlink(f.source)).toBe(f.dest)
      expect(await treeHashes(aside)).toEqual(f.before)
      expect(await running(engine, f.container)).toBe(true)
      const mounts = await dockerOk(engine, ['exec', f.container, 'cat', '/proc/mounts'])
      expect(mounts.split('\n').find((l) => l.split(' ')[1] === '/music')).toMatch(/ fuse/)
      const beside = (await fs.readdir(path.dirname(f.source))).sort()
      expect(beside).toEqual([path.basename(f.source), path.basename(aside)].sort())
    })

    test('kill -9 after the swap → --revert --resume finishes, every hash equal', async ({
      engine,
    }) => {
      if (skip()) return
      const f = await setup(engine)
      await migrate(engine, f)
      await writeConfig(f, { health: ['sh', '-c', 'sleep 4; test -f /music/a.mp3'] })
      await killRevertWhen(engine, f, swapped(f))
      const r = await cli(engine, f, [
        'migrate-assets',
        'music',
        '--revert',
        '--resume',
        '--yes',
        '--json',
      ])
      expect(r.code, r.stderr).toBe(0)
      const j = JSON.parse(r.stdout)
      expect(j.outcome).toBe('reverted')
      expect(j.revert.from).toBe('original')
      await expectLocal(engine, f)
    })

    test('not enough room on the source filesystem for a copy back → refused with the figures (exit 4)', async ({
      engine,
    }) => {
      if (skip()) return
      const tmpfs: { dir: string | null } = { dir: null }
      const f = await setup(engine, {
        keepOriginal: '1s',
        beforeSource: async (appDir) => {
          const ok = await new Promise<number | null>((resolve) =>
            spawn('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', appDir]).on('close', resolve),
          )
          if (ok === 0) tmpfs.dir = appDir
        },
      })
      const small = tmpfs.dir
      if (!small) {
        process.stderr.write('\n!!! SKIPPED revert no-space case: cannot mount a tmpfs here\n')
        return
      }
      try {
        await migrate(engine, f)
        await new Promise((res) => setTimeout(res, 1500))
        const fin = await cli(engine, f, ['migrate-assets', 'music', '--finalize', '--yes'])
        expect(fin.code, fin.stderr).toBe(0)
        const r = await cli(engine, f, ['migrate-assets', 'music', '--revert', '--yes', '--json'])
        expect(r.code, r.stderr).toBe(4)
        expect(r.stderr).toMatch(/bringing the files back needs [\d.]+ MB .* has [\d.]+ MB free/)
        expect(JSON.parse(r.stdout).refusals.map((x: { check: string }) => x.check)).toEqual([
          'space',
        ])
        expect(await fs.readlink(f.source)).toBe(f.dest)
        expect(await running(engine, f.container)).toBe(true)
      } finally {
        await docker(engine, ['rm', '-f', f.container])
        await new Promise((resolve) => spawn('umount', ['-l', small]).on('close', resolve))
      }
    })

    test('no finished migration → refused (exit 4), nothing touched', async ({ engine }) => {
      if (skip()) return
      const f = await setup(engine)
      const r = await cli(engine, f, ['migrate-assets', 'music', '--revert', '--yes', '--json'])
      expect(r.code, r.stderr).toBe(4)
      expect(JSON.parse(r.stdout).outcome).toBe('refused')
      expect(r.stderr).toMatch(/not migrated/)
      expect((await fs.lstat(f.source)).isDirectory()).toBe(true)
      expect(await treeHashes(f.source)).toEqual(f.before)
      expect(await fs.readdir(f.remote)).toEqual([])
      expect(await running(engine, f.container)).toBe(true)
    })
  },
  // the subject is rclone and the asset tree, not the engine: one engine of CI's matrix is enough
  { anyEngine: true },
)
