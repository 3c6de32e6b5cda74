/**
 * How engine test files get the private engine started by the engine project's globalSetup
 * (test/harness/global-setup.ts):
 *
 *   import { describeEngine, engineTest as test, getEngine } from '../harness/suite.js'
 *
 *   describeEngine('report', (getEngine) => {
 *     beforeAll(() => { const engine = getEngine(); ... })   // in hooks
 *     test('sees images', async ({ engine }) => { ... })   // engine: PrivateEngine
 *   })
 *
 * Without an engine the suite is skipped LOUDLY (its name says why; the globalSetup prints a
 * banner), or the run fails when SHIPSHAPE_REQUIRE_ENGINE=1.
 */
import { describe, inject, test } from 'vitest'
import {
  attachEngine,
  requireEngine,
  type EngineInfo,
  type EngineKind,
  type PrivateEngine,
} from './engine.js'

export type ProvidedEngine =
  | { status: 'ready'; engine: EngineInfo }
  | { status: 'unavailable'; kind: EngineKind; reason: string }

declare module 'vitest' {
  export interface ProvidedContext {
    shipshapeEngine: ProvidedEngine
  }
}

/** What the globalSetup provided (an 'unavailable' state outside the engine project). */
export function engineState(): ProvidedEngine {
  const provided = inject('shipshapeEngine') as ProvidedEngine | undefined
  return (
    provided ?? {
      status: 'unavailable',
      kind: '20.10',
      reason: 'no engine globalSetup ran (engine tests belong to the "engine" vitest project)',
    }
  )
}

let attached: PrivateEngine | undefined

/** The private engine of this run; throws when there is none. */
export function getEngine(): PrivateEngine {
  const state = engineState()
  if (state.status !== 'ready') throw new Error(`no private ${state.kind} engine: ${state.reason}`)
  attached ??= attachEngine(state.engine)
  return attached
}

const warned = new Set<string>()

/**
 * describe() for suites that need the private engine. Skips (loudly) when there is none,
 * and fails instead when SHIPSHAPE_REQUIRE_ENGINE=1.
 *
 * `anyEngine`: the suite's subject is not the engine (rclone mounts, asset trees): CI's runs on
 * the other engines of the matrix set SHIPSHAPE_ONE_ENGINE_SUITES=skip and leave it to the first
 * run (said on stderr, not a failure); SHIPSHAPE_ONE_ENGINE_SUITES=only runs just those suites (CI
 * gives them an engine of their own, beside the first). Without that variable every suite runs.
 */
export function describeEngine(
  name: string,
  fn: (getEngine: () => PrivateEngine) => void,
  o: { anyEngine?: boolean } = {},
): void {
  const state = engineState()
  const split = process.env.SHIPSHAPE_ONE_ENGINE_SUITES
  if (split !== undefined && split !== 'skip' && split !== 'only') {
    throw new Error(`SHIPSHAPE_ONE_ENGINE_SUITES=${split}: use skip or only`)
  }
  if (!o.anyEngine && split === 'only') {
    // CI runs the one-engine suites on a second engine of the first kind, in parallel
    describe.skip(`${name} [this run has only the one-engine suites]`, () => fn(getEngine))
    return
  }
  if (o.anyEngine && split === 'skip') {
    if (!warned.has(name)) {
      warned.add(name)
      process.stderr.write(
        `\nengine suite "${name}" needs only one engine: it runs on the matrix's first engine\n`,
      )
    }
    describe.skip(`${name} [runs on the first engine of the matrix only]`, () => fn(getEngine))
    return
  }
  if (state.status === 'ready') {
    describe(name, () => fn(getEngine))
    return
  }
  if (requireEngine()) {
    describe(name, () => {
      test('private engine is available (SHIPSHAPE_REQUIRE_ENGINE=1)', () => {
        throw new Error(`no private ${state.kind} engine: ${state.reason}`)
      })
    })
    return
  }
  if (!warned.has(name)) {
    warned.add(name)
    process.stderr.write(
      `\n!!! SKIPPED engine suite "${name}": no private ${state.kind} engine (${state.reason})\n`,
    )
  }
  describe.skip(`${name} [SKIPPED: no private ${state.kind} engine: ${state.reason}]`, () =>
    fn(getEngine))
}

/** test() with an `engine` fixture: the run's PrivateEngine. */
export const engineTest = test.extend<{ engine: PrivateEngine }>({
  // eslint-disable-next-line no-empty-pattern
  engine: async ({}, use) => {
    await use(getEngine())
  },
})
