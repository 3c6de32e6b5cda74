/**
 * Onboarding a host: `shipshape config init --stdout`, then `shipshape report --config` the file
 * it generated, unedited — each must take under 2 s of wall time on a host with 150+ images and a
 * dozen containers (compose services, bind mounts, a database with a volume, a published port, an
 * rclone mount when rclone is usable). The built CLI, 3 timed runs each after a warm-up, medians.
 *
 * SHIPSHAPE_TEST_ENGINE=20.10|26.1|26.1-containerd picks the engine; BENCH_IMAGES, BENCH_ROUNDS.
 */
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startEngine, type EngineKind } from '../test/harness/engine.js'
import { busyboxImage, compose, docker, dockerOk } from '../test/harness/fixtures.js'
import { mountRclone, rcloneUsable, unmountAll } from '../test/harness/rclone.js'
import { parseConfigText } from '../lib/config/load.js'
import { buildFleet, median } from './fleet.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const cli = path.resolve(here, '../scripts/shipshape.js')
const kind = (process.env.SHIPSHAPE_TEST_ENGINE ?? '20.10') as EngineKind
const IMAGES = Number(process.env.BENCH_IMAGES ?? 160)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const BUDGET_MS = 2000

interface Run {
  wallMs: number
  stdout: string
}

function timed(argv: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => {
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6
      if (code !== 0)
        return reject(new Error(`${argv.join(' ')} exited ${code}: ${stderr.slice(-800)}`))
      resolve({ wallMs, stdout })
    })
  })
}

async function main() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ssb-onboard-'))
  console.error(`bench: starting private engine ${kind}…`)
  const engine = await startEngine(kind)
  try {
    const base = await busyboxImage(engine)
    console.error(`bench: building ${IMAGES} images…`)
    await buildFleet(engine, IMAGES)

    // the host's directories: a few big enough to be assets, most small
    const opt = path.join(dir, 'opt')
    for (let i = 0; i < 8; i++) {
      await mkdir(path.join(opt, `svc${i}`, 'data'), { recursive: true })
      await writeFile(
        path.join(opt, `svc${i}`, 'data', 'blob'),
        Buffer.alloc(i < 3 ? 3_000_000 : 64 * 1024, i),
      )
    }
    const sleeper = ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait']
    // a dozen containers: plain ones with bind mounts (running and stopped), a database with a
    // volume, an HTTP server on a published port, a compose project
    for (let i = 0; i < 6; i++)
      await dockerOk(engine, [
        'run',
        '-d',
        '--name',
        `bench-app${i}`,
        '--network',
        'none',
        '-v',
        `${path.join(opt, `svc${i}`, 'data')}:/data`,
        `bench/app-${i}:v0`,
        ...sleeper,
      ])
    for (let i = 6; i < 8; i++)
      await dockerOk(engine, [
        'create',
        '--name',
        `bench-stopped${i}`,
        '-v',
        `${path.join(opt, `svc${i}`, 'data')}:/data`,
        `bench/app-${i}:v0`,
        'true',
      ])
    await dockerOk(engine, ['tag', base, 'bench/postgres:16'])
    await dockerOk(engine, ['volume', 'create', 'bench-pgdata'])
    await dockerOk(engine, [
      'run',
      '-d',
      '--name',
      'bench-db',
      '--network',
      'none',
      '-v',
      'bench-pgdata:/var/lib/postgresql/data',
      'bench/postgres:16',
      ...sleeper,
    ])
    await dockerOk(engine, ['network', 'create', 'bench-net'])
    await dockerOk(engine, [
      'run',
      '-d',
      '--name',
      'bench-web',
      '--network',
      'bench-net',
      '-p',
      '127.0.0.1::8080',
      base,
      'sh',
      '-c',
      'mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 0.0.0.0:8080 -h /www',
    ])
    if (engine.composeV1Path) {
      const proj = path.join(opt, 'stack')
      await mkdir(proj, { recursive: true })
      const svc = (name: string) => [
        `  ${name}:`,
        `    image: ${base}`,
        '    network_mode: none',
        `    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]`,
      ]
      await writeFile(
        path.join(proj, 'docker-compose.yml'),
        ['services:', ...svc('api'), ...svc('worker'), ...svc('cron'), ''].join('\n'),
      )
      const up = await compose(engine, 'v1', ['-p', 'benchstack', 'up', '-d'], { cwd: proj })
      if (up.exitCode !== 0) throw new Error(`compose up: ${up.stderr}`)
    } else {
      console.error('bench: compose v1 not installed: no compose project')
    }
    const usable = await rcloneUsable()
    if (usable.ok) {
      await mountRclone({ remoteDir: path.join(dir, 'remote'), mountDir: path.join(dir, 'mnt') })
    } else {
      console.error(`bench: rclone unusable (${usable.reason}): assets stay commented out`)
    }

    const config = path.join(dir, 'bench.yaml')
    await writeFile(
      config,
      [
        'host: bench',
        `stateDir: ${JSON.stringify(path.join(dir, 'state'))}`,
        `backupDir: ${JSON.stringify(path.join(dir, 'backups'))}`,
        `allowedRoots: [${JSON.stringify(opt)}]`,
        'report: { bigAssets: 1MB }',
        '',
      ].join('\n'),
    )
    const imagesNow = (await docker(engine, ['images', '-q'])).stdout.trim().split('\n').length
    const containersNow = (await docker(engine, ['ps', '-aq'])).stdout.trim().split('\n').length
    const env = { ...engine.env }
    const host = ['--docker-host', engine.dockerHost]
    const init = [process.execPath, cli, ...host, '--config', config, 'config', 'init', '--stdout']
    const generated = path.join(dir, 'generated.yaml')
    const report = [process.execPath, cli, ...host, '--config', generated, 'report', '--json']

    const first = await timed(init, env) // warm-up; its output is the config the report uses
    await writeFile(generated, first.stdout)
    const parsed = parseConfigText(first.stdout, generated)
    await timed(report, env) // warm-up
    const runs: { init: number[]; report: number[] } = { init: [], report: [] }
    for (let r = 0; r < ROUNDS; r++) {
      runs.init.push((await timed(init, env)).wallMs)
      runs.report.push((await timed(report, env)).wallMs)
      console.error(
        `  round ${r + 1}: config init ${runs.init.at(-1)!.toFixed(0)} ms, report ${runs.report.at(-1)!.toFixed(0)} ms`,
      )
    }
    const i = median(runs.init)
    const rep = median(runs.report)
    const verdict = (ms: number) => (ms < BUDGET_MS ? 'PASS' : 'FAIL')
    console.log(
      [
        `engine ${kind} (Docker ${engine.version}, API ${engine.apiVersion}), ${imagesNow} images, ${containersNow} containers, ${ROUNDS} rounds`,
        `generated config: ${Object.keys(parsed.services).length} services, ${Object.keys(parsed.assets).length} assets, ${parsed.prune.protect.images.length} protected images (unedited)`,
        `shipshape config init --stdout      : median ${i.toFixed(0)} ms (budget < ${BUDGET_MS} ms) ${verdict(i)}`,
        `shipshape report --config GENERATED : median ${rep.toFixed(0)} ms (budget < ${BUDGET_MS} ms) ${verdict(rep)}`,
      ].join('\n'),
    )
    if (i >= BUDGET_MS || rep >= BUDGET_MS) process.exitCode = 1
  } finally {
    await unmountAll()
    await engine.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
