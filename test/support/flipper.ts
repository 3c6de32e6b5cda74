/**
 * A hostile tree for race tests: another process flips `dir` between the real directory and a
 * symlink to `victim`, as fast as it can, until stopped — what a container that can write into
 * a bind-mounted asset directory can do to root's walk, copy or removal (docker cp
 * CVE-2018-15664, rsync CVE-2024-12087/12747).
 *
 *   const f = startFlipper(dir, victim)   the child runs; `flips` counts completed flips
 *   await f.stop()                        the child ends, `dir` is the real directory again
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

const SCRIPT = `
const fs = require('node:fs')
const [dir, real, victim, stopFile, parent] = process.argv.slice(1)
// never outlive the test: stop when asked, when the parent is gone, or after two minutes
const deadline = Date.now() + 120000
const orphaned = () => { try { process.kill(Number(parent), 0); return Date.now() > deadline } catch { return true } }
let flips = 0
const DWELL = BigInt(process.env.FLIP_DWELL_NS || "50000")
// each state held a moment (µs): long enough for the other side's calls to land in either
const spin = (ns) => { const t = process.hrtime.bigint(); while (process.hrtime.bigint() - t < ns); }
const restore = () => {
  try { if (fs.lstatSync(dir).isSymbolicLink()) fs.unlinkSync(dir) } catch {}
  try { fs.renameSync(real, dir) } catch {}
}
for (let i = 0; ; i++) {
  if (i % 256 === 0 && (fs.existsSync(stopFile) || orphaned())) break
  try {
    fs.renameSync(dir, real)
    fs.symlinkSync(victim, dir)
    spin(DWELL)
    fs.unlinkSync(dir)
    fs.renameSync(real, dir)
    if (flips++ === 0) fs.writeSync(1, 'R')
    spin(DWELL)
  } catch {
    restore()
  }
}
restore()
fs.writeSync(1, String(flips))
`

export interface Flipper {
  stop(): Promise<number>
}

/** Starts flipping `dir` (see the file header); resolves once the child has started. */
export async function startFlipper(dir: string, victim: string): Promise<Flipper> {
  const real = path.join(path.dirname(dir), `.${path.basename(dir)}.real`)
  const control = await fs.mkdtemp(path.join(os.tmpdir(), 'flipper-'))
  const stopFile = path.join(control, 'stop')
  const child = spawn(
    process.execPath,
    ['-e', SCRIPT, dir, real, victim, stopFile, String(process.pid)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  let out = ''
  let ready: () => void = () => {}
  const started = new Promise<void>((resolve) => (ready = resolve))
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString()
    if (out.startsWith('R')) ready()
  })
  const exited = new Promise<number>((resolve) =>
    child.on('close', () => {
      ready()
      resolve(Number(out.slice(1)))
    }),
  )
  // once it has flipped once: from then on it flips until stopped
  await started
  return {
    async stop() {
      await fs.writeFile(stopFile, '')
      const flips = await exited
      await fs.rm(control, { recursive: true, force: true })
      return flips
    },
  }
}

export const VICTIM_MARK = 'VICTIM-7f3a9c-DO-NOT-READ'

/** A victim directory: `count` files whose content carries VICTIM_MARK; their sha256s. */
export async function makeVictim(dir: string, count = 40): Promise<Map<string, string>> {
  await fs.mkdir(dir, { recursive: true })
  const hashes = new Map<string, string>()
  for (let i = 0; i < count; i++) {
    const body = `${VICTIM_MARK} ${i} ${'v'.repeat(2000 + i)}\n`
    await fs.writeFile(path.join(dir, `victim-${i}.txt`), body)
    hashes.set(`victim-${i}.txt`, createHash('sha256').update(body).digest('hex'))
  }
  return hashes
}

/** The victim as it is now: its files' sha256s. */
export async function victimNow(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const n of await fs.readdir(dir)) {
    out.set(
      n,
      createHash('sha256')
        .update(await fs.readFile(path.join(dir, n)))
        .digest('hex'),
    )
  }
  return out
}

/** Every file below `dir` (names as bytes, never following a link) holding `mark`. */
export async function filesHolding(dir: string, mark: string): Promise<string[]> {
  const found: string[] = []
  const needle = Buffer.from(mark)
  async function walk(d: Buffer): Promise<void> {
    let ents
    try {
      ents = await fs.readdir(d, { encoding: 'buffer', withFileTypes: true })
    } catch {
      return
    }
    for (const e of ents) {
      const p = Buffer.concat([d, Buffer.from('/'), e.name as unknown as Buffer])
      if (e.isDirectory()) await walk(p)
      else if (e.isFile() && (await fs.readFile(p)).includes(needle)) found.push(p.toString())
    }
  }
  await walk(Buffer.from(dir))
  return found
}
