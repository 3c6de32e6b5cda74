/**
 * Turns YAML errors and schema issues into problems that name the file, line, column and key.
 */
import { isMap, isScalar, isSeq, visit, type Alias, type Document, type LineCounter } from 'yaml'
import type * as z from 'zod'
import { ConfigError, type ConfigProblem } from '../errors.js'

type PathSegment = PropertyKey

/** "report.bigImage", "services.whisperx.health.url", "report.paths[1]". */
export function keyPath(path: readonly PathSegment[]): string {
  let out = ''
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`
    else out += (out ? '.' : '') + String(seg)
  }
  return out
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}:${p.column ?? 1}`
  return p.key ? `${where}: ${p.key}: ${p.message}` : `${where}: ${p.message}`
}

export function configError(problems: ConfigProblem[]): ConfigError {
  const sorted = [...problems].sort(
    (a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0),
  )
  const lines = sorted.map(formatProblem)
  const files = [...new Set(sorted.map((p) => p.file))]
  const message =
    lines.length === 1
      ? (lines[0] ?? '')
      : `${lines.length} problems in ${files.join(', ')}:\n${lines.join('\n')}`
  return new ConfigError(message, sorted)
}

interface Pos {
  line: number
  column: number
}

/** Finds where a path is in the YAML document, as deep as the document goes. */
export class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** Where the first alias that points nowhere is (yaml throws on it without a position). */
  brokenAlias(): Pos | undefined {
    let found: Alias | undefined
    visit(this.doc, {
      Alias: (_key, node) => {
        if (node.resolve(this.doc) !== undefined) return undefined
        found = node
        return visit.BREAK
      },
    })
    return this.start(found)
  }

  private start(node: unknown): Pos | undefined {
    const range = (node as { range?: [number, number, number] } | null)?.range
    if (!range) return undefined
    const { line, col } = this.lines.linePos(range[0])
    return { line, column: col }
  }

  /**
   * The value's position when the whole path exists and has a value; otherwise the deepest
   * key that exists (for a missing key: its parent's key). `atKey` points at the last key
   * itself (unknown keys, bad record names).
   */
  locate(path: readonly PathSegment[], atKey = false): Pos {
    let node: unknown = this.doc.contents
    let pos: Pos = this.start(node) ?? { line: 1, column: 1 }
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find(
          (p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg),
        )
        if (!pair) return pos
        pos = this.start(pair.key) ?? pos
        node = pair.value
      } else if (isSeq(node) && typeof seg === 'number' && node.items[seg] !== undefined) {
        node = node.items[seg]
        pos = this.start(node) ?? pos
      } else {
        return pos
      }
    }
    if (atKey) return pos
    const range = (node as { range?: [number, number, number] } | null)?.range
    return range && range[1] > range[0] ? (this.start(node) ?? pos) : pos
  }
}

export function yamlProblems(doc: Document, file: string): ConfigProblem[] {
  return doc.errors.map((e) => {
    const first = e.message.split('\n')[0] ?? e.message
    const message = first.replace(/ at line \d+, column \d+:?$/, '')
    const pos = e.linePos?.[0]
    return {
      file,
      line: pos?.line,
      column: pos?.col,
      key: '',
      message: `YAML syntax: ${message}`,
    }
  })
}

const SECRET_KEY = /(password|passwd|secret|token|api[-_]?key|credentials?)$/i

function describeInput(input: unknown): string {
  if (input === null) return 'nothing'
  if (Array.isArray(input)) return 'a list'
  if (typeof input === 'object') return 'a mapping'
  if (typeof input === 'string') return `'${input}'`
  return String(input)
}

const EXPECTED: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
}

function closest(word: string, candidates: string[]): string | undefined {
  const lower = word.toLowerCase()
  let best: string | undefined
  let bestDist = Infinity
  for (const c of candidates) {
    const d = editDistance(lower, c.toLowerCase())
    if (d < bestDist) {
      best = c
      bestDist = d
    }
  }
  return bestDist <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost)
    }
    prev = cur
  }
  return prev[b.length] ?? 0
}

function unknownKeyMessage(key: string, known: string[]): string {
  if (SECRET_KEY.test(key)) {
    return (
      `'${key}' is not allowed: secrets never go in the config file — ` +
      'name an environment variable with passwordEnv (and userEnv), or a root-only file with passwordFile'
    )
  }
  const guess = closest(key, known)
  if (guess) return `unknown key '${key}' (did you mean '${guess}'?)`
  return known.length > 0
    ? `unknown key '${key}' (allowed: ${known.join(', ')})`
    : `unknown key '${key}'`
}

interface SchemaDef {
  type: string
  shape?: Record<string, { _zod: { def: SchemaDef } }>
  innerType?: { _zod: { def: SchemaDef } }
  in?: { _zod: { def: SchemaDef } }
  valueType?: { _zod: { def: SchemaDef } }
  element?: { _zod: { def: SchemaDef } }
}

/** The keys an object schema allows at a path (for "did you mean"). */
export function knownKeys(schema: z.ZodType, path: readonly PathSegment[]): string[] {
  let def: SchemaDef | undefined = (schema as unknown as { _zod: { def: SchemaDef } })._zod.def
  const unwrap = () => {
    while (def) {
      const next = def.innerType ?? def.in
      if (
        !next ||
        !['optional', 'default', 'prefault', 'nullable', 'pipe', 'readonly'].includes(def.type)
      )
        break
      def = next._zod.def
    }
  }
  unwrap()
  for (const seg of path) {
    if (!def) return []
    if (def.type === 'object') def = def.shape?.[String(seg)]?._zod.def
    else if (def.type === 'record') def = def.valueType?._zod.def
    else if (def.type === 'array') def = def.element?._zod.def
    else return []
    unwrap()
  }
  return def?.type === 'object' ? Object.keys(def.shape ?? {}) : []
}

export function schemaProblems(
  issues: readonly z.core.$ZodIssue[],
  file: string,
  locator: Locator,
  schema: z.ZodType,
): ConfigProblem[] {
  const problems: ConfigProblem[] = []
  const add = (path: readonly PathSegment[], message: string, atKey = false) => {
    const { line, column } = locator.locate(path, atKey)
    problems.push({ file, line, column, key: keyPath(path) || '(top level)', message })
  }
  for (const issue of issues) {
    const input = (issue as { input?: unknown }).input
    switch (issue.code) {
      case 'unrecognized_keys': {
        const known = knownKeys(schema, issue.path)
        for (const key of issue.keys) add([...issue.path, key], unknownKeyMessage(key, known), true)
        break
      }
      case 'invalid_key':
        add(
          issue.path,
          `bad name '${String(input)}': ${issue.issues[0]?.message ?? issue.message}`,
          true,
        )
        break
      case 'invalid_type':
        if (input === undefined) add(issue.path, 'is required')
        else if (issue.message.startsWith('Invalid input:'))
          add(
            issue.path,
            `expected ${EXPECTED[issue.expected] ?? issue.expected}, got ${describeInput(input)}`,
          )
        else add(issue.path, issue.message)
        break
      case 'invalid_value':
        add(
          issue.path,
          issue.message.startsWith('Invalid option')
            ? `${describeInput(input)} is not one of ${issue.values.map(String).join(', ')}`
            : issue.message,
        )
        break
      default:
        add(issue.path, issue.message)
    }
  }
  return problems
}
