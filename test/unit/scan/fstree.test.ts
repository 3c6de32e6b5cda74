import { describe, expect, it } from 'vitest'
import { FsTree, filesOf, pathOf, type FsEntry } from '../../../lib/scan/fstree.js'

// Layers as the archive adapter reports them (lib/docker/archive.ts LayerEntry shape).
const dir = (path: string): FsEntry => ({ path, type: 'dir', size: 0 })
const file = (path: string, size: number): FsEntry => ({ path, type: 'file', size })
const symlink = (path: string, linkname: string): FsEntry => ({
  path,
  type: 'symlink',
  size: 0,
  linkname,
})
const hardlink = (path: string, linkname: string): FsEntry => ({
  path,
  type: 'hardlink',
  size: 0,
  linkname,
})
const wh = (target: string): FsEntry => {
  const slash = target.lastIndexOf('/')
  const name = `${target.slice(0, slash + 1)}.wh.${target.slice(slash + 1)}`
  return { path: name, type: 'file', size: 0, whiteout: { kind: 'file', target } }
}
const opq = (d: string): FsEntry => ({
  path: `${d}/.wh..wh..opq`,
  type: 'file',
  size: 0,
  whiteout: { kind: 'opaque', dir: d },
})

function build(...layers: FsEntry[][]): FsTree {
  const t = new FsTree()
  for (const l of layers) t.applyLayer(l)
  t.summarize()
  return t
}

/** path → [type, size, layer] of every node, sorted: the final filesystem as data. */
function listing(t: FsTree): Record<string, [string, number, number]> {
  const out: Record<string, [string, number, number]> = {}
  const visit = (n: ReturnType<FsTree['get']> & object) => {
    for (const c of n.children?.values() ?? []) {
      out[pathOf(c)] = [c.type, c.size, c.layer]
      visit(c)
    }
  }
  visit(t.root)
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)))
}

const wasted = (t: FsTree) => t.layers.map((l) => l.wastedBytes)

describe('FsTree', () => {
  it('applies layers in order: a file over a file overwrites it, wasted by the adding layer', () => {
    const t = build(
      [dir(''), dir('etc'), file('etc/conf', 100), file('big', 5000)],
      [file('etc/conf', 120)],
      [file('etc/conf', 130)],
    )
    expect(t.get('etc/conf')).toMatchObject({ size: 130, layer: 2 })
    expect(wasted(t)).toEqual([100, 120, 0])
    expect(t.layers.map((l) => l.addedBytes)).toEqual([5100, 120, 130])
    expect(t.root.bytes).toBe(5130)
    expect(t.root.files).toBe(2)
    // every byte added either survives or is wasted
    const added = t.layers.reduce((a, l) => a + l.addedBytes, 0)
    expect(added - wasted(t).reduce((a, b) => a + b)).toBe(t.root.bytes)
  })

  it('deletes a file and a whole directory with file whiteouts', () => {
    const t = build(
      [file('big', 5 * 1024 * 1024), file('d/a', 10), file('d/e/f', 20), file('keep', 1)],
      [wh('big'), wh('d')],
    )
    expect(listing(t)).toEqual({ keep: ['file', 1, 0] })
    expect(wasted(t)).toEqual([5 * 1024 * 1024 + 30, 0])
    expect(t.layers[0]!.wastedFiles).toBe(3)
  })

  it('gives the same final FS for `rm -rf /d && mkdir /d` as an opaque dir (overlay2) and as file whiteouts (containerd)', () => {
    const lower = [
      dir('d'),
      file('d/a', 1),
      file('d/b', 2),
      dir('d/e'),
      file('d/e/f', 4),
      file('other', 8),
    ]
    const overlay = build(lower, [dir('d'), opq('d'), file('d/c', 16)])
    const containerd = build(lower, [dir('d'), wh('d/a'), wh('d/b'), file('d/c', 16), wh('d/e')])
    expect(listing(overlay)).toEqual(listing(containerd))
    expect(listing(overlay)).toEqual({
      d: ['dir', 0, 0],
      'd/c': ['file', 16, 1],
      other: ['file', 8, 0],
    })
    expect(wasted(overlay)).toEqual([7, 0])
    expect(wasted(containerd)).toEqual([7, 0])
  })

  it('keeps the entries of the opaque layer itself, whatever their order in the tar', () => {
    // the opaque marker after the new entries of its own layer must not remove them
    const t = build([file('d/old', 5)], [dir('d'), file('d/new', 7), opq('d')])
    expect(listing(t)).toEqual({ d: ['dir', 0, 0], 'd/new': ['file', 7, 1] })
    expect(wasted(t)).toEqual([5, 0])
  })

  it('a whiteout never deletes an entry of its own layer', () => {
    const t = build([file('x', 3)], [file('x', 9), wh('x')])
    expect(t.get('x')).toMatchObject({ size: 9, layer: 1 })
    expect(wasted(t)).toEqual([3, 0])
  })

  it('replaces a directory by a file (subtree wasted) and a file by a directory', () => {
    const t = build(
      [file('a/x', 10), file('a/y/z', 20), file('b', 40)],
      [file('a', 1), dir('b'), file('b/c', 2)],
    )
    expect(listing(t)).toEqual({
      a: ['file', 1, 1],
      b: ['dir', 0, 1],
      'b/c': ['file', 2, 1],
    })
    expect(wasted(t)).toEqual([70, 0])
  })

  it('merges a directory over a directory and makes missing parents implicitly', () => {
    const t = build([dir('usr'), file('usr/a', 1)], [dir('usr'), file('usr/lib/b', 2)])
    expect(listing(t)).toEqual({
      usr: ['dir', 0, 0],
      'usr/a': ['file', 1, 0],
      'usr/lib': ['dir', 0, 1],
      'usr/lib/b': ['file', 2, 1],
    })
    expect(t.get('usr')).toMatchObject({ bytes: 3, files: 2 })
    expect(wasted(t)).toEqual([0, 0])
  })

  it('counts hard links as files of 0 bytes', () => {
    const t = build([file('bin/busybox', 1000), hardlink('bin/ls', 'bin/busybox')])
    expect(t.layers[0]).toMatchObject({ addedBytes: 1000, files: 2 })
    expect(t.root).toMatchObject({ bytes: 1000, files: 2 })
    const t2 = build([file('bin/busybox', 1000), hardlink('bin/ls', 'bin/busybox')], [wh('bin/ls')])
    expect(wasted(t2)).toEqual([0, 0])
    expect(t2.root).toMatchObject({ bytes: 1000, files: 1 })
  })

  it('counts a duplicate entry in one layer as wasted by that layer', () => {
    const t = build([file('x', 4), file('x', 6)])
    expect(t.get('x')).toMatchObject({ size: 6 })
    expect(t.layers[0]).toMatchObject({ addedBytes: 10, wastedBytes: 4 })
  })

  it('ignores whiteouts of paths that do not exist and the layer root entry', () => {
    const t = build([dir(''), file('a', 1)], [wh('nope/x'), opq('nowhere'), dir('')])
    expect(listing(t)).toEqual({ a: ['file', 1, 0] })
    expect(wasted(t)).toEqual([0, 0])
  })

  it('opaque whiteout of the root removes everything below', () => {
    const t = build(
      [file('a', 1), file('b/c', 2)],
      [opq(''), file('z', 3)].map((e) =>
        e.whiteout?.kind === 'opaque' ? { ...e, path: '.wh..wh..opq' } : e,
      ),
    )
    expect(listing(t)).toEqual({ z: ['file', 3, 1] })
    expect(wasted(t)).toEqual([3, 0])
  })

  it('resolves symlinked directories, . and .. like the kernel', () => {
    const t = build([
      dir('usr/bin'),
      file('usr/bin/ls', 100),
      symlink('bin', 'usr/bin'),
      symlink('lib', '/usr/lib'),
      file('usr/lib/os-release', 5),
      symlink('etc/os-release', '../usr/lib/os-release'),
      symlink('loop', 'loop'),
    ])
    expect(t.resolve('bin/ls')).toBe(t.get('usr/bin/ls'))
    expect(t.resolve('lib/os-release')).toBe(t.get('usr/lib/os-release'))
    expect(t.resolve('usr/lib/python3/../os-release')).toBeUndefined() // python3 does not exist
    expect(t.resolve('usr/lib/./os-release')).toBe(t.get('usr/lib/os-release'))
    expect(t.resolve('usr/bin/../lib/os-release')).toBe(t.get('usr/lib/os-release'))
    expect(t.resolve('etc/os-release')?.type).toBe('symlink')
    expect(t.resolve('etc/os-release', true)).toBe(t.get('usr/lib/os-release'))
    expect(t.resolve('loop/x')).toBeUndefined()
    expect(t.resolve('../../usr/bin/ls')).toBe(t.get('usr/bin/ls'))
  })

  it('lists files with their paths', () => {
    const t = build([file('a/b', 1), dir('a/c'), file('d', 2), symlink('e', 'd')])
    expect([...filesOf(t.root)].map(([p, n]) => [p, n.size])).toEqual([
      ['a/b', 1],
      ['d', 2],
    ])
  })

  it('handles 100 000 whiteouts of a big tree without prefix scans', () => {
    const lower: FsEntry[] = []
    for (let i = 0; i < 100_000; i++) lower.push(file(`d${i % 100}/f${i}`, 1))
    const upper: FsEntry[] = []
    for (let i = 0; i < 100_000; i += 2) upper.push(wh(`d${i % 100}/f${i}`))
    const t0 = performance.now()
    const t = build(lower, upper)
    expect(performance.now() - t0).toBeLessThan(2000)
    expect(t.root.files).toBe(50_000)
    expect(wasted(t)).toEqual([50_000, 0])
  })
})
