/**
 * `shipshape config init` end to end: the built CLI against the private engine running two
 * compose v1 projects (relative config_files, the same service name in both, a HEALTHCHECK, a GPU
 * request, a CUDA-looking image), a plain container serving HTTP on a published port with a
 * bind-mounted directory of a few MB and a shipshape.build label, a database-like container and a
 * cache holding named volumes, and a real rclone mount. The generated config must pass `config
 * check`, run `report` and a `migrate-assets --dry-run` unchanged.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, expect } from 'vitest'
import { runCli, type CliResult } from '../cli/run.js'
import type { PrivateEngine } from '../harness/engine.js'
import { buildImage, busyboxImage, compose, docker, dockerOk } from '../harness/fixtures.js'
import { freePort } from '../harness/net.js'
import { mountRclone, rcloneTempDirs, rcloneUsable, type RcloneMount } from '../harness/rclone.js'
import { describeEngine, engineTest as test } from '../harness/suite.js'
import { parseConfigText } from '../../lib/config/load.js'
import { parseMountinfo } from '../../lib/host/mountinfo.js'
import type { Config } from '../../lib/config/schema.js'

const MB = 1e6
const id = `${process.pid}`

/** fuse.rclone mountpoints in our mount namespace, in mountinfo order */
const rcloneMounts = () =>
  parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'))
    .filter((m) => m.fsType === 'fuse.rclone')
    .map((m) => m.mountPoint)

describeEngine('config init', (getEngine) => {
  let engine: PrivateEngine
  let tmp: string
  let opt: string
  let media: string
  let buildDir: string
  let lowConfig: string
  let port: number
  let mount: RcloneMount | null = null
  let rcloneDirs: Awaited<ReturnType<typeof rcloneTempDirs>> | null = null
  let rcloneProblem: string | null = null
  let othersBefore: string[] = []
  const projA = `sstinita${id}`
  const projB = `sstinitb${id}`
  const projDir = (p: string) => path.join(opt, p)
  const app = `sst-init-app-${id}`
  const db = `sst-init-db-${id}`
  const cache = `sst-init-cache-${id}`
  const net = `sst-init-net-${id}`
  const pgVolume = `sst-init-pg-${id}`
  const cacheVolume = `sst-init-cache-${id}`

  const cli = (args: string[]): Promise<CliResult> =>
    runCli(['--docker-host', engine.dockerHost, ...args], {}, 120_000)

  beforeAll(async () => {
    engine = getEngine()
    const base = await busyboxImage(engine)
    // inside the engine's directory: its watchdog removes it even after a crash
    tmp = await fs.mkdtemp(path.join(engine.root, 'fx-init-'))
    opt = path.join(tmp, 'opt')
    media = path.join(opt, 'app', 'media')
    buildDir = path.join(opt, 'app', 'build')
    await fs.mkdir(media, { recursive: true })
    for (let i = 0; i < 3; i++)
      await fs.writeFile(path.join(media, `track ${i}.mp3`), randomBytes(MB))
    await fs.mkdir(path.join(opt, 'app', 'conf'), { recursive: true })
    await fs.writeFile(path.join(opt, 'app', 'conf', 'app.ini'), 'x=1\n')
    await fs.mkdir(buildDir, { recursive: true })
    await fs.writeFile(path.join(buildDir, 'Dockerfile'), 'FROM scratch\n')

    // images: a database-like tag, a cache, a CUDA-looking one (ENV and a pip line in its history)
    await dockerOk(engine, ['tag', base, 'sst-init/postgres:16'])
    await dockerOk(engine, ['tag', base, 'sst-init/cache:1'])
    await buildImage(engine, {
      tag: 'sst-init/ml:1',
      dockerfile: [
        `FROM ${base}`,
        'ENV CUDA_VERSION=12.4.1',
        'RUN echo "pip install --no-cache-dir torch==2.3.0" > /installed.txt',
        'CMD ["sleep", "3600"]',
      ].join('\n'),
    })

    // the plain app: httpd on a user network with a published port, a bind mount, a build label
    port = await freePort()
    await dockerOk(engine, ['network', 'create', net])
    await dockerOk(engine, [
      'run',
      '-d',
      '--name',
      app,
      '--network',
      net,
      '-p',
      `127.0.0.1:${port}:8080`,
      '-v',
      `${media}:/media:ro`,
      '-v',
      `${path.join(opt, 'app', 'conf')}:/conf`,
      '--label',
      `shipshape.build=${buildDir}`,
      base,
      'sh',
      '-c',
      'mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 0.0.0.0:8080 -h /www',
    ])
    // a database-like container and a cache, each holding a named volume
    await dockerOk(engine, ['volume', 'create', pgVolume])
    await dockerOk(engine, ['volume', 'create', cacheVolume])
    const sleeper = ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait']
    await dockerOk(engine, [
      'run',
      '-d',
      '--name',
      db,
      '--network',
      'none',
      '-v',
      `${pgVolume}:/var/lib/postgresql/data`,
      'sst-init/postgres:16',
      ...sleeper,
    ])
    await dockerOk(engine, [
      'run',
      '-d',
      '--name',
      cache,
      '--network',
      'none',
      '-v',
      `${cacheVolume}:/cache`,
      'sst-init/cache:1',
      ...sleeper,
    ])

    // two compose v1 projects, started from their directories (v1 records the file as given)
    if (!engine.composeV1Path)
      throw new Error('compose v1 is not installed (apt-get install docker-compose)')
    const sleeps = `    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]`
    const files: Record<string, string[]> = {
      [projA]: [
        'services:',
        '  web:',
        `    image: ${base}`,
        '    network_mode: none',
        sleeps,
        '    healthcheck: { test: ["CMD", "true"], interval: 1s }',
        '  sstml:',
        '    image: sst-init/ml:1',
        '    network_mode: none',
        sleeps,
      ],
      [projB]: [
        'services:',
        '  web:',
        `    image: ${base}`,
        '    network_mode: none',
        '    environment: { NVIDIA_VISIBLE_DEVICES: all }',
        sleeps,
      ],
    }
    for (const [p, lines] of Object.entries(files)) {
      await fs.mkdir(projDir(p), { recursive: true })
      await fs.writeFile(path.join(projDir(p), 'docker-compose.yml'), lines.join('\n') + '\n')
      const up = await compose(engine, 'v1', ['-p', p, 'up', '-d'], {
        cwd: projDir(p),
        timeoutMs: 120_000,
      })
      if (up.exitCode !== 0) throw new Error(`compose up ${p} failed:\n${up.stderr}${up.stdout}`)
    }

    // a real rclone mount, when rclone and FUSE are there
    const usable = await rcloneUsable()
    if (usable.ok) {
      othersBefore = rcloneMounts()
      rcloneDirs = await rcloneTempDirs('ss-init-rclone-')
      mount = await mountRclone({
        remoteDir: rcloneDirs.remoteDir,
        mountDir: rcloneDirs.mountDir,
        allowOther: true,
      })
    } else {
      rcloneProblem = usable.reason
      if (process.env.SHIPSHAPE_REQUIRE_RCLONE === '1')
        throw new Error(`rclone/FUSE unusable (SHIPSHAPE_REQUIRE_RCLONE=1): ${usable.reason}`)
      process.stderr.write(
        `\n!!! config init: rclone/FUSE unusable (${usable.reason}): the asset is checked commented out, not on a mount\n`,
      )
    }

    lowConfig = path.join(tmp, 'low.yaml')
    await fs.writeFile(
      lowConfig,
      [
        `stateDir: ${JSON.stringify(path.join(tmp, 'state'))}`,
        `backupDir: ${JSON.stringify(path.join(tmp, 'backups'))}`,
        `allowedRoots: [${JSON.stringify(opt)}]`,
        'report: { bigAssets: 1MB }',
        '',
      ].join('\n'),
    )
  })

  afterAll(async () => {
    if (!engine) return
    for (const p of [projA, projB])
      await compose(engine, 'v1', ['-p', p, 'down', '-t', '1'], { cwd: projDir(p) }).catch(() => {})
    await docker(engine, ['rm', '-f', app, db, cache])
    await docker(engine, ['volume', 'rm', pgVolume, cacheVolume])
    await docker(engine, ['network', 'rm', net])
    await docker(engine, ['rmi', 'sst-init/postgres:16', 'sst-init/cache:1', 'sst-init/ml:1'])
    await mount?.unmount()
    await rcloneDirs?.remove()
    if (tmp) await fs.rm(tmp, { recursive: true, force: true })
  })

  /** The generated text, parsed as `config check` parses it. */
  const parse = (text: string): Config => parseConfigText(text, 'generated.yaml')

  test('--stdout: compose services, the plain app, protections, the asset on the mount', async () => {
    const r = await cli(['--config', lowConfig, 'config', 'init', '--stdout'])
    expect(r.code, r.stderr).toBe(0)
    const text = r.stdout
    const c = parse(text)

    // compose v1 recorded "docker-compose.yml": resolved against the project's working dir
    expect(c.services[`${projA}-web`]).toMatchObject({
      compose: path.join(projDir(projA), 'docker-compose.yml'),
      service: 'web',
      health: { container: true },
    })
    expect(c.services[`${projB}-web`]).toMatchObject({
      compose: path.join(projDir(projB), 'docker-compose.yml'),
      service: 'web',
      gpu: 'required',
    })
    expect(text).toContain('requests a GPU: NVIDIA_VISIBLE_DEVICES=all')
    expect(c.services.sstml).toMatchObject({
      compose: path.join(projDir(projA), 'docker-compose.yml'),
      gpu: 'expected-unused',
    })
    expect(c.services.sstml?.service).toBeUndefined()

    // the plain app: its build label, a guessed url that really answers
    expect(c.services[app]).toMatchObject({ container: app, build: buildDir })
    const url = c.services[app]!.health!.url!
    expect(url).toBe(`http://127.0.0.1:${port}/`)
    expect(text).toMatch(new RegExp(`url: http://127\\.0\\.0\\.1:${port}/ # guessed: confirm`))
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) })
    expect(res.status).toBe(200)

    // the database: a plain container without a build, commented out; its image protected
    expect(c.services[db]).toBeUndefined()
    expect(text).toContain(`# plain container ${db} (sst-init/postgres:16): no build context found`)
    expect(c.prune.protect.images).toEqual(
      expect.arrayContaining(['sst-init/postgres', 'sst-init/cache:1']),
    )
    expect(c.prune.protect.images).not.toContain('sst-init/ml:1')

    // the thresholds and roots of --config, kept; report.paths from the bind mounts
    expect(c.report.bigAssets).toBe(1e6)
    expect(c.allowedRoots).toEqual([opt])
    expect(c.report.paths).toEqual([opt])

    // the media directory (3 MB > 1MB) is the one asset; the 4 kB conf is left out
    const sources = [
      ...Object.values(c.assets).map((a) => a.source),
      ...[...text.matchAll(/# {3}source: (.+)$/gm)].map((m) => m[1]),
    ]
    expect(sources).toEqual([media])
    if (mount) {
      // another suite's rclone mount may come and go meanwhile (it is proposed only while live):
      // the asset goes on one of the rclone mounts that were there, ours when it was alone
      const chosen = c.assets['app-media']?.mount ?? ''
      expect([...othersBefore, mount.mountDir]).toContain(chosen)
      expect(c.assets['app-media']).toEqual(
        expect.objectContaining({
          source: media,
          mount: chosen,
          dest: path.join(chosen, 'app-media'),
          restart: [app],
          mountType: 'fuse.rclone',
        }),
      )
      if (othersBefore.length === 0) expect(c.assets['app-media']!.mount).toBe(mount.mountDir)
      else
        process.stderr.write(
          `\n!!! config init: other rclone mounts were there first (${othersBefore.join(', ')}): the asset went on ${chosen}\n`,
        )
    } else {
      expect(c.assets).toEqual({})
      expect(text).toMatch(/^ {2}# app-media:$/m)
      expect(text).toContain('# not proposed: no')
      expect(rcloneProblem).not.toBe(null)
    }
  })

  test('--json: the versioned shape with the guessed keys', async () => {
    const r = await cli(['--config', lowConfig, '--json', 'config', 'init', '--stdout'])
    expect(r.code, r.stderr).toBe(0)
    const j = JSON.parse(r.stdout)
    expect(j.schema).toBe('shipshape.config-init/1')
    expect(j.file).toBe(null)
    expect(j.services).toEqual(
      expect.arrayContaining([`${projA}-web`, `${projB}-web`, 'sstml', app]),
    )
    expect(j.protect).toEqual(expect.arrayContaining(['sst-init/postgres', 'sst-init/cache:1']))
    expect(j.guessed).toEqual(
      expect.arrayContaining([`services.${app}.health.url`, 'services.sstml.gpu']),
    )
    expect(j.assets).toEqual(mount ? ['app-media'] : [])
    expect(parse(j.yaml).services.sstml?.gpu).toBe('expected-unused')
  })

  test('--out: written 0644; config check, report and migrate-assets --dry-run use it unchanged; --force rules', async () => {
    const file = path.join(tmp, 'generated', 'host.yaml')
    const w = await cli(['--config', lowConfig, 'config', 'init', '--out', file])
    expect(w.code, w.stderr).toBe(0)
    expect(w.stdout).toBe('')
    expect(w.stderr).toContain(`wrote ${file}`)
    expect((await fs.stat(file)).mode & 0o777).toBe(0o644)
    const text = await fs.readFile(file, 'utf8')

    const check = await cli(['config', 'check', file])
    expect(check.code, check.stderr).toBe(0)
    expect(check.stderr).toContain(`ok: ${file}`)

    const report = await cli(['--config', file, '--json', 'report'])
    expect(report.code, report.stderr).toBe(0)
    const rep = JSON.parse(report.stdout)
    expect(rep.configSource).toBe(file)
    expect(rep.thresholds.bigAssetsBytes).toBe(1e6)
    const scanned = rep.paths.find((p: { path: string }) => p.path === opt)
    expect(scanned.exists).toBe(true)
    expect(scanned.children.find((ch: { path: string }) => ch.path === media).mountedBy).toEqual([
      expect.objectContaining({ container: app, source: media }),
    ])

    if (mount) {
      // the proposed asset passes migrate-assets' whole preflight as written — on our mount:
      // another engine run's rclone mount (CI runs them at once) may have been proposed, and be
      // gone by now
      const chosen = (parse(text).assets?.['app-media']?.mount ?? mount.mountDir) as string
      let dryFile = file
      if (chosen !== mount.mountDir) {
        dryFile = path.join(tmp, 'generated-on-ours.yaml')
        await fs.writeFile(dryFile, text.split(chosen).join(mount.mountDir))
      }
      const dry = await cli([
        '--config',
        dryFile,
        '--json',
        'migrate-assets',
        'app-media',
        '--dry-run',
      ])
      expect(dry.code, dry.stderr).toBe(0)
      expect(JSON.parse(dry.stdout)).toMatchObject({ outcome: 'dry-run', containers: [app] })
    }

    // an existing file: refused (exit 4) naming it and --force, left as it was
    const before = await fs.stat(file)
    const again = await cli(['--config', lowConfig, 'config', 'init', '--out', file])
    expect(again.code).toBe(4)
    expect(again.stderr).toContain(file)
    expect(again.stderr).toContain('--force')
    expect(await fs.readFile(file, 'utf8')).toBe(text)
    expect((await fs.stat(file)).mtimeMs).toBe(before.mtimeMs)

    await new Promise((r) => setTimeout(r, 5)) // a new timestamp in the header
    const forced = await cli(['--config', lowConfig, 'config', 'init', '--out', file, '--force'])
    expect(forced.code, forced.stderr).toBe(0)
    const replaced = await fs.readFile(file, 'utf8')
    expect(replaced).not.toBe(text)
    expect(parse(replaced).services).toEqual(parse(text).services)
    expect((await fs.readdir(path.dirname(file))).sort()).toEqual(['host.yaml']) // no temp left
  })
})
