/**
 * Checks a command's `--json` output against its generated JSON Schema
 * (schema/<name>.<version>.json, from the types in scripts/json-shapes.ts).
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as z from 'zod'
import { jsonShapeFile } from '../../../scripts/json-shapes.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')

export function jsonShapeValidator(schema: string): z.ZodType {
  const file = path.join(ROOT, jsonShapeFile(schema))
  return z.fromJSONSchema(JSON.parse(readFileSync(file, 'utf8')))
}

/** The problems of `value` (as JSON.stringify prints it) against the schema its own "schema" names; [] when it fits. */
export function jsonShapeProblems(value: unknown): string[] {
  const json = JSON.parse(JSON.stringify(value)) as { schema?: unknown }
  if (typeof json.schema !== 'string') return ['no "schema" string']
  const r = jsonShapeValidator(json.schema).safeParse(json)
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
}
