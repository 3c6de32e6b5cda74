import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ConfigError, ExitCode } from '../../../lib/errors.js'
import { findPackageRoot, loadConfig, resolveConfigSource } from '../../../lib/config/load.js'

let root: string // a fake package root with config/hosts/
let work: string
let etc: string // stands for /etc/shipshape ($SHIPSHAPE_CONFIG_DIR)

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'shipshape-root-'))
  work = await mkdtemp(path.join(os.tmpdir(), 'shipshape-work-'))
  etc = path.join(work, 'etc-shipshape')
  await mkdir(path.join(root, 'config', 'hosts'), { recursive: true })
})
afterEach(async () => {
  await rm(root, { recursive: true, force: true })
  await rm(work, { recursive: true, force: true })
})

const write = async (file: string, text: string) => {
  await writeFile(file, text)
  return file
}
const topOf = (n: number) => `report:\n  top: ${n}\n`
const noEnv = () => ({ SHIPSHAPE_CONFIG_DIR: etc })

describe('loadConfig lookup: --config › $SHIPSHAPE_CONFIG › /etc/shipshape › a clone’s hosts/<hostname>.yaml › embedded default', () => {
  it('/etc/shipshape/<hostname>.yaml, then /etc/shipshape/shipshape.yaml, before the clone’s file', async () => {
    await mkdir(etc)
    await write(path.join(root, 'config/hosts/box1.yaml'), topOf(3))
    const shared = await write(path.join(etc, 'shipshape.yaml'), topOf(5))
    expect(await loadConfig({ env: noEnv(), hostname: 'box1', packageRoot: root })).toMatchObject({
      source: shared,
      origin: 'etc',
    })
    const own = await write(path.join(etc, 'box1.yaml'), topOf(6))
    const got = await loadConfig({ env: noEnv(), hostname: 'box1.example.org', packageRoot: root })
    expect(got).toMatchObject({ source: own, origin: 'etc' })
    expect(got.config.report.top).toBe(6)
    // $SHIPSHAPE_CONFIG still wins
    const env = await write(path.join(work, 'env.yaml'), topOf(2))
    expect(
      (await resolveConfigSource({ env: { ...noEnv(), SHIPSHAPE_CONFIG: env }, hostname: 'box1' }))
        .origin,
    ).toBe('env')
  })

  it('an installed package (under node_modules) reads no config/hosts/ of its own', async () => {
    const installed = path.join(work, 'prefix', 'lib', 'node_modules', 'shipshape')
    await mkdir(path.join(installed, 'config', 'hosts'), { recursive: true })
    await write(path.join(installed, 'config/hosts/box1.yaml'), topOf(3))
    const got = await resolveConfigSource({
      env: noEnv(),
      hostname: 'box1',
      packageRoot: installed,
    })
    expect(got).toEqual({ source: 'embedded default', origin: 'default' })
  })

  it('--config wins over everything', async () => {
    const flag = await write(path.join(work, 'flag.yaml'), topOf(1))
    const env = await write(path.join(work, 'env.yaml'), topOf(2))
    await write(path.join(root, 'config/hosts/box1.yaml'), topOf(3))
    const got = await loadConfig({
      file: flag,
      env: { SHIPSHAPE_CONFIG: env, SHIPSHAPE_CONFIG_DIR: etc },
      hostname: 'box1',
      packageRoot: root,
    })
    expect(got).toMatchObject({ source: flag, origin: 'flag' })
    expect(got.config.report.top).toBe(1)
  })

  it('$SHIPSHAPE_CONFIG comes next', async () => {
    const env = await write(path.join(work, 'env.yaml'), topOf(2))
    await write(path.join(root, 'config/hosts/box1.yaml'), topOf(3))
    const got = await loadConfig({
      env: { SHIPSHAPE_CONFIG: env, SHIPSHAPE_CONFIG_DIR: etc },
      hostname: 'box1',
      packageRoot: root,
    })
    expect(got).toMatchObject({ source: env, origin: 'env' })
    expect(got.config.report.top).toBe(2)
  })

  it('then config/hosts/<hostname>.yaml under the package root', async () => {
    const host = await write(path.join(root, 'config/hosts/box1.yaml'), topOf(3))
    const got = await loadConfig({ env: noEnv(), hostname: 'box1', packageRoot: root })
    expect(got).toMatchObject({ source: host, origin: 'host' })
    expect(got.config.report.top).toBe(3)
    expect(got.config.host).toBe('box1')
  })

  it('a fully qualified hostname also finds the short name', async () => {
    const host = await write(path.join(root, 'config/hosts/srv759970.yaml'), topOf(4))
    const got = await loadConfig({
      env: noEnv(),
      hostname: 'srv759970.hstgr.cloud',
      packageRoot: root,
    })
    expect(got).toMatchObject({ source: host, origin: 'host' })
    expect(got.config.host).toBe('srv759970.hstgr.cloud')
  })

  it('then the embedded default, even when config/ is missing', async () => {
    await rm(path.join(root, 'config'), { recursive: true })
    const got = await loadConfig({ env: noEnv(), hostname: 'box1', packageRoot: root })
    expect(got).toMatchObject({ source: 'embedded default', origin: 'default' })
    expect(got.config.host).toBe('box1')
    expect(got.config.report.bigImage).toBe(2e9)
    expect(got.config.prune.apply).toBe(false)
  })

  it('an empty $SHIPSHAPE_CONFIG counts as unset; another host’s file is not used', async () => {
    await write(path.join(root, 'config/hosts/other.yaml'), topOf(3))
    const got = await resolveConfigSource({
      env: { SHIPSHAPE_CONFIG: '', SHIPSHAPE_CONFIG_DIR: etc },
      hostname: 'box1',
      packageRoot: root,
    })
    expect(got).toEqual({ source: 'embedded default', origin: 'default' })
  })

  it('a hostname that is not a plain name is not used as a file name', async () => {
    await write(path.join(work, 'evil.yaml'), topOf(3))
    const hostname = `../../${path.basename(work)}/evil`
    const got = await resolveConfigSource({ env: noEnv(), hostname, packageRoot: root })
    expect(got.origin).toBe('default')
  })

  it('a relative --config is resolved against the working directory', async () => {
    const got = await resolveConfigSource({ file: 'some/where.yaml', env: noEnv() })
    expect(got).toEqual({ source: path.resolve('some/where.yaml'), origin: 'flag' })
  })
})

describe('loadConfig errors', () => {
  it('a missing --config file is a ConfigError (exit 2), not a fallback', async () => {
    const missing = path.join(work, 'nope.yaml')
    const err = await loadConfig({ file: missing, env: noEnv(), packageRoot: root }).catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).exitCode).toBe(ExitCode.usage)
    expect((err as ConfigError).message).toBe(`${missing}: no such config file (given by --config)`)
    expect((err as ConfigError).problems).toEqual([
      { file: missing, key: '', message: 'no such config file (given by --config)' },
    ])
  })

  it('a missing $SHIPSHAPE_CONFIG file is a ConfigError too', async () => {
    const missing = path.join(work, 'nope.yaml')
    await write(path.join(root, 'config/hosts/box1.yaml'), topOf(3))
    const err = await loadConfig({
      env: { SHIPSHAPE_CONFIG: missing },
      hostname: 'box1',
      packageRoot: root,
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).message).toBe(
      `${missing}: no such config file (given by $SHIPSHAPE_CONFIG)`,
    )
  })

  it('a directory given as config is a ConfigError', async () => {
    const err = await loadConfig({ file: work, env: noEnv() }).catch((e: unknown) => e)
    expect((err as ConfigError).message).toBe(
      `${work}: is a directory, not a config file (given by --config)`,
    )
  })

  it('an invalid host file names its absolute path and line', async () => {
    const host = await write(path.join(root, 'config/hosts/box1.yaml'), 'report:\n  top: many\n')
    const err = await loadConfig({ env: noEnv(), hostname: 'box1', packageRoot: root }).catch(
      (e: unknown) => e,
    )
    expect((err as ConfigError).message).toBe(
      `${host}:2:8: report.top: must be a whole number from 1 to 1000`,
    )
  })
})

describe('findPackageRoot', () => {
  it('finds the repository root from lib/config (and would from dist/lib/config)', () => {
    const root = findPackageRoot()
    expect(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).name).toBe('shipshape')
    expect(findPackageRoot(new URL('../../../lib/config/load.ts', import.meta.url).href)).toBe(root)
    expect(findPackageRoot(new URL('../../../dist/lib/config/load.js', import.meta.url).href)).toBe(
      root,
    )
  })
})
