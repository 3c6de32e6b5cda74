/**
 * npm run bench (second half) — the deep image scan against the raw export it reads:
 * `node dist/bench/scan-run.js HOST IMAGE` (scanImage in its own process) and
 * `docker save IMAGE > /dev/null`, alternately, on a private engine, for a ~1 GB and a ~3 GB
 * image. Prints medians, the ratio scan/save, the scan's peak RSS (/usr/bin/time %M) for both
 * sizes, and how the scan's byte totals relate to the engine's image Size.
 *
 * SHIPSHAPE_TEST_ENGINE=20.10|26.1|26.1-containerd picks the engine; BENCH_ROUNDS (default 5);
 * BENCH_BASELINE_RUNNER=/other/checkout/dist/bench/scan-run.js also runs that build's scan in the
 * same rounds (a refactor measured against the code before it: the ratio of the medians).
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, openSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startEngine, type EngineKind, type PrivateEngine } from '../test/harness/engine.js'
import { buildImage, busyboxImage, dockerCli, dockerOk } from '../test/harness/fixtures.js'
import type { ScanResult } from '../lib/scan/types.js'
import { median } from './fleet.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const runner = path.resolve(here, 'scan-run.js')
const kind = (process.env.SHIPSHAPE_TEST_ENGINE ?? '20.10') as EngineKind
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const TIME = '/usr/bin/time'
const baselineRunner = process.env.BENCH_BASELINE_RUNNER
const MB = 1e6
const RATIO_TARGET = 1.25
const RSS_TARGET_MB = 200
/** "flat": the 3 GB scan may peak at most this much above the 1 GB one */
const RSS_FLAT_MB = 25

interface Run {
  wallMs: number
  peakRssKb: number | null
  stdout: string
}

/** Run argv (under /usr/bin/time when there is one); stdout to /dev/null unless captured. */
function timed(argv: string[], env: NodeJS.ProcessEnv, capture = false): Promise<Run> {
  const useTime = existsSync(TIME)
  const cmd = useTime ? TIME : argv[0]!
  const args = useTime ? ['-f', 'shipshape-bench-rss %M', ...argv] : argv.slice(1)
  const devNull = capture ? null : openSync('/dev/null', 'w')
  return new Promise<Run>((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const child = spawn(cmd, args, { env, stdio: ['ignore', devNull ?? 'pipe', 'pipe'] })
    let stderr = ''
    let stdout = ''
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => {
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6
      if (code !== 0)
        return reject(new Error(`${argv.join(' ')} exited ${code}: ${stderr.slice(-500)}`))
      const m = /shipshape-bench-rss (\d+)/.exec(stderr)
      resolve({ wallMs, peakRssKb: m ? Number(m[1]) : null, stdout })
    })
  }).finally(() => {
    if (devNull !== null) closeSync(devNull)
  })
}

/**
 * A RUN step writing `files` files of random size (4 KiB … 256 KiB, mean ~130 KiB) into dir,
 * each half random (from a 64 MiB pool: incompressible) and half zeros (gzip's easy half):
 * ~256 MiB a step for 1000 files.
 */
function runFiles(dir: string, files: number): string {
  return (
    `RUN head -c 67108864 /dev/urandom > /tmp/pool && mkdir -p ${dir} && i=0 && ` +
    `while [ $i -lt ${files} ]; do n=$(( (RANDOM % 64) + 1 )); ` +
    `dd if=/tmp/pool of=${dir}/f$i bs=4096 count=$n skip=$(( RANDOM % 16000 )) 2>/dev/null; ` +
    `dd if=/dev/zero bs=4096 count=$n 2>/dev/null >> ${dir}/f$i; i=$((i+1)); done && rm /tmp/pool`
  )
}

/** 20 000 small files (0 … 4 KiB) for the build context: many entries, like a Python tree. */
function smallFiles(): Record<string, Buffer> {
  const files: Record<string, Buffer> = {}
  const pool = randomBytes(1 << 20)
  for (let i = 0; i < 20_000; i++) {
    const size = (i * 2654435761) % 4096
    const off = (i * 40503) % (pool.length - 4096)
    files[`small/p${i % 50}/m${i}.py`] = pool.subarray(off, off + size)
  }
  return files
}

export async function buildImages(engine: PrivateEngine): Promise<{ one: string; three: string }> {
  const base = await busyboxImage(engine)
  const one = 'bench/scan:1g'
  const three = 'bench/scan:3g'
  const t0 = Date.now()
  await buildImage(engine, {
    tag: one,
    dockerfile: [
      `FROM ${base}`,
      'COPY small /srv/small',
      ...[0, 1, 2, 3].map((l) => runFiles(`/data/l${l}`, 1000)),
      'RUN rm -rf /data/l0/f1* && echo changed > /data/l1/f7',
      'WORKDIR /srv',
    ].join('\n'),
    files: smallFiles(),
  })
  console.error(`bench: built ${one} in ${((Date.now() - t0) / 1000).toFixed(0)} s`)
  const t1 = Date.now()
  await buildImage(engine, {
    tag: three,
    dockerfile: [
      `FROM ${one}`,
      ...[4, 5, 6, 7, 8, 9, 10, 11].map((l) => runFiles(`/data/l${l}`, 1000)),
    ].join('\n'),
  })
  console.error(`bench: built ${three} in ${((Date.now() - t1) / 1000).toFixed(0)} s`)
  return { one, three }
}

interface SizeResult {
  image: string
  scan: ScanResult
  inspectSize: number
  scans: Run[]
  saves: Run[]
  /** BENCH_BASELINE_RUNNER's scans, in the same rounds */
  baseline: Run[]
}

async function benchImage(engine: PrivateEngine, image: string): Promise<SizeResult> {
  const env = { ...engine.env }
  const scanArgv = [process.execPath, runner, engine.dockerHost, image]
  // warm-up (page cache, engine caches) and the figures of the scan
  const first = await timed([...scanArgv, '--json'], env, true)
  const scan = JSON.parse(first.stdout) as ScanResult
  const inspectSize = Number(
    (await dockerOk(engine, ['image', 'inspect', '--format', '{{.Size}}', image])).trim(),
  )
  await timed([dockerCli, 'save', image], env)
  const scans: Run[] = []
  const saves: Run[] = []
  const baseline: Run[] = []
  const baselineArgv = baselineRunner && [
    process.execPath,
    baselineRunner,
    engine.dockerHost,
    image,
  ]
  if (baselineArgv) await timed(baselineArgv, env)
  for (let r = 0; r < ROUNDS; r++) {
    scans.push(await timed(scanArgv, env))
    saves.push(await timed([dockerCli, 'save', image], env))
    if (baselineArgv) baseline.push(await timed(baselineArgv, env))
    console.error(
      `  ${image} round ${r + 1}: scan ${scans.at(-1)!.wallMs.toFixed(0)} ms (${((scans.at(-1)!.peakRssKb ?? 0) / 1024).toFixed(0)} MB), save ${saves.at(-1)!.wallMs.toFixed(0)} ms`,
    )
  }
  return { image, scan, inspectSize, scans, saves, baseline }
}

function summary(engine: PrivateEngine, results: SizeResult[]): { lines: string[]; ok: boolean } {
  const lines = [
    `engine ${kind} (Docker ${engine.version}, API ${engine.apiVersion}${engine.containerdImageStore ? ', containerd image store' : ''}), ${ROUNDS} rounds alternating scan / docker save > /dev/null`,
  ]
  let ok = true
  const peaks: number[] = []
  for (const r of results) {
    const scanMs = median(r.scans.map((x) => x.wallMs))
    const saveMs = median(r.saves.map((x) => x.wallMs))
    const ratio = scanMs / saveMs
    const rss = r.scans.map((x) => x.peakRssKb).filter((x): x is number => x !== null)
    const peakMb = rss.length ? Math.max(...rss) / 1024 : null
    if (peakMb !== null) peaks.push(peakMb)
    const s = r.scan
    const entries = s.layers.reduce((a, l) => a + l.files, 0)
    const blobs = s.layers.reduce((a, l) => a + l.blobBytes, 0)
    lines.push(
      `${r.image}: ${s.layers.length} layers, ${entries} files in layers, ${s.files} in the final FS; total ${(s.totalBytes / MB).toFixed(0)} MB, final ${(s.finalBytes / MB).toFixed(0)} MB, wasted ${(s.wastedBytes / MB).toFixed(1)} MB, export blobs ${(blobs / MB).toFixed(0)} MB`,
    )
    if (engine.containerdImageStore) {
      const snapshots = s.image.engineSizeBytes - r.inspectSize
      lines.push(
        `  engine Size: listed ${(s.image.engineSizeBytes / MB).toFixed(0)} MB = content ${(r.inspectSize / MB).toFixed(0)} MB (inspect) + snapshots ${(snapshots / MB).toFixed(0)} MB; totalBytes/snapshots ${(s.totalBytes / snapshots).toFixed(4)}, totalBytes/listed ${(s.totalBytes / s.image.engineSizeBytes).toFixed(3)}`,
      )
    } else {
      lines.push(
        `  engine Size ${(s.image.engineSizeBytes / MB).toFixed(0)} MB; totalBytes/Size ${(s.totalBytes / s.image.engineSizeBytes).toFixed(5)} (target within 1%) ${Math.abs(s.totalBytes / s.image.engineSizeBytes - 1) <= 0.01 ? 'PASS' : 'MISS'}`,
      )
      if (Math.abs(s.totalBytes / s.image.engineSizeBytes - 1) > 0.01) ok = false
    }
    lines.push(
      `  scan ${scanMs.toFixed(0)} ms vs save ${saveMs.toFixed(0)} ms (medians): ratio ${ratio.toFixed(3)} (target ≤ ${RATIO_TARGET}) ${ratio <= RATIO_TARGET ? 'PASS' : 'MISS'}`,
      `  scan peak RSS ${peakMb === null ? 'n/a (no /usr/bin/time)' : `${peakMb.toFixed(1)} MB (target ≤ ${RSS_TARGET_MB} MB) ${peakMb <= RSS_TARGET_MB ? 'PASS' : 'MISS'}`}`,
    )
    if (r.baseline.length) {
      const baseMs = median(r.baseline.map((x) => x.wallMs))
      lines.push(
        `  scan ${scanMs.toFixed(0)} ms vs the baseline build's scan ${baseMs.toFixed(0)} ms (${baselineRunner}): ratio ${(scanMs / baseMs).toFixed(3)}`,
      )
    }
    if (ratio > RATIO_TARGET || (peakMb !== null && peakMb > RSS_TARGET_MB)) ok = false
  }
  if (peaks.length === 2) {
    const growth = peaks[1]! - peaks[0]!
    lines.push(
      `peak RSS 1 GB → 3 GB: ${peaks[0]!.toFixed(1)} → ${peaks[1]!.toFixed(1)} MB (${growth >= 0 ? '+' : ''}${growth.toFixed(1)} MB; flat: ≤ +${RSS_FLAT_MB} MB) ${growth <= RSS_FLAT_MB ? 'PASS' : 'MISS'}`,
    )
    if (growth > RSS_FLAT_MB) ok = false
  }
  return { lines, ok }
}

async function main() {
  console.error(`bench: starting private engine ${kind}…`)
  const engine = await startEngine(kind)
  try {
    const { one, three } = await buildImages(engine)
    const results = [await benchImage(engine, one), await benchImage(engine, three)]
    const { lines, ok } = summary(engine, results)
    console.log(lines.join('\n'))
    if (!ok) process.exitCode = 1
  } finally {
    await engine.stop()
  }
}

// run as a script (npm run bench); imported, it only lends buildImages()
if (process.argv[1] === fileURLToPath(import.meta.url)) await main()
