// config init's engine: asked for through the port the entry point gives (opened with the config
// init reads itself), only when the facts come from it, and after the existing-file check.
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Command } from 'commander'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { GlobalOptions } from '../../../lib/cli/global.js'
import { configInitRun, type InitEngine } from '../../../lib/config-init/command.js'
import type { Config } from '../../../lib/config/schema.js'
import { RefusedError, UnavailableError } from '../../../lib/errors.js'
import { configCommand } from '../../../scripts/config.js'
import { fakeOut } from '../support/asset-fakes.js'
import { Sink } from '../support/sink.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'shipshape-initeng-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

const DOWN = new UnavailableError('Docker engine unreachable at unix:///x.sock: no such socket')

function run(opts: { out?: string; stdout?: boolean }, g: Partial<GlobalOptions> = {}) {
  const asked: { config: Config; progress: (t: string) => void }[] = []
  const engine: InitEngine = (config, progress) => {
    asked.push({ config, progress })
    return Promise.reject(DOWN)
  }
  const ctx = {
    g: { json: false, quiet: false, ...g } as GlobalOptions,
    out: fakeOut(),
    spin: <T>(_t: string, work: (p: (t: string) => void) => Promise<T>) => work(() => {}),
  }
  const deps = { env: {}, hostname: 'box1', packageRoot: dir }
  return { asked, result: configInitRun(ctx, opts, deps, engine) }
}

describe('config init and its engine', () => {
  it('asks the port with the config its own lookup found; its error (exit 3) comes out as is', async () => {
    await mkdir(path.join(dir, 'config', 'hosts'), { recursive: true })
    await writeFile(path.join(dir, 'config', 'hosts', 'box1.yaml'), 'docker:\n  timeout: 7s\n')
    const out = path.join(dir, 'new.yaml')
    const { asked, result } = run({ out })
    await expect(result).rejects.toBe(DOWN)
    expect(asked).toHaveLength(1)
    expect(asked[0]!.config.docker.timeout).toBe(7000)
    expect(typeof asked[0]!.progress).toBe('function')
    expect(await readdir(dir)).toEqual(['config']) // nothing written
  })

  it('an existing file is refused (exit 4) before the engine is asked', async () => {
    const out = path.join(dir, 'mine.yaml')
    await writeFile(out, 'host: handmade\n')
    const { asked, result } = run({ out })
    await expect(result).rejects.toBeInstanceOf(RefusedError)
    expect(asked).toEqual([])
  })

  it('the entry point opens it with the env it was given ($DOCKER_HOST): no engine there → exit 3', async () => {
    const sock = path.join(dir, 'none.sock')
    const stderr = new Sink()
    const program = new Command('shipshape')
      .option('-c, --config <file>')
      .option('--json')
      .option('-q, --quiet')
      .exitOverride()
      .configureOutput({ writeOut: () => {}, writeErr: () => {} })
    program.addCommand(
      configCommand({
        stdout: new Sink(),
        stderr,
        env: { DOCKER_HOST: `unix://${sock}` },
        hostname: 'box1',
        packageRoot: dir,
      }).exitOverride(),
    )
    const err = await program.parseAsync(['config', 'init', '--stdout'], { from: 'user' }).then(
      () => null,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(UnavailableError)
    expect((err as UnavailableError).exitCode).toBe(3)
    expect((err as Error).message).toContain(`unix://${sock}`)
  })
})
