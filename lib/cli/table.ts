import Table from 'cli-table3'

// Borderless, like `docker system df`; boxes only where cells span several lines.
const PLAIN = Object.fromEntries(
  [
    'top',
    'top-mid',
    'top-left',
    'top-right',
    'bottom',
    'bottom-mid',
    'bottom-left',
    'bottom-right',
    'left',
    'left-mid',
    'mid',
    'mid-mid',
    'right',
    'right-mid',
  ].map((k) => [k, '']),
) as Record<string, string>

/** A table for a person: borderless, or boxed with wrapped cells when colWidths are given. */
export function table(head: string[], color: boolean, colWidths?: (number | null)[]): Table.Table {
  return new Table({
    head,
    style: color ? { head: ['cyan'] } : { head: [], border: [] },
    ...(colWidths
      ? { colWidths, wordWrap: true, wrapOnWordBoundary: false }
      : {
          chars: { ...PLAIN, middle: '  ' },
          style: { head: color ? ['cyan'] : [], border: [], 'padding-left': 0, 'padding-right': 0 },
        }),
  })
}

export const clip = (s: string, n: number): string => (s.length > n ? s.slice(0, n - 1) + '…' : s)

/** "/bin/sh -c #(nop)  CMD [...]" → "CMD [...]": how a person reads `docker history`. */
export function instruction(createdBy: string): string {
  const s = createdBy.trim()
  const nop = /^\/bin\/sh -c #\(nop\)\s*/.exec(s)
  if (nop) return s.slice(nop[0].length).trim()
  if (s.startsWith('/bin/sh -c ')) return 'RUN ' + s.slice('/bin/sh -c '.length).trim()
  // classic builder with build args: "|2 A=1 B=2 /bin/sh -c cmd"
  const args = /^\|\d+ (.*?) \/bin\/sh -c (.*)$/s.exec(s)
  if (args) return `RUN ${args[2]!.trim()}   (build args: ${args[1]})`
  return s
}

/** What made a layer: its instruction, else the engine's comment ("Imported from -"). */
export function layerLabel(l: { createdBy: string; comment: string }): string {
  return instruction(l.createdBy) || (l.comment ? `(${l.comment})` : '(no instruction)')
}

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g

/** A name from the host or an image, made harmless for a terminal: control characters
 *  (escape sequences, newlines, tabs) are shown as \xNN instead of acting. */
export function safeText(s: string): string {
  return s.replace(CONTROL, (c) =>
    c === '\n' ? '\\n' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  )
}

/** Every string of a value through safeText (for renderers; JSON output escapes by itself). */
export function displaySafe<T>(value: T): T {
  if (typeof value === 'string') return safeText(value) as T
  if (Array.isArray(value)) return value.map(displaySafe) as T
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = displaySafe(v)
    return out as T
  }
  return value
}
