/**
 * A Proposal as YAML with its comments (the `yaml` package's Document API: commentBefore above a
 * key, comment at the end of its line; entries left out as comment blocks after a section's
 * active ones). Pure.
 */
import { Document, isMap, isScalar, isSeq, type Node, type Pair, type YAMLMap } from 'yaml'
import type { DisabledEntry, KeyPath, Note, Proposal } from './propose.js'

export interface RenderOptions {
  /** JSON Schema reference for editors (yaml-language-server), relative to the file or absolute */
  schemaRef?: string
}

const TO_STRING = { lineWidth: 0, flowCollectionPadding: false, indentSeq: true } as const

/** Lines → a yaml comment string (each line gets "# "; empty lines stay "#"). */
const commentText = (lines: string[]) => lines.map((l) => (l ? ` ${l}` : '')).join('\n')

const join = (a: string | null | undefined, b: string, sep: string) => (a ? `${a}${sep}${b}` : b)

function pairOf(coll: YAMLMap, key: string): Pair<unknown, unknown> | undefined {
  return coll.items.find((p) => (isScalar(p.key) ? p.key.value === key : p.key === key))
}

/** Attaches a note to the node its path names (nothing when the path names nothing). */
function attach(doc: Document, note: Note): void {
  const { path } = note
  if (path.length === 0) {
    if (note.before?.length)
      doc.commentBefore = join(doc.commentBefore, commentText(note.before), '\n')
    return
  }
  const last = path[path.length - 1]!
  const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true)
  if (typeof last === 'number') {
    if (!isSeq(parent)) return
    const item = parent.items[last]
    if (!isScalar(item) && !isMap(item) && !isSeq(item)) return
    const node = item as Node
    if (note.before?.length)
      node.commentBefore = join(node.commentBefore, commentText(note.before), '\n')
    if (note.after) node.comment = join(node.comment, ` ${note.after}`, ';')
    return
  }
  if (!isMap(parent)) return
  const pair = pairOf(parent, last)
  if (!pair || !isScalar(pair.key)) return
  const key = pair.key
  if (note.before?.length)
    key.commentBefore = join(key.commentBefore, commentText(note.before), '\n')
  if (note.after) {
    const v = pair.value
    // a scalar or a flow collection: at the end of its line; a block collection: after the key
    const target = isScalar(v) || ((isMap(v) || isSeq(v)) && v.flow) ? (v as Node) : (key as Node)
    target.comment = join(target.comment, ` ${note.after}`, ';')
  }
}

/** Short lists of plain values in flow style ([a, b]); empty maps as {}. */
function flowShortCollections(doc: Document, notes: Note[]): void {
  const annotated = new Set(
    notes
      .filter((n) => typeof n.path[n.path.length - 1] === 'number')
      .map((n) => JSON.stringify(n.path.slice(0, -1))),
  )
  const walk = (node: unknown, at: KeyPath) => {
    if (isMap(node)) {
      if (node.items.length === 0) node.flow = true
      for (const p of node.items) if (isScalar(p.key)) walk(p.value, [...at, String(p.key.value)])
    } else if (isSeq(node)) {
      if (node.items.every((i) => isScalar(i)) && !annotated.has(JSON.stringify(at)))
        node.flow = true
      node.items.forEach((i, n) => walk(i, [...at, n]))
    }
  }
  walk(doc.contents, [])
}

function renderDocument(value: Record<string, unknown>, notes: Note[]): Document {
  const doc = new Document(value)
  flowShortCollections(doc, notes)
  for (const n of notes) attach(doc, n)
  return doc
}

/** An entry as comment lines: why, then its YAML (with its own comments), all commented out. */
export function disabledLines(d: DisabledEntry): string[] {
  // notes on the entry itself join the why (a comment inside the block would read "# # …")
  const own = d.notes.filter((n) => n.path.length === 0).flatMap((n) => n.before ?? [])
  const doc = renderDocument(
    { [d.name]: d.entry },
    d.notes.filter((n) => n.path.length > 0).map((n) => ({ ...n, path: [d.name, ...n.path] })),
  )
  const body = doc.toString(TO_STRING).trimEnd().split('\n')
  return [...d.why, ...own, ...body]
}

/** The proposal as YAML text: header, the config with its notes, the disabled entries. */
export function renderProposal(p: Proposal, o: RenderOptions = {}): string {
  const doc = renderDocument(p.config, p.notes)
  const head = [
    ...(o.schemaRef ? [`yaml-language-server: $schema=${o.schemaRef}`, ''] : []),
    ...p.header,
  ]
  doc.commentBefore = doc.commentBefore
    ? `${commentText(head)}\n${doc.commentBefore}`
    : commentText(head)
  const top = doc.contents
  if (isMap(top)) {
    // a blank line before each section and each commented key; plain settings stay together
    top.items.forEach((pair, i) => {
      const section = isMap(pair.value) && !pair.value.flow
      if (i > 0 && isScalar(pair.key) && (section || pair.key.commentBefore))
        pair.key.spaceBefore = true
    })
    for (const section of ['services', 'assets'] as const) {
      const t = p.trailing[section]
      const lines: string[] = []
      for (const d of t.disabled) {
        if (lines.length) lines.push('')
        lines.push(...disabledLines(d))
      }
      if (t.lines.length) {
        if (lines.length) lines.push('')
        lines.push(...t.lines)
      }
      const node = pairOf(top, section)?.value
      if (lines.length && isMap(node)) node.comment = join(node.comment, commentText(lines), '\n')
    }
  }
  return doc.toString(TO_STRING)
}
