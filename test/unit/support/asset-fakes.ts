/**
 * Fakes of the migrate-assets ports (lib/assets/ports.ts) for unit tests of the steps: an
 * in-memory file system (dirs, files, symlinks by absolute path), trees walked and copied in it,
 * an engine of containers that run or not, a journal in memory. No I/O.
 */
import type { Output } from '../../../lib/cli/output.js'
import type { Engine } from '../../../lib/docker/engine.js'
import type { HealthResult } from '../../../lib/health/check.js'
import type { StepJournal } from '../../../lib/runbook/index.js'
import { manifestOnce } from '../../../lib/migrate-assets/context.js'
import type { AssetFs, AssetPorts, PathInfo } from '../../../lib/assets/ports.js'
import type { Manifest, ManifestEntry } from '../../../lib/shared/manifest-types.js'

export type Node =
  | { kind: 'dir'; ino: bigint }
  | { kind: 'symlink'; target: string }
  | { kind: 'file'; text: string; mtimeMs: number; sha256: string }

const under = (p: string, root: string) => p.startsWith(root + '/')

export class FakeFs implements AssetFs {
  nodes = new Map<string, Node>()
  manifests = new Map<string, Manifest>()
  calls: string[] = []
  private nextIno = 100n

  dir(p: string): this {
    this.nodes.set(p, { kind: 'dir', ino: this.nextIno++ })
    return this
  }
  file(p: string, text: string, mtimeMs = 1_700_000_000_000): this {
    this.nodes.set(p, { kind: 'file', text, mtimeMs, sha256: `sha-${text}` })
    return this
  }
  link(p: string, target: string): this {
    this.nodes.set(p, { kind: 'symlink', target })
    return this
  }
  /** the tree below root as manifest entries (sorted by path) */
  entriesOf(root: string): ManifestEntry[] {
    const out: ManifestEntry[] = []
    for (const [p, n] of this.nodes) {
      if (!under(p, root)) continue
      const base = { path: p.slice(root.length + 1), mode: 0o644, uid: 1000, gid: 1000 }
      if (n.kind === 'dir') out.push({ ...base, kind: 'dir', size: 0, mtimeMs: 0 })
      else if (n.kind === 'symlink') {
        out.push({ ...base, kind: 'symlink', size: 0, mtimeMs: 0, linkname: n.target })
      } else {
        out.push({
          ...base,
          kind: 'file',
          size: n.text.length,
          mtimeMs: n.mtimeMs,
          hashes: { sha256: n.sha256 },
        })
      }
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  }

  async kindOf(p: string): Promise<PathInfo> {
    const n = this.nodes.get(p)
    if (!n) return { kind: 'missing' }
    if (n.kind === 'dir') return { kind: 'dir', dev: 1n, ino: n.ino }
    if (n.kind === 'symlink') return { kind: 'symlink', target: n.target }
    return { kind: 'other' }
  }
  async sizeOf(p: string) {
    const n = this.nodes.get(p)
    return n?.kind === 'file' ? n.text.length : null
  }
  async readJson(p: string) {
    const n = this.nodes.get(p)
    if (n?.kind !== 'file') return null
    try {
      return JSON.parse(n.text) as Record<string, unknown>
    } catch {
      return null
    }
  }
  async writeDurable(p: string, text: string) {
    this.calls.push(`write ${p}`)
    this.file(p, text)
  }
  async mkdir(p: string, opts: { mode: number; recursive?: boolean }) {
    const n = this.nodes.get(p)
    if (n && n.kind !== 'dir') throw Object.assign(new Error(`EEXIST ${p}`), { code: 'EEXIST' })
    if (!n) this.dir(p)
    void opts
  }
  async rename(from: string, to: string) {
    if (!this.nodes.has(from)) throw Object.assign(new Error(`ENOENT ${from}`), { code: 'ENOENT' })
    if (this.nodes.has(to)) throw Object.assign(new Error(`EEXIST ${to}`), { code: 'EEXIST' })
    this.calls.push(`rename ${from} ${to}`)
    for (const [p, n] of [...this.nodes]) {
      if (p === from || under(p, from)) {
        this.nodes.delete(p)
        this.nodes.set(to + p.slice(from.length), n)
      }
    }
  }
  async symlink(target: string, p: string) {
    if (this.nodes.has(p)) throw Object.assign(new Error(`EEXIST ${p}`), { code: 'EEXIST' })
    this.calls.push(`symlink ${p}`)
    this.link(p, target)
  }
  async unlink(p: string) {
    if (this.nodes.get(p)?.kind === 'dir') throw new Error(`EISDIR ${p}`)
    this.nodes.delete(p)
  }
  async makeWorkDir(workDir: string) {
    this.dir(workDir)
  }
  async readManifest(file: string): Promise<Manifest> {
    this.calls.push(`readManifest ${file}`)
    const m = this.manifests.get(file)
    if (!m) throw Object.assign(new Error(`ENOENT ${file}`), { code: 'ENOENT' })
    return m
  }
  async writeManifest(file: string, m: Manifest) {
    this.manifests.set(file, m)
    this.file(file, JSON.stringify({ schema: m.schema }))
  }
  async walkTree(root: string) {
    this.calls.push(`walk ${root}`)
    const n = this.nodes.get(root)
    if (n?.kind !== 'dir') throw new Error(`${root} is not a directory`)
    return { entries: this.entriesOf(root), problems: [], root: { dev: 1n, ino: n.ino } }
  }
  async copyTree(o: { source: string; dest: string; entries: readonly ManifestEntry[] }) {
    this.calls.push(`copy ${o.source} ${o.dest}`)
    if (!this.nodes.has(o.dest)) this.dir(o.dest)
    let copied = 0
    let skipped = 0
    let bytesCopied = 0
    for (const e of o.entries) {
      const from = this.nodes.get(`${o.source}/${e.path}`)
      const to = `${o.dest}/${e.path}`
      if (this.nodes.has(to)) {
        if (e.kind === 'file') skipped++
        continue
      }
      if (!from) throw new Error(`${o.source}/${e.path} is gone`)
      if (from.kind === 'dir') this.dir(to)
      else {
        this.nodes.set(to, { ...from })
        if (from.kind === 'file') {
          copied++
          bytesCopied += from.text.length
        }
      }
    }
    const files = o.entries.filter((e) => e.kind === 'file')
    return {
      files: files.length,
      bytes: files.reduce((n, e) => n + e.size, 0),
      copied,
      skipped,
      bytesCopied,
      modesKept: false,
      symlinks: 0,
    }
  }
  async removeCopy(o: { dest: string; entries: readonly ManifestEntry[]; keepDest?: boolean }) {
    this.calls.push(`removeCopy ${o.dest}`)
    const mine = new Set(o.entries.map((e) => `${o.dest}/${e.path}`))
    const leftovers: string[] = []
    let removed = 0
    for (const p of [...this.nodes.keys()].filter((p) => under(p, o.dest)).reverse()) {
      if (mine.has(p)) {
        this.nodes.delete(p)
        removed++
      } else leftovers.push(p.slice(o.dest.length + 1))
    }
    if (!leftovers.length && !o.keepDest) this.nodes.delete(o.dest)
    return { removed, leftovers }
  }
  async readBackTree(o: { dest: string; entries: readonly ManifestEntry[] }) {
    this.calls.push(`readBack ${o.dest}`)
    const there = new Map(this.entriesOf(o.dest).map((e) => [e.path, e]))
    return o.entries.map((e) => there.get(e.path)).filter((e): e is ManifestEntry => !!e)
  }
  async removeTree(dir: string) {
    this.calls.push(`removeTree ${dir}`)
    for (const p of [...this.nodes.keys()]) if (p === dir || under(p, dir)) this.nodes.delete(p)
    return { kept: [] }
  }
  async putOwners(root: string) {
    this.calls.push(`putOwners ${root}`)
  }
}

export class FakeEngine {
  running = new Map<string, boolean>()
  execs: { id: string; argv: string[] }[] = []
  execResult = { exitCode: 0, stdout: 'x', stderr: '' }
  constructor(ids: string[] = []) {
    for (const id of ids) this.running.set(id, true)
  }
  async stopContainer(id: string) {
    this.running.set(id, false)
  }
  async startContainer(id: string) {
    this.running.set(id, true)
  }
  async inspectContainer(id: string) {
    return this.running.has(id) ? { running: this.running.get(id) } : null
  }
  async exec(id: string, argv: string[]) {
    this.execs.push({ id, argv })
    return this.execResult
  }
}

export function fakeOut(): Output & { lines: string[] } {
  const lines: string[] = []
  return {
    lines,
    info: (m: string) => void lines.push(`info ${m}`),
    warn: (m: string) => void lines.push(`warn ${m}`),
    spinner: () => ({ update() {}, stop() {} }),
  } as unknown as Output & { lines: string[] }
}

export function fakeJournal(): StepJournal & { notes: Record<string, unknown> } {
  const notes: Record<string, unknown> = {}
  return {
    notes,
    async note(d) {
      Object.assign(notes, d)
    },
    data: () => notes,
  }
}

export const healthy: HealthResult = { ok: true, attempts: 1, checks: [], heldMs: 0 }

export function fakePorts(fs: FakeFs, health: HealthResult = healthy) {
  const destinationCalls: string[] = []
  const ports: AssetPorts = {
    fs,
    backup: {
      async chooseCompression() {
        return { compression: 'zstd', ratio: 0.5 }
      },
      async write(o) {
        fs.file(o.archive, 'ARCHIVE')
        return {
          entries: o.entries.map((e) =>
            e.kind === 'file' ? { ...e, hashes: { sha256: `sha-${e.path}` } } : e,
          ),
          archiveBytes: 7,
        } as Awaited<ReturnType<AssetPorts['backup']['write']>>
      },
      async verify() {},
    },
    destination: {
      async verifyDestination(o) {
        destinationCalls.push(o.dest)
        return 'rclone sha256 on the remote'
      },
    },
    waitHealthy: async () => health,
    progress: () => ({ tick() {}, done() {} }),
    now: () => new Date('2026-11-25T15:04:05Z'),
  }
  return { ports, destinationCalls }
}

export { manifestOnce }
export type { Engine }
