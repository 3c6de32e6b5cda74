import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, runCli } from './run.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ss-cli-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('shipshape CLI', { timeout: 20_000 }, () => {
  it('--help lists the commands and exits 0', async () => {
    const r = await runCli(['--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/report/)
    expect(r.stdout).toMatch(/^\s+config\s/m)
  })

  it('--version and -V print package.json’s version on stdout, exit 0', async () => {
    const pkg = JSON.parse(
      await readFile(path.join(path.dirname(CLI), '..', '..', 'package.json'), 'utf8'),
    ) as { version: string }
    for (const flag of ['--version', '-V']) {
      const r = await runCli([flag])
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toBe(`${pkg.version}\n`)
    }
  })

  it('the built bin is executable (npx shipshape, systemd ExecStart)', async () => {
    expect((await stat(CLI)).mode & 0o111).toBe(0o111)
  })

  it('an unknown command or option is a usage error (exit 2)', async () => {
    expect((await runCli(['frobnicate'])).code).toBe(2)
    expect((await runCli(['report', '--no-such-flag'])).code).toBe(2)
    expect((await runCli(['report', '--top', 'zero'])).code).toBe(2)
  })

  /**
   * How long the CLI takes to start and print its help on this machine now: the bounds below are
   * over it (a CI machine running three engines at once starts node in seconds, not 0.3 s).
   */
  const startup = async (): Promise<number> => (await runCli(['--help'])).ms

  it('no engine at the socket: exit 3 at once, one line naming the address', async () => {
    const sock = path.join(dir, 'absent.sock')
    const base = await startup()
    const r = await runCli(['report', '--docker-host', `unix://${sock}`])
    expect(r.code).toBe(3)
    // no wait for a timeout: refused connections fail at once
    expect(r.ms).toBeLessThan(base + 2000)
    expect(r.stderr).toContain(sock)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/unreachable/)
  })

  it('DOCKER_HOST is used when no flag is given', async () => {
    const sock = path.join(dir, 'env.sock')
    const r = await runCli(['report'], { DOCKER_HOST: `unix://${sock}` })
    expect(r.code).toBe(3)
    expect(r.stderr).toContain(sock)
  })

  it('an engine that accepts but never answers: exit 3 after docker.timeout (3 s)', async () => {
    const sock = path.join(dir, 'mute.sock')
    const held: net.Socket[] = []
    const server = net.createServer((s) => held.push(s))
    await new Promise<void>((res) => server.listen(sock, res))
    try {
      const base = await startup()
      const r = await runCli(['report', '--docker-host', `unix://${sock}`])
      expect(r.code).toBe(3)
      // docker.timeout, plus the start-up this machine needs now, plus a margin: never a hang
      expect(r.ms).toBeGreaterThanOrEqual(2900)
      expect(r.ms).toBeLessThan(base + 3000 + 2000)
      expect(r.stderr).toContain(sock)
    } finally {
      for (const s of held) s.destroy()
      server.close()
    }
  })

  it('an engine that hangs on a later call: exit 3 after docker.callTimeout, naming the call', async () => {
    const sock = path.join(dir, 'hang.sock')
    const server = http.createServer((req, res) => {
      if (req.url === '/version') {
        res.setHeader('content-type', 'application/json')
        res.end(
          JSON.stringify({ Version: '20.10.24', ApiVersion: '1.41', Os: 'linux', Arch: 'amd64' }),
        )
      } else if (req.url?.endsWith('/info')) {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ Driver: 'overlay2', DockerRootDir: '/var/lib/docker' }))
      } // anything else: never answered
    })
    await new Promise<void>((res) => server.listen(sock, res))
    const config = path.join(dir, 'hang.yaml')
    await writeFile(config, 'docker:\n  callTimeout: 2s\n')
    try {
      const r = await runCli(['--config', config, 'report', '--docker-host', `unix://${sock}`])
      expect(r.code).toBe(3)
      expect(r.ms).toBeLessThan(10_000)
      expect(r.stderr).toMatch(/system\/df/)
    } finally {
      server.closeAllConnections()
      server.close()
    }
  })

  describe('a bad config exits 2 naming file, line and key', () => {
    const cases: [string, string, RegExp][] = [
      ['syntax.yaml', 'report:\n  top: 10\n   bigImage: 2GB\n', /syntax\.yaml:2:\d+: YAML syntax/],
      [
        'unknown.yaml',
        'report:\n  top: 10\n  bigimage: 2GB\n',
        /unknown\.yaml:3:\d+: report\.bigimage/,
      ],
      [
        'badsize.yaml',
        'host: x\nreport:\n  bigImage: 2 potatoes\n',
        /badsize\.yaml:3:\d+: report\.bigImage/,
      ],
    ]
    for (const [name, text, expected] of cases) {
      it(name, async () => {
        const file = path.join(dir, name)
        await writeFile(file, text)
        const viaReport = await runCli([
          '--config',
          file,
          'report',
          '--docker-host',
          'unix:///nonexistent.sock',
        ])
        expect(viaReport.code).toBe(2)
        expect(viaReport.stderr).toMatch(expected)
        const viaCheck = await runCli(['config', 'check', file])
        expect(viaCheck.code).toBe(2)
        expect(viaCheck.stderr).toMatch(expected)
      })
    }
  })

  it('a --config file that does not exist is an error, not a fallback', async () => {
    const r = await runCli(['--config', path.join(dir, 'nope.yaml'), 'config', 'show'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('nope.yaml')
  })
})
