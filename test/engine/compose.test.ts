import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  ComposeError,
  composeBuild,
  composeBuildArgv,
  composeConfigArgv,
  composeImageRef,
  composeUp,
  composeUpArgv,
  composeV1Env,
  defaultImageName,
  detectCompose,
  parseComposeVersion,
  type ComposeCli,
  type ComposeTarget,
} from '../../lib/docker/compose.js'
import { UnavailableError, UsageError } from '../../lib/errors.js'
import { dockerChildEnv, runCaptured } from '../../lib/host/run.js'
import { engineGet, requireEngine, type PrivateEngine } from '../harness/engine.js'
import { BUSYBOX_TAG, compose, dockerCli, dockerOk } from '../harness/fixtures.js'
import { describeEngine, engineState } from '../harness/suite.js'

// --- argv and names (pure) ---------------------------------------------------------------------

describe('compose argv', () => {
  const v1: ComposeCli = {
    argv: ['docker-compose'],
    version: 'v1',
    versionText: 'docker-compose version 1.29.2, build unknown',
  }
  const v2: ComposeCli = {
    argv: ['docker', 'compose'],
    version: 'v2',
    versionText: 'Docker Compose version 2.26.1-4',
  }
  const target = (cli: ComposeCli): ComposeTarget => ({
    cli,
    file: '/srv/app/compose.yaml',
    project: 'app',
    service: 'web',
    cwd: '/srv/app',
    env: {},
  })
  const base = ['-f', '/srv/app/compose.yaml', '-p', 'app', '--project-directory', '/srv/app']

  it('builds one service, with --no-cache when asked', () => {
    expect(composeBuildArgv(target(v2))).toEqual([
      'docker',
      'compose',
      ...base,
      'build',
      '--',
      'web',
    ])
    expect(composeBuildArgv(target(v1), { noCache: true })).toEqual([
      'docker-compose',
      ...base,
      'build',
      '--no-cache',
      '--',
      'web',
    ])
  })

  it('recreates one service without building, deps or (v2) pulling', () => {
    const flags = ['up', '-d', '--no-deps', '--no-build', '--force-recreate']
    expect(composeUpArgv(target(v1))).toEqual(['docker-compose', ...base, ...flags, '--', 'web'])
    expect(composeUpArgv(target(v2))).toEqual([
      'docker',
      'compose',
      ...base,
      ...flags,
      '--pull',
      'never',
      '--',
      'web',
    ])
    // before 2.15 `up --pull` did not take effect (docker/compose#10128)
    const old = { ...v2, versionText: 'Docker Compose version v2.12.2' }
    expect(composeUpArgv(target(old))).not.toContain('--pull')
  })

  it('asks v1 for its YAML config and v2 for the service as JSON', () => {
    expect(composeConfigArgv(target(v1))).toEqual(['docker-compose', ...base, 'config'])
    expect(composeConfigArgv(target(v2)).slice(-5)).toEqual([
      'config',
      '--format',
      'json',
      '--',
      'web',
    ])
  })

  it('refuses a relative compose file', () => {
    expect(() => composeBuildArgv({ ...target(v2), file: 'compose.yaml' })).toThrow(/absolute/)
  })

  it('names a built service like each compose does', () => {
    expect(defaultImageName('v1', 'whisperx', 'whisperx')).toBe('whisperx_whisperx')
    expect(defaultImageName('v2', 'whisperx', 'whisperx')).toBe('whisperx-whisperx')
    // compose 1.29 normalises -p and strips leading _ and - from the project
    expect(defaultImageName('v1', '_My.App', 'web')).toBe('myapp_web')
  })

  it('reads the version of v1, v2 plugin and v2 standalone', () => {
    expect(
      parseComposeVersion(
        'docker-compose version 1.29.2, build unknown\ndocker-py version: 5.0.3\n',
      ),
    ).toMatchObject({ version: 'v1', numbers: [1, 29, 2] })
    expect(parseComposeVersion('Docker Compose version 2.26.1-4\n')).toMatchObject({
      version: 'v2',
      versionText: 'Docker Compose version 2.26.1-4',
    })
    expect(parseComposeVersion('Docker Compose version v2.32.4\n')?.numbers).toEqual([2, 32, 4])
    expect(parseComposeVersion('Docker version 28.2.2, build e6534b4\n')).toBeNull()
  })
})

// --- against the private engine ---------------------------------------------------------------

const PROJECT_LABEL = 'com.docker.compose.project'
const SERVICE_LABEL = 'com.docker.compose.service'

interface Running {
  id: string
  imageId: string
  state: string
}

async function projectContainers(
  engine: PrivateEngine,
  project: string,
): Promise<Record<string, Running>> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`${PROJECT_LABEL}=${project}`] }))
  const r = await engineGet<
    { Id: string; ImageID: string; State: string; Labels: Record<string, string> }[]
  >(engine.socketPath, `/containers/json?all=1&filters=${filters}`)
  if (r.status !== 200) throw new Error(`list containers: HTTP ${r.status}`)
  const out: Record<string, Running> = {}
  for (const c of r.body) {
    const svc = c.Labels[SERVICE_LABEL]!
    if (out[svc]) throw new Error(`two containers of ${project}/${svc}`)
    out[svc] = { id: c.Id, imageId: c.ImageID, state: c.State }
  }
  return out
}

async function imageIdOf(engine: PrivateEngine, ref: string): Promise<string | null> {
  const r = await engineGet<{ Id: string }>(
    engine.socketPath,
    `/images/${encodeURIComponent(ref)}/json`,
  )
  if (r.status === 404) return null
  if (r.status !== 200) throw new Error(`inspect image ${ref}: HTTP ${r.status}`)
  return r.body.Id
}

async function imageOf(
  engine: PrivateEngine,
  ref: string,
): Promise<{ id: string; layers: string[] }> {
  const r = await engineGet<{ Id: string; RootFS: { Layers: string[] } }>(
    engine.socketPath,
    `/images/${encodeURIComponent(ref)}/json`,
  )
  if (r.status !== 200) throw new Error(`inspect image ${ref}: HTTP ${r.status}`)
  return { id: r.body.Id, layers: r.body.RootFS.Layers }
}

async function configImage(engine: PrivateEngine, containerId: string): Promise<string> {
  const r = await engineGet<{ Config: { Image: string } }>(
    engine.socketPath,
    `/containers/${containerId}/json`,
  )
  return r.body.Config.Image
}

const DOCKERFILE = [
  `FROM ${BUSYBOX_TAG}`,
  'COPY stamp /stamp',
  'RUN cat /stamp > /built-from',
  'CMD ["sleep", "3600"]',
  '',
].join('\n')

// busybox's sleep as PID 1 ignores SIGTERM: SIGKILL spares every recreate a 10 s wait
const COMPOSE_FILE = `services:
  app:
    build: { context: ., network: host }
    network_mode: none
    stop_signal: SIGKILL
    depends_on: [dep]
  tagged:
    build: { context: ., network: host }
    image: sst-compose/\${SST_NAME}:\${SST_TAG}
    network_mode: none
    stop_signal: SIGKILL
  other:
    image: ${BUSYBOX_TAG}
    command: [sleep, '3600']
    network_mode: none
    stop_signal: SIGKILL
  dep:
    image: ${BUSYBOX_TAG}
    command: [sleep, '3600']
    network_mode: none
    stop_signal: SIGKILL
`

const provided = engineState()
const info = provided.status === 'ready' ? provided.engine : null

describeEngine('compose', (getEngine) => {
  for (const version of ['v1', 'v2'] as const) {
    const binary = version === 'v1' ? info?.composeV1Path : info?.composeV2Path
    if (!binary) {
      const why =
        version === 'v1'
          ? 'compose v1 is not installed (apt-get install docker-compose)'
          : 'compose v2 is not fetched (npm run fetch-engines)'
      if (requireEngine()) {
        it(`compose ${version} is available (SHIPSHAPE_REQUIRE_ENGINE=1)`, () => {
          throw new Error(why)
        })
      } else {
        process.stderr.write(`\n!!! compose suite: ${why}: its ${version} tests are skipped\n`)
        describe.skip(`compose ${version} [SKIPPED: ${why}]`, () => {
          it('runs', () => {})
        })
      }
      continue
    }

    describe(`compose ${version}`, () => {
      let engine: PrivateEngine
      let dir: string
      let t: ComposeTarget
      let log: string
      const project = `sstc${version}`
      const taggedRef = `sst-compose/tagged-${version}:from-dotenv`
      const appRef = version === 'v1' ? `${project}_app` : `${project}-app`

      const fixture = async (args: string[]) => {
        const r = await compose(engine, version, ['-f', t.file, '-p', project, ...args], {
          cwd: dir,
          env: { SST_NAME: `tagged-${version}` },
        })
        if (r.exitCode !== 0) {
          throw new Error(`compose ${args.join(' ')} exited ${r.exitCode}:\n${r.stderr}${r.stdout}`)
        }
      }
      const writeStamp = (s: string) => writeFile(path.join(dir, 'stamp'), `${s}\n`)

      beforeAll(async () => {
        engine = getEngine()
        // inside the engine's directory: its watchdog removes it even after a crash
        dir = await mkdtemp(path.join(engine.root, `fx-compose-${version}-`))
        log = path.join(dir, 'logs', 'rebuild.log')
        await writeFile(path.join(dir, 'Dockerfile'), DOCKERFILE)
        await writeStamp('1')
        await writeFile(path.join(dir, 'compose.yaml'), COMPOSE_FILE)
        // compose reads .env from the project directory; SST_NAME comes from the operator's env
        await writeFile(path.join(dir, '.env'), 'SST_TAG=from-dotenv\n')
        const cli = await detectCompose({ configured: [binary], env: engine.env })
        t = {
          cli,
          file: path.join(dir, 'compose.yaml'),
          project,
          service: 'app',
          cwd: dir,
          // the developer's own COMPOSE_API_VERSION would change what v1 is tested with
          env: dockerChildEnv(engine.dockerHost, { ...engine.env, SST_NAME: `tagged-${version}` }, [
            'COMPOSE_API_VERSION',
          ]),
        }
        await fixture(['build'])
        await fixture(['up', '-d'])
        // `dep` gone: an up with deps would bring it back
        await fixture(['rm', '--stop', '--force', 'dep'])
      })

      it(`detects ${version} from its version output`, () => {
        expect(t.cli.argv).toEqual([binary])
        expect(t.cli.version).toBe(version)
        expect(t.cli.versionText).toMatch(version === 'v1' ? /1\.29\.\d/ : /2\.\d+\.\d/)
      })

      it('names the image the running container was started from', async () => {
        const running = await projectContainers(engine, project)
        expect(Object.keys(running).sort()).toEqual(['app', 'other', 'tagged'])

        const ref = await composeImageRef(t)
        expect(ref).toBe(appRef)
        expect(await configImage(engine, running.app!.id)).toBe(ref)
        expect(await imageIdOf(engine, ref)).toBe(running.app!.imageId)

        // image: with variables from the operator's env and from the project's .env
        const tagged = await composeImageRef({ ...t, service: 'tagged' })
        expect(tagged).toBe(taggedRef)
        expect(await configImage(engine, running.tagged!.id)).toBe(tagged)
        expect(await imageIdOf(engine, tagged)).toBe(running.tagged!.imageId)
      })

      if (version === 'v1') {
        it('pins v1 to API 1.44 on a newer engine, unless told', async () => {
          const newer = Number(engine.apiVersion.split('.')[1]) > 44
          expect((await composeV1Env(t)).COMPOSE_API_VERSION).toBe(newer ? '1.44' : undefined)
          const chosen = { ...t, env: { ...t.env, COMPOSE_API_VERSION: '1.41' } }
          expect((await composeV1Env(chosen)).COMPOSE_API_VERSION).toBe('1.41')
        })
      }

      it('refuses a service the compose file does not have', async () => {
        await expect(composeImageRef({ ...t, service: 'nosuch' })).rejects.toBeInstanceOf(
          UsageError,
        )
      })

      it('builds, then recreates only the service on the new image', async () => {
        const before = await projectContainers(engine, project)
        const oldId = await imageIdOf(engine, appRef)
        const taggedId = await imageIdOf(engine, taggedRef)
        expect(oldId).toBe(before.app!.imageId)

        await writeStamp('2')
        const lines: string[] = []
        await composeBuild(t, { log, onLine: (l) => lines.push(l) })
        const newId = await imageIdOf(engine, appRef)
        expect(newId).not.toBeNull()
        expect(newId).not.toBe(oldId)
        expect(lines.length).toBeGreaterThan(0)
        // a build changes no container
        expect(await projectContainers(engine, project)).toEqual(before)

        await composeUp(t, { log })
        const after = await projectContainers(engine, project)
        expect(after.app!.id).not.toBe(before.app!.id)
        expect(after.app).toMatchObject({ imageId: newId, state: 'running' })
        expect(after.other).toEqual(before.other)
        expect(after.tagged).toEqual(before.tagged)
        expect(after.dep).toBeUndefined() // --no-deps
        expect(await imageIdOf(engine, taggedRef)).toBe(taggedId)

        const text = await readFile(log, 'utf8')
        expect(text).toContain(`cwd=${dir}: ${binary} -f ${t.file} -p ${project}`)
        expect(text).toMatch(/ build -- app\n/)
        expect(text).toMatch(/ up -d --no-deps --no-build --force-recreate .*-- app\n/)
      })

      it('recreates without building', async () => {
        const before = await projectContainers(engine, project)
        const id = await imageIdOf(engine, appRef)
        await writeStamp('3') // a build would give a new image now
        await composeUp(t, { log })
        const after = await projectContainers(engine, project)
        expect(after.app!.id).not.toBe(before.app!.id) // --force-recreate
        expect(after.app).toMatchObject({ imageId: id, state: 'running' })
        expect(await imageIdOf(engine, appRef)).toBe(id)
      })

      it('never builds: with the image gone, up fails instead', async () => {
        const id = (await imageIdOf(engine, appRef))!
        const keep = `sst-compose/keep-${version}:1`
        await dockerOk(engine, ['tag', id, keep])
        await dockerOk(engine, ['image', 'rm', appRef]) // only untags: `keep` still names it
        const before = await projectContainers(engine, project)
        try {
          const err = await composeUp(t, { log }).catch((e: unknown) => e)
          expect(err).toBeInstanceOf(ComposeError)
          expect(await imageIdOf(engine, appRef)).toBeNull() // nothing was built
          // both versions fail before removing the old container
          expect((await projectContainers(engine, project)).app).toEqual(before.app)
        } finally {
          await dockerOk(engine, ['tag', id, appRef])
          await dockerOk(engine, ['image', 'rm', keep])
        }
        await composeUp(t, { log })
        expect((await projectContainers(engine, project)).app).toMatchObject({
          imageId: id,
          state: 'running',
        })
      })

      it('rejects a failing build and leaves the tag and the container as they were', async () => {
        const before = await projectContainers(engine, project)
        const id = await imageIdOf(engine, appRef)
        await writeFile(
          path.join(dir, 'Dockerfile'),
          DOCKERFILE.replace('CMD', 'RUN echo about to fail && exit 1\nCMD'),
        )
        try {
          const err = await composeBuild(t, { log }).catch((e: unknown) => e)
          expect(err).toBeInstanceOf(ComposeError)
          const e = err as ComposeError
          expect(e.exitCode).not.toBe(0)
          expect(e.exitCode).not.toBeNull()
          expect(e.tail.length).toBeGreaterThan(0)
          expect(e.message).toContain(log)
          expect(e.tail.join('\n')).toMatch(/exit 1|non-zero code: 1|exit code: 1/)
        } finally {
          await writeFile(path.join(dir, 'Dockerfile'), DOCKERFILE)
        }
        expect(await imageIdOf(engine, appRef)).toBe(id)
        const after = await projectContainers(engine, project)
        expect(after.app).toEqual(before.app)
        expect(after.app!.state).toBe('running')
      })

      it('stops a build at its timeout and says so', async () => {
        const id = await imageIdOf(engine, appRef)
        await writeFile(
          path.join(dir, 'Dockerfile'),
          DOCKERFILE.replace('CMD', 'RUN sleep 60\nCMD'),
        )
        const t0 = Date.now()
        try {
          await expect(composeBuild(t, { log, timeoutMs: 3000 })).rejects.toThrow(/timed out/)
        } finally {
          await writeFile(path.join(dir, 'Dockerfile'), DOCKERFILE)
        }
        expect(Date.now() - t0).toBeLessThan(20_000)
        expect(await imageIdOf(engine, appRef)).toBe(id)
      })

      it('--no-cache builds a new image from an unchanged context', async () => {
        await composeBuild(t, { log })
        const first = await imageOf(engine, appRef)
        await composeBuild(t, { log })
        const cached = await imageOf(engine, appRef)
        // from the cache: the same layers (the containerd image store gives a cached BuildKit
        // build a new image id all the same, the classic store the same id)
        expect(cached.layers).toEqual(first.layers)
        if (!engine.containerdImageStore) expect(cached.id).toBe(first.id)
        await composeBuild(t, { log, noCache: true })
        const rebuilt = await imageOf(engine, appRef)
        expect(rebuilt.id).not.toBe(first.id)
        expect(rebuilt.id).not.toBe(cached.id)
        expect(rebuilt.layers).not.toEqual(first.layers) // the RUN layer was made again
      })

      it('builds a service with image: under that name', async () => {
        const id = await imageIdOf(engine, taggedRef)
        const before = await projectContainers(engine, project)
        await composeBuild({ ...t, service: 'tagged' }, { log, noCache: true })
        const rebuilt = await imageIdOf(engine, taggedRef)
        expect(rebuilt).not.toBeNull()
        expect(rebuilt).not.toBe(id)
        // and no image under the default name
        const unnamed = version === 'v1' ? `${project}_tagged` : `${project}-tagged`
        expect(await imageIdOf(engine, unnamed)).toBeNull()
        expect((await projectContainers(engine, project)).tagged).toEqual(before.tagged)
      })

      it('resolves .env and build contexts from the project directory, not the file’s', async () => {
        // as after `compose --project-directory DIR -f DIR/deploy/compose.yaml up`
        await mkdir(path.join(dir, 'deploy'), { recursive: true })
        const file = path.join(dir, 'deploy', 'compose.yaml')
        await writeFile(file, COMPOSE_FILE)
        const moved = { ...t, file }
        expect(await composeImageRef({ ...moved, service: 'tagged' })).toBe(taggedRef)
        await composeBuild(moved, { log }) // context `.`: the Dockerfile is in DIR only
      })
    })
  }

  describe('detectCompose', () => {
    let engine: PrivateEngine
    let dir: string
    let emptyConfig: string
    let emptyBin: string

    beforeAll(async () => {
      engine = getEngine()
      dir = await mkdtemp(path.join(engine.root, 'fx-detect-'))
      emptyConfig = path.join(dir, 'docker-config')
      emptyBin = path.join(dir, 'empty-bin')
      await mkdir(emptyConfig)
      await mkdir(emptyBin)
      await writeFile(path.join(emptyConfig, 'config.json'), '{}\n')
    })

    it.runIf(info?.composeV2Path)(
      'finds the v2 plugin through DOCKER_CONFIG/cli-plugins',
      async () => {
        const cli = await detectCompose({ env: engine.env })
        expect(cli).toMatchObject({ argv: [dockerCli, 'compose'], version: 'v2' })
        expect(cli.versionText).toMatch(/^Docker Compose version v?2\./)
        // the same CLI without the private plugin dir does not have it
        const without = await detectCompose({
          env: { ...engine.env, DOCKER_CONFIG: emptyConfig },
        }).catch((e: unknown) => e)
        expect(without).not.toMatchObject({ argv: [dockerCli, 'compose'] })
      },
    )

    it.runIf(info?.composeV1Path)(
      'falls back to docker-compose on PATH (v1 on Debian 12)',
      async (ctx) => {
        const env: NodeJS.ProcessEnv = { ...engine.env, DOCKER_CONFIG: emptyConfig }
        const plugin = await runCaptured([dockerCli, 'compose', 'version'], {
          env,
          timeoutMs: 20_000,
        })
        if (plugin.exitCode === 0) ctx.skip() // this machine has a compose plugin of its own
        const v1Dir = path.join(dir, 'v1-bin')
        await mkdir(v1Dir)
        await symlink(info!.composeV1Path!, path.join(v1Dir, 'docker-compose'))
        const cli = await detectCompose({ env: { ...env, PATH: `${v1Dir}:${env.PATH}` } })
        expect(cli).toMatchObject({ argv: ['docker-compose'], version: 'v1' })
        expect(cli.versionText).toMatch(/^docker-compose version 1\.29\./)
      },
    )

    it.runIf(info?.composeV2Path)(
      'tells a v2 standalone docker-compose (Debian 13) from v1',
      async () => {
        const v2Dir = path.join(dir, 'v2-bin')
        await mkdir(v2Dir)
        await symlink(info!.composeV2Path!, path.join(v2Dir, 'docker-compose'))
        const cli = await detectCompose({
          env: {
            ...engine.env,
            DOCKER_CONFIG: emptyConfig,
            SHIPSHAPE_DOCKER_CLI: path.join(emptyBin, 'docker'),
            PATH: `${v2Dir}:${engine.env.PATH}`,
          },
        })
        expect(cli).toMatchObject({ argv: ['docker-compose'], version: 'v2' })
      },
    )

    it.runIf(info?.composeV2Path)('detects the version of a configured command too', async () => {
      const cli = await detectCompose({ configured: [dockerCli, 'compose'], env: engine.env })
      expect(cli).toMatchObject({ argv: [dockerCli, 'compose'], version: 'v2' })
    })

    it('without any compose: UnavailableError (exit 3) with the remedy', async () => {
      const err = await detectCompose({
        env: {
          PATH: emptyBin,
          DOCKER_CONFIG: emptyConfig,
          SHIPSHAPE_DOCKER_CLI: path.join(emptyBin, 'docker'),
        },
      }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(UnavailableError)
      const e = err as UnavailableError
      expect(e.exitCode).toBe(3)
      expect(e.message).toContain(`${path.join(emptyBin, 'docker')} compose`)
      expect(e.message).toContain('docker-compose')
      expect(e.remedy).toMatch(/apt-get install docker-compose/)
      expect(e.remedy).toMatch(/cli-plugins/)
    })

    it('a configured command that is not compose: UnavailableError naming it', async () => {
      const err = await detectCompose({
        configured: [dockerCli, 'no-such-subcommand'],
        env: engine.env,
      }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(UnavailableError)
      expect((err as Error).message).toContain(`${dockerCli} no-such-subcommand`)
    })
  })
})
