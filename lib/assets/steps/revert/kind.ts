import { lstat, readlink } from 'node:fs/promises'

export type Kind = 'dir' | 'symlink' | 'missing' | 'other'

/** What a path of the revert is, without following it. */
export async function kindOf(
  p: string,
): Promise<{ kind: Kind; target?: string; dev?: bigint; ino?: bigint }> {
  try {
    const st = await lstat(p, { bigint: true })
    if (st.isDirectory()) return { kind: 'dir', dev: st.dev, ino: st.ino }
    if (st.isSymbolicLink()) return { kind: 'symlink', target: await readlink(p) }
    return { kind: 'other' }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' }
    throw err
  }
}
