/**
 * A synchronous, push-driven tar reader for lib/docker/archive.ts: chunks in, entries out, with
 * no stream, promise or buffer per entry or per chunk unless the consumer asks to wait.
 *
 * Why not tar-stream's extract() here (tar-stream still packs the test fixtures): an image
 * export is ~1 GB of content the scan skips, in ~25 000 entries, in ~20 000 socket chunks. Per
 * chunk and per entry, extract() goes through an entry stream, an async iterator and a drain;
 * measured on Docker 26.1 (a 1.1 GB export, after the engine's 3 s of preparation): parsing
 * with extract() takes 1.14 s, with this walker 0.80 s, the same as reading the bytes and
 * doing nothing with them (0.80 s). That difference is most of the scan's cost over `docker save`.
 *
 *   new TarWalker(onEntry)
 *     onEntry(header) → Sink | null | Promise<Sink | null>: where the entry's body goes (null:
 *     skipped). A promise pauses the walk until it settles; so does a promise from sink.write()
 *     or sink.end() (end() is called once the body is complete, also for an empty body).
 *   walker.push(chunk) → void | Promise<void>: a promise when the walk paused; push the next
 *     chunk only once it has settled. Throws / rejects on a corrupt header or what a callback
 *     throws.
 *   walker.end(): the input is complete; throws when it stopped inside a header or a body.
 *
 * It reads a tar as the engine's own reader (Go's archive/tar) does when it extracts a layer,
 * so the scan sees the files the engine has: POSIX ustar (with its name prefix) and GNU headers,
 * checksums verified; PAX extended headers (path, linkpath, size, uid, gid, mtime); a PAX
 * global header applies to nothing (Go returns it as an entry of its own); GNU long names and
 * long link names; base-256 numbers, negative ones too. Links, symlinks, directories, devices
 * and fifos have no body whatever their size field says. Two zero blocks end the archive:
 * what follows is ignored; one zero block followed by a header is an error. A NUL typeflag
 * with a final name ending in '/' is a directory (old tars). A header of another format (v7:
 * no 'ustar' magic) is refused, as tar-stream does by default.
 */

export type TarEntryType = 'file' | 'link' | 'symlink' | 'directory' | 'other'

export interface TarHeader {
  name: string
  type: TarEntryType
  /** bytes of body */
  size: number
  mode: number
  uid: number
  gid: number
  mtime: Date
  /** the mtime in whole milliseconds, exact from a PAX 'mtime' record (rounded down) */
  mtimeMs: number
  /** '' when none */
  linkname: string
}

/** How names (ustar fields, GNU long names, PAX path/linkpath) become strings. */
export type NameDecoder = (bytes: Buffer) => string
const utf8Name: NameDecoder = (b) => b.toString('utf8')

/** Where an entry's body goes; a promise from write() or end() pauses the walk. */
export interface Sink {
  write(chunk: Buffer): void | Promise<void>
  end(): void | Promise<void>
}

type LongKind = 'pax' | 'pax-global' | 'gnu-long-path' | 'gnu-long-link'
type RawType = TarEntryType | LongKind | 'device'

const BLOCK = 512
const LONG_HEADER_MAX = 1024 * 1024

/**
 * An octal field (spaces/NULs around), or a GNU base-256 one (high bit of the first byte; two's
 * complement, so 0xff… is negative).
 */
function readNumber(b: Buffer, off: number, len: number): number {
  const end = off + len
  if (b[off]! & 0x80) {
    if (b[off]! & 0x40) {
      let v = 0n
      for (let i = off; i < end; i++) v = (v << 8n) | BigInt(b[i]!)
      return Number(v - (1n << BigInt(8 * len)))
    }
    let v = b[off]! & 0x7f
    for (let i = off + 1; i < end; i++) v = v * 256 + b[i]!
    return v
  }
  let i = off
  while (i < end && (b[i] === 0x20 || b[i] === 0)) i++
  let v = 0
  for (; i < end; i++) {
    const c = b[i]!
    if (c < 0x30 || c > 0x37) break
    v = v * 8 + (c - 0x30)
  }
  return v
}

function readString(b: Buffer, off: number, len: number, decode: NameDecoder): string {
  const nul = b.subarray(off, off + len).indexOf(0)
  return decode(b.subarray(off, nul < 0 ? off + len : off + nul))
}

/** A PAX time ('1700000000.1234', '-1.5') in whole milliseconds, rounded down; NaN if not one. */
export function paxTimeMs(text: string): number {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(text.trim())
  if (!m) return NaN
  const ms = Number(m[2]) * 1000 + Number((m[3] ?? '').padEnd(3, '0').slice(0, 3))
  const exact = (m[3] ?? '').slice(3).replace(/0/g, '') === ''
  return m[1] ? -ms - (exact ? 0 : 1) : ms
}

function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false
  return true
}

/** The header's checksum: its bytes summed, the checksum field counted as spaces. */
export function tarChecksumOk(b: Buffer): boolean {
  let sum = 8 * 0x20
  for (let i = 0; i < 148; i++) sum += b[i]!
  for (let i = 156; i < BLOCK; i++) sum += b[i]!
  return sum === readNumber(b, 148, 8)
}

/** 'ustar' at offset 257 (POSIX 'ustar\0', GNU 'ustar ') and a valid checksum. */
export function isTarHeader(b: Buffer): boolean {
  return (
    b.length >= BLOCK &&
    b[257] === 0x75 &&
    b.toString('latin1', 257, 262) === 'ustar' &&
    tarChecksumOk(b)
  )
}

function typeOf(flag: number): RawType {
  switch (flag) {
    case 0:
    case 0x30: // '0'
    case 0x37: // '7' contiguous file
      return 'file'
    case 0x31:
      return 'link'
    case 0x32:
      return 'symlink'
    case 0x35:
      return 'directory'
    case 0x78: // 'x'
      return 'pax'
    case 0x67: // 'g'
      return 'pax-global'
    case 0x4c: // 'L'
      return 'gnu-long-path'
    case 0x4b: // 'K'
      return 'gnu-long-link'
    case 0x33: // '3' char device
    case 0x34: // '4' block device
    case 0x36: // '6' fifo
      return 'device'
    default:
      return 'other' // unknown: its size is a body
  }
}

type RawHeader = Omit<TarHeader, 'type'> & { type: RawType; nulFlag: boolean }

function decodeHeader(b: Buffer, decode: NameDecoder): RawHeader {
  if (!tarChecksumOk(b)) throw new Error('invalid tar header (checksum mismatch)')
  if (b[257] !== 0x75 || b.toString('latin1', 257, 262) !== 'ustar')
    throw new Error('invalid tar header (not ustar/GNU/PAX)')
  let name = readString(b, 0, 100, decode)
  // POSIX ustar ('ustar\0'): a name prefix; GNU ('ustar ') keeps other fields there
  if (b[262] === 0 && b[345] !== 0) name = `${readString(b, 345, 155, decode)}/${name}`
  const mtime = readNumber(b, 136, 12)
  return {
    name,
    type: typeOf(b[156]!),
    nulFlag: b[156] === 0,
    size: readNumber(b, 124, 12),
    mode: readNumber(b, 100, 8),
    uid: readNumber(b, 108, 8),
    gid: readNumber(b, 116, 8),
    mtime: new Date(mtime * 1000),
    mtimeMs: mtime * 1000,
    linkname: readString(b, 157, 100, decode),
  }
}

/** PAX records: '<len> <key>=<value>\n'; path and linkpath through the name decoder. */
function parsePax(buf: Buffer, decode: NameDecoder): Record<string, string> {
  const out: Record<string, string> = {}
  let i = 0
  while (i < buf.length) {
    const sp = buf.indexOf(0x20, i)
    if (sp < 0) break
    const len = Number(buf.toString('latin1', i, sp))
    if (!Number.isInteger(len) || len <= 0 || i + len > buf.length) break
    const eq = buf.indexOf(0x3d, sp + 1)
    if (eq > sp + 1 && eq < i + len - 1) {
      const key = buf.toString('utf8', sp + 1, eq)
      const value = buf.subarray(eq + 1, i + len - 1)
      out[key] = key === 'path' || key === 'linkpath' ? decode(value) : value.toString('utf8')
    }
    i += len
  }
  return out
}

const padOf = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK

export class TarWalker {
  private readonly head = Buffer.allocUnsafe(BLOCK)
  private fill = 0
  /** body bytes still to come, and the padding after them */
  private remaining = 0
  private pad = 0
  private sink: Sink | null = null
  private long: { kind: LongKind; chunks: Buffer[] } | null = null
  private pax: Record<string, string> | null = null
  private longPath: string | null = null
  private longLink: string | null = null
  /** zero blocks in a row: 1 after the first, 2 = the end of the archive */
  private zeros = 0

  constructor(
    private readonly onEntry: (h: TarHeader) => Sink | null | Promise<Sink | null>,
    /** names as UTF-8 by default (the engine's reader); bytesToName for byte-exact names */
    private readonly decode: NameDecoder = utf8Name,
  ) {}

  push(c: Buffer): void | Promise<void> {
    return this.from(c, 0)
  }

  end(): void {
    if (this.zeros >= 2) return
    if (this.fill > 0) throw new Error('unexpected end of data (in a header)')
    if (this.remaining > 0 || this.long)
      throw new Error(`unexpected end of data (${this.remaining} bytes of an entry missing)`)
  }

  private from(c: Buffer, off: number): void | Promise<void> {
    while (off < c.length && this.zeros < 2) {
      const r = this.step(c, off)
      if (typeof r !== 'number') return r.then((o) => this.from(c, o))
      off = r
    }
  }

  /** Consumes from c at off; the new offset, or a promise of it when the walk must wait. */
  private step(c: Buffer, off: number): number | Promise<number> {
    if (this.remaining > 0) {
      const k = Math.min(this.remaining, c.length - off)
      const part = c.subarray(off, off + k)
      this.remaining -= k
      off += k
      let wait: void | Promise<void> = undefined
      if (this.long) this.long.chunks.push(Buffer.from(part))
      else if (this.sink) wait = this.sink.write(part)
      if (this.remaining === 0) {
        if (wait) return wait.then(() => this.bodyDone()).then(() => off)
        const done = this.bodyDone()
        return done ? done.then(() => off) : off
      }
      return wait ? wait.then(() => off) : off
    }
    if (this.pad > 0) {
      const k = Math.min(this.pad, c.length - off)
      this.pad -= k
      return off + k
    }
    let block: Buffer
    if (this.fill === 0 && c.length - off >= BLOCK) {
      block = c.subarray(off, off + BLOCK)
      off += BLOCK
    } else {
      const k = Math.min(BLOCK - this.fill, c.length - off)
      c.copy(this.head, this.fill, off, off + k)
      this.fill += k
      off += k
      if (this.fill < BLOCK) return off
      this.fill = 0
      block = this.head
    }
    const wait = this.header(block)
    return wait ? wait.then(() => off) : off
  }

  private header(block: Buffer): void | Promise<void> {
    if (block[0] === 0 && isZeroBlock(block)) {
      this.zeros++
      return
    }
    if (this.zeros) throw new Error('invalid tar header (a header after a zero block)')
    const raw = decodeHeader(block, this.decode)
    if (
      raw.type === 'pax' ||
      raw.type === 'pax-global' ||
      raw.type === 'gnu-long-path' ||
      raw.type === 'gnu-long-link'
    ) {
      if (raw.size > LONG_HEADER_MAX) throw new Error(`tar ${raw.type} header over 1 MiB`)
      this.long = { kind: raw.type, chunks: [] }
      this.remaining = raw.size
      this.pad = padOf(raw.size)
      if (raw.size === 0) this.longDone()
      return
    }
    const { nulFlag, ...rest } = raw
    const h = rest as TarHeader
    const pax = this.pax
    if (this.longPath !== null) h.name = this.longPath
    if (this.longLink !== null) h.linkname = this.longLink
    if (pax) {
      if (pax.path) h.name = pax.path
      if (pax.linkpath) h.linkname = pax.linkpath
      if (pax.size) h.size = Number(pax.size)
      if (pax.uid) h.uid = Number(pax.uid)
      if (pax.gid) h.gid = Number(pax.gid)
      if (pax.mtime) {
        h.mtime = new Date(Number(pax.mtime) * 1000)
        const ms = paxTimeMs(pax.mtime)
        if (Number.isFinite(ms)) h.mtimeMs = ms
      }
    }
    this.pax = this.longPath = this.longLink = null
    if (!(h.size >= 0) || !Number.isSafeInteger(h.size)) throw new Error('invalid tar entry size')
    if (nulFlag && h.name.endsWith('/')) h.type = 'directory' // old tars, as Go reads them
    const body = h.type === 'file' || h.type === 'other' ? h.size : 0
    if ((raw.type as RawType) === 'device') h.type = 'other'
    if (body !== h.size) h.size = 0
    const sink = this.onEntry(h)
    if (sink instanceof Promise) return sink.then((s) => this.open(s, body))
    return this.open(sink, body)
  }

  private open(sink: Sink | null, body: number): void | Promise<void> {
    this.sink = sink
    this.remaining = body
    this.pad = padOf(body)
    if (body === 0) return this.bodyDone()
  }

  private bodyDone(): void | Promise<void> {
    if (this.long) return this.longDone()
    const s = this.sink
    this.sink = null
    return s?.end()
  }

  private longDone(): void {
    const { kind, chunks } = this.long!
    this.long = null
    const buf = Buffer.concat(chunks)
    if (kind === 'gnu-long-path') this.longPath = readString(buf, 0, buf.length, this.decode)
    else if (kind === 'gnu-long-link') this.longLink = readString(buf, 0, buf.length, this.decode)
    else if (kind === 'pax') this.pax = parsePax(buf, this.decode)
    // 'pax-global': applies to nothing, as the engine's reader has it
  }
}
