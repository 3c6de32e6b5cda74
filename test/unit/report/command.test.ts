// `report` on the engine its command context hands it: opened once by the context (here a fake),
// never opened nor closed by lib/report.
import { describe, expect, it } from 'vitest'
import type { CommandContext } from '../../../lib/cli/command.js'
import { parseConfigText } from '../../../lib/config/load.js'
import type { Config } from '../../../lib/config/schema.js'
import type { Engine } from '../../../lib/docker/engine.js'
import type { DiskUsage, EngineInfo } from '../../../lib/docker/types.js'
import { UnavailableError } from '../../../lib/errors.js'
import { reportCommandRun } from '../../../lib/report/command.js'
import { buildReport } from '../../../lib/report/index.js'
import { fakeOut } from '../support/asset-fakes.js'

const NOW = new Date('2026-11-25T15:04:05Z')
const INFO: EngineInfo = {
  address: 'unix:///fake.sock',
  version: '27.3.1',
  apiVersion: '1.47',
  engineApiVersion: '1.47',
  os: 'linux',
  arch: 'x86_64',
  storageDriver: 'overlay2',
  dockerRootDir: '/var/lib/docker',
  imageStore: 'classic',
}
const IMAGE = 'sha256:' + 'a'.repeat(64)
const DISK: DiskUsage = {
  layersSize: 5e8,
  images: [
    {
      id: IMAGE,
      tags: ['app:1'],
      digests: [],
      createdAt: '2026-11-01T00:00:00Z',
      sizeBytes: 5e8,
      sharedBytes: 0,
      containers: 0,
      labels: {},
    },
  ],
  containers: [],
  volumes: [],
  buildCache: [],
}

/** The calls a report makes, answered from DISK; close() is counted, never expected. */
function fakeEngine() {
  const calls: string[] = []
  const engine = {
    info: INFO,
    async diskUsage() {
      calls.push('diskUsage')
      return DISK
    },
    async imageHistory(id: string) {
      calls.push(`imageHistory ${id}`)
      return []
    },
    async listContainers() {
      calls.push('listContainers')
      return []
    },
    close() {
      calls.push('close')
    },
  } as unknown as Engine
  return { engine, calls }
}

const config = (): Config =>
  parseConfigText('report:\n  paths: []\n', 'test.yaml', { hostname: 'box1' })

function context(c: Config, engine: () => Promise<Engine>, dockerHost?: string) {
  const progress: string[] = []
  let opened = 0
  const ctx = {
    g: { json: false, quiet: false, ...(dockerHost ? { dockerHost } : {}) },
    out: fakeOut(),
    loaded: { config: c, source: 'test.yaml' },
    config: c,
    engine: () => {
      opened++
      return engine()
    },
    spin: async (_text: string, work: (p: (t: string) => void) => Promise<unknown>) =>
      work((t) => progress.push(t)),
  } as unknown as CommandContext
  return { ctx, progress, opened: () => opened }
}

describe('buildReport on an open engine', () => {
  it('gathers and analyses through the engine it is given, and leaves it open', async () => {
    const { engine, calls } = fakeEngine()
    const r = await buildReport(engine, {
      config: config(),
      configSource: 'test.yaml',
      now: () => NOW,
    })
    expect(r.schema).toBe('shipshape.report/1')
    expect(r.generatedAt).toBe(NOW.toISOString())
    expect(r.engine.address).toBe('unix:///fake.sock')
    expect(r.images.map((i) => i.id)).toEqual([IMAGE])
    expect(calls).toEqual(['diskUsage', `imageHistory ${IMAGE}`])
  })
})

describe('report as a command', () => {
  it("takes the context's engine once, names its address first, and does not close it", async () => {
    const { engine, calls } = fakeEngine()
    const c = config()
    const { ctx, progress, opened } = context(c, async () => engine, 'unix:///run/other.sock')
    const r = await reportCommandRun(ctx, {})
    expect(opened()).toBe(1)
    expect(progress[0]).toBe('Connecting to unix:///run/other.sock')
    expect(r.engine.address).toBe('unix:///fake.sock')
    expect(calls).not.toContain('close') // withCommand closes it
  })

  it('an engine the context cannot open: its error (exit 3) comes out unchanged', async () => {
    const down = new UnavailableError('Docker engine unreachable at unix:///x.sock: no such socket')
    const { ctx } = context(config(), () => Promise.reject(down))
    await expect(reportCommandRun(ctx, {})).rejects.toBe(down)
  })
})
