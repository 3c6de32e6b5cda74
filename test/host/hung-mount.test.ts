/**
 * A hung FUSE mount (issue 17): a real `rclone mount` whose rclone is stopped with SIGSTOP. Every
 * call through it that reaches rclone blocks, and in-process it would block a libuv thread for
 * good (the process would not even exit). lib/host/mountprobe.ts asks from a child with a
 * deadline; the built CLI's doctor and `migrate-assets --finalize` end within a bound with the
 * mount and `fusermount3 -uz` named, and leave the lock free. The engine half (report, prune)
 * is test/engine/hung-mount.test.ts.
 */
import { existsSync } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterEach, expect, test } from 'vitest'
import { manifestOf, writeManifest } from '../../lib/assets/manifest.js'
import { clearProbeCache, guardPath, probeMount } from '../../lib/host/mountprobe.js'
import { lockPath } from '../../lib/host/lock.js'
import { runCli } from '../cli/run.js'
import { mountRclone, rcloneTempDirs, unmountAll, type RcloneMount } from '../harness/rclone.js'
import { describeRclone } from '../harness/rclone-suite.js'

const STAMP = '20260101T000000Z'
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const cleanups: (() => Promise<void>)[] = []
const mounts: RcloneMount[] = []
afterEach(async () => {
  // never leave a mount hung: thaw, then unmount
  for (const m of mounts.splice(0)) {
    m.thaw()
    await m.unmount().catch(() => {})
  }
  await unmountAll()
  for (const c of cleanups.splice(0)) await c()
  clearProbeCache()
})

/**
 * A migrated asset whose kept original is due: source → symlink to dest on a real rclone mount,
 * the original aside with the manifest's file, original.json and manifest.json as a migration
 * leaves them, a config naming it all.
 */
async function migratedOnMount() {
  const d = await rcloneTempDirs('ss-hung-')
  cleanups.push(d.remove)
  await fs.mkdir(path.join(d.remoteDir, 'music'))
  await fs.writeFile(path.join(d.remoteDir, 'music', 'a.mp3'), 'x'.repeat(1000))
  const m = await mountRclone({ remoteDir: d.remoteDir, mountDir: d.mountDir })
  mounts.push(m)
  const source = path.join(d.root, 'srv/app/music')
  const dest = path.join(d.mountDir, 'music')
  const aside = `${source}.shipshape-${STAMP}`
  const state = path.join(d.root, 'state')
  const backups = path.join(d.root, 'backups')
  const workDir = path.join(backups, 'music', STAMP)
  await fs.mkdir(aside, { recursive: true })
  await fs.mkdir(workDir, { recursive: true, mode: 0o700 })
  await fs.chmod(backups, 0o700)
  await fs.writeFile(path.join(aside, 'a.mp3'), 'x'.repeat(1000))
  await fs.utimes(path.join(aside, 'a.mp3'), 1_700_000_000, 1_700_000_000)
  await fs.symlink(dest, source)
  const entry = {
    path: 'a.mp3',
    kind: 'file' as const,
    size: 1000,
    mode: 0o644,
    mtimeMs: 1_700_000_000_000,
    uid: 0,
    gid: 0,
  }
  await writeManifest(path.join(workDir, 'manifest.json'), manifestOf(source, [entry], new Date()))
  await fs.writeFile(
    path.join(workDir, 'original.json'),
    JSON.stringify({ original: aside, source, dest, keepUntil: '2026-01-08T00:00:00.000Z' }),
  )
  const config = path.join(d.root, 'shipshape.yaml')
  await fs.writeFile(
    config,
    [
      `stateDir: ${JSON.stringify(state)}`,
      `backupDir: ${JSON.stringify(backups)}`,
      `allowedRoots: [${JSON.stringify(path.join(d.root, 'srv'))}]`,
      'assets:',
      '  music:',
      `    source: ${JSON.stringify(source)}`,
      `    dest: ${JSON.stringify(dest)}`,
      `    mount: ${JSON.stringify(d.mountDir)}`,
      '',
    ].join('\n'),
  )
  return { ...d, m, source, dest, aside, state, config }
}

/** SIGSTOP rclone and wait past its attribute cache (1 s): every call then reaches it and blocks. */
async function freeze(m: RcloneMount): Promise<void> {
  m.freeze()
  await sleep(1500)
}

// a probe waits 5 s for a hung mount; a CLI run pays that once: bound each run at 30 s
const BOUND_MS = 30_000

describeRclone('a hung FUSE mount (rclone stopped with SIGSTOP)', () => {
  test('probeMount: live, then hung within its deadline, then gone once rclone is killed', async () => {
    const f = await migratedOnMount()
    expect(await probeMount(f.mountDir, { timeoutMs: 2000 })).toMatchObject({ state: 'live' })
    await freeze(f.m)
    clearProbeCache()
    const t0 = Date.now()
    const hung = await probeMount(f.mountDir, { timeoutMs: 2000 })
    expect(hung).toMatchObject({ state: 'hung', detail: 'no answer to statfs within 2 s' })
    expect(Date.now() - t0).toBeLessThan(6000)
    // a path below it reaches it too (the answer is cached now: no second wait)
    const t1 = Date.now()
    expect((await guardPath(path.join(f.dest, 'a.mp3'))).map((p) => p.mountPoint)).toEqual([
      f.mountDir,
    ])
    expect(Date.now() - t1).toBeLessThan(1000)
    await f.m.kill9()
    clearProbeCache()
    expect(await probeMount(f.mountDir, { timeoutMs: 2000 })).toMatchObject({
      state: 'gone',
      detail: 'Transport endpoint is not connected',
    })
  })

  test('migrate-assets --finalize ends with a warning and keeps the original; after SIGCONT it removes it', async () => {
    const f = await migratedOnMount()
    await freeze(f.m)
    const r = await runCli(
      ['--config', f.config, 'migrate-assets', 'music', '--finalize', '--yes'],
      {},
      BOUND_MS + 10_000,
    )
    expect(r.ms, r.stderr).toBeLessThan(BOUND_MS)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain(
      `warning: the mount ${f.mountDir} does not answer (no answer to statfs within 5 s: hung): skipped the kept originals of asset music (they stay); fix: fusermount3 -uz ${f.mountDir}, then mount it again`,
    )
    expect(r.stderr).toContain(`${f.aside}: stays (the mount ${f.mountDir} does not answer`)
    expect(existsSync(f.aside)).toBe(true)
    // the lock is free: no lock file, and the next run is not refused
    expect(existsSync(lockPath(f.state))).toBe(false)

    // the same records with rclone running again: the original goes (the records were valid, so
    // the run above was held back by the mount alone)
    f.m.thaw()
    const again = await runCli(
      ['--config', f.config, '--json', 'migrate-assets', 'music', '--finalize', '--yes'],
      {},
      BOUND_MS,
    )
    expect(again.code, again.stderr).toBe(0)
    expect(JSON.parse(again.stdout).outcome).toBe('finalized')
    expect(existsSync(f.aside)).toBe(false)
    expect(again.stderr).not.toContain('fusermount3')
  })

  test('doctor fails the asset mount check with the fix, and exits (not hung at exit)', async () => {
    const f = await migratedOnMount()
    await freeze(f.m)
    const r = await runCli(
      [
        '--config',
        f.config,
        '--docker-host',
        `unix://${path.join(f.root, 'no-engine.sock')}`,
        '--json',
        'doctor',
      ],
      {},
      BOUND_MS + 10_000,
    )
    expect(r.ms, r.stderr).toBeLessThan(BOUND_MS)
    expect(r.code, r.stderr).toBe(1)
    const checks = (
      JSON.parse(r.stdout) as {
        checks: { id: string; status: string; detail: string; fix: string }[]
      }
    ).checks
    const mount = checks.find((c) => c.id === 'asset-mount:music')
    expect(mount).toMatchObject({ status: 'fail' })
    expect(mount?.detail).toContain(
      `${f.mountDir} does not answer (no answer to statfs within 5 s)`,
    )
    expect(mount?.fix).toContain(`fusermount3 -uz ${f.mountDir}`)
    expect(existsSync(lockPath(f.state))).toBe(false)
  })
})
