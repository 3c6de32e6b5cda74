/**
 * The host's side of `systemd install` (the ports of steps.ts): unit files written atomically and
 * durably (lib/host/durable.ts); directories made and removed by descriptor, relative to their
 * verified parent (lib/host/safefs.ts: an empty directory only, never a path-based recursive
 * removal); systemctl through the one process runner (lib/host/run.ts).
 */
import { lstat, readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { UnavailableError, UsageError } from '../errors.js'
import { writeFileDurable } from '../host/durable.js'
import { runCaptured } from '../host/run.js'
import { Dir, errCode } from '../host/safefs.js'
import { SYSTEM_UNIT_PATH } from './install.js'
import type { InstallFs, SystemdPort } from './steps.js'

async function inParent<T>(p: string, fn: (dir: Dir, name: string) => Promise<T>): Promise<T> {
  const dir = await Dir.open(path.dirname(p))
  try {
    return await fn(dir, path.basename(p))
  } finally {
    await dir.close()
  }
}

export const hostInstallFs: InstallFs = {
  async readFile(file) {
    try {
      // never through a link or into a fifo: planning refused those (install.ts readUnitFiles)
      const st = await lstat(file)
      if (!st.isFile()) throw new UsageError(`${file} is not a regular file: not read`)
      return { text: await readFile(file, 'utf8'), mode: st.mode & 0o7777 }
    } catch (err) {
      if (errCode(err) === 'ENOENT') return null
      throw new UsageError(`cannot read ${file}: ${errCode(err) ?? err}`)
    }
  },
  async writeFile(file, text, mode) {
    try {
      await writeFileDurable(file, text, { mode })
    } catch (err) {
      throw new UsageError(`cannot write ${file}: ${errCode(err) ?? err}`)
    }
  },
  removeFile: (file) =>
    inParent(file, async (dir, name) => {
      const st = await dir.lstat(name)
      if (!st) return
      if (!st.isFile()) throw new UsageError(`${file} is not a regular file: not removed`)
      await dir.unlink(name)
      await dir.sync()
    }),
  async kind(p) {
    const st = await lstat(p).catch((err: unknown) => {
      if (errCode(err) === 'ENOENT') return null
      throw err
    })
    return !st ? 'missing' : st.isDirectory() ? 'dir' : 'other'
  },
  makeDir: (d, mode) =>
    inParent(d, async (dir, name) => {
      try {
        await dir.mkdir(name, mode)
      } catch (err) {
        if (errCode(err) !== 'EEXIST') throw err
      }
      await dir.sync()
    }),
  removeEmptyDir: (d) =>
    inParent(d, async (dir, name) => {
      try {
        await dir.rmdir(name)
      } catch (err) {
        const code = errCode(err)
        if (code === 'ENOENT' || code === 'ENOTEMPTY' || code === 'EEXIST') return false
        throw err
      }
      await dir.sync()
      return true
    }).catch((err: unknown) => {
      // the parent itself is gone (removed by a person): nothing of ours is left to remove
      if (errCode(err) === 'ENOENT') return false
      throw err
    }),
}

export const hostSystemd: SystemdPort = {
  running: async () =>
    (await stat('/run/systemd/system').catch(() => undefined))?.isDirectory() ?? false,
  unitPath: SYSTEM_UNIT_PATH,
  systemctl: async (args) => {
    const failed = (why: string) =>
      new UnavailableError(
        `systemctl ${args.join(' ')} failed: ${why.trim()}`,
        `run systemctl ${args.join(' ')} once systemd answers`,
      )
    let r: Awaited<ReturnType<typeof runCaptured>>
    try {
      r = await runCaptured(['systemctl', ...args], { timeoutMs: 60_000 })
    } catch (err) {
      throw failed((err as Error).message)
    }
    if (r.timedOut) throw failed(r.stderr || 'timed out after 60 s')
    if (r.exitCode !== 0) {
      throw failed(
        r.stderr || `Command failed: systemctl ${args.join(' ')} (exit ${r.exitCode ?? r.signal})`,
      )
    }
  },
}
