/**
 * Remote specs (pure): rclone's `name[,k=v…]:path` / `:backend[,k=v…]:path` parsed the way rclone
 * does, shown with their credentials redacted (displayRemote, redactRcloneText), joined with a
 * relative path, and read from a fuse.rclone mount's mountinfo source.
 */
import type { MountEntry } from './mountinfo.js'

interface ParsedSpec {
  /** `name` or `:backend`, without parameters */
  name: string
  params: { key: string; value?: string }[]
  /** the spec up to and including that colon, as written */
  head: string
  /** everything after the colon that ends name and parameters */
  path: string
}

/**
 * Splits `name[,k=v…]:path` / `:backend[,k=v…]:path` the way rclone does (values with `,` or `:`
 * are quoted with ' or ", a doubled quote escapes it). null: a local path, not a remote.
 */
function parseSpec(spec: string): ParsedSpec | null {
  let i = spec.startsWith(':') ? 1 : 0
  while (i < spec.length && !',:/\\'.includes(spec[i] as string)) i++
  const name = spec.slice(0, i)
  if (name === '' || name === ':') return null
  const params: ParsedSpec['params'] = []
  while (spec[i] === ',') {
    const start = ++i
    while (i < spec.length && !'=,:'.includes(spec[i] as string)) i++
    const key = spec.slice(start, i)
    if (spec[i] !== '=') {
      params.push({ key })
      continue
    }
    i++
    const q = spec[i]
    if (q === "'" || q === '"') {
      let value = ''
      i++
      for (;;) {
        if (i >= spec.length) return null
        if (spec[i] === q) {
          if (spec[i + 1] === q) {
            value += q
            i += 2
            continue
          }
          i++
          break
        }
        value += spec[i]
        i++
      }
      params.push({ key, value })
    } else {
      const start2 = i
      while (i < spec.length && !',:'.includes(spec[i] as string)) i++
      params.push({ key, value: spec.slice(start2, i) })
    }
  }
  if (spec[i] !== ':') return null
  return { name, params, head: spec.slice(0, i + 1), path: spec.slice(i + 1) }
}

function redactedHead(p: ParsedSpec): string {
  const params = p.params.map((x) => (x.value === undefined ? `,${x.key}` : `,${x.key}=***`))
  return `${p.name}${params.join('')}:`
}

export const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@'"]+@/gi

/**
 * A remote spec safe to print, log or journal: connection-string parameter values and URL
 * userinfo become `***` (parameter names stay, they say what was set).
 */
export function displayRemote(remote: string): string {
  const p = parseSpec(remote)
  if (p) return (redactedHead(p) + p.path).replace(URL_USERINFO, '$1***@')
  // unparseable parameters (an unterminated quote): show none of them
  const params = /^(:?[^,:/\\]+),/.exec(remote)
  if (params) return `${params[1]},***`
  return remote.replace(URL_USERINFO, '$1***@')
}

// `,key=value` inside any connection string rclone quotes back at us (nested ones included)
const PARAM_VALUE = /(,[\w-]+=)('(?:[^']|'')*'|"(?:[^"]|"")*"|[^,:\s'"]*)/g

/** Redacts rclone output that may quote the spec (or a nested one) back. */
export function redactRcloneText(text: string, remote?: string): string {
  let out = text
  if (remote) {
    const shown = displayRemote(remote)
    if (shown !== remote) out = out.split(remote).join(shown)
  }
  return out.replace(PARAM_VALUE, '$1***').replace(URL_USERINFO, '$1***@')
}

/** `remote:` + `a/b` → `remote:a/b`, `remote:base/` → `remote:base/a/b`, `:local:/x` → `:local:/x/a/b`. */
export function remoteJoin(remote: string, rel: string): string {
  const parts: string[] = []
  for (const part of rel.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') throw new Error(`remoteJoin: '..' in ${JSON.stringify(rel)}`)
    parts.push(part)
  }
  if (parts.length === 0) return remote
  const joined = parts.join('/')
  const p = parseSpec(remote)
  const head = p ? p.head : ''
  const base = p ? p.path : remote
  if (base === '') return head + joined
  const trimmed = base.replace(/\/+$/, '')
  return `${head}${trimmed}/${joined}`
}

/**
 * The remote behind a fuse.rclone mount, from its mountinfo source — or why there is none.
 * rclone names the FUSE device `name:root`; an on-the-fly remote with connection-string
 * parameters shows as `:s3{AbCdE}:bucket` (the parameters are not in mountinfo, so the spec
 * cannot be rebuilt), and `--devname` can put anything there.
 */
export function mountRemote(m: MountEntry): { remote: string } | { remote: null; reason: string } {
  if (m.fsType !== 'fuse.rclone') {
    return { remote: null, reason: `${m.mountPoint} is ${m.fsType}, not fuse.rclone` }
  }
  const p = parseSpec(m.source)
  if (!p) {
    return {
      remote: null,
      reason: `the mount's device name ${JSON.stringify(m.source)} is not a remote spec (--devname?)`,
    }
  }
  if (p.name.includes('{')) {
    return {
      remote: null,
      reason: `the mount's remote ${p.name}: was given connection-string parameters, which mountinfo does not show`,
    }
  }
  return { remote: m.source }
}

/** The remote spec of a fuse.rclone mount; null for other mounts and unusable device names. */
export function remoteOfMount(m: MountEntry): string | null {
  return mountRemote(m).remote
}

/** A dead rclone leaves its mountpoint answering ENOTCONN until `fusermount3 -uz`. */
export function isNotConnected(err: unknown): boolean {
  return (
    typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === 'ENOTCONN'
  )
}
