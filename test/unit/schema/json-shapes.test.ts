import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { JSON_SHAPES, jsonShapeFile } from '../../../scripts/json-shapes.js'
import { jsonShapeProblems, jsonShapeValidator } from '../support/json-shape.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')

const doctor = {
  schema: 'shipshape.doctor/1',
  generatedAt: '2026-12-07T00:00:00.000Z',
  ok: false,
  checks: [
    { id: 'engine', title: 'Docker engine', status: 'fail', detail: 'no answer', fix: 'start it' },
  ],
}

describe('generated JSON shapes (schema/)', () => {
  it('has a schema file for every entry of scripts/json-shapes.ts, and each reads as a validator', () => {
    for (const { schema } of JSON_SHAPES) {
      expect(existsSync(path.join(ROOT, jsonShapeFile(schema))), schema).toBe(true)
      expect(() => jsonShapeValidator(schema)).not.toThrow()
    }
  })

  it('accepts a doctor result and refuses an unknown key, a wrong status or a missing field', () => {
    expect(jsonShapeProblems(doctor)).toEqual([])
    expect(jsonShapeProblems({ ...doctor, extra: 1 })).not.toEqual([])
    const badStatus = { ...doctor, checks: [{ ...doctor.checks[0], status: 'maybe' }] }
    expect(jsonShapeProblems(badStatus)).not.toEqual([])
    const { ok: _ok, ...noOk } = doctor
    expect(jsonShapeProblems(noOk)).not.toEqual([])
  })

  it('refuses a document whose schema string is another shape', () => {
    expect(() => jsonShapeProblems({ ...doctor, schema: 'shipshape.nothing/1' })).toThrow()
    expect(jsonShapeValidator('shipshape.report/1').safeParse(doctor).success).toBe(false)
  })
})
