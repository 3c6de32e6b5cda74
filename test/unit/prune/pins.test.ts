import { describe, expect, it } from 'vitest'
import { journalPins } from '../../../lib/prune/pins.js'
import type { JournalState, JournalStepState } from '../../../lib/runbook/journal.js'

const id = (s: string): string => `sha256:${s.padEnd(64, '0')}`

function journal(
  operation: string,
  args: Record<string, unknown>,
  notes: Record<string, unknown>[],
  outcome: JournalState['outcome'],
  startedAt: string,
): JournalState {
  const steps = new Map<string, JournalStepState>(
    notes.map((n, i) => [`s${i}`, { status: 'done', notes: n }]),
  )
  return {
    file: `/var/lib/shipshape/journal/${operation}-${startedAt}.jsonl`,
    operation,
    args,
    host: 'h',
    pid: 1,
    startedAt,
    plan: [],
    steps,
    outcome,
    endedAt: outcome ? startedAt : null,
    records: 1,
    damaged: 0,
  }
}

describe('journalPins', () => {
  it('an unfinished run pins every value it names, with the command that finishes it', () => {
    const pins = journalPins(
      [
        journal(
          'migrate-assets',
          { asset: 'music' },
          [{ containers: [{ id: 'c1', name: 'impro-app' }] }],
          null,
          '2026-12-01T00:00:00Z',
        ),
        journal(
          'migrate-assets',
          { asset: 'photos' },
          [{ containers: ['x'] }],
          'ok',
          '2026-12-01T00:00:00Z',
        ),
      ],
      null,
    )
    expect(pins).toHaveLength(1)
    expect(pins[0]!.values).toEqual(expect.arrayContaining(['music', 'c1', 'impro-app']))
    expect(pins[0]!.values).not.toContain('x')
    expect(pins[0]!.reason).toContain('shipshape migrate-assets music --resume')
    expect(pins[0]!.reason).toContain('--rollback')
  })

  it('the last run of a service pins image ids only when it was a rollback', () => {
    const rolled = journal(
      'rollback',
      { service: 'web' },
      [{ fromImageId: id('a1'), containers: ['web'] }],
      'ok',
      '2026-12-02T00:00:00Z',
    )
    const pins = journalPins([rolled], null)
    expect(pins).toEqual([
      { values: [id('a1')], reason: expect.stringContaining('last rollback of web') as string },
    ])
    // a rebuild after it: the rollback is no longer the last word, nothing pinned
    const rebuilt = journal(
      'rebuild',
      { service: 'web' },
      [{ toImageId: id('b') }],
      'ok',
      '2026-12-03T00:00:00Z',
    )
    expect(journalPins([rolled, rebuilt], null)).toEqual([])
    // a rebuild that failed and was undone changed nothing: the rollback still pins
    expect(journalPins([rolled, { ...rebuilt, outcome: 'rolled-back' }], null)).toHaveLength(1)
    // a rolled-back rollback pins nothing either
    expect(journalPins([{ ...rolled, outcome: 'rolled-back' }], null)).toEqual([])
  })
})
