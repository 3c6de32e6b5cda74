import { isUnder } from '../shared/paths.js'
import { readFile } from 'node:fs/promises'

export interface MountEntry {
  mountPoint: string
  fsType: string
  source: string
  options: string[]
  superOptions: string[]
  device: string
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040 …). */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
}

/** Parse /proc/<pid>/mountinfo (proc(5)). Pure. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = []
  for (const line of text.split('\n')) {
    if (!line.trim()) continue
    const fields = line.split(' ')
    const dash = fields.indexOf('-')
    if (dash < 6 || fields.length < dash + 3) continue
    out.push({
      device: fields[2] ?? '',
      mountPoint: unescape(fields[4] ?? ''),
      options: (fields[5] ?? '').split(','),
      fsType: fields[dash + 1] ?? '',
      source: unescape(fields[dash + 2] ?? ''),
      superOptions: (fields[dash + 3] ?? '').split(','),
    })
  }
  return out
}

export async function readMountinfo(file = '/proc/self/mountinfo'): Promise<MountEntry[]> {
  return parseMountinfo(await readFile(file, 'utf8'))
}

/** Mount points strictly below `dir` (the mounts a scan of `dir` must not descend into). */
export function mountsBelow(mounts: MountEntry[], dir: string): MountEntry[] {
  const seen = new Set<string>()
  return mounts.filter((m) => {
    if (m.mountPoint === dir || !isUnder(m.mountPoint, dir) || seen.has(m.mountPoint)) return false
    seen.add(m.mountPoint)
    return true
  })
}
