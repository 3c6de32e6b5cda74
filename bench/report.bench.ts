/**
 * npm run bench — `shipshape report --json` against what the runbook does by hand
 * (`docker images`, `docker history` for every image, `docker system df -v`), alternately,
 * on a private engine populated with 150+ images. Prints medians and the ratio.
 *
 * SHIPSHAPE_TEST_ENGINE=20.10|26.1|26.1-containerd picks the engine; BENCH_IMAGES, BENCH_ROUNDS.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startEngine, type EngineKind } from '../test/harness/engine.js'
import { docker } from '../test/harness/fixtures.js'
import { buildFleet, median } from './fleet.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const cli = path.resolve(here, '../scripts/shipshape.js')
const kind = (process.env.SHIPSHAPE_TEST_ENGINE ?? '20.10') as EngineKind
const IMAGES = Number(process.env.BENCH_IMAGES ?? 160)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const TIME = '/usr/bin/time'

interface Run {
  wallMs: number
  peakRssKb: number | null
}

function timed(argv: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const useTime = existsSync(TIME)
  const cmd = useTime ? TIME : argv[0]!
  const args = useTime ? ['-f', 'shipshape-bench-rss %M', ...argv] : argv.slice(1)
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => {
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6
      if (code !== 0)
        return reject(new Error(`${argv.join(' ')} exited ${code}: ${stderr.slice(-500)}`))
      const m = /shipshape-bench-rss (\d+)/.exec(stderr)
      resolve({ wallMs, peakRssKb: m ? Number(m[1]) : null })
    })
  })
}

async function main() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ssb-'))
  console.error(`bench: starting private engine ${kind}…`)
  const engine = await startEngine(kind)
  try {
    console.error(`bench: building ${IMAGES} images…`)
    await buildFleet(engine, IMAGES)
    for (let i = 0; i < 20; i++)
      await docker(engine, ['create', '--name', `bench-c${i}`, `bench/app-${i}:v0`, 'true'])
    for (let i = 0; i < 5; i++) await docker(engine, ['volume', 'create', `bench-v${i}`])
    const tree = path.join(dir, 'opt')
    for (let i = 0; i < 30; i++) {
      await mkdir(path.join(tree, `svc${i}`, 'data'), { recursive: true })
      await writeFile(path.join(tree, `svc${i}`, 'data', 'blob'), Buffer.alloc(64 * 1024 * (i + 1)))
    }
    const config = path.join(dir, 'bench.yaml')
    await writeFile(config, `host: bench\nreport:\n  paths: [${tree}]\n`)
    const manual = path.join(dir, 'manual.sh')
    await writeFile(
      manual,
      [
        'set -eu',
        'docker images > /dev/null',
        'for id in $(docker images -q); do docker history --no-trunc "$id" > /dev/null; done',
        'docker system df -v > /dev/null',
        '',
      ].join('\n'),
    )
    const imagesNow = (await docker(engine, ['images', '-q'])).stdout.trim().split('\n').length
    const env = { ...engine.env }
    const report = [
      process.execPath,
      cli,
      '--config',
      config,
      '--docker-host',
      engine.dockerHost,
      'report',
      '--json',
    ]
    const runs: { report: Run[]; manual: Run[] } = { report: [], manual: [] }
    await timed(report, env) // warm-up: page cache, engine caches
    for (let r = 0; r < ROUNDS; r++) {
      runs.report.push(await timed(report, env))
      runs.manual.push(await timed(['bash', manual], env))
      console.error(
        `  round ${r + 1}: report ${runs.report.at(-1)!.wallMs.toFixed(0)} ms, manual ${runs.manual.at(-1)!.wallMs.toFixed(0)} ms`,
      )
    }
    const rep = median(runs.report.map((x) => x.wallMs))
    const man = median(runs.manual.map((x) => x.wallMs))
    const rss = runs.report.map((x) => x.peakRssKb).filter((x): x is number => x !== null)
    const peakMb = rss.length ? Math.max(...rss) / 1024 : null
    const ratio = rep / man
    const lines = [
      `engine ${kind} (Docker ${engine.version}, API ${engine.apiVersion}), ${imagesNow} images, ${ROUNDS} rounds alternating`,
      `shipshape report --json : median ${rep.toFixed(0)} ms, peak RSS ${peakMb === null ? 'n/a (no /usr/bin/time)' : peakMb.toFixed(1) + ' MB'}`,
      `manual runbook script   : median ${man.toFixed(0)} ms`,
      `ratio report/manual     : ${ratio.toFixed(3)} (target ≤ 0.5) ${ratio <= 0.5 ? 'PASS' : 'MISS'}`,
      `peak RSS                : ${peakMb === null ? 'not measured' : `${peakMb.toFixed(1)} MB (target ≤ 150 MB) ${peakMb <= 150 ? 'PASS' : 'MISS'}`}`,
    ]
    console.log(lines.join('\n'))
    if (ratio > 0.5 || (peakMb !== null && peakMb > 150)) process.exitCode = 1
  } finally {
    await engine.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
