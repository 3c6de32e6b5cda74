/**
 * What `doctor` reads of the host, as small ports: the checks (checks/) get them from the
 * context, tests pass fakes. The only write is probeDir's file, removed again at once.
 */
import { randomBytes } from 'node:crypto'
import { access, constants, open, readdir, readFile, stat, statfs, unlink } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Config } from '../config/index.js'
import { findBindings, mountState } from '../assets/preflight.js'
import type { ContainerBinding, MountState } from '../shared/mount.js'
import { detectCompose, type ComposeCli } from '../docker/compose.js'
import type { Engine } from '../docker/engine.js'
import { openEngine } from '../docker/open.js'
import { holderState, type HolderState, type LockInfo } from '../host/lock.js'
import { readMountinfo, type MountEntry } from '../host/mountinfo.js'
import { effectiveUid, pathFacts, type PathFacts } from '../host/private.js'
import { rcloneVersion } from '../host/rclone.js'
import { runCaptured } from '../host/run.js'

export interface SystemctlResult {
  exitCode: number | null
  stdout: string
  stderr: string
}

/** What a path is; `missing` also for ENOTDIR (a component is a file). */
export type PathKind =
  | { kind: 'dir' }
  | { kind: 'file' }
  | { kind: 'other' }
  | { kind: 'missing' }
  | { kind: 'error'; code: string; message: string }

export interface DiskSpace {
  /** bytes an unprivileged user may still write */
  free: number
  /** size of the filesystem */
  total: number
}

export interface DoctorPorts {
  now(): Date
  hostname(): string
  /** the engine, as every command opens it (--docker-host › $DOCKER_HOST › docker.host › socket) */
  connect(o: {
    dockerHost: string | undefined
    env: NodeJS.ProcessEnv
    config: Pick<Config, 'docker'>
  }): Promise<Engine>
  readMountinfo(): Promise<MountEntry[]>
  /** the mount as the kernel sees it and whether it answers (lib/assets/preflight.ts) */
  mountState(
    mount: string,
    expectedType: string,
    mounts: MountEntry[],
  ): Promise<{ state: MountState; entry: MountEntry | null }>
  /** containers whose bind mounts involve the source, with their user (lib/assets/preflight.ts) */
  findBindings(engine: Engine, source: string, mount: string): Promise<ContainerBinding[]>
  statfs(dir: string): Promise<DiskSpace>
  pathKind(p: string): Promise<PathKind>
  /** lstat: type (a symlink not followed), permission bits, owner; null when nothing is there */
  pathFacts(p: string): Promise<PathFacts | null>
  /** the effective uid doctor runs as: the owner stateDir/backupDir and journals must have */
  uid(): number
  /** null when the directory may be written (and searched), else the errno code and message */
  canWrite(dir: string): Promise<string | null>
  /** creates and removes a probe file in dir: null when that worked, else why not */
  probeDir(dir: string): Promise<string | null>
  /** a file's text; null when it does not exist */
  readText(file: string): Promise<string | null>
  /** names in a directory; null when it does not exist */
  listDir(dir: string): Promise<string[] | null>
  rcloneVersion(): Promise<string>
  detectCompose(o: { configured?: string[]; env: NodeJS.ProcessEnv }): Promise<ComposeCli>
  holderState(info: LockInfo): Promise<HolderState>
  /** systemd is PID 1 here (/run/systemd/system is a directory) */
  systemdRunning(): Promise<boolean>
  /** systemctl with an argument array (never a shell) */
  systemctl(args: string[]): Promise<SystemctlResult>
  /** where user_allow_other is read (/etc/fuse.conf) */
  fuseConf: string
}

const errno = (err: unknown) => (err as NodeJS.ErrnoException).code ?? ''
const why = (err: unknown) => `${errno(err) || 'error'}: ${(err as Error).message}`

export function hostPorts(overrides: Partial<DoctorPorts> = {}): DoctorPorts {
  const ports: DoctorPorts = {
    now: () => new Date(),
    hostname: () => os.hostname(),
    connect: (o) => openEngine({ dockerHost: o.dockerHost, env: o.env, config: o.config }),
    readMountinfo: () => readMountinfo(),
    mountState: (mount, type, mounts) => mountState(mount, type, mounts),
    findBindings: async (engine, source, mount) =>
      (await findBindings(engine, source, mount)).bindings,
    statfs: async (dir) => {
      const s = await statfs(dir)
      return { free: Number(s.bavail) * Number(s.bsize), total: Number(s.blocks) * Number(s.bsize) }
    },
    pathKind: async (p) => {
      try {
        const st = await stat(p)
        return st.isDirectory()
          ? { kind: 'dir' }
          : st.isFile()
            ? { kind: 'file' }
            : { kind: 'other' }
      } catch (err) {
        const code = errno(err)
        if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'missing' }
        return { kind: 'error', code, message: (err as Error).message }
      }
    },
    pathFacts: (p) => pathFacts(p),
    uid: () => effectiveUid(),
    canWrite: async (dir) => {
      try {
        await access(dir, constants.W_OK | constants.X_OK)
        return null
      } catch (err) {
        return why(err)
      }
    },
    probeDir: async (dir) => {
      const probe = path.join(
        dir,
        `.shipshape-doctor-${process.pid}-${randomBytes(4).toString('hex')}`,
      )
      try {
        const fh = await open(probe, 'wx', 0o600)
        await fh.close()
      } catch (err) {
        return why(err)
      }
      try {
        await unlink(probe)
        return null
      } catch (err) {
        return `created ${probe} but cannot remove it (${why(err)})`
      }
    },
    readText: async (file) => {
      try {
        return await readFile(file, 'utf8')
      } catch (err) {
        if (errno(err) === 'ENOENT') return null
        throw err
      }
    },
    listDir: async (dir) => {
      try {
        return await readdir(dir)
      } catch (err) {
        if (errno(err) === 'ENOENT') return null
        throw err
      }
    },
    rcloneVersion: () => rcloneVersion(),
    detectCompose: (o) => detectCompose(o),
    holderState: (info) => holderState(info),
    systemdRunning: async () =>
      (await stat('/run/systemd/system').catch(() => undefined))?.isDirectory() ?? false,
    systemctl: async (args) => {
      try {
        const r = await runCaptured(['systemctl', ...args], { timeoutMs: 5000 })
        return {
          exitCode: r.timedOut ? null : r.exitCode,
          stdout: r.stdout,
          stderr: r.stderr || (r.timedOut ? 'systemctl timed out after 5 s' : ''),
        }
      } catch (err) {
        return { exitCode: null, stdout: '', stderr: (err as Error).message }
      }
    },
    fuseConf: '/etc/fuse.conf',
  }
  return { ...ports, ...overrides }
}
