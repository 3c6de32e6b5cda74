/**
 * globalSetup of the "engine" vitest project: starts ONE private engine of the kind in
 * SHIPSHAPE_TEST_ENGINE (20.10 by default) for the whole project, imports the busybox base
 * image, hands the engine to the tests through provide/inject (see suite.ts), and stops it
 * in teardown. Without a usable engine it prints a banner and the suites skip, unless
 * SHIPSHAPE_REQUIRE_ENGINE=1, where the run fails.
 *
 * If this process dies without teardown (crash, SIGKILL), the engine's watchdog still stops
 * and removes it; SIGINT/SIGTERM/SIGHUP stop it here first.
 */
import fs from 'node:fs'
import path from 'node:path'
import type { TestProject } from 'vitest/node'
import {
  engineSupport,
  repoRoot,
  requireEngine,
  requestedEngineKind,
  startEngine,
  type EngineInfo,
  type EngineKind,
  type PrivateEngine,
} from './engine.js'
import { busyboxImage, busyboxProblem } from './fixtures.js'
import type {} from './suite.js' // ProvidedContext typing for project.provide

function engineSuites(): string[] {
  const dir = path.join(repoRoot, 'test', 'engine')
  try {
    return fs
      .readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.test.ts'))
      .map((f) => path.join('test', 'engine', f))
      .sort()
  } catch {
    return []
  }
}

function banner(kind: EngineKind, reason: string): void {
  const line = '!'.repeat(78)
  const suites = engineSuites()
  process.stderr.write(
    [
      '',
      line,
      `!!! ENGINE TESTS SKIPPED: no private Docker engine ${kind}`,
      `!!! reason: ${reason}`,
      `!!! skipped suites (${suites.length}):`,
      ...suites.map((s) => `!!!   ${s}`),
      '!!! set SHIPSHAPE_REQUIRE_ENGINE=1 to make this a failure (CI does)',
      line,
      '',
    ].join('\n') + '\n',
  )
}

function describeInfo(e: PrivateEngine): EngineInfo {
  // only plain data crosses provide/inject
  return {
    kind: e.kind,
    dockerHost: e.dockerHost,
    socketPath: e.socketPath,
    root: e.root,
    version: e.version,
    apiVersion: e.apiVersion,
    storageDriver: e.storageDriver,
    containerdImageStore: e.containerdImageStore,
    dockerConfig: e.dockerConfig,
    composeV1Path: e.composeV1Path,
    composeV2Path: e.composeV2Path,
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const kind = requestedEngineKind()
  const unavailable = (reason: string) => {
    if (requireEngine()) {
      throw new Error(`SHIPSHAPE_REQUIRE_ENGINE=1 but no private ${kind} engine: ${reason}`)
    }
    banner(kind, reason)
    project.provide('shipshapeEngine', { status: 'unavailable', kind, reason })
    return async () => banner(kind, reason)
  }

  const support = engineSupport(kind)
  if (!support.ok) return unavailable(support.reason)
  const bbProblem = busyboxProblem()
  if (bbProblem) return unavailable(bbProblem)

  const t0 = Date.now()
  let engine: PrivateEngine
  try {
    engine = await startEngine(kind)
  } catch (err) {
    return unavailable((err as Error).message)
  }
  try {
    await busyboxImage(engine)
  } catch (err) {
    await engine.stop()
    return unavailable(`busybox fixture: ${(err as Error).message}`)
  }

  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']
  const onSignal = (sig: NodeJS.Signals) => {
    for (const s of signals) process.removeListener(s, onSignal)
    process.stderr.write(`\n[shipshape harness] ${sig}: stopping the private engine\n`)
    void engine
      .stop()
      .catch((e: Error) => process.stderr.write(`[shipshape harness] ${e.message}\n`))
      .finally(() => process.kill(process.pid, sig))
  }
  for (const s of signals) process.on(s, onSignal)

  process.stderr.write(
    `[shipshape harness] private engine ${kind}: dockerd ${engine.version} (API ${engine.apiVersion}, ` +
      `storage ${engine.storageDriver}${engine.containerdImageStore ? ', containerd image store' : ''}) ` +
      `at ${engine.dockerHost}, ready in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
  )
  project.provide('shipshapeEngine', { status: 'ready', engine: describeInfo(engine) })

  return async () => {
    for (const s of signals) process.removeListener(s, onSignal)
    const t1 = Date.now()
    await engine.stop()
    process.stderr.write(
      `[shipshape harness] private engine ${kind} stopped and removed in ${((Date.now() - t1) / 1000).toFixed(1)} s\n`,
    )
  }
}
