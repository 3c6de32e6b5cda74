/**
 * prune's one runbook step on fakes: the record written (and its path noted) before the first
 * removal, every candidate's result kept, a stop leaves the rest "interrupted", verify only reads.
 */
import { describe, expect, it } from 'vitest'
import type { Config } from '../../../lib/config/index.js'
import type { Engine } from '../../../lib/docker/engine.js'
import type { DiskUsage } from '../../../lib/docker/types.js'
import type { PruneResult } from '../../../lib/prune/result.js'
import { removeStep, type PruneRun } from '../../../lib/prune/steps.js'
import type { Candidate } from '../../../lib/prune/types.js'
import { fakeJournal } from '../support/asset-fakes.js'

const candidate = (kind: Candidate['kind'], name: string): Candidate =>
  ({ kind, name, id: name, sizeBytes: 10, reason: 'test' }) as Candidate

function fakeRun(cands: Candidate[], events: string[]): PruneRun {
  const engine = {
    listImages: async () => [],
    removeContainer: async (id: string) => {
      events.push(`rm container ${id}`)
      return id !== 'gone'
    },
    removeVolume: async (id: string) => {
      events.push(`rm volume ${id}`)
      if (id === 'busy') throw new Error('volume is in use')
      return true
    },
  } as unknown as Engine
  return {
    config: { stateDir: '/state' } as Config,
    engine,
    now: new Date('2026-12-08T03:00:00.000Z'),
    plan: {
      candidates: cands,
      kept: [],
      totals: { count: cands.length, bytes: 10, byKind: {} },
      buildCacheKeepBytes: null,
    } as unknown as PruneRun['plan'],
    usage: {} as DiskUsage,
    result: { record: null } as PruneResult,
    results: new Map(),
    stopping: false,
    writeRecord: async (file, data) => {
      events.push(`record ${file} ${(data as { state: string }).state}`)
    },
  }
}

describe('prune runbook: the remove step', () => {
  it('writes the record (path noted first) before removing; keeps each result, failures too', async () => {
    const events: string[] = []
    const cands = [
      candidate('container', 'old'),
      candidate('container', 'gone'),
      candidate('volume', 'busy'),
    ]
    const run = fakeRun(cands, events)
    const j = fakeJournal()
    expect(await removeStep.verify!(run)).toBe(false)
    await removeStep.run(run, j)
    const record = '/state/prune/prune-20261208T030000Z.json'
    expect(j.notes).toEqual({ record })
    expect(run.result.record).toBe(record)
    expect(events[0]).toBe(`record ${record} started`)
    expect(events.slice(1).sort()).toEqual([
      'rm container gone',
      'rm container old',
      'rm volume busy',
    ])
    expect([...run.results.values()].map((r) => r.status)).toEqual(['removed', 'gone', 'failed'])
    expect(run.results.get(cands[2]!)?.error).toBe('volume is in use')
    // verify only reads: asking again changes nothing
    const before = events.length
    expect(await removeStep.verify!(run)).toBe(true)
    expect(events.length).toBe(before)
  })

  it('once stopping, the removals not begun are left: failed "not removed: interrupted"', async () => {
    const events: string[] = []
    const cands = [candidate('container', 'a'), candidate('volume', 'v')]
    const run = fakeRun(cands, events)
    run.stopping = true
    await removeStep.run(run, fakeJournal())
    expect(events.filter((e) => e.startsWith('rm '))).toEqual([])
    expect([...run.results.values()]).toEqual([
      { status: 'failed', error: 'not removed: interrupted' },
      { status: 'failed', error: 'not removed: interrupted' },
    ])
  })

  it('the preview names each candidate; a plan taken over runs again (verify false until done)', async () => {
    const run = fakeRun([candidate('volume', 'v')], [])
    expect(removeStep.preview(run)).toEqual(['volume v'])
    expect(await removeStep.verify!(run)).toBe(false)
    await removeStep.run(run, fakeJournal())
    // a second run of the step (a crash before step-done): every removal again, "gone" is fine
    await removeStep.run(run, fakeJournal())
    expect(await removeStep.verify!(run)).toBe(true)
  })
})
