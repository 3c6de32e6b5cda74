import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Command } from 'commander'
import { parse as parseYaml } from 'yaml'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ConfigError } from '../../../lib/errors.js'
import { parseConfigText } from '../../../lib/config/load.js'
import { configCommand } from '../../../scripts/config.js'
import { jsonShapeProblems } from '../support/json-shape.js'
import { Sink } from '../support/sink.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'shipshape-cfgcmd-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** Runs `shipshape ARGS` with the root's global options, as scripts/shipshape.ts declares them. */
async function run(args: string[]) {
  const stdout = new Sink()
  const stderr = new Sink()
  const program = new Command('shipshape')
    .option('-c, --config <file>')
    .option('--json')
    .option('-q, --quiet')
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {} })
  program.addCommand(
    configCommand({ stdout, stderr, env: {}, hostname: 'box1', packageRoot: dir }).exitOverride(),
  )
  let error: unknown
  try {
    await program.parseAsync(args, { from: 'user' })
  } catch (err) {
    error = err
  }
  return { stdout: stdout.text, stderr: stderr.text, error }
}

const GOOD = 'host: box1\nreport:\n  bigImage: 3GB\n'
const BAD = 'report:\n  bigImage: 2 potatoes\n'

describe('shipshape config check', () => {
  it('prints ok: FILE on stderr for a valid file', async () => {
    const file = path.join(dir, 'good.yaml')
    await writeFile(file, GOOD)
    const r = await run(['config', 'check', file])
    expect(r.error).toBeUndefined()
    expect(r.stderr).toBe(`ok: ${file}\n`)
    expect(r.stdout).toBe('')
  })

  it('checks what the lookup finds without a file (here: the embedded default)', async () => {
    const r = await run(['config', 'check'])
    expect(r.stderr).toBe('ok: embedded default\n')
  })

  it('fails with a ConfigError naming file, line and key', async () => {
    const file = path.join(dir, 'bad.yaml')
    await writeFile(file, BAD)
    const r = await run(['config', 'check', '--config', file])
    expect(r.error).toBeInstanceOf(ConfigError)
    expect((r.error as ConfigError).exitCode).toBe(2)
    expect((r.error as ConfigError).message).toBe(
      `${file}:2:13: report.bigImage: '2 potatoes' is not a size: use e.g. 2GB, 500MiB`,
    )
  })

  it('--json prints the verdict on stdout, then fails', async () => {
    const file = path.join(dir, 'bad.yaml')
    await writeFile(file, BAD)
    const r = await run(['--json', 'config', 'check', file])
    expect(r.error).toBeInstanceOf(ConfigError)
    expect(JSON.parse(r.stdout)).toEqual({
      schema: 'shipshape.config-check/1',
      ok: false,
      source: file,
      origin: 'flag',
      problems: [
        {
          file,
          line: 2,
          column: 13,
          key: 'report.bigImage',
          message: "'2 potatoes' is not a size: use e.g. 2GB, 500MiB",
        },
      ],
    })
  })

  it('--json for a valid file and for a missing one', async () => {
    const file = path.join(dir, 'good.yaml')
    await writeFile(file, GOOD)
    const ok = await run(['config', 'check', file, '--json'])
    expect(ok.error).toBeUndefined()
    expect(JSON.parse(ok.stdout)).toEqual({
      schema: 'shipshape.config-check/1',
      ok: true,
      source: file,
      origin: 'flag',
      problems: [],
    })
    const missing = path.join(dir, 'missing.yaml')
    const bad = await run(['config', 'check', missing, '--json'])
    expect(bad.error).toBeInstanceOf(ConfigError)
    expect(JSON.parse(bad.stdout)).toMatchObject({
      ok: false,
      source: missing,
      problems: [{ file: missing, message: 'no such config file (given by --config)' }],
    })
    expect(jsonShapeProblems(JSON.parse(ok.stdout))).toEqual([])
    expect(jsonShapeProblems(JSON.parse(bad.stdout))).toEqual([])
  })
})

describe('shipshape config show', () => {
  it('prints the effective config as YAML that reads back to the same config', async () => {
    const file = path.join(dir, 'good.yaml')
    await writeFile(file, GOOD)
    const r = await run(['config', 'show', '--config', file])
    expect(r.error).toBeUndefined()
    const shown = parseYaml(r.stdout)
    expect(shown.report).toMatchObject({ bigImage: '3GB', bigAssets: '1GB', top: 10 })
    expect(shown.prune).toMatchObject({ backupsFor: '7d', diskThreshold: '85%' })
    expect(parseConfigText(r.stdout, 'shown')).toEqual(parseConfigText(GOOD, file))
  })

  it('--json gives the config in bytes, milliseconds and fractions', async () => {
    const r = await run(['config', 'show', '--json'])
    const out = JSON.parse(r.stdout)
    expect(out.schema).toBe('shipshape.config/1')
    expect(out.source).toBe('embedded default')
    expect(out.config.host).toBe('box1')
    expect(out.config.report.bigImage).toBe(2_000_000_000)
    expect(out.config.prune.backupsFor).toBe(604_800_000)
    expect(out.config.prune.diskThreshold).toBe(0.85)
    expect(jsonShapeProblems(out)).toEqual([]) // schema/shipshape.config.1.json
  })

  it('an invalid config is a ConfigError', async () => {
    const file = path.join(dir, 'bad.yaml')
    await writeFile(file, BAD)
    const r = await run(['config', 'show', '-c', file])
    expect(r.error).toBeInstanceOf(ConfigError)
    expect(r.stdout).toBe('')
  })
})
