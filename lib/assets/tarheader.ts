/**
 * The tar headers of a backup archive, written byte for byte from a manifest entry (pure).
 *
 *   tarHeader(entry) → Buffer     the header block(s) that precede the entry's content: one
 *                                 POSIX ustar block, after a PAX extended header when a field
 *                                 does not fit ustar
 *   tarPadding(size) → Buffer     zeros up to the next 512-byte block after `size` bytes
 *   TAR_END                       two zero blocks: the end of the archive
 *
 * Names are bytes (lib/host/names.ts): the ustar name/prefix/linkname fields hold them as they
 * are, valid UTF-8 or not, as GNU tar does; a name too long for them goes in a PAX 'path' (or
 * 'linkpath') record, with 'hdrcharset=BINARY' when it is not UTF-8 (POSIX: the value is bytes,
 * not UTF-8; bsdtar honours it, GNU tar ignores it with a warning and keeps the bytes as they
 * are, which restores them byte for byte in the C and UTF-8 locales). Also PAX: 'mtime' with
 * milliseconds when the mtime has a fraction of a second or is before 1970, 'uid'/'gid' past
 * ustar's 7 octal digits, 'size' past its 11 (8 GiB and more: an ML model file).
 */
import { isUtf8Name, nameToBytes } from '../host/names.js'
import type { ManifestEntry } from '../shared/manifest-types.js'

const BLOCK = 512
export const TAR_END = Buffer.alloc(2 * BLOCK)
const MAX_ID = 0o7777777
const MAX_SIZE = 0o77777777777
const TYPE = { file: 0x30, dir: 0x35, symlink: 0x32 } as const

/** Milliseconds as a pax time: decimal seconds ('1700000000.123', '-1.500'). */
export function paxTime(ms: number): string {
  const abs = Math.abs(ms)
  return `${ms < 0 ? '-' : ''}${Math.floor(abs / 1000)}.${String(abs % 1000).padStart(3, '0')}`
}

export function tarPadding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK)
}

function octal(b: Buffer, off: number, len: number, v: number): void {
  // len-1 digits and a NUL
  b.write(v.toString(8).padStart(len - 1, '0'), off, len - 1, 'latin1')
  b[off + len - 1] = 0
}

/** ustar name + prefix for `name`, or null when it fits neither way. */
function splitUstar(name: Buffer): { name: Buffer; prefix: Buffer } | null {
  if (name.length <= 100) return { name, prefix: Buffer.alloc(0) }
  // the prefix ends at a '/': the rest (after it) ≤ 100 bytes, the prefix ≤ 155
  // never at the trailing '/' of a directory: the name field would be empty
  for (let i = name.indexOf(0x2f); i >= 0 && i <= 155; i = name.indexOf(0x2f, i + 1)) {
    const rest = name.length - i - 1
    if (rest <= 100 && rest > 0 && i > 0) {
      return { name: name.subarray(i + 1), prefix: name.subarray(0, i) }
    }
  }
  return null
}

/** One PAX record: '<len> <key>=<value>\n', len counting itself. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'latin1'), value, Buffer.from('\n')])
  let len = body.length + 1
  while (String(len).length + body.length !== len) len = String(len).length + body.length
  return Buffer.concat([Buffer.from(String(len), 'latin1'), body])
}

function ustarBlock(f: {
  name: Buffer
  prefix: Buffer
  mode: number
  uid: number
  gid: number
  size: number
  mtime: number
  type: number
  linkname: Buffer
}): Buffer {
  const b = Buffer.alloc(BLOCK)
  f.name.copy(b, 0)
  octal(b, 100, 8, f.mode)
  octal(b, 108, 8, f.uid)
  octal(b, 116, 8, f.gid)
  octal(b, 124, 12, f.size)
  octal(b, 136, 12, f.mtime)
  b.fill(0x20, 148, 156) // checksum counted as spaces
  b[156] = f.type
  f.linkname.copy(b, 157)
  b.write('ustar\u000000', 257, 8, 'latin1')
  f.prefix.copy(b, 345)
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += b[i]!
  b.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'latin1')
  return b
}

/** The header block(s) of an entry (see the file header). */
export function tarHeader(e: ManifestEntry): Buffer {
  const pax: Buffer[] = []
  let binary = false
  const dirSlash = e.kind === 'dir' ? Buffer.from('/') : Buffer.alloc(0)
  const fullName = Buffer.concat([nameToBytes(e.path), dirSlash])
  let split = splitUstar(fullName)
  if (!split) {
    pax.push(paxRecord('path', fullName))
    binary ||= !isUtf8Name(e.path)
    split = { name: fullName.subarray(0, 100), prefix: Buffer.alloc(0) }
  }
  let linkname: Buffer = Buffer.alloc(0)
  if (e.kind === 'symlink') {
    linkname = nameToBytes(e.linkname ?? '')
    if (linkname.length > 100) {
      pax.push(paxRecord('linkpath', linkname))
      binary ||= !isUtf8Name(e.linkname ?? '')
      linkname = linkname.subarray(0, 100)
    }
  }
  const size = e.kind === 'file' ? e.size : 0
  if (size > MAX_SIZE) pax.push(paxRecord('size', Buffer.from(String(size))))
  const seconds = Math.floor(e.mtimeMs / 1000)
  // a fraction, before 1970, or past ustar's 11 octal digits (year 2242): PAX keeps it exactly
  if (e.mtimeMs % 1000 !== 0 || e.mtimeMs < 0 || seconds > MAX_SIZE)
    pax.push(paxRecord('mtime', Buffer.from(paxTime(e.mtimeMs))))
  if (e.uid > MAX_ID) pax.push(paxRecord('uid', Buffer.from(String(e.uid))))
  if (e.gid > MAX_ID) pax.push(paxRecord('gid', Buffer.from(String(e.gid))))
  const header = ustarBlock({
    ...split,
    mode: e.mode & 0o7777,
    uid: Math.min(e.uid, MAX_ID),
    gid: Math.min(e.gid, MAX_ID),
    size: Math.min(size, MAX_SIZE),
    mtime: Math.min(Math.max(0, seconds), MAX_SIZE),
    type: TYPE[e.kind],
    linkname,
  })
  if (!pax.length) return header
  // the charset record first: it applies to the path records after it
  if (binary) pax.unshift(paxRecord('hdrcharset', Buffer.from('BINARY')))
  const records = Buffer.concat(pax)
  const paxHeader = ustarBlock({
    name: Buffer.concat([Buffer.from('PaxHeader/'), split.name]).subarray(0, 100),
    prefix: Buffer.alloc(0),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: records.length,
    mtime: Math.min(Math.max(0, seconds), MAX_SIZE),
    type: 0x78, // 'x'
    linkname: Buffer.alloc(0),
  })
  return Buffer.concat([paxHeader, records, tarPadding(records.length), header])
}
