/**
 * Output of the process runner's children (lib/host/run.ts): cut into lines (a line without end
 * kept bounded), and the 0600 log a run appends to.
 */
import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import type { Readable } from 'node:stream'

/** a "line" without a newline this long goes to the log as it is; its last KEEP_CHARS are kept */
const MAX_LINE_CHARS = 64 * 1024
const KEEP_CHARS = 4096
export const TAIL_LINES = 20

/**
 * Cuts one output stream into lines. Complete lines (and the last one, at the end) go to
 * `line` with their terminator; a line longer than MAX_LINE_CHARS goes out in pieces through
 * `raw` and only its last KEEP_CHARS reach `line`.
 */
export class LineCutter {
  private buf = ''
  /** chars at the start of buf already written out through raw */
  private written = 0
  private cut = false

  constructor(
    private readonly raw: (text: string) => void,
    private readonly line: (text: string, line: string) => void,
  ) {}

  push(chunk: string): void {
    this.buf += chunk
    let nl: number
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const text = this.buf.slice(this.written, nl + 1)
      const line = this.buf.slice(0, nl).replace(/\r$/, '')
      this.line(text, this.cut ? `…${line.slice(-KEEP_CHARS)}` : line)
      this.buf = this.buf.slice(nl + 1)
      this.written = 0
      this.cut = false
    }
    if (this.buf.length > MAX_LINE_CHARS) {
      this.raw(this.buf.slice(this.written))
      this.buf = this.buf.slice(-KEEP_CHARS)
      this.written = this.buf.length
      this.cut = true
    }
  }

  end(): void {
    if (this.buf === '' && !this.cut) return
    this.push('\n')
  }
}

/** Feeds a stream's text to a LineCutter until it ends or closes. */
export function follow(stream: Readable | null, cutter: LineCutter): void {
  if (!stream) return
  stream.setEncoding('utf8')
  stream.on('data', (d: string) => cutter.push(d))
  // end() twice is harmless: the buffer is empty after the first
  stream.once('end', () => cutter.end())
  stream.once('close', () => cutter.end())
}

/** What a terminal would show of a line: the part after its last carriage return. */
export const shown = (line: string) => line.slice(line.lastIndexOf('\r') + 1)

export function openLog(file: string): Promise<WriteStream> {
  return mkdir(path.dirname(file), { recursive: true, mode: 0o700 }).then(
    () =>
      new Promise<WriteStream>((resolve, reject) => {
        const ws = createWriteStream(file, { flags: 'a', mode: 0o600 })
        ws.once('open', () => {
          ws.off('error', reject)
          resolve(ws)
        })
        ws.once('error', reject)
      }),
  )
}

export function closeLog(ws: WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (ws.destroyed) return resolve()
    ws.end(() => resolve())
    ws.once('error', () => resolve())
  })
}
