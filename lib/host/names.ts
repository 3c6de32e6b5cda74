/**
 * File names are bytes. The kernel and an rclone mount accept any name without '/' and NUL,
 * valid UTF-8 or not (a Latin-1 rip in an old music collection: 'Bj\xf6rk.mp3'). shipshape
 * keeps such names as JavaScript strings by the surrogate-escape convention (PEP 383): every
 * byte that is not part of a valid UTF-8 sequence becomes the lone surrogate U+DC80..U+DCFF.
 * The mapping is a bijection between byte strings and these strings, survives JSON (a lone
 * surrogate is written as "\udcf6" and read back as it was), and is the identity on valid
 * UTF-8. So manifests, journals and resume logs keep such a name exactly; the file-system
 * layer (lib/host/safefs.ts) turns it back into its bytes; people see it escaped (showName).
 *
 *   bytesToName(bytes) → string     (pure)  the name a byte string is known by
 *   nameToBytes(name) → Buffer      (pure)  its bytes again; throws on a lone surrogate that
 *                                            no byte string produces (U+D800..U+DC7F)
 *   isUtf8Name(name) → boolean      (pure)  false when the name holds an escaped byte
 *   showName(name) → string         (pure)  printable: escaped bytes and control characters
 *                                            as \xNN, a backslash as \\
 */

const REPLACEMENT = '\uFFFD'
const SURROGATE = /[\uD800-\uDFFF]/

/** Length of the valid UTF-8 sequence starting at b[i], 0 when it is not one. */
function sequenceLength(b: Uint8Array, i: number): number {
  const c = b[i]!
  if (c < 0x80) return 1
  const cont = (k: number) => i + k < b.length && (b[i + k]! & 0xc0) === 0x80
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0
  if (c >= 0xe0 && c <= 0xef) {
    const c1 = b[i + 1]
    if (c1 === undefined) return 0
    if (c === 0xe0 && c1 < 0xa0) return 0 // overlong
    if (c === 0xed && c1 > 0x9f) return 0 // a surrogate
    return cont(1) && cont(2) ? 3 : 0
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const c1 = b[i + 1]
    if (c1 === undefined) return 0
    if (c === 0xf0 && c1 < 0x90) return 0 // overlong
    if (c === 0xf4 && c1 > 0x8f) return 0 // past U+10FFFF
    return cont(1) && cont(2) && cont(3) ? 4 : 0
  }
  return 0
}

/** The name of a byte string (see the file header). */
export function bytesToName(bytes: Buffer): string {
  const s = bytes.toString('utf8')
  // the decoder put U+FFFD for every invalid sequence: none, or all of them real, means valid
  if (!s.includes(REPLACEMENT) || Buffer.from(s, 'utf8').equals(bytes)) return s
  let out = ''
  let run = 0
  for (let i = 0; i < bytes.length;) {
    const n = sequenceLength(bytes, i)
    if (n) {
      i += n
      continue
    }
    out += bytes.toString('utf8', run, i) + String.fromCharCode(0xdc00 + bytes[i]!)
    i++
    run = i
  }
  return out + bytes.toString('utf8', run)
}

/** The bytes of a name (see the file header). */
export function nameToBytes(name: string): Buffer {
  if (!SURROGATE.test(name)) return Buffer.from(name, 'utf8')
  const parts: Buffer[] = []
  let run = 0
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c < 0xd800 || c > 0xdfff) continue
    if (c <= 0xdbff) {
      const d = name.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++ // a pair: a character beyond the BMP, plain UTF-8
        continue
      }
    }
    if (c < 0xdc80 || c > 0xdcff) {
      throw new Error(`name ${showName(name)} holds a lone surrogate that is not an escaped byte`)
    }
    parts.push(Buffer.from(name.slice(run, i), 'utf8'), Buffer.of(c - 0xdc00))
    run = i + 1
  }
  parts.push(Buffer.from(name.slice(run), 'utf8'))
  return Buffer.concat(parts)
}

/** Whether a name is valid UTF-8 (no escaped byte in it). */
export function isUtf8Name(name: string): boolean {
  return !/[\uDC80-\uDCFF]/.test(name) || Buffer.from(name, 'utf8').equals(nameToBytes(name))
}

/** A name or path as people see it: escaped bytes and control characters as \xNN. */
export function showName(name: string): string {
  // eslint-disable-next-line no-control-regex
  if (!/[\x00-\x1f\x7f-\x9f\\\uD800-\uDFFF\u202A-\u202E\u2066-\u2069]/.test(name)) return name
  let out = ''
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c >= 0xdc80 && c <= 0xdcff && !(i > 0 && isHigh(name.charCodeAt(i - 1)))) {
      out += `\\x${(c - 0xdc00).toString(16)}`
    } else if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) out += `\\x${c.toString(16).padStart(2, '0')}`
    // bidi overrides and isolates would reorder the rest of a log line
    else if ((c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069))
      out += `\\u${c.toString(16)}`
    else if (c === 0x5c) out += '\\\\'
    else out += name[i]
  }
  return out
}

const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff
