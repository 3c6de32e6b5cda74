/**
 * npm run bench (fourth part) — the overhead of `shipshape rebuild`'s health gate.
 *
 * A compose service (busybox httpd with basic auth on the host network, healthy as soon as it
 * runs) on a private engine with compose v1. Alternating rounds of:
 *
 *   manual:    docker-compose up -d --no-deps --force-recreate web, then poll the health URL every
 *              10 ms until it answers 200: the container's own start, as fast as it can be seen
 *   shipshape: rebuild web --yes --json; its timings: recreate (the same `up`) + gate (recreate
 *              done → healthy)
 *
 * The gate holds the checks for health.stableFor (STABLE_MS, default 10 s) after the first pass.
 * Prints the medians, the overhead shipshape − manual − stableFor (target ≤ 2000 ms) and the gate
 * alone (target ≤ stableFor + 1000 ms: the hold costs its own length and no more). Then one
 * rebuild whose new image never answers, with health.timeout 5s: the gate must end (and the
 * rollback start) within the timeout.
 *
 * SHIPSHAPE_TEST_ENGINE picks the private engine (default 20.10); BENCH_ROUNDS (default 5).
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startEngine, type EngineKind } from '../test/harness/engine.js'
import { BUSYBOX_TAG, busyboxImage, compose } from '../test/harness/fixtures.js'
import { freePort } from '../test/harness/net.js'
import { median } from './fleet.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const CLI = path.resolve(here, '../scripts/shipshape.js')
const kind = (process.env.SHIPSHAPE_TEST_ENGINE ?? '20.10') as EngineKind
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const OVERHEAD_TARGET_MS = 2000
const STABLE_MS = Number(process.env.BENCH_STABLE_MS ?? 10_000)
const USER = 'bench'
const PASS = 'bench-password-not-a-secret'

async function healthy(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, {
      headers: { authorization: `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}` },
      signal: AbortSignal.timeout(1000),
    })
    await res.body?.cancel()
    return res.status === 200
  } catch {
    return false
  }
}

async function writeApp(dir: string, health: string | null): Promise<void> {
  await fs.rm(path.join(dir, 'www'), { recursive: true, force: true })
  await fs.mkdir(path.join(dir, 'www'), { recursive: true })
  if (health !== null) await fs.writeFile(path.join(dir, 'www', 'health'), `${health}\n`)
  await fs.writeFile(
    path.join(dir, 'start.sh'),
    'echo "/:$HUSER:$HPASS" > /tmp/h.conf\nexec httpd -f -p "127.0.0.1:$PORT" -h /www -c /tmp/h.conf\n',
  )
  await fs.writeFile(
    path.join(dir, 'Dockerfile'),
    `FROM ${BUSYBOX_TAG}\nCOPY www /www\nCOPY start.sh /start.sh\nCMD ["sh", "/start.sh"]\n`,
  )
}

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, BENCH_USER: USER, BENCH_PASS: PASS },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

async function main(): Promise<void> {
  const engine = await startEngine(kind)
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'ss-rbb-'))
  let failed = false
  try {
    if (!engine.composeV1Path) throw new Error('compose v1 is not installed (docker-compose)')
    await busyboxImage(engine)
    const proj = path.join(root, 'app')
    const port = await freePort()
    await fs.mkdir(proj, { recursive: true })
    await writeApp(proj, 'v1')
    // compose 1.29 recreates only with API ≤ 1.44 (ContainerConfig), as shipshape runs it
    const env = { HUSER: USER, HPASS: PASS, COMPOSE_API_VERSION: '1.44' }
    await fs.writeFile(
      path.join(proj, 'docker-compose.yml'),
      [
        'services:',
        '  web:',
        '    build: { context: ., network: host }',
        '    network_mode: host',
        '    stop_grace_period: 1s',
        `    environment: { HUSER: ${USER}, HPASS: ${PASS}, PORT: "${port}" }`,
        '',
      ].join('\n'),
    )
    const dc = (args: string[]) =>
      compose(engine, 'v1', ['-p', 'ssbench', ...args], { cwd: proj, env, timeoutMs: 180_000 })
    const up = await dc(['up', '-d', '--build'])
    if (up.exitCode !== 0) throw new Error(`compose up: ${up.stderr}`)
    const config = path.join(root, 'shipshape.yaml')
    const writeConfig = (timeout: string) =>
      fs.writeFile(
        config,
        [
          `stateDir: ${JSON.stringify(path.join(root, 'state'))}`,
          `backupDir: ${JSON.stringify(path.join(root, 'backups'))}`,
          `docker: { compose: [${JSON.stringify(engine.composeV1Path)}] }`,
          'services:',
          '  web:',
          `    compose: ${JSON.stringify(path.join(proj, 'docker-compose.yml'))}`,
          `    health: { url: "http://127.0.0.1:${port}/health", userEnv: BENCH_USER, passwordEnv: BENCH_PASS, timeout: ${timeout}, retries: 5, stableFor: ${Math.round(STABLE_MS / 1000)}s }`,
          '',
        ].join('\n'),
      )
    await writeConfig('60s')
    const rebuild = async () => {
      const r = await cli([
        '--config',
        config,
        '--docker-host',
        engine.dockerHost,
        'rebuild',
        'web',
        '--yes',
        '--json',
      ])
      const j = JSON.parse(r.stdout || '{}') as {
        outcome?: string
        timings?: { recreateMs: number; gateMs: number }
      }
      return { code: r.code, stderr: r.stderr, j }
    }

    const manual: number[] = []
    const ours: number[] = []
    const gates: number[] = []
    for (let i = 0; i < ROUNDS; i++) {
      await writeApp(proj, `v${i + 2}`) // a real change: a new image each round
      const t0 = performance.now()
      const r = await dc(['up', '-d', '--no-deps', '--force-recreate', 'web'])
      if (r.exitCode !== 0) throw new Error(`manual up: ${r.stderr}`)
      while (!(await healthy(port))) await new Promise((res) => setTimeout(res, 10))
      manual.push(performance.now() - t0)

      const s = await rebuild()
      if (s.code !== 0 || !s.j.timings) throw new Error(`rebuild exited ${s.code}: ${s.stderr}`)
      ours.push(s.j.timings.recreateMs + s.j.timings.gateMs)
      gates.push(s.j.timings.gateMs)
      console.error(
        `round ${i + 1}: manual up+first answer ${manual.at(-1)!.toFixed(0)} ms; shipshape recreate+gate ${ours.at(-1)!.toFixed(0)} ms (gate ${s.j.timings.gateMs} ms)`,
      )
    }
    const overhead = median(ours) - median(manual) - STABLE_MS
    const gate = median(gates)
    console.log(
      `rebuild gate (${kind}, compose v1, ${ROUNDS} rounds, stableFor ${STABLE_MS} ms): manual ${median(manual).toFixed(0)} ms, shipshape ${median(ours).toFixed(0)} ms; overhead beyond the hold ${overhead.toFixed(0)} ms (target ≤ ${OVERHEAD_TARGET_MS} ms) ${overhead <= OVERHEAD_TARGET_MS ? 'PASS' : 'FAIL'}; gate alone ${gate} ms (target ≤ stableFor + 1000 ms) ${gate <= STABLE_MS + 1000 ? 'PASS' : 'FAIL'}`,
    )
    if (overhead > OVERHEAD_TARGET_MS || gate > STABLE_MS + 1000) failed = true

    // a new image that never answers: the gate gives up within health.timeout
    await writeConfig('5s')
    await writeApp(proj, null)
    const bad = await rebuild()
    const badGate = bad.j.timings?.gateMs ?? Infinity
    console.log(
      `unhealthy rebuild: exit ${bad.code}, outcome ${bad.j.outcome}, gate ${badGate} ms with health.timeout 5000 ms ${bad.code === 1 && badGate <= 5000 + 1000 ? 'PASS' : 'FAIL'}`,
    )
    if (bad.code !== 1 || badGate > 6000) failed = true
    await dc(['down', '-t', '1'])
  } finally {
    await engine.stop()
    await fs.rm(root, { recursive: true, force: true })
  }
  if (failed) process.exitCode = 1
}

await main()
