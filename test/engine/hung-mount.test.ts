/**
 * report and prune with a hung FUSE mount (issue 17): a real `rclone mount` whose rclone is
 * stopped with SIGSTOP holds the destination of a migrated asset whose kept original is due, and
 * lies below a configured report path. The built CLI's `report --json` and `prune --json --yes`
 * end within a bound with a warning naming the mount and `fusermount3 -uz`; prune keeps the
 * original it could not check and leaves the lock free (the next run is not refused); after
 * SIGCONT the same prune removes the original. Before issue 17 both runs hung for good: prune on
 * the destination check through the mount, report on du stat-ing the mount point.
 *
 * Prune removes things engine-wide: this file starts its own private engine (as prune.test.ts).
 */
import { existsSync } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, expect, it as test } from 'vitest'
import { manifestOf, writeManifest } from '../../lib/assets/manifest.js'
import { lockPath } from '../../lib/host/lock.js'
import type { Report } from '../../lib/report/types.js'
import { runCli, type CliResult } from '../cli/run.js'
import { requestedEngineKind, startEngine, type PrivateEngine } from '../harness/engine.js'
import {
  mountRclone,
  rcloneTempDirs,
  rcloneUsableSync,
  unmountAll,
  type RcloneMount,
} from '../harness/rclone.js'
import { describeEngine } from '../harness/suite.js'

const STAMP = '20260101T000000Z'
// a probe waits 5 s for a hung mount, once per mount and run; the rest is the engine's
const BOUND_MS = 40_000
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Prune {
  outcome: string
  candidates: { kind: string; name: string; status?: string }[]
  kept: { kind: string; name: string; reason: string }[]
  warnings: string[]
}

describeEngine(
  'report and prune with a hung FUSE mount',
  () => {
    let engine: PrivateEngine
    let d: Awaited<ReturnType<typeof rcloneTempDirs>>
    let m: RcloneMount
    let config: string
    let state: string
    let aside: string
    let srv: string

    beforeAll(async () => {
      const usable = rcloneUsableSync()
      if (!usable.ok) throw new Error(`rclone/FUSE unusable: ${usable.reason}`)
      engine = await startEngine(requestedEngineKind())
      d = await rcloneTempDirs('ss-hung-engine-')
      await fs.mkdir(path.join(d.remoteDir, 'music'))
      await fs.writeFile(path.join(d.remoteDir, 'music', 'a.mp3'), 'x'.repeat(1000))
      m = await mountRclone({ remoteDir: d.remoteDir, mountDir: d.mountDir })
      srv = path.join(d.root, 'srv')
      const source = path.join(srv, 'app/music')
      const dest = path.join(d.mountDir, 'music')
      aside = `${source}.shipshape-${STAMP}`
      state = path.join(d.root, 'state')
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
      await writeManifest(
        path.join(workDir, 'manifest.json'),
        manifestOf(source, [entry], new Date()),
      )
      await fs.writeFile(
        path.join(workDir, 'original.json'),
        JSON.stringify({ original: aside, source, dest, keepUntil: '2026-01-08T00:00:00.000Z' }),
      )
      config = path.join(d.root, 'shipshape.yaml')
      await fs.writeFile(
        config,
        [
          `stateDir: ${JSON.stringify(state)}`,
          `backupDir: ${JSON.stringify(backups)}`,
          `allowedRoots: [${JSON.stringify(srv)}]`,
          // the temp root holds the mount point: du -x would stat it; srv holds none
          `report: { paths: [${JSON.stringify(d.root)}, ${JSON.stringify(srv)}] }`,
          'assets:',
          '  music:',
          `    source: ${JSON.stringify(source)}`,
          `    dest: ${JSON.stringify(dest)}`,
          `    mount: ${JSON.stringify(d.mountDir)}`,
          '',
        ].join('\n'),
      )
    }, 300_000)

    afterEach(() => {
      m?.thaw()
    })

    afterAll(async () => {
      // never leave a mount hung: thaw, unmount, then the engine
      m?.thaw()
      await m?.unmount().catch(() => {})
      await unmountAll()
      await d?.remove()
      await engine?.stop()
    })

    const cli = (args: string[]): Promise<CliResult> =>
      runCli(
        ['--config', config, '--docker-host', engine.dockerHost, ...args],
        {},
        BOUND_MS + 30_000,
      )

    /** SIGSTOP rclone, past its attribute cache (1 s): every call through the mount then blocks. */
    const freeze = async () => {
      m.freeze()
      await sleep(1500)
    }

    const mountWarning = (skipped: string) =>
      `the mount ${d.mountDir} does not answer (no answer to statfs within 5 s: hung): skipped ${skipped}; fix: fusermount3 -uz ${d.mountDir}, then mount it again`

    test('report --json ends within its bound, warns of the mount, measures the rest', async () => {
      await freeze()
      const r = await cli(['--json', 'report'])
      console.log(`report with the hung mount: ${r.ms} ms`)
      expect(r.ms, r.stderr).toBeLessThan(BOUND_MS)
      expect(r.code, r.stderr).toBe(0)
      const report = JSON.parse(r.stdout) as Report
      expect(report.warnings).toContain(mountWarning(`du of ${d.root}`))
      // the same warning on stderr, for a timer's journal
      expect(r.stderr).toContain(`fusermount3 -uz ${d.mountDir}`)
      // the path without a mount below it is measured as usual
      expect(JSON.stringify(report)).toContain(srv)
    })

    test('prune --json --yes ends within its bound, keeps the original, leaves the lock free; after SIGCONT it goes', async () => {
      await freeze()
      const r = await cli(['--json', 'prune', '--yes'])
      console.log(`prune --yes with the hung mount: ${r.ms} ms`)
      expect(r.ms, r.stderr).toBeLessThan(BOUND_MS)
      expect(r.code, r.stderr).toBe(0)
      const p = JSON.parse(r.stdout) as Prune
      expect(p.warnings).toContain(mountWarning('the kept originals of asset music (they stay)'))
      expect(p.candidates.filter((c) => c.kind === 'original')).toEqual([])
      expect(existsSync(aside)).toBe(true)
      // prune --yes took the lock: it is free again, and the next run is not refused
      expect(existsSync(lockPath(state))).toBe(false)

      m.thaw()
      const again = await cli(['--json', 'prune', '--yes'])
      expect(again.code, again.stderr).toBe(0)
      const q = JSON.parse(again.stdout) as Prune
      expect(q.warnings.filter((w) => w.includes('fusermount3'))).toEqual([])
      expect(q.candidates.filter((c) => c.kind === 'original')).toMatchObject([
        { name: aside, status: 'removed' },
      ])
      expect(existsSync(aside)).toBe(false)
      expect(existsSync(lockPath(state))).toBe(false)
    })
  },
  // the subject is rclone and the asset tree, not the engine: one engine of CI's matrix is enough
  { anyEngine: true },
)
