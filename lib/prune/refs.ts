/**
 * Image references as prune reads them (pure): repository and tag of a reference, shipshape's own
 * tags, and the protect.images / protect.labels patterns of the policy.
 */
import { COMMIT_PREFIX, HOLD_PREFIX, PREV_PREFIX } from '../shared/labels.js'

const SHIPSHAPE_PREFIXES = [PREV_PREFIX, COMMIT_PREFIX, HOLD_PREFIX]

/** true when the reference has a tag: a ':' after the last '/' (so 'reg:5000/app' has none) */
function hasTag(ref: string): boolean {
  return ref.lastIndexOf(':') > ref.lastIndexOf('/')
}

/** 'app:1' → 'app', 'reg:5000/team/app:tag' → 'reg:5000/team/app', 'app@sha256:…' → 'app'. */
export function repoOf(ref: string): string {
  const at = ref.indexOf('@')
  const name = at >= 0 ? ref.slice(0, at) : ref
  return hasTag(name) ? name.slice(0, name.lastIndexOf(':')) : name
}

/** 'app:1' → '1'; '' when the reference names no tag (a digest, a bare repository). */
export function tagOf(ref: string): string {
  if (ref.includes('@') || !hasTag(ref)) return ''
  return ref.slice(ref.lastIndexOf(':') + 1)
}

/** A tag shipshape's rebuild makes (prev, backup, hold): counted by no keepTags rule. */
export function isShipshapeTag(ref: string): boolean {
  const tag = tagOf(ref)
  return SHIPSHAPE_PREFIXES.some((p) => tag.startsWith(p))
}

/** Docker Hub's long spellings as `docker images` prints them: 'docker.io/library/pg' → 'pg'. */
export function familiar(ref: string): string {
  return ref.replace(/^(?:index\.)?docker\.io\//, '').replace(/^library\/(?=[^/]+$)/, '')
}

/** A protect.images pattern as a regular expression over familiar() references. */
export function globRegExp(glob: string): RegExp {
  const g = familiar(glob.trim())
  const body = g
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*')
  // a bare name protects every tag of it ('postgres' is 'postgres:<tag>' too), no other name
  const bare = !g.includes('@') && !hasTag(g)
  return new RegExp(`^${body}${bare ? '(?::[^/:@]+)?' : ''}$`)
}

/**
 * A protect.images pattern against an image reference: `*` matches any run of characters (`/` and
 * `:` included); a pattern without a tag matches every tag of that name; Docker Hub's
 * `docker.io/library/` spelling is the short one on either side.
 */
export function matchesGlob(ref: string, glob: string): boolean {
  return globRegExp(glob).test(familiar(ref))
}

/** A protect.labels entry ('key': present with any value, 'key=value': that value) on labels. */
export function labelMatches(labels: Record<string, string>, spec: string): boolean {
  const eq = spec.indexOf('=')
  if (eq < 0) return Object.hasOwn(labels, spec)
  const key = spec.slice(0, eq)
  return Object.hasOwn(labels, key) && labels[key] === spec.slice(eq + 1)
}
