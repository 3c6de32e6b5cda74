import Table from 'cli-table3'
import { safeText, table } from '../cli/table.js'
import type { DoctorResult } from './index.js'

const STATUS = { ok: 'ok', warn: 'WARN', fail: 'FAIL' } as const

/** Wraps at spaces; a word longer than the width (a path, a command) is cut, never dropped. */
export function wrap(text: string, width: number): string {
  const lines: string[] = []
  let line = ''
  for (let word of text.split(' ')) {
    while (word.length > width) {
      if (line) lines.push(line)
      line = ''
      lines.push(word.slice(0, width))
      word = word.slice(width)
    }
    if (!line) line = word
    else if (line.length + 1 + word.length <= width) line += ` ${word}`
    else {
      lines.push(line)
      line = word
    }
  }
  if (line) lines.push(line)
  return lines.join('\n')
}

/**
 * The checks as a table for a person: with `width` (a terminal) boxed, detail and fix wrapped
 * to fit; without, borderless lines (logs). Then one summary line.
 */
export function renderDoctor(r: DoctorResult, o: { color: boolean; width?: number }): string {
  const head = ['CHECK', 'STATUS', 'DETAIL', 'FIX']
  const rows = r.checks.map((c) => [
    safeText(c.title),
    STATUS[c.status],
    safeText(c.detail),
    safeText(c.fix ?? ''),
  ])
  let t: Table.Table
  if (o.width) {
    const title = Math.min(36, Math.max(5, ...rows.map((row) => row[0]!.length)) + 2)
    const rest = Math.max(40, o.width - title - 8 - 5) // 5: the borders
    const detail = Math.ceil(rest * 0.55)
    const widths = [title, 8, detail, rest - detail]
    for (const row of rows) for (const i of [0, 2, 3]) row[i] = wrap(row[i]!, widths[i]! - 2)
    t = new Table({
      head,
      colWidths: widths,
      style: o.color ? { head: ['cyan'] } : { head: [], border: [] },
    })
  } else {
    t = table(head, o.color)
  }
  t.push(...rows)
  const count = (s: keyof typeof STATUS) => r.checks.filter((c) => c.status === s).length
  return `${t.toString()}\ndoctor: ${count('ok')} ok, ${count('warn')} warn, ${count('fail')} failed`
}
