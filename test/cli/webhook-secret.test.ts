/**
 * The webhook URL is a secret (Slack, Discord and Mattermost keep the token in the path): the
 * built CLI's `report --out DIR --notify` against a fake engine on a unix socket, the webhook
 * pointing at a closed local port — the token is in neither stdout, stderr nor the report files;
 * the webhook is named as scheme://host only.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from './run.js'

const TOKEN = 'XXXXSECRETXXXX'
const GB = 1e9

let dir: string
let engine: http.Server
let sock: string

/** Just enough of the engine API for a report: one 10 GB image, nothing else. */
function fakeEngine(): http.Server {
  const json = (res: http.ServerResponse, body: unknown) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(body))
  }
  return http.createServer((req, res) => {
    const url = (req.url ?? '').replace(/^\/v[\d.]+/, '')
    if (url === '/_ping') return res.end('OK')
    if (url === '/version')
      return json(res, { Version: '26.1.4', ApiVersion: '1.45', Os: 'linux', Arch: 'amd64' })
    if (url === '/info') return json(res, { Driver: 'overlay2', DockerRootDir: dir })
    if (url.startsWith('/system/df'))
      return json(res, {
        LayersSize: 10 * GB,
        Images: [
          {
            Id: 'sha256:' + 'a'.repeat(64),
            RepoTags: ['whisperx:latest'],
            Size: 10 * GB,
            SharedSize: 0,
            Containers: 0,
            Created: 1_700_000_000,
          },
        ],
        Containers: [],
        Volumes: [],
        BuildCache: [],
      })
    if (url.includes('/history')) return json(res, [])
    if (url.startsWith('/containers/json')) return json(res, [])
    res.statusCode = 404
    json(res, { message: `no such endpoint ${url}` })
  })
}

async function closedPort(): Promise<number> {
  const s = http.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address() as AddressInfo
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ss-webhook-'))
  sock = path.join(dir, 'engine.sock')
  engine = fakeEngine()
  await new Promise<void>((r) => engine.listen(sock, r))
})
afterAll(async () => {
  engine.closeAllConnections()
  await new Promise<void>((r) => engine.close(() => r()))
  await rm(dir, { recursive: true, force: true })
})

describe('report --notify: the webhook URL never shown whole', { timeout: 30_000 }, () => {
  it('a refused webhook with its token in the path: not in stdout, stderr or the report files', async () => {
    const port = await closedPort()
    const config = path.join(dir, 'shipshape.yaml')
    await writeFile(config, `stateDir: ${JSON.stringify(path.join(dir, 'state'))}\n`)
    const webhook = `http://127.0.0.1:${port}/services/T000/B000/${TOKEN}?token=${TOKEN}#${TOKEN}`
    for (const json of [false, true]) {
      // a report dir each: a previous report over the same threshold would leave nothing to send
      const out = path.join(dir, json ? 'reports-json' : 'reports')
      const r = await runCli(
        [
          '--config',
          config,
          '--docker-host',
          `unix://${sock}`,
          ...(json ? ['--json'] : []),
          'report',
          '--out',
          out,
          '--notify',
        ],
        { SHIPSHAPE_WEBHOOK_URL: webhook },
      )
      expect(r.stderr).toContain(`notify: webhook http://127.0.0.1:${port}: ECONNREFUSED`)
      expect(r.code).toBe(0)
      expect(r.stdout + r.stderr).not.toContain(TOKEN)
      expect(r.stdout + r.stderr).not.toContain('/services')
      if (json)
        expect(r.stdout).toContain(`"notify: webhook http://127.0.0.1:${port}: ECONNREFUSED"`)
      const files = await readdir(out)
      expect(files.some((f) => f.endsWith('.json'))).toBe(true)
      for (const f of files) expect(await readFile(path.join(out, f), 'utf8')).not.toContain(TOKEN)
    }
  })
})
