/**
 * `migrate-assets NAME --finalize` killed between removing an original and recording it: the
 * journal stays unfinished, a plain --finalize is refused (exit 4), and `--finalize --resume`
 * finishes it (the original found gone counts as removed). No engine: --finalize reads only files.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { manifestOf, writeManifest } from '../../lib/assets/manifest.js'
import { findUnfinishedJournals, JournalWriter } from '../../lib/runbook/journal.js'
import { runCli } from './run.js'

const STAMP = '20260101T000000Z'
const roots: string[] = []

afterEach(async () => {
  for (const r of roots.splice(0)) await fs.rm(r, { recursive: true, force: true })
})

async function migrated() {
  const root = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'ss-fin-')))
  roots.push(root)
  const source = path.join(root, 'srv/app/music')
  const mount = path.join(root, 'mnt')
  const dest = path.join(mount, 'music')
  const aside = `${source}.shipshape-${STAMP}`
  const state = path.join(root, 'state')
  const backups = path.join(root, 'backups')
  const workDir = path.join(backups, 'music', STAMP)
  await fs.mkdir(dest, { recursive: true })
  await fs.mkdir(aside, { recursive: true })
  await fs.mkdir(workDir, { recursive: true })
  await fs.writeFile(path.join(dest, 'a.mp3'), 'x'.repeat(1000))
  await fs.writeFile(path.join(aside, 'a.mp3'), 'x'.repeat(1000))
  await fs.symlink(dest, source)
  const entry = {
    path: 'a.mp3',
    kind: 'file' as const,
    size: 1000,
    mode: 0o644,
    mtimeMs: 0,
    uid: 0,
    gid: 0,
  }
  await writeManifest(path.join(workDir, 'manifest.json'), manifestOf(source, [entry], new Date()))
  await fs.writeFile(
    path.join(workDir, 'original.json'),
    JSON.stringify({ original: aside, source, dest, keepUntil: '2026-01-08T00:00:00.000Z' }),
  )
  const config = path.join(root, 'shipshape.yaml')
  await fs.writeFile(
    config,
    [
      `stateDir: ${JSON.stringify(state)}`,
      `backupDir: ${JSON.stringify(backups)}`,
      `allowedRoots: [${JSON.stringify(path.join(root, 'srv'))}]`,
      'assets:',
      '  music:',
      `    source: ${JSON.stringify(source)}`,
      `    dest: ${JSON.stringify(dest)}`,
      `    mount: ${JSON.stringify(mount)}`,
      '',
    ].join('\n'),
  )
  return { root, source, aside, state, workDir, config }
}

// three CLI runs each: seconds apiece on a loaded 2-core machine
describe('migrate-assets --finalize, interrupted', { timeout: 30_000 }, () => {
  it('a run killed after the rm: refused until --resume, which finishes and closes the journal', async () => {
    const f = await migrated()
    // what a kill -9 right after `rm -r` leaves: the step begun, the original gone, no record
    const j = await JournalWriter.create(f.state, {
      operation: 'migrate-assets-finalize',
      args: { asset: 'music' },
      host: os.hostname(),
      pid: 999_999,
      at: new Date().toISOString(),
      steps: [{ id: `remove-${STAMP}`, title: 'Remove the original' }],
    })
    await j.append({ t: 'step-begin', id: `remove-${STAMP}`, at: new Date().toISOString() })
    await j.close()
    await fs.rm(f.aside, { recursive: true })

    const plain = await runCli([
      '--config',
      f.config,
      'migrate-assets',
      'music',
      '--finalize',
      '--yes',
    ])
    expect(plain.code, plain.stderr).toBe(4)
    expect(plain.stderr).toMatch(/--resume/)

    const r = await runCli([
      '--config',
      f.config,
      '--json',
      'migrate-assets',
      'music',
      '--finalize',
      '--resume',
      '--yes',
    ])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout).outcome).toBe('finalized')
    expect(await findUnfinishedJournals(f.state, 'migrate-assets-finalize')).toEqual([])
    const rec = JSON.parse(await fs.readFile(path.join(f.workDir, 'original.json'), 'utf8'))
    expect(rec.removedAt).toMatch(/^\d{4}-/)
    // the migration itself untouched
    expect(await fs.readlink(f.source)).toMatch(/mnt\/music$/)

    const again = await runCli([
      '--config',
      f.config,
      '--json',
      'migrate-assets',
      'music',
      '--finalize',
      '--yes',
    ])
    expect(again.code, again.stderr).toBe(0)
    expect(JSON.parse(again.stdout).outcome).toBe('nothing-to-finalize')
  })

  it('--finalize with both --resume and --rollback is a usage error', async () => {
    const f = await migrated()
    const r = await runCli([
      '--config',
      f.config,
      'migrate-assets',
      'music',
      '--finalize',
      '--resume',
      '--rollback',
    ])
    expect(r.code, r.stderr).toBe(2)
  })
})
