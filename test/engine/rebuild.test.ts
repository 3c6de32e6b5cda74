/**
 * `shipshape rebuild` and `shipshape rollback` end to end: the built CLI against the private
 * engine, a real compose project (compose v1 always, v2 where fetched) and a plain container.
 * The app is busybox httpd on the host network with basic auth from the environment; its
 * /health page names the version. Every case checks what runs afterwards (container, image id,
 * the page itself), the tags and backups, and the files shipshape wrote.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeAll, expect, vi } from 'vitest'
import { CLI, runCli, type CliResult } from '../cli/run.js'
import { BUSYBOX_TAG, busyboxImage, compose, docker, dockerOk } from '../harness/fixtures.js'
import { composeVersions, type PrivateEngine } from '../harness/engine.js'
import { describeEngine, engineTest as test } from '../harness/suite.js'
import { freePort, waitUntil } from '../harness/net.js'

/** What the app's /health says with the right credentials (null: no answer). */
async function page(port: number, user: string, pass: string): Promise<string | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, {
      headers: { authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` },
      signal: AbortSignal.timeout(3000),
    })
    return res.ok ? (await res.text()).trim() : `HTTP ${res.status}`
  } catch {
    return null
  }
}

/** Every regular file below dir (recursively), for grepping. */
async function filesBelow(dir: string): Promise<string[]> {
  const out: string[] = []
  async function walk(d: string): Promise<void> {
    for (const e of await fs.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) await walk(p)
      else if (e.isFile()) out.push(p)
    }
  }
  await walk(dir)
  return out
}

type Version = 'v1' | 'v2'

interface App {
  /** the service's name in the host config (unique per case) */
  svc: string
  root: string
  proj: string
  project: string
  state: string
  backups: string
  config: string
  port: number
  user: string
  pass: string
  version: Version
  env: NodeJS.ProcessEnv
}

/** The app's version: what /health says, whether it serves it at all, a start delay. */
interface Variant {
  health: string | null
  delay?: number
  /** a build that fails (COPY of a missing file) */
  broken?: boolean
  /** the app serves this many seconds after each start, then exits 1 (a crash after start-up) */
  crashAfter?: number
}

let seq = 0

// most cases run compose v1 then v2, each through gates that hold health.stableFor: three
// engine runs at once on a small machine take up to twice their time alone
vi.setConfig({ testTimeout: 400_000 })

describeEngine('rebuild and rollback', (getEngine) => {
  const apps: App[] = []
  const containers: string[] = []
  const networks: string[] = []
  const roots: string[] = []

  beforeAll(async () => {
    await busyboxImage(getEngine())
  })

  afterEach(async () => {
    const engine = getEngine()
    for (const a of apps.splice(0)) {
      await compose(engine, a.version, ['-p', a.project, 'down', '-t', '1'], {
        cwd: a.proj,
        env: a.env,
      }).catch(() => {})
      await fs.rm(a.root, { recursive: true, force: true }).catch(() => {})
    }
    for (const c of containers.splice(0)) await docker(engine, ['rm', '-fv', c])
    for (const n of networks.splice(0)) await docker(engine, ['network', 'rm', n])
    for (const r of roots.splice(0)) await fs.rm(r, { recursive: true, force: true })
  })

  /** Writes the app's build context for a variant (Dockerfile, start script, pages). */
  async function writeVariant(dir: string, v: Variant): Promise<void> {
    await fs.rm(path.join(dir, 'www'), { recursive: true, force: true })
    await fs.mkdir(path.join(dir, 'www'), { recursive: true })
    if (v.health !== null) await fs.writeFile(path.join(dir, 'www', 'health'), `${v.health}\n`)
    await fs.writeFile(path.join(dir, 'www', 'index.html'), 'app\n')
    await fs.writeFile(
      path.join(dir, 'start.sh'),
      [
        `sleep ${v.delay ?? 0}`,
        'echo "/:$HUSER:$HPASS" > /tmp/httpd.conf',
        ...(v.crashAfter === undefined
          ? ['exec httpd -f -p "${BIND:-127.0.0.1}:$PORT" -h /www -c /tmp/httpd.conf']
          : [
              'httpd -f -p "${BIND:-127.0.0.1}:$PORT" -h /www -c /tmp/httpd.conf &',
              `sleep ${v.crashAfter}`,
              'exit 1',
            ]),
        '',
      ].join('\n'),
    )
    await fs.writeFile(
      path.join(dir, 'Dockerfile'),
      [
        `FROM ${BUSYBOX_TAG}`,
        'COPY www /www',
        'COPY start.sh /start.sh',
        ...(v.broken ? ['COPY not-there /nowhere'] : []),
        'CMD ["sh", "/start.sh"]',
        '',
      ].join('\n'),
    )
  }

  function configText(
    a: Pick<App, 'state' | 'backups' | 'port' | 'root'>,
    service: string[],
    extra: string[] = [],
  ): string {
    return (
      [
        `stateDir: ${JSON.stringify(a.state)}`,
        `backupDir: ${JSON.stringify(a.backups)}`,
        ...extra,
        'services:',
        ...service.map((l) => `  ${l}`),
      ].join('\n') + '\n'
    )
  }

  /** the hold is short here (its own case holds longer): every gate of every case waits it out */
  const healthLine = (port: number, timeout = '20s', retries = 5, stableFor = '2s') =>
    `    health: { url: "http://127.0.0.1:${port}/health", userEnv: SS_TEST_USER, passwordEnv: SS_TEST_PASS, timeout: ${timeout}, retries: ${retries}, stableFor: ${stableFor} }`

  /** A compose project (web: the app, other: a bystander), up and healthy on v1 of the app. */
  async function composeApp(
    engine: PrivateEngine,
    version: Version,
    o: { override?: boolean; flag?: boolean; restart?: string } = {},
  ): Promise<App> {
    const file = version === 'v1' ? engine.composeV1Path : engine.composeV2Path
    if (!file) throw new Error(`compose ${version} missing`)
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'ss-rb-'))
    const id = `${process.pid}x${++seq}`
    const a: App = {
      svc: `web${id}`,
      root,
      proj: path.join(root, 'app'),
      project: `ssrb${id}`,
      state: path.join(root, 'state'),
      backups: path.join(root, 'backups'),
      config: path.join(root, 'shipshape.yaml'),
      port: await freePort(),
      user: 'operator',
      pass: `pw-${randomBytes(12).toString('hex')}`,
      version,
      env: {},
    }
    a.env = { SS_TEST_USER: a.user, SS_TEST_PASS: a.pass }
    apps.push(a)
    await fs.mkdir(a.proj, { recursive: true })
    await writeVariant(a.proj, { health: 'v1' })
    if (o.flag) {
      await fs.mkdir(path.join(a.proj, 'flag'))
      await fs.writeFile(path.join(a.proj, 'flag', 'ok'), 'ok\n')
    }
    const env = [
      '    environment:',
      '      HUSER: ${SS_TEST_USER}',
      '      HPASS: ${SS_TEST_PASS}',
      `      PORT: "${a.port}"`,
    ]
    await fs.writeFile(
      path.join(a.proj, 'docker-compose.yml'),
      [
        'services:',
        '  web:',
        '    build: { context: ., network: host }',
        '    network_mode: host',
        '    stop_grace_period: 1s', // httpd as PID 1 ignores SIGTERM
        ...(o.restart ? [`    restart: ${o.restart}`] : []),
        ...(o.flag ? ['    volumes: ["./flag:/flag"]'] : []),
        ...(o.override ? [] : env),
        '  other:',
        `    image: ${BUSYBOX_TAG}`,
        '    network_mode: none',
        `    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]`,
        '',
      ].join('\n'),
    )
    // compose picks the override up by itself when started without -f, and records both files
    if (o.override) {
      await fs.writeFile(
        path.join(a.proj, 'docker-compose.override.yml'),
        ['services:', '  web:', ...env, ''].join('\n'),
      )
    }
    const up = await compose(engine, version, ['-p', a.project, 'up', '-d', '--build'], {
      cwd: a.proj,
      env: a.env,
      timeoutMs: 180_000,
    })
    if (up.exitCode !== 0) throw new Error(`compose up failed:\n${up.stderr}${up.stdout}`)
    await fs.writeFile(
      a.config,
      configText(
        a,
        [
          `${a.svc}:`,
          `    compose: ${JSON.stringify(path.join(a.proj, 'docker-compose.yml'))}`,
          '    service: web',
          healthLine(a.port),
        ],
        ['docker:', `  compose: [${JSON.stringify(file)}]`],
      ),
    )
    await waitFor(async () => (await page(a.port, a.user, a.pass)) === 'v1', 'the app answers v1')
    return a
  }

  // a CLI's preflight under load (eight CI runs at once on two cores) took past waitUntil's 20 s
  const waitFor = (ok: () => Promise<boolean>, what: string, ms = 90_000) => waitUntil(ok, what, ms)

  const cli = (engine: PrivateEngine, a: App, args: string[]): Promise<CliResult> =>
    runCli(['--config', a.config, '--docker-host', engine.dockerHost, ...args], a.env, 300_000)

  /** The web service's containers: id, image id, running. */
  async function webContainers(engine: PrivateEngine, a: App) {
    const ids = (
      await dockerOk(engine, [
        'ps',
        '-aq',
        '--no-trunc',
        '--filter',
        `label=com.docker.compose.project=${a.project}`,
        '--filter',
        'label=com.docker.compose.service=web',
      ])
    )
      .split('\n')
      .filter(Boolean)
    const out: { id: string; image: string; running: boolean }[] = []
    for (const id of ids) {
      // compose v1 renames and removes the old container while recreating: gone is fine
      const r = await docker(engine, ['inspect', '-f', '{{.Image}} {{.State.Running}}', id])
      if (r.exitCode !== 0) continue
      const [image, running] = r.stdout.trim().split(' ')
      out.push({ id, image: image!, running: running === 'true' })
    }
    return out
  }

  const imageIdOf = async (engine: PrivateEngine, ref: string): Promise<string | null> => {
    const r = await docker(engine, ['image', 'inspect', '-f', '{{.Id}}', ref])
    return r.exitCode === 0 ? r.stdout.trim() : null
  }

  /**
   * Backup tags of a service (each case names its service apart: they share the engine): the
   * commits (labelled images) and the prev tags shipshape recorded in stateDir that still name
   * their image.
   */
  const backupsOf = async (engine: PrivateEngine, a: Pick<App, 'svc' | 'state'>) => {
    const labelled = (
      await dockerOk(engine, [
        'images',
        '--filter',
        `label=shipshape.backup.of=${a.svc}`,
        '--format',
        '{{.Repository}}:{{.Tag}}',
      ])
    )
      .split('\n')
      .filter(Boolean)
    const dir = path.join(a.state, 'backups', a.svc)
    const recorded: string[] = []
    for (const n of await fs.readdir(dir).catch(() => [] as string[])) {
      const rec = JSON.parse(await fs.readFile(path.join(dir, n), 'utf8'))
      if ((await imageIdOf(engine, rec.tag)) === rec.id) recorded.push(rec.tag)
    }
    return [...new Set([...labelled, ...recorded])].sort()
  }

  /** The password is in no output, log, journal or backup file of shipshape. */
  async function expectNoPassword(a: App, outputs: CliResult[]): Promise<void> {
    for (const r of outputs) {
      expect(r.stdout).not.toContain(a.pass)
      expect(r.stderr).not.toContain(a.pass)
    }
    const files = [...(await filesBelow(a.state)), ...(await filesBelow(a.backups))]
    expect(files.some((f) => f.endsWith('.log'))).toBe(true)
    expect(files.some((f) => f.endsWith('.jsonl'))).toBe(true)
    for (const f of files) expect(await fs.readFile(f, 'latin1'), f).not.toContain(a.pass)
  }

  const versions = (engine: PrivateEngine): Version[] => composeVersions(engine)

  test('compose: a good rebuild runs the new image, backups labelled, password nowhere', async ({
    engine,
  }) => {
    for (const version of versions(engine)) {
      const a = await composeApp(engine, version)
      const [before] = await webContainers(engine, a)
      const other = await webOther(engine, a)
      const ref = await imageRefOfContainer(engine, before!.id)
      // the containerd image store removes the old image once nothing names or runs it
      const oldLayers = await layersOf(engine, before!.image)
      await writeVariant(a.proj, { health: 'v2' })
      const r = await cli(engine, a, ['rebuild', a.svc, '--yes', '--json'])
      expect(r.code, `${version}: ${r.stderr}`).toBe(0)
      const j = JSON.parse(r.stdout)
      expect(j.schema).toBe('shipshape.rebuild/1')
      expect(j.outcome).toBe('rebuilt')
      expect(j.kind).toBe('compose')
      // the new image runs, under the service's tag, and serves the new page
      const after = await webContainers(engine, a)
      expect(after).toHaveLength(1)
      expect(after[0]!.running).toBe(true)
      expect(after[0]!.image).toBe(j.image.to)
      expect(j.image.from).toBe(before!.image)
      expect(j.image.to).not.toBe(before!.image)
      expect(await imageIdOf(engine, ref)).toBe(j.image.to)
      expect(await page(a.port, a.user, a.pass)).toBe('v2')
      expect(j.health.ok).toBe(true)
      // the bystander service was not touched
      expect(await webOther(engine, a)).toBe(other)
      // both backups: the prev tag is on the very image that ran (same id, no labels added),
      // the commit is a labelled image
      const tags = await backupsOf(engine, a)
      expect(tags, JSON.stringify(tags)).toHaveLength(2)
      expect(tags.some((t) => /:shipshape-prev-\d{8}T\d{6}Z$/.test(t))).toBe(true)
      expect(tags.some((t) => /:shipshape-backup-\d{8}T\d{6}Z$/.test(t))).toBe(true)
      const prev = tags.find((t) => t.includes('-prev-'))!
      expect(await imageIdOf(engine, prev)).toBe(before!.image)
      expect(await layersOf(engine, prev)).toEqual(oldLayers)
      const commitLabels = JSON.parse(
        await dockerOk(engine, [
          'image',
          'inspect',
          '-f',
          '{{json .Config.Labels}}',
          tags.find((t) => t.includes('-backup-'))!,
        ]),
      )
      expect(commitLabels['shipshape.backup.of']).toBe(a.svc)
      expect(commitLabels['shipshape.backup.kind']).toBe('commit')
      // the size before and after, and what was saved
      expect(j.size.beforeBytes).toBeGreaterThan(0)
      expect(j.size.afterBytes).toBeGreaterThan(0)
      expect(j.size.savedBytes).toBe(j.size.beforeBytes - j.size.afterBytes)
      // the hold tag (the old image's name during the run) is gone
      const stamp = tags[0]!.slice(-16) // …-20261125T150405Z
      const repo = ref.replace(/:[^/:]*$/, '')
      expect(await imageIdOf(engine, `${repo}:shipshape-hold-${stamp}`)).toBe(null)
      // the compose file and Dockerfile were kept by the run, and saved with both images: the
      // old one (found before this first rebuild: compose's hash says they made what ran) and
      // the new one (built from them)
      const kept = await filesBelow(path.join(a.backups, 'rebuild', a.svc))
      expect(kept.map((f) => path.basename(f)).sort()).toEqual(['Dockerfile', 'docker-compose.yml'])
      for (const [id, origin] of [
        [before!.image, 'matched-running'],
        [j.image.to, 'built'],
      ]) {
        const rec = JSON.parse(
          await fs.readFile(
            path.join(a.backups, 'build-files', a.svc, id.slice(7), 'files.json'),
            'utf8',
          ),
        )
        expect(rec.origin, `${version} ${origin}`).toBe(origin)
        expect(rec.entries.map((e: { role: string }) => e.role).sort()).toEqual([
          'compose',
          'dockerfile',
        ])
      }
      await expectNoPassword(a, [r])
    }
  })

  async function webOther(engine: PrivateEngine, a: App): Promise<string> {
    return (
      await dockerOk(engine, [
        'ps',
        '-aq',
        '--no-trunc',
        '--filter',
        `label=com.docker.compose.project=${a.project}`,
        '--filter',
        'label=com.docker.compose.service=other',
      ])
    ).trim()
  }

  const imageRefOfContainer = async (engine: PrivateEngine, id: string) =>
    (await dockerOk(engine, ['inspect', '-f', '{{.Config.Image}}', id])).trim()

  const layersOf = async (engine: PrivateEngine, ref: string) =>
    (await dockerOk(engine, ['image', 'inspect', '-f', '{{json .RootFS.Layers}}', ref])).trim()

  test('compose: a build whose app fails health → rolled back to the old image id, healthy, exit 1', async ({
    engine,
  }) => {
    for (const version of versions(engine)) {
      const a = await composeApp(engine, version)
      const [before] = await webContainers(engine, a)
      const ref = await imageRefOfContainer(engine, before!.id)
      await writeVariant(a.proj, { health: null }) // /health → 404
      await fs.writeFile(
        a.config,
        (await fs.readFile(a.config, 'utf8')).replace('timeout: 20s', 'timeout: 6s'),
      )
      const r = await cli(engine, a, ['rebuild', a.svc, '--yes', '--json'])
      expect(r.code, `${version}: ${r.stderr}`).toBe(1)
      const j = JSON.parse(r.stdout)
      expect(j.outcome).toBe('rolled-back')
      expect(j.error).toMatch(/HTTP 404/)
      const after = await webContainers(engine, a)
      expect(after).toHaveLength(1)
      expect(after[0]).toMatchObject({ image: before!.image, running: true })
      expect(await imageIdOf(engine, ref)).toBe(before!.image)
      expect(await page(a.port, a.user, a.pass)).toBe('v1')
      // the failed image is named for a look, and no longer under the tag
      expect(j.failedImage).toMatch(/^sha256:/)
      expect(j.failedImage).not.toBe(before!.image)
      // the commit is kept: it holds the writable layer of the container compose replaced
      expect(await backupsOf(engine, a)).toHaveLength(2)
      expect(r.stderr).toMatch(/rolled back|undone/i)
      await expectNoPassword(a, [r])
    }
  })

  test('compose: a build that answers, then crashes and restarts → rolled back, old image holds', async ({
    engine,
  }) => {
    for (const version of versions(engine)) {
      const a = await composeApp(engine, version, { restart: 'unless-stopped' })
      const [before] = await webContainers(engine, a)
      const ref = await imageRefOfContainer(engine, before!.id)
      await writeVariant(a.proj, { health: 'v2', crashAfter: 3 })
      await fs.writeFile(
        a.config,
        (await fs.readFile(a.config, 'utf8')).replace('stableFor: 2s', 'stableFor: 10s'),
      )
      const r = await cli(engine, a, ['rebuild', a.svc, '--yes', '--json'])
      expect(r.code, `${version}: ${r.stderr}`).toBe(1)
      const j = JSON.parse(r.stdout)
      expect(j.outcome).toBe('rolled-back')
      // it did answer: the hold is what caught it
      expect(j.health.heldMs).toBeGreaterThan(0)
      expect(j.health.heldMs).toBeLessThan(10_000)
      expect(j.error).toMatch(/restarted|stopped|passed, then failed/)
      const after = await webContainers(engine, a)
      expect(after).toHaveLength(1)
      expect(after[0]).toMatchObject({ image: before!.image, running: true })
      expect(await imageIdOf(engine, ref)).toBe(before!.image)
      // 10 s later: still the old app, still answering, never restarted
      await new Promise((res) => setTimeout(res, 10_000))
      expect(await page(a.port, a.user, a.pass)).toBe('v1')
      const state = await dockerOk(engine, [
        'inspect',
        '-f',
        '{{.RestartCount}} {{.State.Running}} {{.Image}}',
        after[0]!.id,
      ])
      expect(state.trim()).toBe(`0 true ${before!.image}`)
    }
  })

  /** The compose file with the app's port moved by an edited `command:` (a broken config). */
  const movePort = (text: string, port: number) =>
    text.replace(
      '    stop_grace_period: 1s\n',
      `    stop_grace_period: 1s\n    command: ["sh", "-c", "PORT=${port} exec sh /start.sh"]\n`,
    )

  test('compose: an edited compose file and a rebuild that fails → the old image with its old config, the edit untouched', async ({
    engine,
  }) => {
    for (const version of versions(engine)) {
      const a = await composeApp(engine, version)
      // a first good rebuild: the files that made each image are saved with it
      await writeVariant(a.proj, { health: 'v2' })
      const r1 = await cli(engine, a, ['rebuild', a.svc, '--yes', '--json'])
      expect(r1.code, `${version}: ${r1.stderr}`).toBe(0)
      const [good] = await webContainers(engine, a)
      // the operator edits the compose file (the port moves) and the app, then rebuilds
      const file = path.join(a.proj, 'docker-compose.yml')
      const edited = movePort(await fs.readFile(file, 'utf8'), await freePort())
      await fs.writeFile(file, edited)
      await writeVariant(a.proj, { health: 'v3' })
      const r = await cli(engine, a, ['rebuild', a.svc, '--yes', '--json'])
      expect(r.code, `${version}: ${r.stderr}`).toBe(1)
      const j = JSON.parse(r.stdout)
      expect(j.outcome).toBe('rolled-back')
      // the preflight said the config on disk is not what runs
      expect(r.stderr).toMatch(/not the one .* was made from \(config hash\)/)
      // back on the image that ran, with the config it ran with: it answers where it did
      const after = await webContainers(engine, a)
      expect(after).toHaveLength(1)
      expect(after[0]).toMatchObject({ image: good!.image, running: true })
      expect(await page(a.port, a.user, a.pass)).toBe('v2')
      const cmd = await dockerOk(engine, ['inspect', '-f', '{{json .Config.Cmd}}', after[0]!.id])
      expect(cmd).not.toContain('PORT=')
      // the operator's edited file, byte for byte
      expect(await fs.readFile(file, 'utf8')).toBe(edited)
      expect(r.stderr).toMatch(/runs with the compose files saved with/)
      expect(j.warnings.join('\n')).toMatch(/docker-compose\.yml differ/)
      await expectNoPassword(a, [r1, r])
    }
  })

  test('two healthy rebuilds, then rollback: the exact image that ran, its Dockerfile shown and restored', async ({
    engine,
  }) => {
    const version = versions(engine).at(-1)!
    const a = await composeApp(engine, version)
    const dockerfile = path.join(a.proj, 'Dockerfile')
    const ids: string[] = []
    for (const [n, health] of [
      ['B', 'v2'],
      ['C', 'v3'],
    ] as const) {
      await writeVariant(a.proj, { health })
      await fs.appendFile(dockerfile, `# build ${n}\n`)
      const r = await cli(engine, a, ['rebuild', a.svc, '--yes', '--json'])
      expect(r.code, r.stderr).toBe(0)
      ids.push(JSON.parse(r.stdout).image.to)
    }
    const [b, c] = ids as [string, string]
    const list = JSON.parse((await cli(engine, a, ['rollback', a.svc, '--list', '--json'])).stdout)
    expect(list.buildFiles.map((f: { imageId: string }) => f.imageId)).toEqual(
      expect.arrayContaining([b, c]),
    )
    const r = await cli(engine, a, ['rollback', a.svc, '--yes', '--json', '--restore-files'])
    expect(r.code, r.stderr).toBe(0)
    const j = JSON.parse(r.stdout)
    expect(j.outcome).toBe('switched')
    // the very image id that ran after the first rebuild, under the service's tag
    const [now] = await webContainers(engine, a)
    expect(now).toMatchObject({ image: b, running: true })
    expect(await imageIdOf(engine, j.image.ref)).toBe(b)
    expect(await page(a.port, a.user, a.pass)).toBe('v2')
    // no backup label on what runs: it is the image itself, not a labelled copy
    const labels = await dockerOk(engine, ['image', 'inspect', '-f', '{{json .Config.Labels}}', b])
    expect(labels).not.toContain('shipshape.backup')
    // the first build's Dockerfile was shown against the disk's, then written back
    expect(r.stderr).toMatch(/^-# build B$/m)
    expect(r.stderr).toMatch(/^\+# build C$/m)
    expect(j.files.diff).toContainEqual({ path: dockerfile, role: 'dockerfile', state: 'changed' })
    expect(j.files.restored).toEqual([dockerfile])
    expect(await fs.readFile(dockerfile, 'utf8')).toMatch(/# build B\n$/)
    const aside = j.files.replacedSavedIn as string
    expect(await fs.readFile(path.join(aside, 'files', 'Dockerfile'), 'utf8')).toMatch(
      /# build C\n$/,
    )
  })

  test('compose: a failing build touches nothing, exit 1', async ({ engine }) => {
    const a = await composeApp(engine, 'v1')
    const before = await webContainers(engine, a)
    const ref = await imageRefOfContainer(engine, before[0]!.id)
    await writeVariant(a.proj, { health: 'v2', broken: true })
    const r = await cli(engine, a, ['rebuild', a.svc, '--yes', '--json'])
    expect(r.code, r.stderr).toBe(1)
    const j = JSON.parse(r.stdout)
    expect(j.outcome).toBe('rolled-back')
    expect(j.error).toMatch(/build/i)
    expect(j.error).toContain(j.log)
    expect(await fs.readFile(j.log, 'utf8')).toMatch(/not-there/)
    expect(await webContainers(engine, a)).toEqual(before)
    expect(await imageIdOf(engine, ref)).toBe(before[0]!.image)
    expect(await page(a.port, a.user, a.pass)).toBe('v1')
    expect(await backupsOf(engine, a)).toEqual([])
    expect(await filesBelow(path.join(a.backups, 'rebuild'))).toEqual([])
  })

  /** Starts `rebuild web --yes`, waits for `ready()`, kills it with SIGKILL. */
  async function killWhen(engine: PrivateEngine, a: App, ready: () => Promise<boolean>) {
    const child = spawn(
      process.execPath,
      [CLI, '--config', a.config, '--docker-host', engine.dockerHost, 'rebuild', a.svc, '--yes'],
      { stdio: 'ignore', env: { PATH: process.env.PATH, HOME: process.env.HOME, ...a.env } },
    )
    const closed = new Promise((r) => child.on('close', r))
    for (let i = 0; i < 2400; i++) {
      if (await ready()) break
      if (child.exitCode !== null)
        throw new Error(`the run ended (exit ${child.exitCode}) before the kill point`)
      await new Promise((r) => setTimeout(r, 25))
    }
    child.kill('SIGKILL')
    await closed
  }

  /** The journal's records of the run (none before it starts). */
  async function journalRecords(a: App): Promise<{ t: string; id?: string }[]> {
    const dir = path.join(a.state, 'journal')
    const out: { t: string; id?: string }[] = []
    for (const n of await fs.readdir(dir).catch(() => [] as string[])) {
      for (const line of (await fs.readFile(path.join(dir, n), 'utf8')).split('\n')) {
        if (line.trim()) out.push(JSON.parse(line) as { t: string; id?: string })
      }
    }
    return out
  }

  /** Killed once the journal says recreate is done and health has begun, the app not yet up. */
  async function killBetweenRecreateAndHealth(engine: PrivateEngine, a: App, old: string) {
    await writeVariant(a.proj, { health: 'v2', delay: 5 })
    await killWhen(engine, a, async () =>
      (await journalRecords(a)).some((r) => r.t === 'step-begin' && r.id === 'health'),
    )
    const recs = await journalRecords(a)
    expect(recs.some((r) => r.t === 'step-done' && r.id === 'recreate')).toBe(true)
    expect(recs.some((r) => r.t === 'step-done' && r.id === 'health')).toBe(false)
    const now = await webContainers(engine, a)
    expect(now[0]?.image).not.toBe(old)
    expect(await page(a.port, a.user, a.pass)).toBe(null) // not up yet: health had not passed
  }

  test('kill -9 between recreate and health → --resume ends healthy on the new image', async ({
    engine,
  }) => {
    const a = await composeApp(engine, 'v1')
    const [before] = await webContainers(engine, a)
    await killBetweenRecreateAndHealth(engine, a, before!.image)
    const plain = await cli(engine, a, ['rebuild', a.svc, '--yes'])
    expect(plain.code, plain.stderr).toBe(4)
    expect(plain.stderr).toMatch(/--resume/)
    const r = await cli(engine, a, ['rebuild', a.svc, '--resume', '--yes', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const j = JSON.parse(r.stdout)
    expect(j.outcome).toBe('rebuilt')
    expect(j.health.ok).toBe(true)
    expect(await page(a.port, a.user, a.pass)).toBe('v2')
    const after = await webContainers(engine, a)
    expect(after[0]!.image).not.toBe(before!.image)
  })

  test('kill -9 between recreate and health → --rollback ends healthy on the old image', async ({
    engine,
  }) => {
    const a = await composeApp(engine, 'v1')
    const [before] = await webContainers(engine, a)
    const ref = await imageRefOfContainer(engine, before!.id)
    await killBetweenRecreateAndHealth(engine, a, before!.image)
    const r = await cli(engine, a, ['rebuild', a.svc, '--rollback', '--yes', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout).outcome).toBe('rolled-back')
    const after = await webContainers(engine, a)
    expect(after).toHaveLength(1)
    expect(after[0]).toMatchObject({ image: before!.image, running: true })
    expect(await imageIdOf(engine, ref)).toBe(before!.image)
    expect(await page(a.port, a.user, a.pass)).toBe('v1')
  })

  test('a second mutating run during a rebuild → exit 4; rollback --list, then rollback', async ({
    engine,
  }) => {
    const a = await composeApp(engine, 'v1')
    const [before] = await webContainers(engine, a)
    const oldLayers = await layersOf(engine, before!.image)
    await writeVariant(a.proj, { health: 'v2', delay: 3 })
    const first = cli(engine, a, ['rebuild', a.svc, '--yes', '--json'])
    await waitFor(
      async () =>
        (await fs.readdir(path.join(a.state, 'journal')).catch(() => [] as string[])).length > 0,
      'the rebuild holds the lock',
    )
    const second = await cli(engine, a, ['rollback', a.svc, '--yes'])
    expect(second.code, second.stderr).toBe(4)
    expect(second.stderr).toMatch(/lock|held|unfinished/i)
    const r = await first
    expect(r.code, r.stderr).toBe(0)
    expect(await page(a.port, a.user, a.pass)).toBe('v2')

    const list = await cli(engine, a, ['rollback', a.svc, '--list', '--json'])
    expect(list.code, list.stderr).toBe(0)
    const l = JSON.parse(list.stdout)
    expect(l.schema).toBe('shipshape.rollback/1')
    expect(l.backups.map((b: { kind: string }) => b.kind).sort()).toEqual(['commit', 'image'])

    const back = await cli(engine, a, ['rollback', a.svc, '--yes', '--json'])
    expect(back.code, back.stderr).toBe(0)
    const b = JSON.parse(back.stdout)
    expect(b.outcome).toBe('switched')
    expect(await page(a.port, a.user, a.pass)).toBe('v1')
    const [now] = await webContainers(engine, a)
    expect(await layersOf(engine, now!.image)).toEqual(oldLayers)
    // --to the prev backup it runs now: already there
    const again = await cli(engine, a, [
      'rollback',
      a.svc,
      '--to',
      b.backups?.[0]?.tag ?? l.backups.find((x: { kind: string }) => x.kind === 'image').tag,
      '--yes',
      '--json',
    ])
    expect(again.code, again.stderr).toBe(0)
    expect(JSON.parse(again.stdout).outcome).toBe('already-there')
    // a plain rollback again: nothing older than what runs → refused, nothing changed
    const older = await cli(engine, a, ['rollback', a.svc, '--yes', '--json'])
    expect(older.code, older.stderr).toBe(4)
    expect(JSON.parse(older.stdout).refusals[0].check).toBe('backup')
    const unknown = await cli(engine, a, ['rollback', a.svc, '--to', 'nope', '--yes'])
    expect(unknown.code, unknown.stderr).toBe(2)
    expect(await page(a.port, a.user, a.pass)).toBe('v1')
  })

  test('--dry-run prints the plan and changes nothing', async ({ engine }) => {
    const a = await composeApp(engine, 'v1')
    const before = await webContainers(engine, a)
    await writeVariant(a.proj, { health: 'v2' })
    const r = await cli(engine, a, ['rebuild', a.svc, '--dry-run', '--no-cache', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout).outcome).toBe('dry-run')
    expect(r.stderr).toMatch(/build --no-cache -- web/)
    expect(r.stderr).toMatch(/up -d --no-deps --no-build --force-recreate/)
    expect(await webContainers(engine, a)).toEqual(before)
    expect(await backupsOf(engine, a)).toEqual([])
    expect(await fs.readdir(path.join(a.state, 'journal')).catch(() => [])).toEqual([])
  })

  test('no health check configured → refused (exit 4), nothing built', async ({ engine }) => {
    const a = await composeApp(engine, 'v1')
    await fs.writeFile(
      a.config,
      (await fs.readFile(a.config, 'utf8')).replace(/^\s+health:.*$/m, ''),
    )
    const r = await cli(engine, a, ['rebuild', a.svc, '--yes', '--json'])
    expect(r.code, r.stderr).toBe(4)
    const j = JSON.parse(r.stdout)
    expect(j.outcome).toBe('refused')
    expect(j.refusals.map((x: { check: string }) => x.check)).toEqual(['health'])
    expect(await backupsOf(engine, a)).toEqual([])
  })

  test('compose: override files the project was started with are kept by the rebuild', async ({
    engine,
  }) => {
    for (const version of versions(engine)) {
      const a = await composeApp(engine, version, { override: true })
      await writeVariant(a.proj, { health: 'v2' })
      const r = await cli(engine, a, ['rebuild', a.svc, '--yes', '--json'])
      expect(r.code, `${version}: ${r.stderr}`).toBe(0)
      // the app's port and credentials live in the override: without it, no v2 on this port
      expect(await page(a.port, a.user, a.pass)).toBe('v2')
      const kept = await filesBelow(path.join(a.backups, 'rebuild', a.svc))
      expect(kept.map((f) => path.basename(f)).sort()).toEqual([
        'Dockerfile',
        'docker-compose.override.yml',
        'docker-compose.yml',
      ])
    }
  })

  test('the way back fails too → exit 5 naming the journal; --rollback finishes once fixed', async ({
    engine,
  }) => {
    const a = await composeApp(engine, 'v1', { flag: true })
    const [before] = await webContainers(engine, a)
    // health: the page and a flag file on the host; the new image has no page
    await fs.writeFile(
      a.config,
      (await fs.readFile(a.config, 'utf8')).replace(
        /^\s+health:.*$/m,
        '      health: { command: [sh, -c, "test -f /www/health && test -f /flag/ok"], timeout: 4s, retries: 2 }',
      ),
    )
    await writeVariant(a.proj, { health: null })
    let ended: CliResult | null = null
    const run = cli(engine, a, ['rebuild', a.svc, '--yes', '--json']).then((x) => (ended = x))
    // once the new image's health check runs, the flag goes: the old one cannot pass either
    await waitFor(
      async () => {
        if (ended) throw new Error(`the run ended early (exit ${ended.code}): ${ended.stderr}`)
        return (await journalRecords(a)).some((r) => r.t === 'step-begin' && r.id === 'health')
      },
      'the health step begins',
      60_000,
    )
    await fs.rm(path.join(a.proj, 'flag', 'ok'))
    const r = await run
    expect(r.code, r.stderr).toBe(5)
    const j = JSON.parse(r.stdout)
    expect(j.outcome).toBe('needs-person')
    expect(r.stderr).toContain(j.journal)
    expect(r.stderr).toMatch(/--rollback/)
    // a plain run is refused until the journal is dealt with
    const plain = await cli(engine, a, ['rebuild', a.svc, '--yes'])
    expect(plain.code, plain.stderr).toBe(4)
    // the cause fixed, --rollback finishes the way back: the old image, healthy
    await fs.writeFile(path.join(a.proj, 'flag', 'ok'), 'ok\n')
    const back = await cli(engine, a, ['rebuild', a.svc, '--rollback', '--yes', '--json'])
    expect(back.code, back.stderr).toBe(0)
    expect(JSON.parse(back.stdout).outcome).toBe('rolled-back')
    const [now] = await webContainers(engine, a)
    expect(now).toMatchObject({ image: before!.image, running: true })
    expect(await page(a.port, a.user, a.pass)).toBe('v1')
  })

  /** A plain container (user network, published port, bind mount, anonymous volume) running v1. */
  async function plainApp(engine: PrivateEngine, o: { restart?: string } = {}) {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'ss-rbp-'))
    const id = `${process.pid}x${++seq}`
    const name = `ss-rbp-${id}`
    const tag = `ss-rbp-${id}:live`
    containers.push(name)
    const a: App = {
      svc: `plain${id}`,
      root,
      proj: path.join(root, 'app'),
      project: '',
      state: path.join(root, 'state'),
      backups: path.join(root, 'backups'),
      config: path.join(root, 'shipshape.yaml'),
      port: await freePort(),
      user: 'operator',
      pass: `pw-${randomBytes(12).toString('hex')}`,
      version: 'v1',
      env: {},
    }
    a.env = { SS_TEST_USER: a.user, SS_TEST_PASS: a.pass }
    const data = path.join(root, 'data')
    await fs.mkdir(data, { recursive: true })
    await fs.writeFile(path.join(data, 'kept.txt'), 'kept\n')
    await fs.mkdir(a.proj, { recursive: true })
    await writeVariant(a.proj, { health: 'v1' })
    await dockerOk(engine, ['build', '-q', '-t', tag, a.proj], { timeoutMs: 120_000 })
    // a user-defined network (the private engine has no default bridge) and a published port
    const netName = `ss-rbp-net-${id}`
    await dockerOk(engine, ['network', 'create', netName])
    networks.push(netName)
    await dockerOk(engine, [
      'run',
      '-d',
      '--name',
      name,
      '--network',
      netName,
      '--network-alias',
      'app',
      '-p',
      `127.0.0.1:${a.port}:8080`,
      '-e',
      `HUSER=${a.user}`,
      '-e',
      `HPASS=${a.pass}`,
      '-e',
      'PORT=8080',
      '-e',
      'BIND=0.0.0.0',
      '-v',
      `${data}:/data`,
      '-v',
      '/cache',
      '--label',
      'app.tier=web',
      '--restart',
      o.restart ?? 'unless-stopped',
      '--hostname',
      'apphost',
      '--stop-timeout',
      '1',
      tag,
    ])
    await dockerOk(engine, ['exec', name, 'sh', '-c', 'echo cached > /cache/c.txt'])
    await waitFor(async () => (await page(a.port, a.user, a.pass)) === 'v1', 'the app answers v1')
    await fs.writeFile(
      a.config,
      configText(a, [
        `${a.svc}:`,
        `    container: ${name}`,
        `    build: ${JSON.stringify(a.proj)}`,
        healthLine(a.port),
      ]),
    )
    roots.push(root)
    return { a, name, tag, netName }
  }

  test('plain container: env, mounts, ports, labels, restart policy kept across a rebuild', async ({
    engine,
  }) => {
    const { a, name, tag, netName } = await plainApp(engine)
    const inspect = async () =>
      JSON.parse(await dockerOk(engine, ['inspect', '--type', 'container', name]))[0]
    const before = await inspect()
    await writeVariant(a.proj, { health: 'v2' })
    const r = await cli(engine, a, ['rebuild', a.svc, '--yes', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const j = JSON.parse(r.stdout)
    expect(j.kind).toBe('container')
    const after = await inspect()
    expect(after.Id).not.toBe(before.Id)
    expect(after.Image).toBe(j.image.to)
    expect(after.Config.Image).toBe(tag)
    expect(after.Config.Env.filter((e: string) => /^(HUSER|HPASS|PORT)=/.test(e)).sort()).toEqual(
      before.Config.Env.filter((e: string) => /^(HUSER|HPASS|PORT)=/.test(e)).sort(),
    )
    expect(after.Config.Labels).toEqual(before.Config.Labels)
    expect(after.Config.Hostname).toBe('apphost')
    expect(after.HostConfig.RestartPolicy).toEqual(before.HostConfig.RestartPolicy)
    expect(after.HostConfig.Binds).toEqual(before.HostConfig.Binds)
    expect(after.HostConfig.PortBindings).toEqual(before.HostConfig.PortBindings)
    expect(after.HostConfig.NetworkMode).toBe(netName)
    expect(after.HostConfig.PortBindings).toEqual({
      '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: String(a.port) }],
    })
    expect(after.NetworkSettings.Networks[netName].Aliases).toContain('app')
    expect((await dockerOk(engine, ['exec', name, 'cat', '/cache/c.txt'])).trim()).toBe('cached')
    const mounts = (m: { Destination: string; Source: string; Name?: string }[]) =>
      m.map((x) => `${x.Destination}=${x.Name ?? x.Source}`).sort()
    expect(mounts(after.Mounts)).toEqual(mounts(before.Mounts))
    expect(await page(a.port, a.user, a.pass)).toBe('v2')
    expect((await dockerOk(engine, ['exec', name, 'cat', '/data/kept.txt'])).trim()).toBe('kept')
    // the old container is gone after the healthy run; the backups stay
    const all = await dockerOk(engine, ['ps', '-a', '--format', '{{.Names}}'])
    expect(all).not.toMatch(new RegExp(`${name}-shipshape-old`))
    expect(await backupsOf(engine, a)).toHaveLength(2)
    await expectNoPassword(a, [r])
  })

  test('plain container: an unhealthy new image → the very same old container back, exit 1', async ({
    engine,
  }) => {
    const { a, name } = await plainApp(engine)
    const before = (await dockerOk(engine, ['inspect', '-f', '{{.Id}}', name])).trim()
    await writeVariant(a.proj, { health: null })
    await fs.writeFile(
      a.config,
      (await fs.readFile(a.config, 'utf8')).replace('timeout: 20s', 'timeout: 5s'),
    )
    const r = await cli(engine, a, ['rebuild', a.svc, '--yes', '--json'])
    expect(r.code, r.stderr).toBe(1)
    expect(JSON.parse(r.stdout).outcome).toBe('rolled-back')
    expect(
      (await dockerOk(engine, ['inspect', '-f', '{{.Id}} {{.State.Running}}', name])).trim(),
    ).toBe(`${before} true`)
    expect(await page(a.port, a.user, a.pass)).toBe('v1')
    expect(await dockerOk(engine, ['ps', '-a', '--format', '{{.Names}}'])).not.toMatch(
      /shipshape-old/,
    )
    // nothing was lost (the old container itself is back): its backups went with the run
    expect(await backupsOf(engine, a)).toEqual([])
  })

  test('plain container, restart: always: dockerd restarted during the gate → never two running', async ({
    engine,
  }) => {
    const { a, name } = await plainApp(engine, { restart: 'always' })
    const before = (await dockerOk(engine, ['inspect', '-f', '{{.Id}}', name])).trim()
    await writeVariant(a.proj, { health: 'v2' })
    await fs.writeFile(
      a.config,
      (await fs.readFile(a.config, 'utf8')).replace('stableFor: 2s', 'stableFor: 30s'),
    )
    const run = cli(engine, a, ['rebuild', a.svc, '--yes', '--json'])
    await waitFor(
      async () => (await journalRecords(a)).some((x) => x.t === 'step-begin' && x.id === 'health'),
      'the gate begins',
      120_000,
    )
    // the old container, kept aside, no longer restarts by itself
    const aside = (
      await dockerOk(engine, ['ps', '-a', '--filter', `id=${before}`, '--format', '{{.Names}}'])
    ).trim()
    expect(aside).toMatch(/-shipshape-old-/)
    expect(
      (
        await dockerOk(engine, ['inspect', '-f', '{{.HostConfig.RestartPolicy.Name}}', before])
      ).trim(),
    ).toBe('no')
    await engine.restartDockerd()
    // from the restart to the end of the run: one of them runs at most
    let most = 0
    let done = false
    const r = run.finally(() => (done = true))
    while (!done) {
      const running = (
        await docker(engine, ['ps', '--filter', `name=${name}`, '--format', '{{.Names}}'])
      ).stdout
        .split('\n')
        .filter(Boolean)
      most = Math.max(most, running.length)
      await new Promise((res) => setTimeout(res, 200))
    }
    const res = await r
    expect(most, res.stderr).toBeLessThanOrEqual(1)
    // whichever way it ended, one container serves under the name
    expect([0, 1]).toContain(res.code)
    const names = (
      await dockerOk(engine, ['ps', '--filter', `name=${name}`, '--format', '{{.Names}}'])
    )
      .split('\n')
      .filter(Boolean)
    expect(names).toEqual([name])
    await waitFor(async () => (await page(a.port, a.user, a.pass)) !== null, 'the app answers')
    // the policy is always again on the one that runs (the old one put back, or the new one)
    expect(
      (
        await dockerOk(engine, ['inspect', '-f', '{{.HostConfig.RestartPolicy.Name}}', name])
      ).trim(),
    ).toBe('always')
  })

  test('plain container another one joins by --network container: → refused (exit 4), naming it', async ({
    engine,
  }) => {
    const { a, name } = await plainApp(engine)
    const dep = `${name}-sidecar`
    containers.push(dep)
    await dockerOk(engine, [
      'run',
      '-d',
      '--name',
      dep,
      '--network',
      `container:${name}`,
      BUSYBOX_TAG,
      'sleep',
      '3600',
    ])
    await writeVariant(a.proj, { health: 'v2' })
    const r = await cli(engine, a, ['rebuild', a.svc, '--yes', '--json'])
    expect(r.code, r.stderr).toBe(4)
    expect(r.stderr).toContain(`${dep} (--network container:${name})`)
    expect(JSON.parse(r.stdout).outcome).toBe('refused')
    expect(await backupsOf(engine, a)).toEqual([])
  })
})
