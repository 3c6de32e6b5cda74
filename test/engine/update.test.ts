/**
 * `shipshape update` end to end: a compose service that runs an image from a private registry
 * (Debian's docker-registry on 127.0.0.1), compose v1 and v2. The registry gets a newer tag that
 * fails the gate (→ rolled back to the very image that ran), then a good one (→ updated by
 * `update --auto`), then nothing newer (→ up to date), then `rollback` (→ the exact old id).
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, expect, test as plainTest } from 'vitest'
import { runCli, type CliResult } from '../cli/run.js'
import { BUSYBOX_TAG, busyboxImage, compose, docker, dockerOk } from '../harness/fixtures.js'
import type { PrivateEngine } from '../harness/engine.js'
import { composeVersions, requireEngine } from '../harness/engine.js'
import { freePort, waitUntil } from '../harness/net.js'
import { registryBinary, startRegistry, type PrivateRegistry } from '../harness/registry.js'
import { describeEngine, engineTest as test } from '../harness/suite.js'

async function page(port: number): Promise<string | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, {
      signal: AbortSignal.timeout(3000),
    })
    return res.ok ? (await res.text()).trim() : `HTTP ${res.status}`
  } catch {
    return null
  }
}

const waitFor = waitUntil

if (!registryBinary() && !requireEngine()) {
  plainTest.skip('update [SKIPPED: docker-registry is not installed]', () => {})
  process.stderr.write('\n!!! SKIPPED update suite: docker-registry is not installed\n')
} else
  describeEngine('update of a registry-image service', (getEngine) => {
    let reg: PrivateRegistry
    const cleanups: (() => Promise<unknown>)[] = []
    let seq = 0

    beforeAll(async () => {
      await busyboxImage(getEngine())
      reg = await startRegistry()
    })
    afterAll(async () => {
      for (const c of cleanups.reverse()) await c().catch(() => {})
      await reg?.stop()
    })

    /** An image whose /health says `health` (null: no page → 404), pushed under `ref`. */
    async function push(engine: PrivateEngine, dir: string, ref: string, health: string | null) {
      await fs.rm(path.join(dir, 'www'), { recursive: true, force: true })
      await fs.mkdir(path.join(dir, 'www'), { recursive: true })
      if (health !== null) await fs.writeFile(path.join(dir, 'www', 'health'), `${health}\n`)
      await fs.writeFile(path.join(dir, 'www', 'index.html'), `${health}\n`)
      await fs.writeFile(
        path.join(dir, 'Dockerfile'),
        [
          `FROM ${BUSYBOX_TAG}`,
          'COPY www /www',
          'CMD ["sh", "-c", "exec httpd -f -p 127.0.0.1:$PORT -h /www"]',
          '',
        ].join('\n'),
      )
      await dockerOk(engine, ['build', '-q', '-t', ref, dir], { timeoutMs: 120_000 })
      await dockerOk(engine, ['push', ref], { timeoutMs: 120_000 })
      return (await dockerOk(engine, ['image', 'inspect', '-f', '{{.Id}}', ref])).trim()
    }

    const idOf = async (engine: PrivateEngine, ref: string) => {
      const r = await docker(engine, ['image', 'inspect', '-f', '{{.Id}}', ref])
      return r.exitCode === 0 ? r.stdout.trim() : null
    }

    test('a newer image that fails its gate → rolled back; a good one → updated; then up to date; rollback → the old id', async ({
      engine,
    }) => {
      const versions = composeVersions(engine)
      for (const version of versions) {
        const id = `${process.pid}x${++seq}`
        const root = await fs.mkdtemp(path.join(os.tmpdir(), 'ss-up-'))
        const ctx = path.join(root, 'ctx')
        const proj = path.join(root, 'app')
        await fs.mkdir(ctx)
        await fs.mkdir(proj)
        const port = await freePort()
        const ref = `${reg.host}/ssup${id}/web:stable`
        const project = `ssup${id}`
        const svc = `upweb${id}` // apart from rebuild.test.ts services: backups are found by service name
        const composeBin = version === 'v1' ? engine.composeV1Path : engine.composeV2Path
        cleanups.push(
          () => compose(engine, version, ['-p', project, 'down', '-t', '1'], { cwd: proj }),
          () => fs.rm(root, { recursive: true, force: true }),
        )
        const v1 = await push(engine, ctx, ref, 'one')
        await fs.writeFile(
          path.join(proj, 'docker-compose.yml'),
          [
            'services:',
            '  web:',
            `    image: ${ref}`,
            '    network_mode: host',
            '    stop_grace_period: 1s',
            `    environment: { PORT: "${port}" }`,
            '',
          ].join('\n'),
        )
        const up = await compose(engine, version, ['-p', project, 'up', '-d'], { cwd: proj })
        expect(up.exitCode, up.stderr).toBe(0)
        await waitFor(async () => (await page(port)) === 'one', 'the app answers one')
        const config = path.join(root, 'shipshape.yaml')
        await fs.writeFile(
          config,
          [
            `stateDir: ${JSON.stringify(path.join(root, 'state'))}`,
            `backupDir: ${JSON.stringify(path.join(root, 'backups'))}`,
            'docker:',
            `  compose: [${JSON.stringify(composeBin)}]`,
            'services:',
            `  ${svc}:`,
            `    compose: ${JSON.stringify(path.join(proj, 'docker-compose.yml'))}`,
            '    service: web',
            '    update: apply',
            `    health: { url: "http://127.0.0.1:${port}/health", timeout: 6s, retries: 3, stableFor: 2s }`,
            '',
          ].join('\n'),
        )
        const cli = (args: string[]): Promise<CliResult> =>
          runCli(['--config', config, '--docker-host', engine.dockerHost, ...args], {}, 300_000)
        /** the registry gets a new image under ref; the engine keeps ref on what runs */
        const publish = async (health: string | null) => {
          const newId = await push(engine, ctx, ref, health)
          await dockerOk(engine, ['tag', v1, ref])
          return newId
        }

        // 1. nothing newer yet
        const same = await cli(['update', svc, '--yes', '--json'])
        expect(same.code, `${version}: ${same.stderr}`).toBe(0)
        expect(JSON.parse(same.stdout).outcome).toBe('up-to-date')

        // 2. a newer image that answers 404: rolled back to the very image that ran
        const bad = await publish(null)
        const check = await cli(['update', '--check', '--json'])
        expect(check.code, check.stderr).toBe(0)
        expect(JSON.parse(check.stdout).checks).toEqual([
          expect.objectContaining({ service: svc, ref, runs: v1, newer: true }),
        ])
        // the nightly report says so too (update: apply), and recommends the command
        const rep = await cli(['report', '--json'])
        expect(rep.code, rep.stderr).toBe(0)
        const report = JSON.parse(rep.stdout)
        expect(report.updates).toEqual([expect.objectContaining({ service: svc, newer: true })])
        expect(report.recommendations).toContainEqual(
          expect.objectContaining({ kind: 'update-image', command: `shipshape update ${svc}` }),
        )
        const r = await cli(['update', svc, '--yes', '--json'])
        expect(r.code, `${version}: ${r.stderr}`).toBe(1)
        const j = JSON.parse(r.stdout)
        expect(j.schema).toBe('shipshape.update/1')
        expect(j.outcome).toBe('rolled-back')
        expect(j.update.newer).toBe(true)
        expect(j.error).toMatch(/HTTP 404/)
        expect(j.failedImage).toBe(bad)
        expect(await idOf(engine, ref)).toBe(v1)
        const running = async () =>
          (
            await dockerOk(engine, [
              'ps',
              '--filter',
              `label=com.docker.compose.project=${project}`,
              '--format',
              '{{.ID}}',
            ])
          )
            .split('\n')
            .filter(Boolean)
        const imageOfRunning = async () => {
          const ids = await running()
          expect(ids).toHaveLength(1)
          return (await dockerOk(engine, ['inspect', '-f', '{{.Image}}', ids[0]!])).trim()
        }
        expect(await imageOfRunning()).toBe(v1)
        expect(await page(port)).toBe('one')

        // 3. a good newer image: the timer's --auto updates it
        const good = await publish('three')
        const auto = await cli(['update', '--auto', '--yes', '--json'])
        expect(auto.code, `${version}: ${auto.stderr}`).toBe(0)
        expect(JSON.parse(auto.stdout).checks).toEqual([
          expect.objectContaining({ service: svc, newer: true, outcome: 'updated' }),
        ])
        expect(await imageOfRunning()).toBe(good)
        expect(await page(port)).toBe('three')
        expect(await idOf(engine, ref)).toBe(good)
        const kept = JSON.parse(
          await fs.readFile(
            path.join(root, 'backups', 'build-files', svc, good.slice(7), 'files.json'),
            'utf8',
          ),
        )
        expect(kept.origin).toBe('pulled')

        // 4. nothing newer: --check says so, update does nothing
        const again = JSON.parse((await cli(['update', '--check', '--json'])).stdout)
        expect(again.checks[0].newer).toBe(false)

        // 5. rollback: the very image that ran before the update
        const back = await cli(['rollback', svc, '--yes', '--json'])
        expect(back.code, `${version}: ${back.stderr}`).toBe(0)
        expect(await imageOfRunning()).toBe(v1)
        expect(await idOf(engine, ref)).toBe(v1)
        expect(await page(port)).toBe('one')
      }
    }, 600_000) // compose v1 then v2, each with builds, pushes and five gated runs
  })
