/**
 * The disk really freed (issue 17): migrate-assets onto a real rclone mount, --finalize, prune —
 * afterwards the local disk holds neither the original nor the backup archive: with
 * `backupTo: remote` the archive is on the remote (verified there), with the default it is
 * removed after keepBackup; `du` of the source's tree and of backupDir shows the bytes gone.
 * Prune runs on the suite's shared engine here with every engine rule held off (ages of years),
 * so only the migration's original and archive are its to take.
 */
import { createHash, randomBytes } from 'node:crypto'
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterEach, beforeAll, expect } from 'vitest'
import { runCli, type CliResult } from '../cli/run.js'
import { busyboxImage, docker, dockerOk } from '../harness/fixtures.js'
import { mountRclone, rcloneUsable, type RcloneMount } from '../harness/rclone.js'
import { describeEngine, engineTest as test } from '../harness/suite.js'
import type { PrivateEngine } from '../harness/engine.js'

const exec = promisify(execFile)
const MB = 1024 * 1024

/** Bytes of disk a tree takes (du -s --block-size=1 -x), 0 when it is gone. */
async function du(p: string): Promise<number> {
  const r = await exec('du', ['-s', '-x', '--block-size=1', p]).catch(() => null)
  return r ? Number(r.stdout.split('\t')[0]) : 0
}

const sha = async (p: string) =>
  createHash('sha256')
    .update(await fs.readFile(p))
    .digest('hex')

interface Migrated {
  asset: string
  original: { bytes: number | null } | null
  archive: { where: string; path: string | null } | null
  reclaimableBytes: number
  next: string
}

interface Fixture {
  root: string
  srv: string
  source: string
  remote: string
  mnt: string
  backups: string
  config: string
  container: string
  mount: RcloneMount
}

let seq = 0

describeEngine(
  'asset lifecycle',
  (getEngine) => {
    let image: string
    let skip: string | null = null
    const fixtures: Fixture[] = []

    beforeAll(async () => {
      image = await busyboxImage(getEngine())
      const usable = await rcloneUsable()
      if (!usable.ok) {
        skip = usable.reason
        if (process.env.SHIPSHAPE_REQUIRE_RCLONE === '1') {
          throw new Error(`rclone/FUSE unusable (SHIPSHAPE_REQUIRE_RCLONE=1): ${usable.reason}`)
        }
        process.stderr.write(`\n!!! SKIPPED asset lifecycle cases: ${usable.reason}\n`)
      }
    })

    afterEach(async () => {
      for (const f of fixtures.splice(0)) {
        await docker(getEngine(), ['rm', '-f', f.container])
        await f.mount.unmount()
        await fs.rm(f.root, { recursive: true, force: true }).catch(() => {})
      }
    })

    async function setup(engine: PrivateEngine, asset: string[]): Promise<Fixture> {
      const root = await fs.mkdtemp(path.join(os.tmpdir(), 'ss-life-'))
      const f: Fixture = {
        root,
        srv: path.join(root, 'srv'),
        source: path.join(root, 'srv/app/music'),
        remote: path.join(root, 'remote'),
        mnt: path.join(root, 'mnt'),
        backups: path.join(root, 'backups'),
        config: path.join(root, 'shipshape.yaml'),
        container: `ss-life-${process.pid}-${++seq}`,
        mount: null as unknown as RcloneMount,
      }
      await fs.mkdir(path.join(f.source, 'album'), { recursive: true })
      // random bytes: the archive cannot compress them away (8 MB in 9 files)
      for (let i = 0; i < 8; i++)
        await fs.writeFile(path.join(f.source, 'album', `t${i}.mp3`), randomBytes(MB))
      await fs.writeFile(path.join(f.source, 'a.mp3'), randomBytes(4096))
      await fs.mkdir(f.remote)
      await fs.mkdir(f.mnt)
      f.mount = await mountRclone({ remoteDir: f.remote, mountDir: f.mnt, allowOther: true })
      fixtures.push(f)
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
      await fs.writeFile(
        f.config,
        [
          `stateDir: ${JSON.stringify(path.join(root, 'state'))}`,
          `backupDir: ${JSON.stringify(f.backups)}`,
          `allowedRoots: [${JSON.stringify(f.srv)}]`,
          'assets:',
          '  music:',
          `    source: ${JSON.stringify(f.source)}`,
          `    dest: ${JSON.stringify(path.join(f.mnt, 'music'))}`,
          `    mount: ${JSON.stringify(f.mnt)}`,
          `    restart: [${f.container}]`,
          '    health: { command: [test, -f, /music/a.mp3], timeout: 15s, retries: 2, stableFor: 1s }',
          '    uploadTimeout: 2m',
          '    keepOriginal: 1s',
          ...asset.map((l) => `    ${l}`),
          // the shared engine: no engine rule may take anything of another test
          'prune:',
          '  keepTags: 1000',
          '  backupsFor: 3650d',
          '  unusedImagesAfter: 3650d',
          '  stoppedContainersAfter: 3650d',
          '  danglingAfter: 3650d',
          '  buildCacheKeep: 1000GB',
          '  diskThreshold: 100%',
          '',
        ].join('\n'),
      )
      return f
    }

    const cli = (engine: PrivateEngine, f: Fixture, args: string[]): Promise<CliResult> =>
      runCli(['--config', f.config, '--docker-host', engine.dockerHost, ...args], {}, 240_000)

    async function migrateAndFinalize(engine: PrivateEngine, f: Fixture) {
      const before = { srv: await du(f.srv), backups: await du(f.backups) }
      const m = await cli(engine, f, ['migrate-assets', 'music', '--yes', '--json'])
      expect(m.code, m.stderr).toBe(0)
      const mj = JSON.parse(m.stdout) as { backup: { archive: string; archiveBytes: number } }
      const after = { srv: await du(f.srv), backups: await du(f.backups) }
      // the report says where the bytes are: the original and the archive both on the local disk
      const rep = await cli(engine, f, ['report', '--json'])
      expect(rep.code, rep.stderr).toBe(0)
      const [mig] = (JSON.parse(rep.stdout) as { migrations: Migrated[] }).migrations
      expect(mig).toMatchObject({ asset: 'music', archive: { where: 'local' } })
      expect(mig!.original?.bytes).toBeGreaterThan(8 * MB)
      expect(mig!.reclaimableBytes).toBeGreaterThan(16 * MB)
      await new Promise((r) => setTimeout(r, 1500)) // past keepOriginal
      const fin = await cli(engine, f, ['migrate-assets', 'music', '--finalize', '--yes', '--json'])
      expect(fin.code, fin.stderr).toBe(0)
      expect(JSON.parse(fin.stdout).outcome).toBe('finalized')
      const archiveSha = await sha(mj.backup.archive)
      const finalized = { srv: await du(f.srv), backups: await du(f.backups) }
      return { before, after, finalized, archive: mj.backup.archive, archiveSha, mj }
    }

    test('backupTo: remote — after finalize + prune the archive is on the remote, verified, and the local disk holds neither copy', async ({
      engine,
    }) => {
      if (skip) return
      const f = await setup(engine, ['backupTo: remote'])
      const m = await migrateAndFinalize(engine, f)
      // the migration itself costs disk: the original kept aside and the archive beside it
      expect(m.after.srv).toBeGreaterThanOrEqual(8 * MB)
      expect(m.after.backups).toBeGreaterThan(8 * MB)
      // finalize frees the original; the archive is still here
      expect(m.finalized.srv).toBeLessThan(MB)
      expect(m.finalized.backups).toBeGreaterThan(8 * MB)
      const p = await cli(engine, f, ['prune', '--yes', '--json'])
      expect(p.code, p.stderr).toBe(0)
      const pj = JSON.parse(p.stdout) as {
        candidates: { kind: string; name: string; status: string; rule: string }[]
        freedFilesBytes: number
      }
      expect(pj.freedFilesBytes).toBe(m.mj.backup.archiveBytes)
      expect(pj.candidates.map((c) => [c.kind, c.name, c.rule, c.status])).toEqual([
        ['archive', m.archive, 'migrated-archive', 'removed'],
      ])
      const gone = { srv: await du(f.srv), backups: await du(f.backups) }
      expect(gone.backups).toBeLessThan(MB)
      expect(gone.srv).toBeLessThan(MB)
      await expect(fs.lstat(m.archive)).rejects.toThrow(/ENOENT/)
      // on the remote itself (not the mount), byte for byte
      const stamp = path.basename(path.dirname(m.archive))
      const onRemote = path.join(
        f.remote,
        '.shipshape-archives',
        'music',
        stamp,
        path.basename(m.archive),
      )
      expect(await sha(onRemote)).toBe(m.archiveSha)
      const info = JSON.parse(
        await fs.readFile(path.join(path.dirname(m.archive), 'backup.json'), 'utf8'),
      ) as {
        remoteArchive: { path: string; verifiedBy: string }
        archiveRemovedAt: string
      }
      expect(info.remoteArchive.verifiedBy).toMatch(/rclone .* on the remote/)
      expect(info.archiveRemovedAt).toBeTruthy()
      process.stderr.write(
        `\nasset lifecycle (backupTo: remote): source tree ${m.before.srv} B → after migrate ${m.after.srv} B → after finalize+prune ${gone.srv} B; backupDir ${m.before.backups} B → ${m.after.backups} B → ${gone.backups} B\n`,
      )
      const rep = await cli(engine, f, ['report', '--json'])
      const [mig] = (JSON.parse(rep.stdout) as { migrations: Migrated[] }).migrations
      expect(mig).toMatchObject({
        original: null,
        archive: {
          where: 'remote',
          path: path.join(f.mnt, '.shipshape-archives', 'music', stamp, path.basename(m.archive)),
        },
        reclaimableBytes: 0,
        next: 'nothing of it is left on the local disk',
      })
      // a second prune: nothing more
      const again = JSON.parse((await cli(engine, f, ['prune', '--json'])).stdout) as {
        candidates: unknown[]
      }
      expect(again.candidates).toEqual([])
    })

    test('default (backupTo: local): removed by prune after keepBackup, never while the original is kept', async ({
      engine,
    }) => {
      if (skip) return
      const f = await setup(engine, ['keepBackup: 1h'])
      const m = await cli(engine, f, ['migrate-assets', 'music', '--yes', '--json'])
      expect(m.code, m.stderr).toBe(0)
      const archive = (JSON.parse(m.stdout) as { backup: { archive: string } }).backup.archive
      // the original is still kept: the archive stays, whatever its age
      const held = JSON.parse((await cli(engine, f, ['prune', '--json'])).stdout) as {
        kept: { kind: string; reason: string }[]
        candidates: { kind: string }[]
      }
      expect(held.candidates.filter((c) => c.kind === 'archive')).toEqual([])
      expect(held.kept.find((k) => k.kind === 'archive')?.reason).toMatch(/kept while the original/)
      await new Promise((r) => setTimeout(r, 1500))
      // the original goes (kept-original); the archive only from keepBackup on
      const first = await cli(engine, f, ['prune', '--yes', '--json'])
      expect(first.code, first.stderr).toBe(0)
      const fj = JSON.parse(first.stdout) as { candidates: { kind: string; status: string }[] }
      expect(fj.candidates.map((c) => [c.kind, c.status])).toEqual([['original', 'removed']])
      const later = JSON.parse((await cli(engine, f, ['prune', '--json'])).stdout) as {
        kept: { kind: string; reason: string }[]
      }
      expect(later.kept.find((k) => k.kind === 'archive')?.reason).toMatch(
        /stays until .* \(keepBackup\)/,
      )
      await fs.writeFile(
        f.config,
        (await fs.readFile(f.config, 'utf8')).replace('keepBackup: 1h', 'keepBackup: 0s'),
      )
      const second = await cli(engine, f, ['prune', '--yes', '--json'])
      expect(second.code, second.stderr).toBe(0)
      const sj = JSON.parse(second.stdout) as { candidates: { kind: string; status: string }[] }
      expect(sj.candidates.map((c) => [c.kind, c.status])).toEqual([['archive', 'removed']])
      await expect(fs.lstat(archive)).rejects.toThrow(/ENOENT/)
      expect(await du(f.backups)).toBeLessThan(MB)
      expect(await du(f.srv)).toBeLessThan(MB)
      // nothing of it went to the remote
      await expect(fs.lstat(path.join(f.remote, '.shipshape-archives'))).rejects.toThrow(/ENOENT/)
    })

    test('a destination that lost a file: the archive stays (prune reports the failure)', async ({
      engine,
    }) => {
      if (skip) return
      const f = await setup(engine, [])
      const m = await migrateAndFinalize(engine, f)
      // the copy on the remote lost a file: the archive is now the only whole copy
      await fs.rm(path.join(f.remote, 'music', 'album', 't3.mp3'))
      const p = await cli(engine, f, ['prune', '--yes', '--json'])
      expect(p.code).toBe(1)
      const pj = JSON.parse(p.stdout) as {
        candidates: { kind: string; status: string; error?: string }[]
      }
      expect(pj.candidates[0]).toMatchObject({ kind: 'archive', status: 'failed' })
      expect(await sha(m.archive)).toBe(m.archiveSha)
    }, 240_000)
  },
  // the subject is rclone and the asset tree, not the engine: one engine of CI's matrix is enough
  { anyEngine: true },
)
