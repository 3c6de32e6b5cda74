import { execFile, spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCli } from '../cli/run.js'
import { engineGet, requireEngine, type PrivateEngine } from '../harness/engine.js'
import {
  BUSYBOX_TAG,
  buildImage,
  busyboxImage,
  compose,
  docker,
  dockerOk,
} from '../harness/fixtures.js'
import { describeEngine } from '../harness/suite.js'
import type { Report } from '../../lib/report/types.js'

const pexec = promisify(execFile)
const MB = 1e6

/** go-units HumanSize, as `docker system df` prints sizes: 4 significant digits, decimal units. */
function goHumanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB']
  let i = 0
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000
    i++
  }
  return `${Number(n.toPrecision(4))}${units[i]}`
}

async function duBytes(p: string): Promise<number> {
  const { stdout } = await pexec('du', ['-x', '-s', '-B1', '--', p])
  return Number(stdout.split('\t')[0])
}

describeEngine('report', (getEngine) => {
  let engine: PrivateEngine
  let tmp: string
  let opt: string
  let music: string
  let config: string
  let report: Report
  let appId: string
  let danglingId: string
  let buildKitRan = false

  const cli = (args: string[]) =>
    runCli(['--config', config, '--docker-host', engine.dockerHost, ...args])

  beforeAll(async () => {
    engine = getEngine()
    // inside the engine's directory: its watchdog unmounts and removes it even after a crash
    tmp = await mkdtemp(path.join(engine.root, 'fx-report-'))
    opt = path.join(tmp, 'opt')
    music = path.join(opt, 'media', 'music')
    await mkdir(music, { recursive: true })
    await mkdir(path.join(opt, 'media', 'other'), { recursive: true })
    await mkdir(path.join(opt, 'app', 'conf'), { recursive: true })
    for (let i = 0; i < 3; i++)
      await writeFile(path.join(music, `track ${i} é.mp3`), Buffer.alloc(MB, i + 1))
    await writeFile(path.join(opt, 'media', 'other', 'blob'), Buffer.alloc(MB / 2, 7))
    await writeFile(path.join(opt, 'app', 'conf', 'app.ini'), 'x=1\n')
    await writeFile(path.join(opt, 'backup.tar.gz'), Buffer.alloc(2 * 1024 * 1024, 3)) // a loose big file
    // a symlink to a big directory elsewhere: not followed
    await mkdir(path.join(tmp, 'outside'), { recursive: true })
    await writeFile(path.join(tmp, 'outside', 'big'), Buffer.alloc(4 * MB))
    await symlink(path.join(tmp, 'outside'), path.join(opt, 'link'))
    // a mount below the scanned path: listed, not entered
    await mkdir(path.join(opt, 'mnt'), { recursive: true })
    await pexec('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'sstmp', path.join(opt, 'mnt')])

    const base = await busyboxImage(engine)
    appId = await buildImage(engine, {
      tag: 'sst-report/app:1',
      dockerfile: [
        `FROM ${base}`,
        'RUN dd if=/dev/zero of=/big bs=1M count=3',
        'RUN dd if=/dev/zero of=/small bs=1k count=512',
        'LABEL org.example.role=app',
        'CMD ["sleep", "3600"]',
      ].join('\n'),
    })
    await dockerOk(engine, ['tag', 'sst-report/app:1', 'sst-report/app:latest'])
    // a build arg holding a secret ends up in the image's history
    await buildImage(engine, {
      tag: 'sst-report/secret:1',
      dockerfile: `FROM ${base}\nARG HF_TOKEN\nRUN echo fetching models > /models.txt\n`,
      buildArgs: { HF_TOKEN: 'hf_SuperSecret123' },
    })
    danglingId = await buildImage(engine, {
      tag: 'sst-report/dangle:1',
      dockerfile: `FROM ${base}\nRUN echo one > /v\n`,
    })
    await buildImage(engine, {
      tag: 'sst-report/dangle:1',
      dockerfile: `FROM ${base}\nRUN echo two > /v\n`,
    })

    await dockerOk(engine, [
      'run',
      '-d',
      '--name',
      'sst-music',
      '-v',
      `${music}:/music:ro`,
      'sst-report/app:1',
    ])
    await dockerOk(engine, ['volume', 'create', 'sst-vol-used'])
    await dockerOk(engine, ['volume', 'create', 'sst-vol-free'])
    await dockerOk(engine, [
      'run',
      '--name',
      'sst-stopped',
      '-v',
      'sst-vol-used:/v',
      'sst-report/app:1',
      'sh',
      '-c',
      'dd if=/dev/zero of=/rw bs=1k count=1024 && dd if=/dev/zero of=/v/data bs=1k count=300',
    ])

    // A BuildKit build (compose v2) leaves build-cache records, whose fields differ by engine.
    const proj = path.join(tmp, 'bk')
    await mkdir(proj)
    await writeFile(
      path.join(proj, 'Dockerfile'),
      `FROM ${BUSYBOX_TAG}\nRUN dd if=/dev/zero of=/cache-me bs=1k count=700\n`,
    )
    await writeFile(
      path.join(proj, 'compose.yaml'),
      'services:\n  bk:\n    image: sst-report/bk:1\n    build: { context: ., network: host }\n',
    )
    if (engine.composeV2Path) {
      const built = await compose(engine, 'v2', ['-p', 'sstbk', 'build'], { cwd: proj })
      if (built.exitCode !== 0)
        throw new Error(`compose v2 build failed:\n${built.stderr}${built.stdout}`)
      buildKitRan = true
    } else if (requireEngine()) {
      throw new Error(
        'compose v2 is not fetched (npm run fetch-engines): the build-cache check needs it',
      )
    } else {
      process.stderr.write(
        '\n!!! report suite: compose v2 not fetched (npm run fetch-engines): build cache left empty\n',
      )
    }

    config = path.join(tmp, 'host.yaml')
    await writeFile(
      config,
      [
        'host: test-host',
        'report:',
        '  top: 10',
        '  bigImage: 4MB',
        '  bigAssets: 2MB',
        `  paths: [${JSON.stringify(opt)}, ${JSON.stringify(path.join(tmp, 'missing'))}]`,
        'assets:',
        '  music:',
        `    source: ${JSON.stringify(music)}`,
        '    dest: /mnt/rd/music',
        '    mount: /mnt/rd',
        '',
      ].join('\n'),
    )
    const r = await cli(['report', '--json'])
    expect(r.stderr).not.toMatch(/unexpected error/)
    expect(r.code).toBe(0)
    report = JSON.parse(r.stdout) as Report
  })

  afterAll(async () => {
    if (!engine) return
    await docker(engine, ['rm', '-f', 'sst-music', 'sst-stopped']).catch(() => {})
    await pexec('umount', [path.join(opt, 'mnt')]).catch(() => {})
    await rm(tmp, { recursive: true, force: true })
  })

  it('never prints a secret build arg baked into an image history', async () => {
    const history = await dockerOk(engine, ['history', '--no-trunc', 'sst-report/secret:1'])
    expect(history).toContain('hf_SuperSecret123') // the engine keeps it…
    const all = [
      JSON.stringify(report),
      (await cli(['report'])).stderr,
      (await cli(['report', '--markdown'])).stdout,
    ]
    for (const text of all) expect(text).not.toContain('hf_SuperSecret123') // …shipshape never shows it
    const layer = report.images
      .find((i) => i.tags.includes('sst-report/secret:1'))!
      .layers.find((l) => l.createdBy.includes('fetching models'))!
    expect(layer.createdBy).toMatch(/HF_TOKEN=\*\*\*/)
  })

  it('names the engine it read', () => {
    expect(report.schema).toBe('shipshape.report/1')
    expect(report.host).toBe('test-host')
    expect(report.engine.address).toBe(engine.dockerHost)
    expect(report.engine.version).toBe(engine.version)
    expect(report.engine.imageStore).toBe(engine.containerdImageStore ? 'containerd' : 'classic')
  })

  it("gives every image the engine's own Size", async () => {
    const listed = await engineGet<{ Id: string; Size: number }[]>(
      engine.socketPath,
      '/images/json',
    )
    expect(report.images.map((i) => i.id).sort()).toEqual(listed.body.map((i) => i.Id).sort())
    for (const img of report.images) {
      const own = listed.body.find((i) => i.Id === img.id)!
      expect(img.sizeBytes, img.tags.join(',')).toBe(own.Size)
      const inspected = Number(
        await dockerOk(engine, ['image', 'inspect', '--format', '{{.Size}}', img.id]),
      )
      if (engine.containerdImageStore) {
        // containerd store: inspect gives the (compressed) content size; the list's Size is the
        // disk footprint (content + unpacked snapshots), which is what a disk report needs.
        expect(img.sizeBytes).toBeGreaterThanOrEqual(inspected)
      } else {
        expect(img.sizeBytes, img.tags.join(',')).toBe(inspected)
      }
    }
    const app = report.images.find((i) => i.id === appId)!
    expect(app.tags.sort()).toEqual(['sst-report/app:1', 'sst-report/app:latest'])
    expect(app.containers).toBe(2)
    expect(app.big).toBe(true)
  })

  it('lists layers exactly as docker history does', async () => {
    const out = await dockerOk(engine, [
      'history',
      '--no-trunc',
      '--human=false',
      '--format',
      '{{.Size}}\t{{.CreatedBy}}',
      appId,
    ])
    const expected = out
      .trimEnd()
      .split('\n')
      .map((l) => {
        const [size, ...by] = l.split('\t')
        return { sizeBytes: Number(size), createdBy: by.join('\t') }
      })
    const app = report.images.find((i) => i.id === appId)!
    expect(app.layers.map((l) => ({ sizeBytes: l.sizeBytes, createdBy: l.createdBy }))).toEqual(
      expected,
    )
    const big = app.layers.find((l) => l.createdBy.includes('count=3'))!
    expect(big.sizeBytes).toBeGreaterThanOrEqual(3 * 1024 * 1024)
  })

  it('has the totals of docker system df', async () => {
    const out = await dockerOk(engine, [
      'system',
      'df',
      '--format',
      '{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}',
    ])
    const rows = Object.fromEntries(
      out
        .trim()
        .split('\n')
        .map((l) => {
          const [type, count, active, size, reclaimable] = l.split('\t')
          return [
            type,
            {
              count: Number(count),
              active: Number(active),
              size,
              reclaimable: reclaimable!.split(' ')[0],
            },
          ]
        }),
    )
    for (const [type, key] of [
      ['Images', 'images'],
      ['Containers', 'containers'],
      ['Local Volumes', 'volumes'],
      ['Build Cache', 'buildCache'],
    ] as const) {
      const mine = report.disk[key]
      // the compose v2 (BuildKit) build above left build-cache records to compare
      if (key === 'buildCache' && buildKitRan) expect(mine.count).toBeGreaterThan(0)
      expect({
        type,
        count: mine.count,
        active: mine.active,
        size: goHumanSize(mine.sizeBytes),
        reclaimable: goHumanSize(mine.reclaimableBytes),
      }).toEqual({
        type,
        ...rows[type],
      })
    }
  })

  it('flags the dangling image and lists the stopped container with its size', async () => {
    expect(report.images.find((i) => i.id === danglingId)).toMatchObject({
      dangling: true,
      tags: [],
    })
    const raw = await engineGet<{ Names: string[]; SizeRw: number }[]>(
      engine.socketPath,
      '/containers/json?all=1&size=1',
    )
    const sizeRw = raw.body.find((c) => c.Names.includes('/sst-stopped'))!.SizeRw
    const stopped = report.containers.find((c) => c.name === 'sst-stopped')!
    expect(stopped).toMatchObject({ running: false, sizeRwBytes: sizeRw })
    expect(sizeRw).toBeGreaterThanOrEqual(1024 * 1024)
    expect(report.containers.find((c) => c.name === 'sst-music')?.running).toBe(true)
  })

  it('lists volumes with their size and whether they are in use', () => {
    const used = report.volumes.find((v) => v.name === 'sst-vol-used')!
    const free = report.volumes.find((v) => v.name === 'sst-vol-free')!
    expect(used).toMatchObject({ inUse: true, refCount: 1 })
    expect(used.sizeBytes).toBeGreaterThanOrEqual(300 * 1024)
    expect(free).toMatchObject({ inUse: false, refCount: 0, sizeBytes: 0 })
  })

  it('measures host paths like du and attributes bind mounts to the containers', async () => {
    const p = report.paths.find((x) => x.path === opt)!
    expect(p.exists).toBe(true)
    expect(p.sizeBytes).toBe(await duBytes(opt))
    const m = p.children.find((c) => c.path === music)!
    expect(m).toMatchObject({ depth: 2, sizeBytes: await duBytes(music) })
    expect(m.mountedBy).toEqual([
      { container: 'sst-music', source: music, destination: '/music', readOnly: true },
    ])
    const media = p.children.find((c) => c.path === path.join(opt, 'media'))!
    expect(media.depth).toBe(1)
    expect(media.mountedBy.map((x) => x.container)).toEqual(['sst-music'])
    expect(p.children.find((c) => c.path === path.join(opt, 'app'))?.mountedBy).toEqual([])
    // the symlinked directory is neither followed nor counted
    const link = path.join(opt, 'link')
    expect(p.children.filter((c) => c.path.startsWith(link + '/'))).toEqual([])
    expect(p.children.find((c) => c.path === link)?.sizeBytes ?? 0).toBeLessThan(MB) // the link itself
    expect(p.sizeBytes).toBeLessThan(4 * MB + (await duBytes(music)))
    // a big file is a child like a directory
    expect(p.children.find((c) => c.path === path.join(opt, 'backup.tar.gz'))).toMatchObject({
      depth: 1,
      sizeBytes: 2 * 1024 * 1024,
    })
    // the tmpfs below is listed, not measured
    expect(p.mounts).toContainEqual({
      path: path.join(opt, 'mnt'),
      fsType: 'tmpfs',
      source: 'sstmp',
    })
  })

  it('reports a missing path as a warning and still exits 0', () => {
    const missing = report.paths.find((x) => x.path === path.join(tmp, 'missing'))!
    expect(missing).toMatchObject({ exists: false, sizeBytes: null, children: [] })
    expect(report.warnings.join('\n')).toContain(`${path.join(tmp, 'missing')} does not exist`)
  })

  it('recommends migrate-assets, inspect and prune with savings', async () => {
    const rootDev = (await stat('/')).dev
    const onRoot = (await stat(music)).dev === rootDev
    const migrate = report.recommendations.filter((r) => r.kind === 'migrate-assets')
    if (onRoot) {
      expect(migrate).toEqual([
        expect.objectContaining({
          target: music,
          command: 'shipshape migrate-assets music',
          estimatedSavingsBytes: await duBytes(music),
        }),
      ])
    } else {
      expect(migrate).toEqual([]) // not on the root filesystem: nothing to gain there
    }
    expect(report.recommendations).toContainEqual(
      expect.objectContaining({
        kind: 'inspect-image',
        target: 'sst-report/app:1',
        command: 'shipshape inspect sst-report/app:1',
      }),
    )
    const prune = report.recommendations.find((r) => r.kind === 'prune-containers')!
    expect(prune.estimatedSavingsBytes).toBe(report.disk.containers.reclaimableBytes)
    expect(prune.command).toBe('shipshape prune')
  })

  it('prints tables for a person, Markdown with --markdown', async () => {
    const human = await cli(['report'])
    expect(human.code).toBe(0)
    expect(human.stdout).toBe('') // human output goes to stderr
    expect(human.stderr).toMatch(/Engine disk use/)
    expect(human.stderr).toContain('sst-report/app:1')
    expect(human.stderr).toContain('RUN dd if=/dev/zero of=/big bs=1M count=3')
    const md = await cli(['report', '--markdown'])
    expect(md.code).toBe(0)
    expect(md.stdout).toMatch(/^# shipshape report — test-host/)
    expect(md.stdout).toContain('## Recommendations')
  })

  it('--out keeps dated reports and shows growth since the previous one', async () => {
    const out = path.join(tmp, 'reports')
    const first = await cli(['report', '--json', '--out', out])
    expect(first.code).toBe(0)
    expect((JSON.parse(first.stdout) as Report).growth).toBeUndefined()
    await writeFile(path.join(music, 'new.mp3'), Buffer.alloc(2 * 1024 * 1024, 9)) // whole 4 KiB blocks: du grows by exactly this
    await new Promise((r) => setTimeout(r, 1100)) // a new second: a new file name
    const second = await cli(['report', '--json', '--out', out])
    expect(second.code).toBe(0)
    const g = (JSON.parse(second.stdout) as Report).growth!
    expect(g.previousFile).toMatch(/shipshape-report-\d{8}T\d{6}Z\.json$/)
    expect(g.paths).toContainEqual(
      expect.objectContaining({ path: music, deltaBytes: 2 * 1024 * 1024 }),
    )
    const files = (await readdir(out)).sort()
    expect(files.filter((f) => f.endsWith('.json'))).toHaveLength(2)
    expect(files.filter((f) => f.endsWith('.md'))).toHaveLength(2)
  })

  it('--metrics writes a Prometheus textfile of the same figures; promtool accepts it', async () => {
    const file = path.join(tmp, 'textfile', 'shipshape.prom')
    const r = await cli(['report', '--json', '--metrics', file])
    expect(r.code, r.stderr).toBe(0)
    const rep = JSON.parse(r.stdout) as Report
    const text = await readFile(file, 'utf8')
    expect((await stat(file)).mode & 0o777).toBe(0o644)
    expect(text).toContain(
      `shipshape_engine_bytes{host="${rep.host}",type="images"} ${rep.disk.images.sizeBytes}\n`,
    )
    expect(text).toContain(`shipshape_path_bytes{host="${rep.host}",path="${opt}"}`)
    expect(text).toMatch(
      /^shipshape_run_duration_seconds\{host="[^"]*",operation="report",target=""\} [0-9.]+$/m,
    )
    const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })
    if (promtool.error) {
      if (process.env.SHIPSHAPE_REQUIRE_PROMTOOL) throw new Error('promtool is not installed')
      console.warn('[report] promtool not installed: `promtool check metrics` skipped')
    } else expect(promtool.status, promtool.stdout + promtool.stderr).toBe(0)
  })
})
