/**
 * Every migrate-assets step and every --revert step against fake ports (test/unit/support/
 * asset-fakes.ts): what it does, that its undo undoes it, that running it twice is running it
 * once. The real file system, rclone and engine are the engine suites' (test/engine/).
 */
import { describe, expect, it } from 'vitest'
import type { AssetConfig } from '../../../lib/config/index.js'
import type { Engine } from '../../../lib/docker/engine.js'
import { migratePaths, type MigrateContext } from '../../../lib/migrate-assets/context.js'
import { manifestOf } from '../../../lib/assets/manifest.js'
import { revertPaths, type RevertContext } from '../../../lib/migrate-assets/revert-context.js'
import { backupStep } from '../../../lib/migrate-assets/steps/backup.js'
import { checkStep } from '../../../lib/migrate-assets/steps/check.js'
import { copyStep } from '../../../lib/migrate-assets/steps/copy.js'
import { migrateSteps } from '../../../lib/migrate-assets/steps/index.js'
import { recheckStep } from '../../../lib/migrate-assets/steps/recheck.js'
import { startStep } from '../../../lib/migrate-assets/steps/start.js'
import { stopStep } from '../../../lib/migrate-assets/steps/stop.js'
import { swapStep } from '../../../lib/migrate-assets/steps/swap.js'
import { verifyBackupStep } from '../../../lib/migrate-assets/steps/verify-backup.js'
import { verifyRemoteStep } from '../../../lib/migrate-assets/steps/verify-remote.js'
import { revertCheckStep } from '../../../lib/migrate-assets/steps/revert/check.js'
import { revertFinishStep } from '../../../lib/migrate-assets/steps/revert/finish.js'
import { revertRecheckStep } from '../../../lib/migrate-assets/steps/revert/recheck.js'
import { removeCopyStep } from '../../../lib/migrate-assets/steps/revert/remove-copy.js'
import { stageStep } from '../../../lib/migrate-assets/steps/revert/stage.js'
import { revertStartStep } from '../../../lib/migrate-assets/steps/revert/start.js'
import { revertStopStep } from '../../../lib/migrate-assets/steps/revert/stop.js'
import { revertSwapStep } from '../../../lib/migrate-assets/steps/revert/swap.js'
import { verifyStep } from '../../../lib/migrate-assets/steps/revert/verify.js'
import {
  FakeEngine,
  FakeFs,
  fakeJournal,
  fakeOut,
  fakePorts,
  healthy,
  manifestOnce,
} from '../support/asset-fakes.js'

const SOURCE = '/srv/music'
const DEST = '/mnt/rd/music'
const MOUNT = '/mnt/rd'
const STAMP = '20261125T150405Z'

const asset: AssetConfig = {
  source: SOURCE,
  dest: DEST,
  mount: MOUNT,
  mountType: 'rclone',
  restart: [],
  keepOriginal: 14 * 86_400_000,
  keepBackup: 30 * 86_400_000,
  backupTo: 'local',
  uploadTimeout: 600_000,
} as AssetConfig

function sourceTree(fs: FakeFs): FakeFs {
  return fs
    .dir(SOURCE)
    .dir(`${SOURCE}/a`)
    .file(`${SOURCE}/a/one.mp3`, 'one')
    .file(`${SOURCE}/two.mp3`, 'two')
}

function migrateCtx(o: { fs?: FakeFs; restart?: string[]; health?: boolean } = {}) {
  const fs = o.fs ?? sourceTree(new FakeFs())
  const engine = new FakeEngine(o.restart ?? [])
  const out = fakeOut()
  const { ports, destinationCalls } = fakePorts(fs)
  const paths = migratePaths({
    name: 'music',
    asset,
    stamp: STAMP,
    backupDir: '/var/backups/shipshape',
    stateDir: '/var/lib/shipshape',
  })
  const ctx: MigrateContext = {
    ...ports,
    name: 'music',
    asset: o.health ? { ...asset, health: { timeout: 1000 } as AssetConfig['health'] } : asset,
    stamp: STAMP,
    paths,
    walked: fs.nodes.has(SOURCE) ? fs.entriesOf(SOURCE) : null,
    sourceIdent: null,
    remote: null,
    bindings: (o.restart ?? []).map((id) => ({
      id,
      name: `c-${id}`,
      running: true,
      bindSource: SOURCE,
      destination: '/music',
      user: '',
      composeService: null,
    })) as unknown as MigrateContext['bindings'],
    restart: (o.restart ?? []).map((id) => ({ id, name: `c-${id}` })),
    health: o.health ? ({ timeout: 1000 } as AssetConfig['health']) : undefined,
    uploadTimeoutMs: 600_000,
    engine: engine as unknown as Engine,
    out,
    manifest: manifestOnce(fs, paths.manifest),
    facts: {},
  }
  return { ctx, fs, engine, out, destinationCalls }
}

/** A context after the backup step: the manifest written (and on disk for a resume). */
async function afterBackup(o: Parameters<typeof migrateCtx>[0] = {}) {
  const t = migrateCtx(o)
  await backupStep.run(t.ctx, fakeJournal())
  return t
}

describe('migrate-assets steps (fake ports)', () => {
  it('the runbook is the nine steps, in order', () => {
    expect(migrateSteps.map((s) => s.id)).toEqual([
      'backup',
      'verify-backup',
      'copy',
      'verify-remote',
      'stop',
      'recheck',
      'swap',
      'start',
      'check',
    ])
  })

  it('backup: notes the stamp and paths, writes the archive, the manifest and backup.json', async () => {
    const { ctx, fs } = migrateCtx()
    const j = fakeJournal()
    await backupStep.run(ctx, j)
    expect(j.notes).toMatchObject({ stamp: STAMP, source: SOURCE, dest: DEST, mount: MOUNT })
    expect(j.notes.compression).toBe('zstd')
    const m = fs.manifests.get(ctx.paths.manifest)!
    expect(m.files).toBe(2)
    expect(ctx.manifest.peek()).toBe(m) // carried: the next steps do not read it again
    expect(await fs.readJson(ctx.paths.backupInfo)).toMatchObject({ compression: 'zstd' })
    expect(await backupStep.verify!(ctx)).toBe(true)
    expect(ctx.facts).toMatchObject({ compression: 'zstd', archiveBytes: 7 })
  })

  it('backup: verify is false when the archive is not the size recorded; no source, no backup', async () => {
    const { ctx, fs } = await afterBackup()
    fs.file(`${ctx.paths.workDir}/archive.tar.zst`, 'TORN')
    expect(await backupStep.verify!(ctx)).toBe(false)
    const empty = migrateCtx({ fs: new FakeFs() })
    await expect(backupStep.run(empty.ctx, fakeJournal())).rejects.toThrow(/not read/)
  })

  it('backup: run twice writes the same manifest (idempotent)', async () => {
    const { ctx, fs } = await afterBackup()
    const first = fs.manifests.get(ctx.paths.manifest)
    await backupStep.run(ctx, fakeJournal())
    expect(fs.manifests.get(ctx.paths.manifest)).toEqual(first)
  })

  it('verify-backup: checks the archive against the carried manifest, without reading it again', async () => {
    const { ctx, fs } = await afterBackup()
    fs.calls.length = 0
    await verifyBackupStep.run(ctx, fakeJournal())
    expect(fs.calls.filter((c) => c.startsWith('readManifest'))).toEqual([])
    const none = migrateCtx()
    await expect(verifyBackupStep.run(none.ctx, fakeJournal())).rejects.toThrow(/backup\.json/)
  })

  it('copy: notes whether dest existed, copies every file; its undo removes them; twice = once', async () => {
    const { ctx, fs } = await afterBackup()
    fs.dir(MOUNT)
    const j = fakeJournal()
    await copyStep.run(ctx, j)
    expect(j.notes).toEqual({ dest: DEST, destExisted: false })
    expect(fs.nodes.get(`${DEST}/a/one.mp3`)).toMatchObject({ kind: 'file', text: 'one' })
    expect(ctx.facts.copied).toBe(2)
    await copyStep.run(ctx, j)
    expect(ctx.facts).toMatchObject({ copied: 0, skipped: 2 })
    expect(j.notes.destExisted).toBe(false) // noted once, not overwritten by the rerun
    await copyStep.undo!(ctx, j)
    expect(fs.nodes.has(DEST)).toBe(false)
    expect(fs.nodes.has(`${SOURCE}/two.mp3`)).toBe(true)
  })

  it('copy: an empty dest that was there before is emptied by the undo, not removed', async () => {
    const { ctx, fs } = await afterBackup()
    fs.dir(DEST)
    const j = fakeJournal()
    await copyStep.run(ctx, j)
    expect(j.notes.destExisted).toBe(true)
    await copyStep.undo!(ctx, j)
    expect(fs.nodes.get(DEST)?.kind).toBe('dir')
    expect(fs.entriesOf(DEST)).toEqual([])
  })

  it('copy: the undo of a run whose backup never finished does nothing', async () => {
    const { ctx, fs } = migrateCtx()
    fs.dir(DEST).file(`${DEST}/theirs`, 'x')
    await copyStep.undo!(ctx, fakeJournal())
    expect(fs.nodes.has(`${DEST}/theirs`)).toBe(true)
  })

  it('verify-remote: the destination checked through the port, how it was noted', async () => {
    const { ctx, destinationCalls } = await afterBackup()
    await verifyRemoteStep.run(ctx, fakeJournal())
    expect(destinationCalls).toEqual([DEST])
    expect(ctx.facts.verifiedBy).toBe('rclone sha256 on the remote')
  })

  it('stop: notes and stops the containers; its undo starts them and waits for health', async () => {
    const { ctx, engine, out } = migrateCtx({ restart: ['c1'], health: true })
    const j = fakeJournal()
    await stopStep.run(ctx, j)
    expect(j.notes.containers).toEqual([{ id: 'c1', name: 'c-c1' }])
    expect(engine.running.get('c1')).toBe(false)
    expect(await stopStep.verify!(ctx)).toBe(true)
    await stopStep.run(ctx, j) // twice = once
    expect(engine.running.get('c1')).toBe(false)
    await stopStep.undo!(ctx, j)
    expect(engine.running.get('c1')).toBe(true)
    expect(out.lines).toContain('info healthy again on the original directory')
  })

  it('stop: an undo whose health check fails says where it stands', async () => {
    const t = migrateCtx({ restart: ['c1'], health: true })
    t.ctx.waitHealthy = async () => ({ ...healthy, ok: false, broke: 'restarted' })
    const j = fakeJournal()
    await stopStep.run(t.ctx, j)
    await expect(stopStep.undo!(t.ctx, j)).rejects.toThrow(
      /back on the original directory, but not healthy: restarted/,
    )
  })

  it('recheck: passes on the source as backed up; fails on a file written meanwhile', async () => {
    const { ctx, fs } = await afterBackup()
    // the fake walk has no inodes or ctimes: the backup's entries are what it walks
    await recheckStep.run(ctx, fakeJournal())
    fs.file(`${SOURCE}/three.mp3`, 'new')
    await expect(recheckStep.run(ctx, fakeJournal())).rejects.toThrow(
      /changed while it was being copied/,
    )
  })

  it('recheck: after the swap (a --resume) the original aside is walked', async () => {
    const { ctx, fs } = await afterBackup()
    fs.dir(MOUNT).dir(DEST)
    await swapStep.run(ctx, fakeJournal())
    fs.calls.length = 0
    await recheckStep.run(ctx, fakeJournal())
    expect(fs.calls).toContain(`walk ${ctx.paths.aside}`)
  })

  it('swap: the source renamed aside, the link in its place; its undo puts it back; twice = once', async () => {
    const { ctx, fs } = await afterBackup()
    fs.dir(MOUNT).dir(DEST)
    const j = fakeJournal()
    expect(await swapStep.verify!(ctx)).toBe(false)
    await swapStep.run(ctx, j)
    expect(j.notes.aside).toBe(ctx.paths.aside)
    expect(await fs.kindOf(SOURCE)).toEqual({ kind: 'symlink', target: DEST })
    expect(fs.nodes.get(`${ctx.paths.aside}/two.mp3`)).toBeTruthy()
    expect(await swapStep.verify!(ctx)).toBe(true)
    await swapStep.run(ctx, j)
    expect(await swapStep.verify!(ctx)).toBe(true)
    await swapStep.undo!(ctx, j)
    expect((await fs.kindOf(SOURCE)).kind).toBe('dir')
    expect(fs.nodes.has(ctx.paths.aside)).toBe(false)
    await swapStep.undo!(ctx, j) // the rename never happened (or was undone): nothing to do
    expect((await fs.kindOf(SOURCE)).kind).toBe('dir')
  })

  it('swap: a crash between rename and symlink is finished; a foreign aside is never overwritten', async () => {
    const { ctx, fs } = await afterBackup()
    await fs.rename(SOURCE, ctx.paths.aside)
    await swapStep.run(ctx, fakeJournal())
    expect(await swapStep.verify!(ctx)).toBe(true)
    const t = await afterBackup()
    t.fs.dir(t.ctx.paths.aside)
    await expect(swapStep.run(t.ctx, fakeJournal())).rejects.toThrow(/already exists/)
  })

  it('swap: the undo leaves a link that is not shipshape’s', async () => {
    const { ctx, fs } = await afterBackup()
    await swapStep.run(ctx, fakeJournal())
    await fs.unlink(SOURCE)
    fs.link(SOURCE, '/elsewhere')
    await expect(swapStep.undo!(ctx, fakeJournal())).rejects.toThrow(/not removing it/)
  })

  it('start: starts the restarted containers; its undo stops them again', async () => {
    const { ctx, engine } = migrateCtx({ restart: ['c1', 'c2'] })
    for (const id of ['c1', 'c2']) engine.running.set(id, false)
    await startStep.run(ctx, fakeJournal())
    await startStep.run(ctx, fakeJournal())
    expect(await startStep.verify!(ctx)).toBe(true)
    await startStep.undo!(ctx, fakeJournal())
    expect([...engine.running.values()]).toEqual([false, false])
  })

  it('check: each container reads a file of the asset; original.json says until when', async () => {
    const { ctx, fs, engine } = await afterBackup({ restart: ['c1'], health: true })
    await checkStep.run(ctx, fakeJournal())
    expect(engine.execs).toEqual([{ id: 'c1', argv: ['head', '-c', '1', '/music/a/one.mp3'] }])
    expect(ctx.facts.seenBy).toEqual(['c-c1'])
    expect(ctx.facts.health).toBe('healthy after 1 attempt(s)')
    expect(await fs.readJson(`${ctx.paths.workDir}/original.json`)).toEqual({
      original: ctx.paths.aside,
      source: SOURCE,
      dest: DEST,
      keepUntil: '2026-12-09T15:04:05.000Z',
    })
  })

  it('check: a container that cannot read the file fails the step', async () => {
    const { ctx, engine } = await afterBackup({ restart: ['c1'] })
    engine.execResult = { exitCode: 1, stdout: '', stderr: 'Permission denied' }
    await expect(checkStep.run(ctx, fakeJournal())).rejects.toThrow(
      /cannot read .* Permission denied/,
    )
  })

  it('the migration reads manifest.json once: the backup writes it, the rest hold to it', async () => {
    const { ctx, fs } = await afterBackup({ restart: ['c1'] })
    fs.dir(MOUNT)
    for (const s of migrateSteps.slice(1)) await s.run(ctx, fakeJournal())
    expect(fs.calls.filter((c) => c.startsWith('readManifest'))).toEqual([])
    // on a --resume, once: the backup's verify reads it from disk and carries it
    const again = migrateCtx({ fs })
    expect(await backupStep.verify!(again.ctx)).toBe(true)
    await verifyBackupStep.run(again.ctx, fakeJournal())
    expect(fs.calls.filter((c) => c.startsWith('readManifest'))).toHaveLength(1)
  })
})

// ---------------------------------------------------------------------------------------------
// --revert

const MIGRATION = `/var/backups/shipshape/music/${STAMP}`
const RSTAMP = '20261201T100000Z'

/** A migrated asset: source links to dest, the copy on the mount, the original kept aside. */
function migrated(): FakeFs {
  const fs = new FakeFs().dir(MOUNT).dir(DEST).dir(`${DEST}/a`)
  fs.file(`${DEST}/a/one.mp3`, 'one').file(`${DEST}/two.mp3`, 'two').link(SOURCE, DEST)
  fs.dir(MIGRATION)
  const entries = fs.entriesOf(DEST)
  void fs.writeManifest(`${MIGRATION}/manifest.json`, manifestOf(SOURCE, entries, new Date(0)))
  fs.file(
    `${MIGRATION}/original.json`,
    JSON.stringify({ original: `${SOURCE}.shipshape-${STAMP}` }),
  )
  return fs
}

function revertCtx(
  o: { fs?: FakeFs; from?: 'original' | 'destination'; removeCopy?: boolean } = {},
) {
  const fs = o.fs ?? migrated()
  const engine = new FakeEngine(['c1'])
  const out = fakeOut()
  const { ports } = fakePorts(fs)
  const paths = revertPaths({
    name: 'music',
    asset,
    stamp: RSTAMP,
    migration: MIGRATION,
    stateDir: '/var/lib/shipshape',
  })
  const ctx: RevertContext = {
    ...ports,
    name: 'music',
    asset,
    stamp: RSTAMP,
    paths,
    from: o.from ?? 'destination',
    destChanged: false,
    removeCopy: o.removeCopy ?? false,
    restart: [{ id: 'c1', name: 'c-c1' }],
    health: undefined,
    engine: engine as unknown as Engine,
    out,
    expected: manifestOnce(fs, paths.expected),
    facts: {},
  }
  return { ctx, fs, engine, out }
}

describe('migrate-assets --revert steps (fake ports)', () => {
  it('stage from the destination: the copy back, owners put back; its undo removes it; twice = once', async () => {
    const { ctx, fs } = revertCtx()
    const j = fakeJournal()
    await stageStep.run(ctx, j)
    expect(j.notes).toMatchObject({ stamp: RSTAMP, migration: MIGRATION, from: 'destination' })
    expect(fs.nodes.get(`${ctx.paths.staging}/a/one.mp3`)).toMatchObject({ text: 'one' })
    expect(fs.calls).toContain(`putOwners ${ctx.paths.staging}`)
    expect(ctx.expected.peek()?.files).toBe(2)
    await stageStep.run(ctx, j)
    expect(ctx.facts.copied).toBe(0)
    expect(await stageStep.verify!(ctx)).toBe(true)
    await stageStep.undo!(ctx, j)
    expect(fs.nodes.has(ctx.paths.staging)).toBe(false)
    expect(fs.nodes.has(`${DEST}/two.mp3`)).toBe(true)
  })

  it('stage from the kept original: renamed, not copied; its undo renames it back', async () => {
    const fs = migrated()
    const original = `${SOURCE}.shipshape-${STAMP}`
    fs.dir(original).file(`${original}/two.mp3`, 'two')
    const { ctx } = revertCtx({ fs, from: 'original' })
    const j = fakeJournal()
    await stageStep.run(ctx, j)
    expect(fs.nodes.has(original)).toBe(false)
    expect(fs.nodes.get(`${ctx.paths.staging}/two.mp3`)).toBeTruthy()
    await stageStep.run(ctx, j) // renamed before a crash: done
    await stageStep.undo!(ctx, j)
    expect(fs.nodes.get(`${original}/two.mp3`)).toBeTruthy()
  })

  it('verify: every file brought back matches the manifest; a missing one fails', async () => {
    const { ctx, fs } = revertCtx()
    await stageStep.run(ctx, fakeJournal())
    await verifyStep.run(ctx, fakeJournal())
    expect(ctx.facts.verified).toBe(2)
    await fs.unlink(`${ctx.paths.staging}/two.mp3`)
    await expect(verifyStep.run(ctx, fakeJournal())).rejects.toThrow(/differ from the manifest/)
  })

  it('stop/start: the shared steps with the revert’s words', async () => {
    const { ctx, engine } = revertCtx()
    ctx.health = { timeout: 1 } as RevertContext['health']
    const j = fakeJournal()
    await revertStopStep.run(ctx, j)
    expect(engine.running.get('c1')).toBe(false)
    await revertStopStep.undo!(ctx, j)
    expect(engine.running.get('c1')).toBe(true)
    expect(revertStartStep.title).toBe('Start the containers on the local directory')
    await revertStartStep.undo!(ctx, j)
    expect(engine.running.get('c1')).toBe(false)
    await revertStartStep.run(ctx, j)
    expect(await revertStartStep.verify!(ctx)).toBe(true)
  })

  it('recheck: the destination as brought back passes; one the app wrote to fails', async () => {
    const { ctx, fs } = revertCtx()
    await stageStep.run(ctx, fakeJournal())
    await revertRecheckStep.run(ctx, fakeJournal())
    fs.file(`${DEST}/new.mp3`, 'new')
    await expect(revertRecheckStep.run(ctx, fakeJournal())).rejects.toThrow(/changed while/)
  })

  it('swap: link aside, staging in; its undo puts the link back; twice = once', async () => {
    const { ctx, fs } = revertCtx()
    await stageStep.run(ctx, fakeJournal())
    const j = fakeJournal()
    await revertSwapStep.run(ctx, j)
    expect((await fs.kindOf(SOURCE)).kind).toBe('dir')
    expect(await fs.kindOf(ctx.paths.linkAside)).toEqual({ kind: 'symlink', target: DEST })
    expect(await revertSwapStep.verify!(ctx)).toBe(true)
    await revertSwapStep.run(ctx, j)
    expect(await revertSwapStep.verify!(ctx)).toBe(true)
    await revertSwapStep.undo!(ctx, j)
    expect(await fs.kindOf(SOURCE)).toEqual({ kind: 'symlink', target: DEST })
    expect((await fs.kindOf(ctx.paths.staging)).kind).toBe('dir')
    await revertSwapStep.undo!(ctx, j)
    expect(await fs.kindOf(SOURCE)).toEqual({ kind: 'symlink', target: DEST })
  })

  it('check: without a health check, a warning; with one, its result', async () => {
    const { ctx, out } = revertCtx()
    await revertCheckStep.run(ctx, fakeJournal())
    expect(out.lines[0]).toMatch(/^warn no health check configured/)
    ctx.health = { timeout: 1 } as RevertContext['health']
    await revertCheckStep.run(ctx, fakeJournal())
    expect(ctx.facts.health).toBe('healthy after 1 attempt(s)')
  })

  it('finish: the link aside dropped, reverted.json and revertedAt written; its undo takes both back', async () => {
    const { ctx, fs } = revertCtx()
    await stageStep.run(ctx, fakeJournal())
    await revertSwapStep.run(ctx, fakeJournal())
    await revertFinishStep.run(ctx, fakeJournal())
    expect(fs.nodes.has(ctx.paths.linkAside)).toBe(false)
    expect(await fs.readJson(ctx.paths.record)).toMatchObject({ from: 'destination' })
    expect(await fs.readJson(`${MIGRATION}/original.json`)).toHaveProperty('revertedAt')
    expect(await revertFinishStep.verify!(ctx)).toBe(true)
    await revertFinishStep.run(ctx, fakeJournal()) // twice = once
    await revertFinishStep.undo!(ctx, fakeJournal())
    expect(fs.nodes.has(ctx.paths.record)).toBe(false)
    expect(await fs.readJson(`${MIGRATION}/original.json`)).not.toHaveProperty('revertedAt')
    expect(await fs.kindOf(ctx.paths.linkAside)).toEqual({ kind: 'symlink', target: DEST })
  })

  it('remove-copy: only with --remove-copy, by descriptors from the mount', async () => {
    const left = revertCtx()
    await removeCopyStep.run(left.ctx, fakeJournal())
    expect(left.fs.nodes.has(DEST)).toBe(true)
    const { ctx, fs } = revertCtx({ removeCopy: true })
    await removeCopyStep.run(ctx, fakeJournal())
    expect(fs.nodes.has(DEST)).toBe(false)
    expect(fs.calls).toContain(`removeTree ${DEST}`)
    expect(ctx.facts.copyRemoved).toBe(true)
  })
})
