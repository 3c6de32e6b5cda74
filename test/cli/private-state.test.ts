/**
 * Private state through the built CLI (no engine: the address is a socket nobody listens on). A
 * stateDir or backupDir other users could write, or a journal they could have planted, is refused
 * with exit 4 and the fix, before the engine is asked anything; a 0700 one is not (the run goes
 * on to the engine and stops there, exit 3). Read-only commands need no stateDir at all.
 */
import { chmod, mkdir, mkdtemp, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { JournalWriter } from '../../lib/runbook/journal.js'
import { runCli } from './run.js'

let root: string
let state: string
let backups: string
let config: string
let dockerHost: string

const uid = process.geteuid?.() ?? 0
const fixFor = (dir: string) =>
  `chmod 700 ${dir} && chown ${uid === 0 ? 'root:root' : String(uid)} ${dir}`

beforeEach(async () => {
  root = await realpath(await mkdtemp(path.join(os.tmpdir(), 'ss-private-cli-')))
  state = path.join(root, 'state')
  backups = path.join(root, 'backups')
  dockerHost = `unix://${path.join(root, 'absent.sock')}`
  config = path.join(root, 'shipshape.yaml')
  await writeFile(
    config,
    [
      `stateDir: ${JSON.stringify(state)}`,
      `backupDir: ${JSON.stringify(backups)}`,
      `allowedRoots: [${JSON.stringify(path.join(root, 'srv'))}]`,
      'services:',
      '  web:',
      '    container: web',
      'assets:',
      '  music:',
      `    source: ${JSON.stringify(path.join(root, 'srv/app/music'))}`,
      `    dest: ${JSON.stringify(path.join(root, 'mnt/music'))}`,
      `    mount: ${JSON.stringify(path.join(root, 'mnt'))}`,
      '',
    ].join('\n'),
  )
})
afterEach(async () => {
  await rm(root, { recursive: true, force: true })
})

const cli = (...args: string[]) =>
  runCli(['--config', config, '--docker-host', dockerHost, ...args])

async function dirWithMode(dir: string, mode: number): Promise<void> {
  await mkdir(dir, { recursive: true })
  await chmod(dir, mode)
}

describe('private state (stateDir, backupDir, journals)', { timeout: 30_000 }, () => {
  it('prune --yes: stateDir 0777 → exit 4 with the fix, before the engine; 0700 → on to the engine (3)', async () => {
    await dirWithMode(state, 0o777)
    const r = await cli('prune', '--yes')
    expect(r.code).toBe(4)
    expect(r.stderr).toContain(`stateDir ${state} is writable by group and others (mode 0777)`)
    expect(r.stderr).toContain(`(fix: ${fixFor(state)})`)
    expect(r.stderr).not.toContain('absent.sock')

    await chmod(state, 0o700)
    const ok = await cli('prune', '--yes')
    expect(ok.code).toBe(3)
    expect(ok.stderr).not.toContain('chmod 700')
  })

  it('prune --yes: a backupDir others can write is refused too; a plain prune (dry run) is not', async () => {
    await dirWithMode(backups, 0o775)
    const r = await cli('prune', '--yes')
    expect(r.code).toBe(4)
    expect(r.stderr).toContain(`backupDir ${backups} is writable by group (mode 0775)`)
    expect(r.stderr).toContain(fixFor(backups))
    expect((await cli('prune')).code).toBe(3)
  })

  it('rebuild --resume and report --out <stateDir>/reports: refused on a 0777 stateDir', async () => {
    await dirWithMode(state, 0o777)
    const resume = await cli('rebuild', 'web', '--resume', '--yes')
    expect(resume.code).toBe(4)
    expect(resume.stderr).toContain(fixFor(state))
    const report = await cli('report', '--out', path.join(state, 'reports'))
    expect(report.code).toBe(4)
    expect(report.stderr).toContain(fixFor(state))
    await expect(stat(path.join(state, 'reports'))).rejects.toMatchObject({ code: 'ENOENT' })

    await chmod(state, 0o700)
    expect((await cli('rebuild', 'web', '--resume', '--yes')).code).toBe(3)
    expect((await cli('report', '--out', path.join(state, 'reports'))).code).toBe(3)
  })

  it('migrate-assets and --finalize: a backupDir others can write is refused before the engine', async () => {
    await dirWithMode(backups, 0o777)
    for (const args of [
      ['migrate-assets', 'music', '--yes'],
      ['migrate-assets', 'music', '--finalize', '--yes'],
    ]) {
      const r = await cli(...args)
      expect(r.code, args.join(' ')).toBe(4)
      expect(r.stderr).toContain(`backupDir ${backups} is writable by group and others (mode 0777)`)
      expect(r.stderr).toContain(fixFor(backups))
      expect(r.stderr).not.toContain('absent.sock')
    }
    await chmod(backups, 0o700)
    // on to the engine: unreachable (3)
    expect((await cli('migrate-assets', 'music', '--yes')).code).toBe(3)
  })

  it('a stateDir that is a symlink is refused', async () => {
    const real = path.join(root, 'real-state')
    await dirWithMode(real, 0o700)
    await symlink(real, state)
    const r = await cli('prune', '--yes')
    expect(r.code).toBe(4)
    expect(r.stderr).toContain(`stateDir ${state} is a symbolic link`)
  })

  it('a journal others could have written is refused by name, not resumed (migrate-assets --finalize --resume)', async () => {
    const j = await JournalWriter.create(state, {
      operation: 'migrate-assets-finalize',
      args: { asset: 'music' },
      host: os.hostname(),
      pid: 999_999,
      at: new Date().toISOString(),
      steps: [{ id: 'remove-20260101T000000Z', title: 'Remove the original' }],
    })
    await j.close()
    expect((await stat(state)).mode & 0o7777).toBe(0o700)
    await chmod(j.file, 0o666)
    const r = await cli('migrate-assets', 'music', '--finalize', '--resume', '--yes')
    expect(r.code).toBe(4)
    expect(r.stderr).toContain(`the journal ${j.file} is writable by group and others`)
    expect(r.stderr).toContain(`rm ${j.file}`)
  })

  it('read-only commands work without a stateDir, and do not create it', async () => {
    for (const args of [['config', 'check'], ['report'], ['prune']]) {
      const r = await cli(...args)
      expect(r.stderr).not.toContain('stateDir')
      expect([0, 3]).toContain(r.code)
    }
    await expect(stat(state)).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
