/**
 * Prune against the hazards of issue 17, on a real engine of its own (prune acts engine-wide):
 * what a way back still needs stays — a stopped compose project's volume, an image pulled
 * yesterday that was built a year ago, the build a rollback untagged, an unfinished migration's
 * stopped container — parents never fail on their children, and a saved plan is carried out
 * exactly, each item checked again.
 */
import { createHash, randomBytes } from 'node:crypto'
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, expect } from 'vitest'
import { runCli, type CliResult } from '../cli/run.js'
import { requestedEngineKind, startEngine, type PrivateEngine } from '../harness/engine.js'
import { BUSYBOX_TAG, buildImage, busyboxImage, docker, dockerOk } from '../harness/fixtures.js'
import { describeEngine, engineTest as test } from '../harness/suite.js'

const exec = promisify(execFile)

interface Item {
  kind: string
  name: string
  id: string
  rule?: string
  reason: string
  status?: string
}
interface Result {
  outcome: string
  applied: boolean
  candidates: Item[]
  kept: Item[]
  failures: { kind: string; name: string; error: string }[]
  planFile: string | null
  warnings: string[]
}

describeEngine('prune policy', () => {
  let engine: PrivateEngine
  let root: string
  let config: string
  let stateDir: string

  beforeAll(async () => {
    engine = await startEngine(requestedEngineKind())
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'ss-prunep-'))
    config = path.join(root, 'shipshape.yaml')
    stateDir = path.join(root, 'state')
    await busyboxImage(engine)
  }, 300_000)

  afterAll(async () => {
    await engine?.stop()
    await fs.rm(root, { recursive: true, force: true })
  })

  const cli = (args: string[]): Promise<CliResult> =>
    runCli(['--config', config, '--docker-host', engine.dockerHost, ...args], {}, 240_000)

  const writeConfig = (prune: string[], extra: string[] = [], protect: string[] = []) =>
    fs.writeFile(
      config,
      [
        `stateDir: ${JSON.stringify(stateDir)}`,
        `backupDir: ${JSON.stringify(path.join(root, 'backups'))}`,
        ...extra,
        'prune:',
        `  protect: { images: ${JSON.stringify([BUSYBOX_TAG, ...protect])} }`,
        ...prune.map((l) => `  ${l}`),
        '',
      ].join('\n'),
    )

  const plan = async (args: string[] = []): Promise<Result> => {
    const r = await cli(['prune', '--json', ...args])
    expect(r.code, r.stderr).toBe(0)
    return JSON.parse(r.stdout) as Result
  }
  const apply = async (): Promise<Result> => {
    const r = await cli(['prune', '--yes', '--json'])
    const j = JSON.parse(r.stdout) as Result
    expect(j.failures, r.stderr).toEqual([])
    expect(r.code, r.stderr).toBe(0)
    return j
  }
  const keptReason = (r: Result, name: string) => r.kept.find((k) => k.name === name)?.reason
  const names = (items: Item[]) => items.map((c) => `${c.kind} ${c.name}`).sort()
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
  const image = (tag: string, extra: string[] = []) =>
    buildImage(engine, {
      tag,
      dockerfile: [`FROM ${BUSYBOX_TAG}`, 'COPY blob /blob', ...extra].join('\n'),
      files: { blob: randomBytes(64 * 1024) },
    })

  /** A `docker load` of an image whose config says it was built `created` (an upstream image). */
  async function loadOldImage(tag: string, created: string): Promise<string> {
    const dir = await fs.mkdtemp(path.join(root, 'load-'))
    await fs.mkdir(path.join(dir, 'rootfs'))
    await fs.writeFile(path.join(dir, 'rootfs', 'hello'), randomBytes(4096))
    await fs.mkdir(path.join(dir, 'out', 'layer'), { recursive: true })
    const layer = path.join(dir, 'out', 'layer', 'layer.tar')
    await exec('tar', ['-C', path.join(dir, 'rootfs'), '-cf', layer, 'hello'])
    const diffId = createHash('sha256')
      .update(await fs.readFile(layer))
      .digest('hex')
    const cfg = JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created,
      config: { Cmd: ['/hello'] },
      rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
      history: [{ created, created_by: 'upstream' }],
    })
    const cfgHex = createHash('sha256').update(cfg).digest('hex')
    await fs.writeFile(path.join(dir, 'out', `${cfgHex}.json`), cfg)
    await fs.writeFile(
      path.join(dir, 'out', 'manifest.json'),
      JSON.stringify([{ Config: `${cfgHex}.json`, RepoTags: [tag], Layers: ['layer/layer.tar'] }]),
    )
    const archive = path.join(dir, 'image.tar')
    await exec('tar', ['-C', path.join(dir, 'out'), '-cf', archive, '.'])
    await dockerOk(engine, ['load', '-i', archive])
    // the containerd image store names an image by its manifest's digest, not its config's
    return (await dockerOk(engine, ['image', 'inspect', '--format', '{{.Id}}', tag])).trim()
  }

  /** A journal as runbooks write them (lib/runbook/journal.ts), finished or not. */
  async function writeJournal(
    operation: string,
    args: Record<string, unknown>,
    notes: Record<string, unknown>,
    end: 'ok' | null,
    at = new Date(),
  ): Promise<string> {
    const dir = path.join(stateDir, 'journal')
    await fs.mkdir(dir, { recursive: true, mode: 0o700 })
    await fs.chmod(stateDir, 0o700)
    const stamp = at.toISOString().replace(/[-:.]/g, '')
    const file = path.join(dir, `${operation}-${stamp}-4242.jsonl`)
    const iso = at.toISOString()
    const lines: unknown[] = [
      {
        t: 'start',
        v: 1,
        operation,
        args,
        host: os.hostname(),
        pid: 4242,
        at: iso,
        steps: [{ id: 'stop', title: 'stop' }],
      },
      { t: 'step-begin', id: 'stop', at: iso },
      { t: 'step-note', id: 'stop', data: notes, at: iso },
      { t: 'step-done', id: 'stop', at: iso },
      ...(end ? [{ t: 'end', outcome: end, at: iso }] : []),
    ]
    await fs.writeFile(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n', {
      mode: 0o600,
    })
    return file
  }

  test('a stopped compose project keeps its volume; an orphan goes past volumesAfter only; the report records use', async () => {
    // what `compose up` makes: labelled volumes, containers of the project
    const proj = (p: string) => ['--label', `com.docker.compose.project=${p}`]
    await dockerOk(engine, ['volume', 'create', ...proj('shop'), 'shop_db'])
    await dockerOk(engine, ['volume', 'create', ...proj('orphan'), 'orphan_data'])
    await dockerOk(engine, [
      'run',
      '--name',
      'orphan-web-1',
      '--network',
      'none',
      '-v',
      'orphan_data:/data',
      ...proj('orphan'),
      BUSYBOX_TAG,
      'true',
    ])
    const shopDir = path.join(root, 'shop')
    await fs.mkdir(shopDir)
    await fs.writeFile(
      path.join(shopDir, 'docker-compose.yml'),
      'services:\n  web:\n    image: shop:1\n',
    )
    const services = [
      'services:',
      '  shop-web:',
      `    compose: ${JSON.stringify(path.join(shopDir, 'docker-compose.yml'))}`,
      '    service: web',
    ]
    await writeConfig(['volumes: true', 'volumesAfter: 1s', 'stoppedContainersAfter: 0s'], services)
    // the nightly report records when each volume was last used
    const rep = await cli(['report', '--json', '--out', path.join(stateDir, 'reports')])
    expect(rep.code, rep.stderr).toBe(0)
    const used = JSON.parse(await fs.readFile(path.join(stateDir, 'last-used.json'), 'utf8')) as {
      volumes: Record<string, string>
      recordedAt: string
    }
    expect(Object.keys(used.volumes)).toContain('orphan_data')
    expect(Date.parse(used.recordedAt)).toBeGreaterThan(Date.now() - 120_000)
    // `compose down`: the containers go, the volumes stay
    await dockerOk(engine, ['rm', 'orphan-web-1'])
    await sleep(1100)
    const p = await plan()
    // shop_db: its project has a configured service; orphan_data: unused past volumesAfter
    expect(keptReason(p, 'shop_db')).toMatch(
      /compose project shop has the configured service shop-web/,
    )
    expect(names(p.candidates.filter((c) => c.kind === 'volume'))).toEqual(['volume orphan_data'])
    // with the default volumesAfter (30d), the orphan's recent use keeps it too
    await writeConfig(['volumes: true'], services)
    const q = await plan()
    expect(q.candidates.filter((c) => c.kind === 'volume')).toEqual([])
    expect(keptReason(q, 'orphan_data')).toMatch(/no container uses it, but last used .* ago/)
    await dockerOk(engine, ['volume', 'rm', 'shop_db', 'orphan_data'])
  })

  test('an image built a year ago and pulled here now is not "unused for 30 days"', async () => {
    const yearAgo = new Date(Date.now() - 365 * 86_400_000).toISOString()
    const id = await loadOldImage('upstream/pg:17', yearAgo)
    const inspect = JSON.parse(await dockerOk(engine, ['image', 'inspect', id])) as {
      Created: string
      Metadata?: { LastTagTime?: string }
    }[]
    expect(Date.parse(inspect[0]!.Created)).toBeLessThan(Date.now() - 300 * 86_400_000)
    await writeConfig(['unusedImagesAfter: 30d'])
    const p = await plan()
    expect(names(p.candidates)).not.toContain('image upstream/pg:17')
    // and it is the arrival that counts: past it, it goes
    await writeConfig(['unusedImagesAfter: 1s'])
    await sleep(1100)
    const q = await plan()
    const c = q.candidates.find((x) => x.name === 'upstream/pg:17')
    expect(c?.reason).toMatch(/pulled or tagged here [\d.]+s ago, no recorded use/)
    await dockerOk(engine, ['rmi', id])
  })

  test('the build a rollback untagged stays within danglingAfter and while the last rollback names it', async () => {
    await image('roll:1')
    await sleep(1100)
    const newer = await image('roll:2')
    // what a rollback does to the newer build: the service's tag goes back to the old image
    await dockerOk(engine, ['tag', 'roll:1', 'roll:2'])
    await writeConfig([])
    const p = await plan()
    expect(keptReason(p, newer.slice(7, 19))).toMatch(
      /dangling, but built or tagged here .* \(dangling images go after 7d\)/,
    )
    // past danglingAfter, a finished rollback journal naming it still keeps it
    await writeConfig(['danglingAfter: 1s'])
    await sleep(1100)
    await writeJournal('rollback', { service: 'roll' }, { fromImageId: newer }, 'ok')
    const q = await plan()
    expect(keptReason(q, newer.slice(7, 19))).toMatch(/named by the last rollback of roll/)
    expect(names(q.candidates)).not.toContain(`image ${newer.slice(7, 19)}`)
    // once a later rebuild of the service finished, it goes
    await writeJournal(
      'rebuild',
      { service: 'roll' },
      { toImageId: 'x' },
      'ok',
      new Date(Date.now() + 1000),
    )
    const r = await apply()
    expect(names(r.candidates)).toContain(`image ${newer.slice(7, 19)}`)
    await fs.rm(path.join(stateDir, 'journal'), { recursive: true })
  })

  test('an unfinished migration’s stopped container stays, with its --resume command', async () => {
    await dockerOk(engine, ['run', '--name', 'impro-app', '--network', 'none', BUSYBOX_TAG, 'true'])
    await writeConfig(['stoppedContainersAfter: 0s'])
    await sleep(1100)
    await writeJournal(
      'migrate-assets',
      { asset: 'impro-music' },
      {
        containers: [{ id: 'x', name: 'impro-app' }],
      },
      null,
    )
    const p = await apply()
    expect(names(p.candidates)).not.toContain('container impro-app')
    expect(keptReason(p, 'impro-app')).toMatch(
      /unfinished migrate-assets run of impro-music.*shipshape migrate-assets impro-music --resume/,
    )
    expect(await dockerOk(engine, ['ps', '-a', '--format', '{{.Names}}'])).toMatch(/impro-app/)
    await fs.rm(path.join(stateDir, 'journal'), { recursive: true })
    const q = await apply()
    expect(names(q.candidates)).toContain('container impro-app')
  })

  test('journals another user could write: a real prune is refused, a dry run says so', async () => {
    await writeConfig(['stoppedContainersAfter: 0s'])
    const dir = path.join(stateDir, 'journal')
    await fs.mkdir(dir, { recursive: true })
    await fs.chmod(stateDir, 0o700)
    await fs.chmod(dir, 0o777)
    try {
      const dry = await cli(['prune', '--json'])
      expect(dry.code, dry.stderr).toBe(0)
      expect(dry.stderr).toMatch(/journals could not be read.*a real run is refused/)
      const real = await cli(['prune', '--yes', '--json'])
      expect(real.code, real.stderr).toBe(4)
    } finally {
      await fs.rm(dir, { recursive: true })
    }
  })

  test('weeks of prunes over labelled backup copies (children of the old image) never fail on "dependent child images"', async () => {
    await writeConfig([
      'danglingAfter: 0s',
      'backupsFor: 0s',
      'unusedImagesAfter: 0s',
      'keepTags: 1',
    ])
    let parentsKept = 0
    for (let week = 1; week <= 3; week++) {
      // a rebuild by an older shipshape: the running image copied with labels — on the classic
      // store a child of it — then the new version runs; the old one is unused with a child
      if (week > 1) {
        const stamp = new Date(Date.now()).toISOString().replace(/[-:]|\.\d+/g, '')
        await buildImage(engine, {
          tag: `web:shipshape-prev-${stamp}`,
          dockerfile: [
            `FROM web:v${week - 1}`,
            `LABEL shipshape.backup.of=web shipshape.backup.kind=image shipshape.backup.created=${new Date().toISOString()}`,
          ].join('\n'),
        })
      }
      await image(`web:v${week}`)
      await docker(engine, ['rm', '-f', `web-${week - 1}`])
      await dockerOk(engine, [
        'run',
        '-d',
        '--name',
        `web-${week}`,
        '--network',
        'none',
        `web:v${week}`,
        'sh',
        '-c',
        'trap "exit 0" TERM; sleep 3600 & wait',
      ])
      await sleep(1100)
      const r = await apply()
      parentsKept += r.kept.filter((k) => /is built on it and stays/.test(k.reason)).length
    }
    // the classic store links the copy to its parent: the planner kept the parent for it
    if (requestedEngineKind() !== '26.1-containerd') expect(parentsKept).toBeGreaterThan(0)
    const left = await dockerOk(engine, ['images', '--format', '{{.Repository}}:{{.Tag}}'])
    expect(left).toMatch(/web:v3/)
    expect(left).toMatch(/web:shipshape-prev-/) // the newest backup stays whatever its age
    expect(left).not.toMatch(/web:v1/)
    await docker(engine, ['rm', '-f', 'web-3'])
  })

  test('prune --plan-out then --apply FILE removes exactly the saved plan, each item checked again', async () => {
    await image('saved-a:1')
    await image('saved-b:1')
    await image('saved-c:1')
    await image('saved-e:1')
    await writeConfig(['unusedImagesAfter: 0s'])
    await sleep(1100)
    const planFile = path.join(root, 'plan.json')
    const p = await plan(['--plan-out', planFile])
    expect(p.planFile).toBe(planFile)
    expect(p.applied).toBe(false)
    expect((await fs.stat(planFile)).mode & 0o777).toBe(0o600)
    expect(names(p.candidates)).toEqual(
      expect.arrayContaining(['image saved-a:1', 'image saved-b:1', 'image saved-c:1']),
    )
    // since the plan: a came into use, c got protected, d is new
    await dockerOk(engine, [
      'run',
      '-d',
      '--name',
      'uses-a',
      '--network',
      'none',
      'saved-a:1',
      'sh',
      '-c',
      'trap "exit 0" TERM; sleep 3600 & wait',
    ])
    await writeConfig(['unusedImagesAfter: 0s'], [], ['saved-c'])
    // e got another tag (a deploy named it): the plan never saw that tag
    await dockerOk(engine, ['tag', 'saved-e:1', 'saved-e:deploy'])
    await image('saved-d:1')
    await sleep(1100)
    // without a TTY, --apply needs --yes
    const refused = await cli(['prune', '--apply', planFile, '--json'])
    expect(refused.code).toBe(4)
    const r = await cli(['prune', '--apply', planFile, '--yes', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const j = JSON.parse(r.stdout) as Result
    expect(names(j.candidates)).toContain('image saved-b:1')
    expect(names(j.candidates)).not.toContain('image saved-a:1')
    expect(names(j.candidates)).not.toContain('image saved-c:1')
    expect(names(j.candidates)).not.toContain('image saved-d:1')
    expect(keptReason(j, 'saved-a:1')).toMatch(new RegExp(`in ${planFile}, kept: in use by uses-a`))
    expect(keptReason(j, 'saved-c:1')).toMatch(/kept: protected by protect.images saved-c/)
    expect(keptReason(j, 'saved-e:1')).toMatch(/kept: its tags changed since the plan/)
    expect(j.warnings.join('\n')).toMatch(
      /more thing\(s\) the current policy would remove are not in/,
    )
    const tags = await dockerOk(engine, ['images', '--format', '{{.Repository}}:{{.Tag}}'])
    expect(tags).toMatch(/saved-a:1/)
    expect(tags).not.toMatch(/saved-b:1/)
    expect(tags).toMatch(/saved-c:1/)
    expect(tags).toMatch(/saved-d:1/)
    expect(tags).toMatch(/saved-e:1/)
    // a file that is not a plan: usage error
    await fs.writeFile(path.join(root, 'bad.json'), '{"schema":"other/1"}')
    expect((await cli(['prune', '--apply', path.join(root, 'bad.json'), '--yes'])).code).toBe(2)
  })
})
