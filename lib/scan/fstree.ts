/**
 * The final filesystem of an image, from its layers applied in order (pure).
 *
 *   const fs = new FsTree()
 *   for (const entries of layersBaseFirst) fs.applyLayer(entries)   // iterated twice
 *   fs.summarize()                                                   // subtree bytes/files
 *   fs.get('usr/lib/os-release'), fs.resolve('bin/ls'), fs.layers[i].wastedBytes
 *
 * Per layer, as the OCI image spec and overlayfs have it: first its opaque whiteouts
 * ('.wh..wh..opq': everything below that directory from LOWER layers goes), then its file
 * whiteouts ('.wh.x': x and its subtree go), then its entries: a file over a file overwrites
 * it, a non-directory over a directory removes the subtree, a directory over a directory
 * merges. A whiteout never touches an entry of its own layer, which is why whiteouts go first.
 * The containerd image store writes `rm -rf /d && mkdir /d` as one file whiteout per removed
 * name, the graph driver as an opaque directory: both give the same tree.
 *
 * Every file removed or overwritten is wasted bytes of the layer that ADDED it. Only regular
 * files have bytes; a hard link has 0 (a tar stores the data once, with the first name).
 *
 * Directories are nodes with a child map: a lookup or a whiteout costs O(depth), removing a
 * subtree O(its size), and each node is removed at most once.
 */

import type { LayerEntry, LayerEntryType } from '../docker/archive.js'

export type FsEntryType = LayerEntryType

/** One entry of a layer: the fields of lib/docker/archive.ts's LayerEntry that the tree reads. */
export type FsEntry = Pick<LayerEntry, 'path' | 'type' | 'size' | 'linkname' | 'whiteout'>

export interface FsNode {
  name: string
  parent: FsNode | null
  type: FsEntryType
  /** own bytes: regular files only, 0 for everything else */
  size: number
  /** index of the layer that wrote this entry (the one whose content is in the final filesystem) */
  layer: number
  /** directories only */
  children: Map<string, FsNode> | null
  linkname: string | undefined
  /** after summarize(): bytes and regular files (hard links included) of the subtree */
  bytes: number
  files: number
}

export interface FsLayerStats {
  /** Σ sizes of the regular files in the layer's tar */
  addedBytes: number
  /** regular files and hard links in the layer's tar (whiteouts not counted) */
  files: number
  /** bytes of this layer's files that a later layer (or a later entry of its own) replaced or deleted */
  wastedBytes: number
  wastedFiles: number
}

const MAX_SYMLINK_HOPS = 40

function newNode(
  name: string,
  parent: FsNode | null,
  type: FsEntryType,
  size: number,
  layer: number,
): FsNode {
  return {
    name,
    parent,
    type,
    size: type === 'file' ? size : 0,
    layer,
    children: type === 'dir' ? new Map() : null,
    linkname: undefined,
    bytes: 0,
    files: 0,
  }
}

const isFileLike = (t: FsEntryType) => t === 'file' || t === 'hardlink'

export class FsTree {
  readonly root: FsNode = newNode('', null, 'dir', 0, -1)
  readonly layers: FsLayerStats[] = []

  /** Apply the next layer (base first); `entries` is iterated twice. Returns the layer's index. */
  applyLayer(entries: Iterable<FsEntry>): number {
    const index = this.layers.length
    const stats: FsLayerStats = { addedBytes: 0, files: 0, wastedBytes: 0, wastedFiles: 0 }
    this.layers.push(stats)
    const fileWhiteouts: string[] = []
    for (const e of entries) {
      if (!e.whiteout) continue
      if (e.whiteout.kind === 'opaque') {
        const dir = this.get(e.whiteout.dir)
        if (dir?.children) {
          for (const child of dir.children.values()) this.discard(child)
          dir.children.clear()
        }
      } else fileWhiteouts.push(e.whiteout.target)
    }
    for (const target of fileWhiteouts) {
      const node = this.get(target)
      if (node && node.parent) {
        node.parent.children!.delete(node.name)
        this.discard(node)
      }
    }
    for (const e of entries) {
      if (e.whiteout || e.path === '') continue
      if (e.type === 'file') stats.addedBytes += e.size
      if (isFileLike(e.type)) stats.files++
      this.put(e, index)
    }
    return index
  }

  private put(e: FsEntry, layer: number): void {
    const p = e.path
    let dir = this.root
    let start = 0
    for (;;) {
      const slash = p.indexOf('/', start)
      if (slash < 0) break
      dir = this.dirChild(dir, p.slice(start, slash), layer)
      start = slash + 1
    }
    const name = start === 0 ? p : p.slice(start)
    const children = dir.children!
    const existing = children.get(name)
    if (e.type === 'dir') {
      if (existing?.type === 'dir') return // merge
      if (existing) this.discard(existing)
      children.set(name, newNode(name, dir, 'dir', 0, layer))
      return
    }
    if (existing) this.discard(existing)
    const node = newNode(name, dir, e.type, e.size, layer)
    if (e.type === 'symlink') node.linkname = e.linkname ?? ''
    children.set(name, node)
  }

  /** The directory `name` below `dir`, made (implicitly, as tar extraction does) when missing. */
  private dirChild(dir: FsNode, name: string, layer: number): FsNode {
    const children = dir.children!
    const existing = children.get(name)
    if (existing?.type === 'dir') return existing
    if (existing) this.discard(existing)
    const node = newNode(name, dir, 'dir', 0, layer)
    children.set(name, node)
    return node
  }

  /** Count a removed subtree's files as wasted by the layers that added them. */
  private discard(node: FsNode): void {
    const stack = [node]
    while (stack.length) {
      const n = stack.pop()!
      if (isFileLike(n.type)) {
        const s = this.layers[n.layer]
        if (s) {
          s.wastedBytes += n.size
          s.wastedFiles++
        }
      }
      if (n.children) for (const c of n.children.values()) stack.push(c)
    }
  }

  /** The node at a normalised path ('' = root), without following symlinks. */
  get(p: string): FsNode | undefined {
    if (p === '') return this.root
    let node: FsNode | undefined = this.root
    let start = 0
    for (;;) {
      const slash = p.indexOf('/', start)
      const name = slash < 0 ? p.slice(start) : p.slice(start, slash)
      node = node.children?.get(name)
      if (!node || slash < 0) return node
      start = slash + 1
    }
  }

  /**
   * The node a path names in the running container: symlinks in the directory part are followed
   * (relative to their directory, or from the root), '.' and '..' resolved; the last component
   * is followed too when `followLast`. Undefined when the path does not exist or loops.
   */
  resolve(p: string, followLast = false): FsNode | undefined {
    const pending = splitPath(p).reverse()
    let node = this.root
    let hops = 0
    while (pending.length) {
      const name = pending.pop()!
      if (name === '.') continue
      if (name === '..') {
        node = node.parent ?? node
        continue
      }
      const child = node.children?.get(name)
      if (!child) return undefined
      if (child.type === 'symlink' && (pending.length > 0 || followLast)) {
        if (++hops > MAX_SYMLINK_HOPS) return undefined
        const target = child.linkname ?? ''
        if (target.startsWith('/')) node = this.root
        for (const seg of splitPath(target).reverse()) pending.push(seg)
        continue
      }
      node = child
    }
    return node
  }

  /** Fill `bytes` and `files` of every node with its subtree's totals. */
  summarize(): void {
    const visit = (n: FsNode): void => {
      if (!n.children) {
        n.bytes = n.size
        n.files = isFileLike(n.type) ? 1 : 0
        return
      }
      let bytes = 0
      let files = 0
      for (const c of n.children.values()) {
        visit(c)
        bytes += c.bytes
        files += c.files
      }
      n.bytes = bytes
      n.files = files
    }
    visit(this.root)
  }
}

function splitPath(p: string): string[] {
  return p.split('/').filter((s) => s !== '')
}

/** The node's path from the root ('' for the root). */
export function pathOf(node: FsNode): string {
  const names: string[] = []
  for (let n: FsNode | null = node; n && n.parent; n = n.parent) names.push(n.name)
  return names.reverse().join('/')
}

/** Every regular file (and hard link) of the tree with its path, depth first. */
export function* filesOf(node: FsNode, prefix = pathOf(node)): Generator<[string, FsNode]> {
  if (!node.children) {
    if (isFileLike(node.type)) yield [prefix, node]
    return
  }
  for (const c of node.children.values()) yield* filesOf(c, prefix ? `${prefix}/${c.name}` : c.name)
}
