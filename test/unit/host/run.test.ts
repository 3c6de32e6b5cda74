import { readFileSync } from 'node:fs'
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { UnavailableError } from '../../../lib/errors.js'
import {
  dockerChildEnv,
  MissingExecutableError,
  runCaptured,
  runLogged,
  spawnChild,
} from '../../../lib/host/run.js'

const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' }
const sh = (script: string) => ['sh', '-c', script]

let tmp: string
let n = 0
/** a fresh log path in a directory that does not exist yet */
const newLog = () => path.join(tmp, `logs-${++n}`, 'sub', 'run.log')

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ss-runlogged-'))
})
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true })
})

/** Alive and not a zombie (a killed orphan waits for its reaper, PID 1, in /proc as Z). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

async function gone(pid: number, withinMs = 3000): Promise<boolean> {
  const deadline = Date.now() + withinMs
  while (Date.now() < deadline) {
    if (!alive(pid)) return true
    await new Promise((r) => setTimeout(r, 50))
  }
  return !alive(pid)
}

describe('runLogged', () => {
  it('writes a header, the interleaved output and the end to a private log', async () => {
    const log = newLog()
    const r = await runLogged(
      sh('echo out1; sleep 0.2; echo err1 >&2; sleep 0.2; echo out2; exit 0'),
      { env, log, cwd: tmp },
    )
    expect(r).toMatchObject({ exitCode: 0, signal: null, timedOut: false })
    expect(r.tail).toEqual(['out1', 'err1', 'out2'])
    expect(r.ms).toBeGreaterThanOrEqual(300)
    const lines = (await readFile(log, 'utf8')).split('\n')
    expect(lines[0]).toMatch(/^--- \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z cwd=/)
    expect(lines[0]).toContain(`cwd=${tmp}: sh -c 'echo out1; sleep 0.2; echo err1 >&2;`)
    expect(lines.slice(1, 4)).toEqual(['out1', 'err1', 'out2'])
    expect(lines[4]).toMatch(/^--- exit 0 after \d+\.\d s$/)
    expect(lines[5]).toBe('')
    expect((await stat(log)).mode & 0o777).toBe(0o600)
    expect((await stat(path.dirname(log))).mode & 0o777).toBe(0o700)
  })

  it('appends each run to the log', async () => {
    const log = newLog()
    await runLogged(sh('echo first'), { env, log })
    const r = await runLogged(sh('echo second; exit 3'), { env, log })
    expect(r.exitCode).toBe(3)
    const text = await readFile(log, 'utf8')
    expect(text.match(/^--- \d{4}.* sh -c /gm)).toHaveLength(2)
    expect(text).toMatch(/first\n--- exit 0 .*\n--- .*\nsecond\n--- exit 3 /)
  })

  it('keeps the last 20 lines as the tail', async () => {
    const r = await runLogged(sh('i=1; while [ $i -le 30 ]; do echo line$i; i=$((i+1)); done'), {
      env,
      log: newLog(),
    })
    expect(r.tail).toEqual(Array.from({ length: 20 }, (_, i) => `line${i + 11}`))
  })

  it('calls onLine with whole lines only, per stream, the last one without newline too', async () => {
    const seen: string[] = []
    const log = newLog()
    await runLogged(
      sh(
        "printf 'par'; sleep 0.2; printf 'X\\n' >&2; sleep 0.2; printf 'tial\\r\\nsecond\\n'; " +
          "sleep 0.2; printf 'last-without-newline'",
      ),
      { env, log, onLine: (l) => seen.push(l) },
    )
    expect(seen).toEqual(['X', 'partial', 'second', 'last-without-newline'])
    const text = await readFile(log, 'utf8')
    expect(text).toContain('X\npartial\r\nsecond\nlast-without-newline\n--- exit 0')
  })

  it('logs an endless line in full and hands on its end only', async () => {
    const seen: string[] = []
    const log = newLog()
    await runLogged(sh("head -c 200000 /dev/zero | tr '\\0' x; echo; echo after"), {
      env,
      log,
      onLine: (l) => seen.push(l),
    })
    expect(seen).toHaveLength(2)
    expect(seen[0]).toMatch(/^…x+$/)
    expect(seen[0]).toHaveLength(4097)
    expect(seen[1]).toBe('after')
    const text = await readFile(log, 'utf8')
    expect(text).toContain(`\n${'x'.repeat(200_000)}\nafter\n`)
  })

  it('gives the child exactly the environment passed', async () => {
    const seen: string[] = []
    await runLogged(sh('echo "${HOME-unset}|${ONLY_HERE-unset}"'), {
      env: { ...env, ONLY_HERE: 'yes' },
      log: newLog(),
      onLine: (l) => seen.push(l),
    })
    expect(seen).toEqual(['unset|yes'])
  })

  it('stops the whole process group at the timeout', async () => {
    let grandchild = 0
    const r = await runLogged(sh('sleep 60 & echo $!; wait'), {
      env,
      log: newLog(),
      timeoutMs: 300,
      onLine: (l) => (grandchild = Number(l)),
    })
    expect(r).toMatchObject({ timedOut: true, exitCode: null, signal: 'SIGTERM' })
    expect(r.ms).toBeLessThan(5000)
    expect(grandchild).toBeGreaterThan(0)
    expect(await gone(grandchild)).toBe(true)
  })

  it('SIGKILLs 10 s after a SIGTERM that is ignored', async () => {
    const log = newLog()
    const r = await runLogged(sh('trap "" TERM; echo ready; sleep 60'), {
      env,
      log,
      timeoutMs: 300,
    })
    expect(r).toMatchObject({ timedOut: true, exitCode: null, signal: 'SIGKILL' })
    expect(r.ms).toBeGreaterThanOrEqual(10_000)
    expect(r.ms).toBeLessThan(15_000)
    expect(await readFile(log, 'utf8')).toMatch(/--- killed by SIGKILL \(timeout 300 ms\)/)
  }, 30_000)

  it('aborts like a timeout, then rejects with the reason', async () => {
    const ac = new AbortController()
    let pid = 0
    const run = runLogged(sh('echo $$; sleep 60'), {
      env,
      log: newLog(),
      signal: ac.signal,
      onLine: (l) => {
        pid = Number(l)
        ac.abort(new Error('operator said stop'))
      },
    })
    await expect(run).rejects.toThrow('operator said stop')
    expect(await gone(pid)).toBe(true)
  })

  it('rejects at once when the signal is already aborted', async () => {
    const log = newLog()
    await expect(
      runLogged(sh('echo never'), { env, log, signal: AbortSignal.abort(new Error('early')) }),
    ).rejects.toThrow('early')
    await expect(stat(log)).rejects.toThrow(/ENOENT/)
  })

  it('stops the child and rejects when onLine throws', async () => {
    const t0 = Date.now()
    await expect(
      runLogged(sh('echo boom; sleep 60'), {
        env,
        log: newLog(),
        onLine: () => {
          throw new Error('spinner broke')
        },
      }),
    ).rejects.toThrow('spinner broke')
    expect(Date.now() - t0).toBeLessThan(5000)
  })

  it('rejects a missing executable with UnavailableError (exit 3) naming it', async () => {
    const log = newLog()
    const err = await runLogged(['shipshape-no-such-tool', 'build'], { env, log }).catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(UnavailableError)
    expect((err as UnavailableError).exitCode).toBe(3)
    expect((err as Error).message).toContain('shipshape-no-such-tool')
    const text = await readFile(log, 'utf8')
    expect(text).toMatch(/^--- .* shipshape-no-such-tool build\n--- could not start: /)
  })

  it('says a missing working directory is missing (not the executable)', async () => {
    const missing = path.join(tmp, 'no-such-dir')
    const err = await runLogged(sh('true'), { env, log: newLog(), cwd: missing }).catch(
      (e: unknown) => e,
    )
    expect(err).not.toBeInstanceOf(UnavailableError)
    expect((err as Error).message).toContain(`working directory ${missing} does not exist`)
  })
})

describe('runCaptured', () => {
  it('the shell zx starts sources no BASH_ENV/ENV, and the command does not see them', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ss-bashenv-'))
    const marker = path.join(dir, 'sourced')
    const rc = path.join(dir, 'rc.sh')
    await writeFile(rc, `echo x > '${marker}'\n`)
    try {
      const r = await runCaptured(sh('echo "[$BASH_ENV][$ENV]"'), {
        env: { ...env, BASH_ENV: rc, ENV: rc },
        timeoutMs: 5000,
      })
      expect(r).toMatchObject({ exitCode: 0, stdout: '[][]\n' })
      await expect(stat(marker)).rejects.toMatchObject({ code: 'ENOENT' })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('collects stdout and stderr apart', async () => {
    const r = await runCaptured(sh('echo out; echo err >&2; exit 4'), { env, timeoutMs: 5000 })
    expect(r).toMatchObject({ exitCode: 4, stdout: 'out\n', stderr: 'err\n', timedOut: false })
  })

  it('times out', async () => {
    const r = await runCaptured(sh('sleep 60'), { env, timeoutMs: 200 })
    expect(r).toMatchObject({ timedOut: true, signal: 'SIGTERM' })
  })

  it('kills the whole tree: background children, and one that left the process group', async () => {
    const pids: number[] = []
    const r = await runCaptured(sh('sleep 30 & echo $!; setsid sleep 30 & echo $!; sleep 30'), {
      env,
      timeoutMs: 500,
      onStdoutLine: (l) => pids.push(Number(l)),
    })
    expect(r).toMatchObject({ timedOut: true, signal: 'SIGTERM', stdout: '' })
    expect(pids).toHaveLength(2)
    for (const pid of pids) expect(await gone(pid)).toBe(true)
  })

  it('hands stdout on a line at a time; a throwing handler stops the child and rejects', async () => {
    const seen: string[] = []
    const r = await runCaptured(sh('printf "a\\nb\\r\\nc"'), {
      env,
      timeoutMs: 5000,
      onStdoutLine: (l) => seen.push(l),
    })
    expect(r.exitCode).toBe(0)
    expect(seen).toEqual(['a', 'b', 'c'])
    const t0 = Date.now()
    await expect(
      runCaptured(sh('echo x; sleep 60'), {
        env,
        timeoutMs: 60_000,
        onStdoutLine: () => {
          throw new Error('bad line')
        },
      }),
    ).rejects.toThrow('bad line')
    expect(Date.now() - t0).toBeLessThan(5000)
  })

  it('rejects with the abort reason once the child is gone', async () => {
    const ac = new AbortController()
    setTimeout(() => ac.abort(new Error('stop now')), 200)
    await expect(
      runCaptured(sh('sleep 60'), { env, timeoutMs: 60_000, signal: ac.signal }),
    ).rejects.toThrow('stop now')
  })

  it('stops at maxBytes of stdout, naming the command as told', async () => {
    await expect(
      runCaptured(sh('yes'), { env, timeoutMs: 10_000, maxBytes: 1000, show: 'yes-man' }),
    ).rejects.toThrow('yes-man: more than 1000 bytes of output')
  })

  it('redacts the stderr it returns', async () => {
    const r = await runCaptured(sh('echo "key=s3cret" >&2'), {
      env,
      timeoutMs: 5000,
      redact: (t) => t.replace('s3cret', '***'),
    })
    expect(r.stderr).toBe('key=***\n')
  })

  it('says not executable for a file that is there', async () => {
    const file = path.join(tmp, 'not-exec')
    await writeFile(file, '#!/bin/sh\n', { mode: 0o644 })
    const err = await runCaptured([file], { env, timeoutMs: 5000 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(MissingExecutableError)
    expect((err as Error).message).toBe(`${file} is not available (not executable)`)
  })

  it('passes arguments through the shell unchanged (zx quotes them)', async () => {
    const odd = ["it's", '$HOME', '`id`', 'a b', '', '*', 'x\ny', '\\', 'é']
    const r = await runCaptured(['printf', '%s\\0', ...odd], { env, timeoutMs: 5000 })
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(odd)
  })
})

describe('spawnChild', () => {
  it('feeds stdin from a pipe and writes stdout into a file descriptor', async () => {
    const file = path.join(tmp, 'spawn-out')
    const fh = await open(file, 'w')
    try {
      const child = await spawnChild(['tr', 'a-z', 'A-Z'], { env, stdin: 'pipe', stdout: fh.fd })
      expect(child.stdout).toBeNull()
      child.stdin!.end('hello\n')
      expect(await child.closed).toEqual({ exitCode: 0, signal: null })
      child.dispose()
    } finally {
      await fh.close()
    }
    expect(await readFile(file, 'utf8')).toBe('HELLO\n')
  })

  it('runs in its own process group, its pid the command itself (the shell execs it)', async () => {
    const child = await spawnChild(sh('echo $$ $(ps -o pgid= -p $$)'), { env })
    let out = ''
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()))
    await child.closed
    child.dispose()
    const [pid, pgid] = out.trim().split(/\s+/).map(Number)
    expect(pid).toBe(child.pid)
    expect(pgid).toBe(child.pid)
  })
})

describe('dockerChildEnv', () => {
  const base: NodeJS.ProcessEnv = {
    PATH: '/usr/bin',
    DOCKER_HOST: 'tcp://elsewhere:2375',
    DOCKER_CONTEXT: 'prod',
    DOCKER_CONFIG: '/root/.docker',
    HEALTH_TOKEN: 's3cret',
    WEBHOOK_PASS: 'pw',
    COMPOSE_TAG: 'v1',
  }

  it('points the child at the engine and drops the context and the named secrets', () => {
    const e = dockerChildEnv('unix:///run/docker.sock', base, ['HEALTH_TOKEN', 'WEBHOOK_PASS'])
    expect(e).toEqual({
      PATH: '/usr/bin',
      DOCKER_HOST: 'unix:///run/docker.sock',
      DOCKER_CONFIG: '/root/.docker',
      COMPOSE_TAG: 'v1',
    })
    expect(base.DOCKER_CONTEXT).toBe('prod') // the caller's object is left alone
    expect(base.HEALTH_TOKEN).toBe('s3cret')
  })

  it('keeps tcp and ssh addresses as they are and gives a bare socket path its scheme', () => {
    expect(dockerChildEnv('tcp://h:2376', {}).DOCKER_HOST).toBe('tcp://h:2376')
    expect(dockerChildEnv('ssh://u@h', {}).DOCKER_HOST).toBe('ssh://u@h')
    expect(dockerChildEnv('/run/docker.sock', {}).DOCKER_HOST).toBe('unix:///run/docker.sock')
  })

  it('is what the child sees', async () => {
    const seen: string[] = []
    await runLogged(sh('echo "$DOCKER_HOST|${DOCKER_CONTEXT-none}|${HEALTH_TOKEN-none}"'), {
      env: dockerChildEnv('unix:///x.sock', { ...base, PATH: env.PATH }, ['HEALTH_TOKEN']),
      log: newLog(),
      onLine: (l) => seen.push(l),
    })
    expect(seen).toEqual(['unix:///x.sock|none|none'])
  })
})
