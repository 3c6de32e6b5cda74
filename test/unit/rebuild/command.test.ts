/**
 * update --auto's exit code (lib/rebuild/command.ts updateAutoError): the worst of its updates,
 * by severity, not by number.
 */
import { describe, expect, it } from 'vitest'
import { updateAutoError } from '../../../lib/rebuild/command.js'
import { resultOf, SCHEMAS, type UpdateCheck } from '../../../lib/rebuild/result.js'

const line = (service: string, exitCode?: number): UpdateCheck => ({
  service,
  mode: 'apply',
  ref: `${service}:latest`,
  runs: null,
  remoteDigest: null,
  newer: true,
  ...(exitCode === undefined ? {} : { exitCode, outcome: exitCode ? 'rolled-back' : 'updated' }),
  ...(exitCode ? { error: `${service} failed` } : {}),
})

const checked = (...checks: UpdateCheck[]) =>
  resultOf({ schema: SCHEMAS.update, service: '*', kind: 'compose', outcome: 'checked', checks })

describe('updateAutoError', () => {
  it('every update went well (or none ran): no error', () => {
    expect(updateAutoError(checked(line('a', 0), line('b')))).toBeNull()
    expect(
      updateAutoError(
        resultOf({ schema: SCHEMAS.update, service: 'a', kind: 'compose', outcome: 'updated' }),
      ),
    ).toBeNull()
  })

  it.each([
    [[1, 4], 1],
    [[4, 3], 3],
    [[2, 4], 4],
    [[1, 5, 3], 5],
    [[2], 2],
    [[7], 1],
  ])('exit codes %j → %i', (codes, worst) => {
    const err = updateAutoError(checked(...codes.map((c, i) => line(`s${i}`, c))))
    expect((err as { exitCode?: number }).exitCode).toBe(worst)
  })

  it('names each failed update', () => {
    const err = updateAutoError(checked(line('web', 1), line('db', 0), line('cache', 4)))
    expect(err?.message).toBe(
      'update --auto: web: rolled-back (web failed); cache: rolled-back (cache failed)',
    )
  })
})
