// Smoke test of the test harness itself: the private engine started by the engine project's
// globalSetup is the requested kind, and the fixtures build images whose layers the API sees.
import { expect } from 'vitest'
import { requestedEngineKind } from '../harness/engine.js'
import { BUSYBOX_TAG, buildImage, busyboxImage, docker, engineClient } from '../harness/fixtures.js'
import { describeEngine, engineTest as test } from '../harness/suite.js'

const THREE_MB = 3 * 1024 * 1024

describeEngine('test harness: private engine', () => {
  test('is the requested engine kind, on its own socket', async ({ engine }) => {
    const kind = requestedEngineKind()
    expect(engine.kind).toBe(kind)
    expect(engine.version).toMatch(kind === '20.10' ? /^20\.10\./ : /^26\.1\./)
    expect(engine.dockerHost).toBe(`unix://${engine.socketPath}`)
    expect(engine.socketPath.startsWith(engine.root + '/')).toBe(true)
    expect(engine.env.DOCKER_HOST).toBe(engine.dockerHost)
    expect(engine.containerdImageStore).toBe(kind === '26.1-containerd')

    const version = await engineClient(engine).version()
    expect(version.Version).toBe(engine.version)
    expect(version.ApiVersion).toBe(engine.apiVersion)

    const info = await engineClient(engine).info()
    expect(info.DockerRootDir.startsWith(engine.root + '/')).toBe(true)
    expect(info.Driver).toBe(kind === '26.1-containerd' ? 'overlayfs' : 'overlay2')

    // the docker CLI goes to the same engine
    const cli = await docker(engine, ['info', '--format', '{{.ID}} {{.DockerRootDir}}'])
    expect(cli.exitCode, cli.stderr).toBe(0)
    expect(cli.stdout.trim()).toBe(`${info.ID} ${info.DockerRootDir}`)
  })

  test('has the busybox base image from the globalSetup', async ({ engine }) => {
    const id = await busyboxImage(engine)
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/)
    const run = await docker(engine, [
      'run',
      '--rm',
      '--network',
      'none',
      BUSYBOX_TAG,
      'sh',
      '-c',
      'echo ok; ls /bin/wget',
    ])
    expect(run.exitCode, run.stderr).toBe(0)
    expect(run.stdout).toBe('ok\n/bin/wget\n')
  })

  test('builds a fixture image with a 3 MB RUN layer that the history shows', async ({
    engine,
  }) => {
    const tag = 'shipshape-test/harness-smoke:1'
    const id = await buildImage(engine, {
      tag,
      dockerfile: [
        `FROM ${BUSYBOX_TAG}`,
        'COPY hello.txt /hello.txt',
        'RUN dd if=/dev/urandom of=/blob bs=1048576 count=3',
        'CMD ["cat", "/hello.txt"]',
      ].join('\n'),
      files: { 'hello.txt': 'hello from the harness\n' },
      labels: { 'org.shipshape.test': 'harness' },
    })
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/)

    const image = engineClient(engine).getImage(tag)
    const inspect = await image.inspect()
    expect(inspect.Id).toBe(id)
    expect(inspect.Config.Labels?.['org.shipshape.test']).toBe('harness')

    const history = (await image.history()) as { CreatedBy: string; Size: number }[]
    const run = history.find((h) => h.CreatedBy.includes('dd if=/dev/urandom of=/blob'))
    expect(run, JSON.stringify(history, null, 2)).toBeDefined()
    expect(run!.Size).toBeGreaterThanOrEqual(THREE_MB)
    expect(run!.Size).toBeLessThan(THREE_MB + 64 * 1024)
    const copy = history.find((h) => h.CreatedBy.includes('COPY'))
    expect(copy?.Size).toBeGreaterThan(0)
    expect(copy!.Size).toBeLessThan(64 * 1024)

    const out = await docker(engine, ['run', '--rm', tag])
    expect(out.exitCode, out.stderr).toBe(0)
    expect(out.stdout).toBe('hello from the harness\n')
  })

  test('rejects a failing build with the error from the progress stream', async ({ engine }) => {
    await expect(
      buildImage(engine, {
        tag: 'shipshape-test/harness-broken:1',
        dockerfile: `FROM ${BUSYBOX_TAG}\nRUN echo about to fail && exit 3\n`,
      }),
    ).rejects.toThrow(/returned a non-zero code: 3/)
  })
})
