/**
 * A private registry for the tests: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1
 * and a free port, storage in a temp dir, no auth. dockerd treats 127.0.0.0/8 as insecure by
 * default, so it pushes and pulls there over plain HTTP. Stopped (and its dir removed) by stop().
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { which } from './engine.js'
import { freePort } from './net.js'

export interface PrivateRegistry {
  /** host:port, e.g. 127.0.0.1:40123 */
  host: string
  stop(): Promise<void>
}

export function registryBinary(): string | null {
  return process.env.SHIPSHAPE_REGISTRY ?? which('docker-registry')
}

export async function startRegistry(): Promise<PrivateRegistry> {
  const bin = registryBinary()
  if (!bin) throw new Error('docker-registry is not installed (apt-get install docker-registry)')
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ss-reg-'))
  const port = await freePort()
  const host = `127.0.0.1:${port}`
  await fs.writeFile(
    path.join(dir, 'config.yml'),
    [
      'version: 0.1',
      'log: { level: warn }',
      `storage: { filesystem: { rootdirectory: ${JSON.stringify(path.join(dir, 'data'))} }, delete: { enabled: true } }`,
      `http: { addr: "${host}", secret: "shipshape-test" }`,
      '',
    ].join('\n'),
  )
  const log = await fs.open(path.join(dir, 'registry.log'), 'a')
  const child = spawn(bin, ['serve', path.join(dir, 'config.yml')], {
    stdio: ['ignore', log.fd, log.fd],
  })
  await log.close()
  let exited: string | null = null
  child.on('exit', (code, signal) => (exited = `docker-registry exited (${signal ?? code})`))
  const end = Date.now() + 30_000
  for (;;) {
    if (exited)
      throw new Error(`${exited}: ${await fs.readFile(path.join(dir, 'registry.log'), 'utf8')}`)
    try {
      const res = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(1000) })
      if (res.status === 200) break
    } catch {
      // not up yet
    }
    if (Date.now() > end) throw new Error(`docker-registry did not answer on ${host} in 30 s`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    host,
    async stop() {
      if (!exited) {
        const gone = new Promise((r) => child.once('exit', r))
        child.kill('SIGTERM')
        await gone
      }
      await fs.rm(dir, { recursive: true, force: true })
    },
  }
}
