/**
 * `shipshape prune` against a real engine. Prune removes things engine-wide, so this file starts
 * its own private engine (same kind as the suite's) instead of sharing the suite's: nothing
 * another test built is at risk, and before/after are this file's alone.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type Docker from 'dockerode'
import { afterAll, beforeAll, expect } from 'vitest'
import { runCli, type CliResult } from '../cli/run.js'
import { requestedEngineKind, startEngine, type PrivateEngine } from '../harness/engine.js'
import {
  BUSYBOX_TAG,
  buildImage,
  busyboxImage,
  dockerOk,
  engineClient,
} from '../harness/fixtures.js'
import { describeEngine, engineTest as test } from '../harness/suite.js'
import { loadConfig } from '../../lib/config/index.js'
import { parseEngineAddress } from '../../lib/shared/address.js'
import { connectEngine } from '../../lib/docker/engine.js'
import { executePlan } from '../../lib/prune/execute.js'
import { findUnfinishedJournals, JournalWriter, readJournal } from '../../lib/runbook/journal.js'

/** The engine's own accounting, read straight from /system/df: layers + writable layers + build cache. */
async function engineBytes(docker: Docker): Promise<number> {
  const df = (await docker.df()) as {
    LayersSize?: number
    Containers?: { SizeRw?: number }[]
    Volumes?: { UsageData?: { Size?: number } }[]
    BuildCache?: { Size?: number; Shared?: boolean }[]
  }
  return (
    (df.LayersSize ?? 0) +
    (df.Containers ?? []).reduce((a, c) => a + Math.max(0, c.SizeRw ?? 0), 0) +
    (df.Volumes ?? []).reduce((a, v) => a + Math.max(0, v.UsageData?.Size ?? 0), 0) +
    (df.BuildCache ?? []).filter((b) => !b.Shared).reduce((a, b) => a + (b.Size ?? 0), 0)
  )
}

interface Candidate {
  kind: string
  name: string
  id: string
  sizeBytes: number
  rule: string
  status?: string
}

describeEngine('prune', () => {
  let engine: PrivateEngine
  let root: string
  let config: string

  beforeAll(async () => {
    engine = await startEngine(requestedEngineKind())
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'ss-prune-'))
    config = path.join(root, 'shipshape.yaml')
  }, 300_000)

  afterAll(async () => {
    await engine?.stop()
    await fs.rm(root, { recursive: true, force: true })
  })

  const cli = (args: string[]): Promise<CliResult> =>
    runCli(['--config', config, '--docker-host', engine.dockerHost, ...args], {}, 240_000)

  /** An image FROM busybox with `mb` MB of its own random bytes, created now. */
  const image = (tag: string, mb: number, extra: string[] = []) =>
    buildImage(engine, {
      tag,
      dockerfile: [`FROM ${BUSYBOX_TAG}`, 'COPY blob /blob', ...extra].join('\n'),
      files: { blob: randomBytes(mb * 1024 * 1024) },
    })

  const tagsNow = async () =>
    (await dockerOk(engine, ['images', '--format', '{{.Repository}}:{{.Tag}}']))
      .split('\n')
      .filter(Boolean)
      .sort()

  test('removes exactly the plan; reclaimed bytes match the engine before/after within 1%', async () => {
    await busyboxImage(engine)
    // three versions of one repository: keepTags 1 keeps the newest; the oldest runs
    await image('app:1', 2)
    await new Promise((r) => setTimeout(r, 1100)) // distinct creation seconds
    await image('app:2', 2)
    await new Promise((r) => setTimeout(r, 1100))
    await image('app:3', 2)
    // unused images: one protected by name, one by label, one that goes
    await image('postgres:16', 1)
    await image('keepme:1', 1, ['LABEL shipshape.keep=true'])
    await image('lonely:1', 3)
    // a stopped container of its own image: both go (the container first)
    await image('batch:1', 2)
    await dockerOk(engine, ['run', '--name', 'batch-run', '--network', 'none', 'batch:1', 'true'])
    // app:1 in use by a running container: kept whatever keepTags says
    await dockerOk(engine, [
      'run',
      '-d',
      '--name',
      'app-old',
      '--network',
      'none',
      'app:1',
      'sh',
      '-c',
      'trap "exit 0" TERM; sleep 3600 & wait',
    ])
    await fs.writeFile(
      config,
      [
        `stateDir: ${JSON.stringify(path.join(root, 'state'))}`,
        `backupDir: ${JSON.stringify(path.join(root, 'backups'))}`,
        'prune:',
        '  keepTags: 1',
        '  unusedImagesAfter: 0s',
        '  stoppedContainersAfter: 0s',
        `  protect: { images: ["postgres", "${BUSYBOX_TAG}"], labels: [shipshape.keep=true] }`,
        '',
      ].join('\n'),
    )
    await new Promise((r) => setTimeout(r, 1100)) // ages strictly over 0 s

    const beforeTags = await tagsNow()
    const dry = await cli(['prune', '--json'])
    expect(dry.code, dry.stderr).toBe(0)
    const plan = JSON.parse(dry.stdout) as {
      schema: string
      outcome: string
      candidates: Candidate[]
    }
    expect(plan.schema).toBe('shipshape.prune/1')
    expect(plan.outcome).toBe('planned')
    expect(await tagsNow()).toEqual(beforeTags) // a dry run removes nothing
    const names = plan.candidates.map((c) => `${c.kind} ${c.name}`).sort()
    // unused for more than 0 s: every unused image but the protected ones; app:1 runs
    expect(names).toEqual([
      'container batch-run',
      'image app:2',
      'image app:3',
      'image batch:1',
      'image lonely:1',
    ])

    const docker = engineClient(engine)
    const before = await engineBytes(docker)
    const r = await cli(['prune', '--yes', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const j = JSON.parse(r.stdout) as {
      outcome: string
      applied: boolean
      candidates: Candidate[]
      reclaimedBytes: number
      record: string
    }
    const after = await engineBytes(docker)
    expect(j.outcome).toBe('pruned')
    expect(j.applied).toBe(true)
    expect(j.candidates.map((c) => `${c.kind} ${c.name}`).sort()).toEqual(names)
    expect(j.candidates.every((c) => c.status === 'removed')).toBe(true)
    // exactly the plan is gone, everything else is there
    const gone = ['app:2', 'app:3', 'batch:1', 'lonely:1']
    expect(await tagsNow()).toEqual(beforeTags.filter((t) => !gone.includes(t)))
    const ps = await dockerOk(engine, ['ps', '-a', '--format', '{{.Names}}'])
    expect(ps).not.toMatch(/batch-run/)
    expect(ps).toMatch(/app-old/)
    // what prune says it reclaimed is what the engine's own accounting lost (±1 %)
    expect(before - after).toBeGreaterThan(8 * 1024 * 1024)
    expect(Math.abs(j.reclaimedBytes - (before - after))).toBeLessThanOrEqual(
      0.01 * (before - after),
    )
    // the plan and the results were recorded
    const rec = JSON.parse(await fs.readFile(j.record, 'utf8')) as { state: string }
    expect(rec.state).toBe('finished')

    // a second run: nothing more to do
    const again = await cli(['prune', '--yes', '--json'])
    expect(again.code, again.stderr).toBe(0)
    expect(JSON.parse(again.stdout).outcome).toBe('nothing-to-do')
  })

  test("the timer's `prune --json` (no --yes) removes only with prune.apply: true", async () => {
    await image('stale:1', 1)
    const base = await fs.readFile(config, 'utf8')
    const dry = await cli(['prune', '--json'])
    expect(dry.code, dry.stderr).toBe(0)
    expect(JSON.parse(dry.stdout)).toMatchObject({ outcome: 'planned', applied: false })
    expect(await tagsNow()).toContain('stale:1')
    await fs.writeFile(config, base.replace('prune:\n', 'prune:\n  apply: true\n'))
    const r = await cli(['prune', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ outcome: 'pruned', applied: true })
    expect(await tagsNow()).not.toContain('stale:1')
    // --dry-run wins over apply: true
    await image('stale:2', 1)
    const d2 = await cli(['prune', '--dry-run', '--json'])
    expect(JSON.parse(d2.stdout).applied).toBe(false)
    expect(await tagsNow()).toContain('stale:2')
    await fs.writeFile(config, base)
  })

  test('a prune killed mid-way: doctor names it, the next prune --yes plans again and finishes it', async () => {
    const state = path.join(root, 'state')
    // what a prune killed -9 in its removals leaves: the remove step begun, no end
    const w = await JournalWriter.create(state, {
      operation: 'prune',
      args: {},
      host: os.hostname(),
      pid: 999_999,
      at: new Date(Date.now() - 60_000).toISOString(),
      steps: [{ id: 'remove', title: 'Remove what the plan names' }],
    })
    await w.append({ t: 'step-begin', id: 'remove', at: new Date().toISOString() })
    await w.close()
    const doctor = await cli(['doctor', '--json'])
    const journalCheck = (
      JSON.parse(doctor.stdout) as { checks: { id: string; status: string; fix?: string }[] }
    ).checks.find((c) => c.id === `journal:${path.basename(w.file)}`)
    expect(journalCheck?.status, doctor.stdout).toBe('fail')
    expect(journalCheck?.fix).toContain('the next `shipshape prune --yes` finishes it')

    await image('leftover:1', 1)
    const r = await cli(['prune', '--yes', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain(`${w.file}) is finished by this one`)
    expect(JSON.parse(r.stdout)).toMatchObject({ outcome: 'pruned', applied: true })
    expect(await tagsNow()).not.toContain('leftover:1')
    // one journal, the one taken over, now ended ok
    expect(await findUnfinishedJournals(state, 'prune')).toEqual([])
    expect((await readJournal(w.file)).outcome).toBe('ok')
  })

  test('the executor goes on past a removal the engine refuses and reports it', async () => {
    const gone = await image('gone:1', 1)
    const busy = await image('busy:1', 1)
    await dockerOk(engine, [
      'run',
      '-d',
      '--name',
      'busy-c',
      '--network',
      'none',
      'busy:1',
      'sh',
      '-c',
      'trap "exit 0" TERM; sleep 3600 & wait',
    ])
    // a plan made before busy:1 came into use: the engine refuses that one (409)
    const api = await connectEngine(parseEngineAddress(engine.dockerHost))
    const { config: cfg } = await loadConfig({ file: config })
    const candidates = [
      { kind: 'image', name: 'busy:1', id: busy, sizeBytes: 1, rule: 'unused-image', reason: 't' },
      { kind: 'image', name: 'gone:1', id: gone, sizeBytes: 1, rule: 'unused-image', reason: 't' },
    ] as const
    const results = await executePlan(api, [...candidates], {
      config: cfg,
      now: new Date(),
      buildCacheKeepBytes: null,
    })
    api.close()
    const byName = new Map([...results].map(([c, r]) => [c.name, r]))
    expect(byName.get('busy:1')?.status).toBe('failed')
    expect(byName.get('busy:1')?.error).toMatch(/conflict|being used|in use|running/i)
    expect(byName.get('gone:1')?.status).toBe('removed')
    expect(await tagsNow()).toContain('busy:1')
    expect(await tagsNow()).not.toContain('gone:1')
  })
})
