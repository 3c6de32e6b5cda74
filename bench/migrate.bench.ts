/**
 * npm run bench (third part) — `shipshape migrate-assets` against the runbook's manual way on
 * the same data and the same real rclone mount (`rclone mount :local:REMOTE MNT`):
 *
 *   manual:    tar czf backup.tar.gz music && mv music MNT/music && ln -s MNT/music music
 *   shipshape: migrate-assets NAME --yes (backup + manifest + read-back check, copy, sha256 of
 *              every file checked on the remote with rclone, swap)
 *
 * Data: ~2 GB in ~2000 files of random bytes (MP3-like: incompressible), and for the memory
 * figure 2 GB in 4 files. Each round starts from a hard-linked copy of a pristine tree (so both
 * read the same, equally warm inodes) onto a fresh mount; rounds alternate. Prints the medians,
 * the ratio shipshape/manual (target ≤ 1.0) and shipshape's peak RSS (/usr/bin/time %M, target
 * ≤ 200 MB for both file-size mixes).
 *
 * SHIPSHAPE_TEST_ENGINE picks the private engine (default 20.10); BENCH_ROUNDS (default 3);
 * BENCH_MIGRATE_MB (default 2048).
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startEngine, type EngineKind } from '../test/harness/engine.js'
import { mountRclone, rcloneUsable, unmountAll } from '../test/harness/rclone.js'
import { median } from './fleet.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const CLI = path.resolve(here, '../scripts/shipshape.js')
const kind = (process.env.SHIPSHAPE_TEST_ENGINE ?? '20.10') as EngineKind
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const TOTAL_MB = Number(process.env.BENCH_MIGRATE_MB ?? 2048)
const TIME = '/usr/bin/time'
const MiB = 1024 * 1024
const RATIO_TARGET = 1.0
const RSS_TARGET_MB = 200

interface Run {
  ms: number
  rssKb: number | null
}

function run(argv: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  const useTime = existsSync(TIME)
  const cmd = useTime ? TIME : argv[0]!
  const args = useTime ? ['-f', 'bench-rss %M', ...argv] : argv.slice(1)
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6
      if (code !== 0)
        return reject(new Error(`${argv.join(' ')} exited ${code}: ${stderr.slice(-800)}`))
      const m = /bench-rss (\d+)/.exec(stderr)
      resolve({ ms, rssKb: m ? Number(m[1]) : null })
    })
  })
}

/** `files` files of random bytes totalling ~totalMb, names like an MP3 library. */
async function makeTree(dir: string, files: number, totalMb: number): Promise<void> {
  const pool = randomBytes(64 * MiB)
  const mean = (totalMb * MiB) / files
  for (let i = 0; i < files; i++) {
    const album = path.join(dir, `Artist ${i % 20}`, `Album ${i % 7} é`)
    await fs.mkdir(album, { recursive: true })
    const size = Math.max(1, Math.round(mean * (0.5 + ((i * 7919) % 1000) / 1000)))
    const fh = await fs.open(path.join(album, `${String(i).padStart(4, '0')} track.mp3`), 'w')
    let left = size
    let off = (i * 104729) % (pool.length - 1)
    while (left > 0) {
      const n = Math.min(left, pool.length - off, 8 * MiB)
      await fh.write(pool, off, n)
      left -= n
      off = (off + n + 4099) % (pool.length - 1)
    }
    await fh.close()
  }
}

async function main(): Promise<void> {
  const usable = await rcloneUsable()
  if (!usable.ok) throw new Error(`rclone/FUSE unusable: ${usable.reason}`)
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'ss-bench-mig-'))
  console.error(`bench: starting private engine ${kind}…`)
  const engine = await startEngine(kind)
  const lines: string[] = []
  let ok = true
  try {
    const mixes = [
      { name: `${TOTAL_MB} MB in ~2000 files`, files: 2000, timeRounds: ROUNDS },
      { name: `${TOTAL_MB} MB in 4 files`, files: 4, timeRounds: 1 },
    ]
    for (const mix of mixes) {
      const pristine = path.join(root, `pristine-${mix.files}`)
      const t0 = Date.now()
      await makeTree(pristine, mix.files, TOTAL_MB)
      console.error(`bench: made ${mix.name} in ${((Date.now() - t0) / 1000).toFixed(0)} s`)
      const manual: Run[] = []
      const ours: Run[] = []
      for (let r = 0; r < mix.timeRounds; r++) {
        for (const who of ['manual', 'shipshape'] as const) {
          const round = path.join(root, `r-${mix.files}-${r}-${who}`)
          const app = path.join(round, 'srv/app')
          const remote = path.join(round, 'remote')
          const mnt = path.join(round, 'mnt')
          await fs.mkdir(app, { recursive: true })
          await fs.mkdir(remote, { recursive: true })
          await fs.mkdir(mnt, { recursive: true })
          await run(['cp', '-al', pristine, path.join(app, 'music')])
          const mount = await mountRclone({ remoteDir: remote, mountDir: mnt, allowOther: true })
          try {
            if (who === 'manual') {
              const script = [
                'set -e',
                'tar czf "$1/backup.tar.gz" -C "$2" music',
                'mv "$2/music" "$3/music"',
                'ln -s "$3/music" "$2/music"',
              ].join('\n')
              manual.push(await run(['sh', '-c', script, 'sh', round, app, mnt]))
            } else {
              const config = path.join(round, 'shipshape.yaml')
              await fs.writeFile(
                config,
                [
                  `stateDir: ${JSON.stringify(path.join(round, 'state'))}`,
                  `backupDir: ${JSON.stringify(path.join(round, 'backups'))}`,
                  `allowedRoots: [${JSON.stringify(path.join(round, 'srv'))}]`,
                  'assets:',
                  '  music:',
                  `    source: ${JSON.stringify(path.join(app, 'music'))}`,
                  `    dest: ${JSON.stringify(path.join(mnt, 'music'))}`,
                  `    mount: ${JSON.stringify(mnt)}`,
                ].join('\n') + '\n',
              )
              ours.push(
                await run([
                  process.execPath,
                  CLI,
                  '--config',
                  config,
                  '--docker-host',
                  engine.dockerHost,
                  'migrate-assets',
                  'music',
                  '--yes',
                  '--json',
                ]),
              )
            }
            const last = who === 'manual' ? manual.at(-1)! : ours.at(-1)!
            console.error(
              `  ${mix.name} round ${r + 1} ${who}: ${(last.ms / 1000).toFixed(1)} s${last.rssKb ? `, peak RSS ${(last.rssKb / 1024).toFixed(0)} MB` : ''}`,
            )
          } finally {
            await mount.unmount()
            await fs.rm(round, { recursive: true, force: true })
          }
        }
      }
      const m = median(manual.map((x) => x.ms))
      const s = median(ours.map((x) => x.ms))
      const rss = Math.max(...ours.map((x) => x.rssKb ?? 0)) / 1024
      const ratio = s / m
      lines.push(
        `${mix.name}: shipshape ${(s / 1000).toFixed(1)} s vs manual tar czf + mv + ln -s ${(m / 1000).toFixed(1)} s (medians of ${mix.timeRounds}): ratio ${ratio.toFixed(3)} (target ≤ ${RATIO_TARGET}) ${ratio <= RATIO_TARGET ? 'PASS' : 'MISS'}`,
        `  shipshape peak RSS ${rss.toFixed(1)} MB (target ≤ ${RSS_TARGET_MB} MB) ${rss <= RSS_TARGET_MB ? 'PASS' : 'MISS'}`,
      )
      if (ratio > RATIO_TARGET || rss > RSS_TARGET_MB) ok = false
      await fs.rm(pristine, { recursive: true, force: true })
    }
    console.log(
      [
        `engine ${kind} (Docker ${engine.version}); rclone mount :local: on ${os.tmpdir()}`,
        ...lines,
      ].join('\n'),
    )
    if (!ok) process.exitCode = 1
  } finally {
    await unmountAll()
    await engine.stop()
    await fs.rm(root, { recursive: true, force: true })
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main()
