/** Paths as strings: pure, no file system. */

/** Is `p` equal to or below `dir`? Both absolute, normalised. */
export function isUnder(p: string, dir: string): boolean {
  if (dir === '/') return p.startsWith('/')
  return p === dir || p.startsWith(dir.endsWith('/') ? dir : dir + '/')
}
