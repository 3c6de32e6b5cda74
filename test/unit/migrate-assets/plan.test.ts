import { describe, expect, it } from 'vitest'
import {
  notedRestart,
  planMigrate,
  priorPathsChanged,
  stampFrom,
  type PriorNotes,
} from '../../../lib/migrate-assets/plan.js'
import type { Refusal } from '../../../lib/shared/refusal.js'

const FRESH = '20261207T000000Z'
const prior = (steps: Record<string, Record<string, unknown>>): PriorNotes => ({
  file: '/var/lib/shipshape/journals/x.json',
  steps: new Map(Object.entries(steps).map(([id, notes]) => [id, { notes }])),
})
const pre = (
  o: { migrated?: boolean; refusals?: Refusal[]; restart?: { id: string; name: string }[] } = {},
) => ({
  migrated: o.migrated ?? false,
  refusals: o.refusals ?? [],
  restart: o.restart ?? [{ id: 'c1', name: 'web' }],
})

describe('planMigrate (pure)', () => {
  it('a new run: a fresh stamp, the preflight’s containers', () => {
    expect(planMigrate({ pre: pre(), continuing: false, freshStamp: FRESH }, undefined)).toEqual({
      kind: 'run',
      stamp: FRESH,
      restart: [{ id: 'c1', name: 'web' }],
    })
  })

  it('already migrated: nothing to do, unless an unfinished run is being continued', () => {
    const facts = { pre: pre({ migrated: true }), continuing: false, freshStamp: FRESH }
    expect(planMigrate(facts, undefined)).toEqual({ kind: 'already-migrated' })
    expect(planMigrate({ ...facts, continuing: true }, prior({})).kind).toBe('run')
  })

  it('refused with every refusal; a resume is not held back by source/dest mid-way', () => {
    const source: Refusal = { check: 'source', message: 'source is a symlink' }
    const space: Refusal = { check: 'space', message: 'no room' }
    const refusals = [source]
    expect(
      planMigrate({ pre: pre({ refusals }), continuing: false, freshStamp: FRESH }, undefined),
    ).toEqual({ kind: 'refused', refusals })
    expect(
      planMigrate({ pre: pre({ refusals }), continuing: true, freshStamp: FRESH }, prior({})).kind,
    ).toBe('run')
    expect(
      planMigrate(
        { pre: pre({ refusals: [source, space] }), continuing: true, freshStamp: FRESH },
        prior({}),
      ).kind,
    ).toBe('refused')
    // --resume without an unfinished run: the refusals stand
    expect(
      planMigrate({ pre: pre({ refusals }), continuing: true, freshStamp: FRESH }, undefined).kind,
    ).toBe('refused')
  })

  it('a resume: the stamp the backup step noted, the containers the stop step noted', () => {
    const p = prior({
      backup: { stamp: '20261125T150405Z' },
      stop: { containers: [{ id: 'c9', name: 'old' }] },
    })
    expect(planMigrate({ pre: pre(), continuing: true, freshStamp: FRESH }, p)).toEqual({
      kind: 'run',
      stamp: '20261125T150405Z',
      restart: [{ id: 'c9', name: 'old' }],
    })
  })

  it('stampFrom: only a well-formed noted stamp is used', () => {
    expect(stampFrom('20261125T150405Z', FRESH)).toBe('20261125T150405Z')
    expect(stampFrom('../../etc', FRESH)).toBe(FRESH)
    expect(stampFrom(42, FRESH)).toBe(FRESH)
  })

  it('notedRestart: null when the stop step noted nothing', () => {
    expect(notedRestart(undefined)).toBeNull()
    expect(notedRestart(prior({ stop: {} }))).toBeNull()
    expect(notedRestart(prior({ stop: { containers: [] } }))).toEqual([])
  })

  it('priorPathsChanged: the noted paths the config now sets otherwise', () => {
    const asset = { source: '/srv/a', dest: '/mnt/rd/a', mount: '/mnt/rd' }
    expect(priorPathsChanged({ source: '/srv/a', dest: '/mnt/rd/a' }, asset)).toEqual([])
    expect(priorPathsChanged({ source: '/srv/b', mount: '/mnt/x', stamp: 'x' }, asset)).toEqual([
      { key: 'source', was: '/srv/b', now: '/srv/a' },
      { key: 'mount', was: '/mnt/x', now: '/mnt/rd' },
    ])
  })
})
