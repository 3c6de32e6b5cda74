// torch-check on the engine its command context hands it: resolved, judged, never closed here.
import { describe, expect, it } from 'vitest'
import { parseConfigText } from '../../../lib/config/load.js'
import type { Engine } from '../../../lib/docker/engine.js'
import type { ImageDetails } from '../../../lib/docker/types.js'
import { UsageError } from '../../../lib/errors.js'
import { torchCheckOn } from '../../../lib/torch-check/index.js'

const NOW = new Date('2026-11-25T15:04:05Z')
const IMAGE = 'sha256:' + 'b'.repeat(64)
const DETAILS: ImageDetails = {
  id: IMAGE,
  tags: ['app:1'],
  sizeBytes: 1e8,
  user: '',
  workingDir: '/',
  env: [],
  entrypoint: [],
  cmd: ['sh'],
  labels: {},
  healthcheck: false,
}
const config = parseConfigText('', 'test.yaml', { hostname: 'box1' })

/** An engine that knows one image and no container; every call is recorded. */
function fakeEngine() {
  const calls: string[] = []
  const engine = {
    info: { address: 'unix:///fake.sock' },
    async inspectContainer(name: string) {
      calls.push(`inspectContainer ${name}`)
      return null
    },
    async inspectImage(ref: string) {
      calls.push(`inspectImage ${ref}`)
      return ref === 'app:1' || ref === IMAGE ? DETAILS : null
    },
    close() {
      calls.push('close')
    },
  } as unknown as Engine
  return { engine, calls }
}

describe('torchCheckOn (the engine is the caller’s)', () => {
  it('no target and no --all: a usage error, the engine not asked', async () => {
    const { engine, calls } = fakeEngine()
    await expect(torchCheckOn(engine, config, [])).rejects.toBeInstanceOf(UsageError)
    expect(calls).toEqual([])
  })

  it('an unknown target: a usage error naming it', async () => {
    const { engine } = fakeEngine()
    await expect(torchCheckOn(engine, config, ['nope'])).rejects.toThrow(
      "no container or image named 'nope' on this engine",
    )
  })

  it('an image without --scan: judged from nothing read, on the engine given, left open', async () => {
    const { engine, calls } = fakeEngine()
    const r = await torchCheckOn(engine, config, ['app:1'], { scan: false, now: () => NOW })
    expect(r.schema).toBe('shipshape.torch-check/1')
    expect(r.generatedAt).toBe(NOW.toISOString())
    expect(r.targets).toHaveLength(1)
    expect(r.targets[0]).toMatchObject({
      target: 'app:1',
      kind: 'image',
      container: null,
      image: { id: IMAGE, tags: ['app:1'] },
      runtime: null,
      static: null,
    })
    expect(calls).toEqual(['inspectContainer app:1', 'inspectImage app:1'])
  })
})
