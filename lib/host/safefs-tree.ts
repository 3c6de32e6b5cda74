/** A tree by descriptors: its root and open directories (lib/host/safefs.ts Dir). */
import { Dir, components, errCode, type Ident } from './safefs.js'

/**
 * A tree's root and its open directories by relative path, each reached from its parent
 * (see Dir.openDir) and checked against the inode the walk recorded (`inodeOf`). At most
 * `max` stay open; the least recently used idle one is closed when more are needed.
 */
export class Tree {
  private readonly open = new Map<string, { dir: Promise<Dir>; users: number }>()
  /** withDir calls under way: close() waits for them (one abandoned by a caller included) */
  private readonly inflight = new Set<Promise<unknown>>()

  private constructor(
    readonly root: Dir,
    private readonly inodeOf: (rel: string) => bigint | undefined,
    private readonly max: number,
  ) {}

  static async open(
    abs: string,
    opts: { expect?: Ident; inodeOf?: (rel: string) => bigint | undefined; max?: number } = {},
  ): Promise<Tree> {
    const root = await Dir.open(abs, { expect: opts.expect })
    return new Tree(root, opts.inodeOf ?? (() => undefined), opts.max ?? 256)
  }

  /**
   * The tree at `base`/`rel`, reached from `base` by descriptors one component at a time (each
   * O_NOFOLLOW | O_DIRECTORY, on base's device), the missing ones created 0755 with `create`:
   * a link on the way is refused, never followed, and nothing is made where it points.
   */
  static async below(base: string, rel: string, opts: { create?: boolean } = {}): Promise<Tree> {
    let dir = await Dir.open(base)
    try {
      for (const name of components(rel)) {
        if (opts.create) {
          await dir.mkdir(name, 0o755).catch((err: unknown) => {
            if (errCode(err) !== 'EEXIST') throw err
          })
        }
        const next = await dir.openDir(name)
        await dir.close()
        dir = next
      }
    } catch (err) {
      await dir.close()
      throw err
    }
    return new Tree(dir, () => undefined, 256)
  }

  get path(): string {
    return this.root.path
  }

  /** Runs fn with the directory `rel` ('' = the root) open; it stays cached after. */
  withDir<T>(rel: string, fn: (dir: Dir) => Promise<T>): Promise<T> {
    const p = this.use(rel, fn)
    this.inflight.add(p)
    const done = () => this.inflight.delete(p)
    p.then(done, done)
    return p
  }

  private async use<T>(rel: string, fn: (dir: Dir) => Promise<T>): Promise<T> {
    if (rel === '') return fn(this.root)
    const slot = this.slot(rel)
    slot.users++
    try {
      return await fn(await slot.dir)
    } finally {
      slot.users--
      this.trim()
    }
  }

  private slot(rel: string): { dir: Promise<Dir>; users: number } {
    let s = this.open.get(rel)
    if (s) {
      // most recently used last
      this.open.delete(rel)
      this.open.set(rel, s)
      return s
    }
    const cut = rel.lastIndexOf('/')
    const parent = cut < 0 ? '' : rel.slice(0, cut)
    const name = cut < 0 ? rel : rel.slice(cut + 1)
    const dir = this.withDir(parent, (p) => p.openDir(name, { expect: this.inodeOf(rel) }))
    s = { dir, users: 0 }
    this.open.set(rel, s)
    // a failed open is not cached
    dir.catch(() => {
      if (this.open.get(rel) === s) this.open.delete(rel)
    })
    return s
  }

  private trim(): void {
    if (this.open.size <= this.max) return
    for (const [rel, s] of this.open) {
      if (this.open.size <= this.max) break
      if (s.users > 0) continue
      this.open.delete(rel)
      void s.dir.then((d) => d.close()).catch(() => {})
    }
  }

  /** Forget (and close) the cached directory `rel` and everything below it. */
  async forget(rel: string): Promise<void> {
    for (const [k, s] of [...this.open]) {
      if (k === rel || k.startsWith(`${rel}/`)) {
        this.open.delete(k)
        await s.dir.then((d) => d.close()).catch(() => {})
      }
    }
  }

  async close(): Promise<void> {
    // nothing is closed under a call still running: its path names the descriptor's number
    while (this.inflight.size) await Promise.allSettled([...this.inflight])
    const all = [...this.open.values()]
    this.open.clear()
    await Promise.all(all.map((s) => s.dir.then((d) => d.close()).catch(() => {})))
    await this.root.close()
  }
}
