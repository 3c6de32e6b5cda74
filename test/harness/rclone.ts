/**
 * Real rclone FUSE mounts for tests: `rclone mount :local:REMOTE MNT` as a child process (never
 * --daemon: we need its pid and stderr), with an empty private config and cache dir.
 *
 *   describeRclone('listing', () => {          // from ./rclone-suite.js (imports vitest)
 *     test('…', async () => {
 *       const m = await mountRclone({ remoteDir, mountDir, vfsCacheMode: 'writes' })
 *       try { … } finally { await m.unmount() }
 *     })
 *   })
 *
 * No mount outlives the test process: every mount is registered for a synchronous cleanup on
 * 'exit', and a watchdog (`sh`, reading a pipe from us) kills rclone and runs `fusermount3 -uz`
 * when we die without one (SIGKILL, crash). Without rclone/FUSE describeRclone skips loudly, or
 * fails when SHIPSHAPE_REQUIRE_RCLONE=1.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parseMountinfo } from '../../lib/host/mountinfo.js'
import { freePort } from './net.js'

export interface RcloneMountOptions {
  remoteDir: string
  mountDir: string
  allowOther?: boolean
  vfsCacheMode?: 'off' | 'writes' | 'full'
  /** `--vfs-write-back`, e.g. '20s' (only with a VFS cache) */
  writeBack?: string
  /** serve the remote control on a free 127.0.0.1 port (`rcAddr`), no auth */
  rc?: boolean
  extraArgs?: string[]
}

export interface RcloneMount {
  mountDir: string
  /** `:local:REMOTEDIR` (what mountinfo shows as the source) */
  remote: string
  pid: number
  /** host:port of the remote control, with `rc: true` */
  rcAddr?: string
  /** rclone's log so far (stderr, INFO level, the last 64 KiB) */
  log(): string
  /** SIGTERM rclone, then `fusermount3 -uz` if still mounted; idempotent; throws if it stays */
  unmount(): Promise<void>
  /** SIGKILL rclone and wait for it: the mountpoint then answers ENOTCONN until unmount() */
  kill9(): Promise<void>
  /**
   * SIGSTOP rclone: the mount stays in the table and every call through it that reaches rclone
   * blocks (a hung mount). thaw() (SIGCONT) undoes it; unmount() thaws first.
   */
  freeze(): void
  thaw(): void
}

interface Live {
  mountDir: string
  child: ChildProcess
  watchdog: ChildProcess
  privDir: string
}

const live = new Set<Live>()
let exitHookInstalled = false

function cleanupSync(): void {
  for (const m of live) {
    try {
      if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGKILL')
    } catch {
      // already gone
    }
    spawnSync('fusermount3', ['-uz', m.mountDir], { stdio: 'ignore', timeout: 5000 })
    m.watchdog.stdin?.end('disarm\n')
    rmSync(m.privDir, { recursive: true, force: true })
  }
  live.clear()
}

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', cleanupSync)
}

/** Mount points (real paths) of fuse.rclone mounts in our namespace. */
function rcloneMountPoints(): Set<string> {
  const text = readFileSync('/proc/self/mountinfo', 'utf8')
  return new Set(
    parseMountinfo(text)
      .filter((m) => m.fsType === 'fuse.rclone')
      .map((m) => m.mountPoint),
  )
}

function isMounted(dir: string): boolean {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).some(
    (m) => m.mountPoint === dir,
  )
}

// The watchdog: blocks on stdin; "disarm" → exit; anything else or EOF (we died) → kill rclone
// (only if that pid still is an rclone for this mountpoint) and lazily unmount.
const WATCHDOG = `read cmd
[ "$cmd" = disarm ] && exit 0
if tr '\\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"; then kill -9 "$1"; fi
fusermount3 -uz "$2" 2>/dev/null
rm -rf -- "$3"
exit 0`

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true)
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms)
    child.once('exit', () => {
      clearTimeout(t)
      resolve(true)
    })
  })
}

function runQuiet(cmd: string, args: string[], ms = 5000): Promise<number | null> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: 'ignore', timeout: ms })
    c.once('error', () => resolve(null))
    c.once('close', (code) => resolve(code))
  })
}

/** Environment for rclone without the developer's RCLONE_* settings. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RCLONE_')))
}

export async function mountRclone(opts: RcloneMountOptions): Promise<RcloneMount> {
  installExitHook()
  await mkdir(opts.remoteDir, { recursive: true })
  await mkdir(opts.mountDir, { recursive: true })
  const remoteDir = await realpath(opts.remoteDir)
  const mountDir = await realpath(opts.mountDir)
  if (isMounted(mountDir)) throw new Error(`mountRclone: ${mountDir} is already a mount point`)
  const privDir = await mkdtemp(path.join(os.tmpdir(), 'ss-rclone-'))
  const config = path.join(privDir, 'rclone.conf')
  await writeFile(config, '')
  const remote = `:local:${remoteDir}`
  const rcAddr = opts.rc ? `127.0.0.1:${await freePort()}` : undefined
  const args = [
    'mount',
    remote,
    mountDir,
    '--config',
    config,
    '--cache-dir',
    path.join(privDir, 'cache'),
    '--log-level',
    'INFO',
    '--vfs-cache-mode',
    opts.vfsCacheMode ?? 'off',
    ...(opts.writeBack ? ['--vfs-write-back', opts.writeBack] : []),
    ...(opts.allowOther ? ['--allow-other'] : []),
    ...(rcAddr ? ['--rc', '--rc-addr', rcAddr, '--rc-no-auth'] : []),
    ...(opts.extraArgs ?? []),
  ]
  const child = spawn('rclone', args, { stdio: ['ignore', 'ignore', 'pipe'], env: cleanEnv() })
  let log = ''
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (d: string) => {
    log = (log + d).slice(-64 * 1024)
  })
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve))
  const pid = child.pid
  if (pid === undefined) {
    await rm(privDir, { recursive: true, force: true })
    throw new Error(`cannot start rclone: ${(await spawnError).message}`)
  }
  const watchdog = spawn(
    'sh',
    ['-c', WATCHDOG, 'rclone-watchdog', String(pid), mountDir, privDir],
    {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
    },
  )
  watchdog.unref()
  ;(watchdog.stdin as unknown as { unref?: () => void }).unref?.()
  watchdog.stdin?.on('error', () => {})
  const entry: Live = { mountDir, child, watchdog, privDir }
  live.add(entry)
  // a leftover mount must not keep the test process alive: the exit hook cleans up
  child.unref()
  ;(child.stderr as unknown as { unref?: () => void }).unref?.()

  let unmounting: Promise<void> | undefined
  const unmount = (): Promise<void> =>
    (unmounting ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT') // a frozen rclone would not act on the SIGTERM
        child.kill('SIGTERM')
        if (!(await exited(child, 5000))) {
          child.kill('SIGKILL')
          await exited(child, 5000)
        }
      }
      if (isMounted(mountDir)) await runQuiet('fusermount3', ['-uz', mountDir])
      if (isMounted(mountDir)) {
        unmounting = undefined
        throw new Error(`rclone mount ${mountDir} is still mounted after fusermount3 -uz`)
      }
      live.delete(entry)
      watchdog.stdin?.end('disarm\n')
      await rm(privDir, { recursive: true, force: true })
    })())

  const deadline = Date.now() + 15_000
  for (;;) {
    if (rcloneMountPoints().has(mountDir)) break
    const gone = child.exitCode !== null || child.signalCode !== null
    if (gone || Date.now() > deadline) {
      await unmount().catch(() => {})
      throw new Error(
        `rclone mount ${remote} ${mountDir} ${gone ? `exited (${child.exitCode ?? child.signalCode})` : 'not mounted after 15 s'}:\n${log.trim()}`,
      )
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  if (rcAddr) await waitForRc(rcAddr, log)

  return {
    mountDir,
    remote,
    pid,
    ...(rcAddr ? { rcAddr } : {}),
    log: () => log,
    unmount,
    freeze: () => {
      child.kill('SIGSTOP')
    },
    thaw: () => {
      child.kill('SIGCONT')
    },
    kill9: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL')
        await exited(child, 5000)
      }
    },
  }
}

async function waitForRc(addr: string, log: string): Promise<void> {
  const deadline = Date.now() + 10_000
  for (;;) {
    try {
      const r = await fetch(`http://${addr}/rc/noop`, { method: 'POST', body: '{}' })
      if (r.ok) return
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`rclone rc at ${addr} not answering:\n${log}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Unmounts every mount this process still has (for afterAll hooks). */
export async function unmountAll(): Promise<void> {
  for (const m of [...live]) {
    m.child.kill('SIGKILL')
    await exited(m.child, 5000)
    await runQuiet('fusermount3', ['-uz', m.mountDir])
    if (!isMounted(m.mountDir)) {
      live.delete(m)
      m.watchdog.stdin?.end('disarm\n')
      await rm(m.privDir, { recursive: true, force: true })
    }
  }
}

/**
 * A fresh temp dir with `remote/` and `mnt/`. remove() refuses while anything below it is
 * mounted: a recursive rm through a live mount deletes the remote's files.
 */
export async function rcloneTempDirs(
  prefix = 'ss-rclone-test-',
): Promise<{ root: string; remoteDir: string; mountDir: string; remove(): Promise<void> }> {
  const root = await realpath(await mkdtemp(path.join(os.tmpdir(), prefix)))
  const remoteDir = path.join(root, 'remote')
  const mountDir = path.join(root, 'mnt')
  await mkdir(remoteDir)
  await mkdir(mountDir)
  return {
    root,
    remoteDir,
    mountDir,
    remove: async () => {
      const inside = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).filter(
        (m) => m.mountPoint === root || m.mountPoint.startsWith(root + '/'),
      )
      if (inside.length) {
        throw new Error(
          `not removing ${root}: ${inside.map((m) => m.mountPoint).join(', ')} mounted`,
        )
      }
      await rm(root, { recursive: true, force: true })
    },
  }
}

export type RcloneUsable = { ok: true } | { ok: false; reason: string }

let usable: RcloneUsable | undefined

/**
 * rclone, fusermount3 and /dev/fuse are there and a trial mount works. Synchronous (describe
 * blocks are decided at collection time): the trial uses `rclone mount --daemon`, which returns
 * once the mount is up, and ends when it is unmounted.
 */
export function rcloneUsableSync(): RcloneUsable {
  if (usable) return usable
  usable = probe()
  return usable
}

export async function rcloneUsable(): Promise<RcloneUsable> {
  return rcloneUsableSync()
}

function probe(): RcloneUsable {
  const v = spawnSync('rclone', ['version'], { encoding: 'utf8', timeout: 10_000 })
  if (v.error || v.status !== 0) {
    return { ok: false, reason: `rclone not runnable (${v.error?.message ?? v.stderr.trim()})` }
  }
  const f = spawnSync('fusermount3', ['-V'], { encoding: 'utf8', timeout: 10_000 })
  if (f.error) return { ok: false, reason: `fusermount3 not found (${f.error.message})` }
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK)
  } catch (err) {
    return { ok: false, reason: `/dev/fuse not usable (${(err as Error).message})` }
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ss-rclone-probe-'))
  const mnt = path.join(dir, 'mnt')
  try {
    mkdirSync(path.join(dir, 'remote'))
    mkdirSync(mnt)
    const m = spawnSync(
      'rclone',
      [
        'mount',
        `:local:${dir}/remote`,
        mnt,
        '--daemon',
        '--daemon-wait',
        '15s',
        '--config',
        '/dev/null',
        '--cache-dir',
        path.join(dir, 'cache'),
      ],
      { encoding: 'utf8', timeout: 20_000, env: cleanEnv() },
    )
    const mounted = isMounted(mnt)
    if (mounted) spawnSync('fusermount3', ['-uz', mnt], { stdio: 'ignore', timeout: 5000 })
    if (!mounted) {
      const why = (m.error?.message ?? m.stderr).trim().split('\n').slice(-3).join(' | ')
      return { ok: false, reason: `trial rclone mount failed: ${why || `exit ${m.status}`}` }
    }
    return { ok: true }
  } finally {
    if (!isMounted(mnt)) rmSync(dir, { recursive: true, force: true })
  }
}
