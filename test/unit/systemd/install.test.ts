/**
 * `systemd install` through the runbook runner (lib/systemd/index.ts installUnits), in a temp
 * directory with a fake systemd manager: the runner's journal and lock in stateDir, a failed
 * daemon-reload undone (exit 1, the unit files as they were), --rollback of a crashed run.
 */
import { existsSync } from 'node:fs'
import {
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createOutput } from '../../../lib/cli/output.js'
import { parseConfigText } from '../../../lib/config/index.js'
import { exitCodeOf, RefusedError } from '../../../lib/errors.js'
import { journalCommands } from '../../../lib/runbook/operations.js'
import { findUnfinishedJournals } from '../../../lib/runbook/journal.js'
import {
  installUnits,
  SYSTEMD_INSTALL,
  type InstallFs,
  type SystemdContext,
  type SystemdPort,
} from '../../../lib/systemd/index.js'
import { hostInstallFs } from '../../../lib/systemd/host.js'

let tmp: string
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ss-sysd-install-'))
})
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true })
})

let n = 0
async function world(systemctl: SystemdPort['systemctl']) {
  const d = path.join(tmp, `w${++n}`)
  await mkdir(d)
  const unitDir = path.join(d, 'units')
  const calls: string[][] = []
  const systemd: SystemdPort = {
    running: async () => true,
    unitPath: [unitDir],
    systemctl: async (args) => {
      calls.push(args)
      await systemctl(args)
    },
  }
  const q = JSON.stringify
  const config = parseConfigText(
    `stateDir: ${q(path.join(d, 's'))}\nbackupDir: ${q(path.join(d, 'b'))}\nsystemd:\n  unitDir: ${q(unitDir)}\n  environmentFile: ${q(path.join(d, 'env'))}\n`,
    'test.yaml',
    { hostname: 'box1' },
  )
  const ctx: SystemdContext = {
    config,
    nodePath: process.execPath,
    cliPath: '/opt/shipshape/dist/scripts/shipshape.js',
    configPath: null,
    packageRoot: '/opt/shipshape',
    configFile: null,
    out: createOutput({ quiet: true }),
    systemd,
    // where root may run from is judged in test/host/systemd-*.test.ts, not here
    checkPaths: () => [],
  }
  return { d, unitDir, ctx, calls }
}

const noBus = async () => {
  throw new Error('systemctl daemon-reload failed: Failed to connect to bus')
}

describe('systemd install through the runner', () => {
  it('a failing daemon-reload rolls the unit files back to what they were (exit 1)', async () => {
    const { d, unitDir, ctx, calls } = await world(noBus)
    await mkdir(unitDir)
    const timer = path.join(unitDir, 'shipshape-report.timer')
    await writeFile(timer, '[Timer]\nOnCalendar=daily\n', { mode: 0o640 })
    const err = await installUnits(ctx, { yes: true, force: true }).then(
      () => null,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(Error)
    expect(exitCodeOf(err)).toBe(1)
    expect((err as Error).message).toMatch(/daemon-reload.*rolled back/s)
    expect(calls).toEqual([['daemon-reload']])
    // the replaced file as it was, content and mode; the created ones gone
    expect(await readFile(timer, 'utf8')).toBe('[Timer]\nOnCalendar=daily\n')
    expect((await hostInstallFs.readFile(timer))?.mode).toBe(0o640)
    expect(await readdir(unitDir)).toEqual(['shipshape-report.timer'])
    // the backup directory it created is gone; stateDir holds the journal and stays
    expect(existsSync(path.join(d, 'b'))).toBe(false)
    expect(await findUnfinishedJournals(path.join(d, 's'), SYSTEMD_INSTALL)).toEqual([])
  })

  it('a unit file that is a link (a masked unit) is refused, not read through or replaced', async () => {
    const { unitDir, ctx, calls } = await world(noBus)
    await mkdir(unitDir)
    const link = path.join(unitDir, 'shipshape-report.service')
    await symlink('/dev/null', link)
    const err = await installUnits(ctx, { yes: true, force: true }).then(
      () => null,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(RefusedError)
    expect((err as Error).message).toContain(`${link} is not a regular file (a symbolic link`)
    expect(await readlink(link)).toBe('/dev/null')
    expect(await readdir(unitDir)).toEqual(['shipshape-report.service'])
    expect(calls).toEqual([])
  })

  it('installs, reloads once, journals the run; unchanged opens no journal', async () => {
    const { d, ctx, calls } = await world(async () => {})
    const r = await installUnits(ctx, { yes: true })
    expect(r).toMatchObject({ outcome: 'installed', daemonReload: true })
    expect(r.directories).toEqual([
      { path: path.join(d, 's'), created: true },
      { path: path.join(d, 'b'), created: true },
    ])
    expect(calls).toEqual([['daemon-reload']])
    const journals = path.join(d, 's', 'journal')
    const written = await readdir(journals)
    expect(written).toHaveLength(1)
    expect(written[0]).toMatch(/^systemd-install-/)
    const again = await installUnits(ctx, { yes: true })
    expect(again.outcome).toBe('unchanged')
    expect(await readdir(journals)).toEqual(written)
  })

  it('--dry-run takes no lock and writes nothing, stateDir included', async () => {
    const { d, unitDir, ctx } = await world(async () => {})
    const r = await installUnits(ctx, { dryRun: true })
    expect(r.outcome).toBe('dry-run')
    expect(existsSync(unitDir)).toBe(false)
    expect(existsSync(path.join(d, 's'))).toBe(false)
  })

  it('an undo that fails: exit 5; a new run is refused; --rollback finishes the undo', async () => {
    const { d, unitDir, ctx } = await world(noBus)
    let broken = true
    const fs: InstallFs = {
      ...hostInstallFs,
      removeFile: async (file) => {
        if (broken) throw new Error(`EBUSY: ${file}`)
        await hostInstallFs.removeFile(file)
      },
    }
    const err = await installUnits({ ...ctx, fs }, { yes: true }).catch((e: unknown) => e)
    expect(exitCodeOf(err)).toBe(5)
    expect((await readdir(unitDir)).length).toBeGreaterThan(0)
    const stateDir = path.join(d, 's')
    const [open] = await findUnfinishedJournals(stateDir, SYSTEMD_INSTALL)
    expect(open).toMatchObject({ operation: SYSTEMD_INSTALL, args: { unitDir } })
    // doctor's word for it (the registry): the commands that finish or undo it
    const { fix } = journalCommands(open!)
    expect(fix).toContain('`shipshape systemd install --resume`')
    expect(fix).toContain('`shipshape systemd install --rollback`')

    // a new run (with something to write) is refused while the journal is unfinished
    await rm(path.join(d, 'b'), { recursive: true })
    const again = await installUnits({ ...ctx, fs }, { yes: true }).catch((e: unknown) => e)
    expect(exitCodeOf(again)).toBe(4)
    expect((again as Error).message).toMatch(/unfinished systemd-install run/)

    broken = false
    const r = await installUnits({ ...ctx, fs }, { yes: true, rollback: true })
    expect(r.outcome).toBe('rolled-back')
    // the unit directory it created, empty again, is gone too
    expect(existsSync(unitDir)).toBe(false)
    expect(existsSync(path.join(d, 'b'))).toBe(false)
    expect(await findUnfinishedJournals(stateDir, SYSTEMD_INSTALL)).toEqual([])
  })

  it('--resume and --rollback exclude each other (exit 2), before anything is read', async () => {
    const { ctx } = await world(async () => {})
    const err = await installUnits(ctx, { resume: true, rollback: true }).catch((e: unknown) => e)
    expect(exitCodeOf(err)).toBe(2)
  })
})
