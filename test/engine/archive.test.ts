// readImageArchive against what each engine really streams from GET /images/{id}/get
// (`docker save`): Docker 20.10 (legacy layout), 26.1 with the graph-driver store (OCI layout,
// plain tar layers) and 26.1 with the containerd image store (OCI layout, gzip layers).
import { afterAll, beforeAll, expect, it } from 'vitest'
import { parseEngineAddress } from '../../lib/shared/address.js'
import {
  readImageArchive,
  type ArchiveLayer,
  type ImageArchive,
  type LayerEntry,
} from '../../lib/docker/archive.js'
import { connectEngine, type Engine } from '../../lib/docker/engine.js'
import type { PrivateEngine } from '../harness/engine.js'
import { buildImage, busyboxImage, docker, dockerOk } from '../harness/fixtures.js'
import { describeEngine } from '../harness/suite.js'

const TAG = 'sst-archive/app:1'
const RUN_BIG = 'dd if=/dev/zero of=/big bs=1M count=3'
const RUN_RM_BIG = 'rm /big && echo x > /small'
const RUN_MKDIR = 'mkdir -p /d/e && touch /d/a /d/b /d/e/f'
const RUN_REPLACE_DIR = 'rm -rf /d && mkdir /d && touch /d/c'

interface HistoryItem {
  created_by?: string
  comment?: string
  empty_layer?: boolean
}

interface Read {
  archive: ImageArchive
  entries: Map<string, LayerEntry[]>
  ends: ArchiveLayer[]
  contents: Map<string, string>
}

async function readExport(api: Engine, ref: string): Promise<Read> {
  const entries = new Map<string, LayerEntry[]>()
  const ends: ArchiveLayer[] = []
  const contents = new Map<string, string>()
  const archive = await readImageArchive(await api.exportImage(ref), {
    async entry(blob, e, content) {
      if (!entries.has(blob)) entries.set(blob, [])
      entries.get(blob)!.push(e)
      if (e.path === 'small' || e.path === 'etc/passwd') {
        contents.set(e.path, (await content()).toString())
      }
    },
    layerEnd(_blob, info) {
      ends.push(info)
    },
  })
  return { archive, entries, ends, contents }
}

describeEngine('image archive (GET /images/{id}/get)', (getEngine) => {
  let engine: PrivateEngine
  let api: Engine
  let imageId: string
  let byId: Read
  /** the layer blob of each non-empty history entry, by its RUN command */
  let layerOf: (run: string) => string
  let entriesOf: (run: string) => LayerEntry[]

  beforeAll(async () => {
    engine = getEngine()
    const base = await busyboxImage(engine)
    imageId = await buildImage(engine, {
      tag: TAG,
      dockerfile: [
        `FROM ${base}`,
        `RUN ${RUN_BIG}`,
        `RUN ${RUN_RM_BIG}`,
        `RUN ${RUN_MKDIR}`,
        `RUN ${RUN_REPLACE_DIR}`,
        'ENV X=1',
        'RUN true',
      ].join('\n'),
    })
    api = await connectEngine(parseEngineAddress(engine.dockerHost))
    byId = await readExport(api, imageId)
    const history = byId.archive.config.history as HistoryItem[]
    const nonEmpty = history.filter((h) => h.empty_layer !== true)
    layerOf = (run) => {
      const i = nonEmpty.findIndex((h) => h.created_by === `/bin/sh -c ${run}`)
      expect(i, run).toBeGreaterThan(0)
      return byId.archive.layers[i]!.blob
    }
    entriesOf = (run) => byId.entries.get(layerOf(run)) ?? []
  })

  afterAll(async () => {
    api?.close()
    if (engine) await docker(engine, ['rmi', '-f', TAG]).catch(() => {})
  })

  it('has the layout of the engine: legacy on 20.10, OCI since Docker 25', () => {
    expect(byId.archive.layout).toBe(engine.kind === '20.10' ? 'legacy' : 'oci')
    const hex = '[0-9a-f]{64}'
    const blobPath = new RegExp(
      engine.kind === '20.10' ? `^${hex}/layer\\.tar$` : `^blobs/sha256/${hex}$`,
    )
    for (const l of byId.archive.layers) expect(l.blob).toMatch(blobPath)
    expect(byId.archive.configBlob).toMatch(
      engine.kind === '20.10' ? new RegExp(`^${hex}\\.json$`) : new RegExp(`^blobs/sha256/${hex}$`),
    )
    // With the graph-driver store the image id is the digest of the config blob; with the
    // containerd store it is the digest of the manifest (index.json's), not of the config.
    if (engine.containerdImageStore) {
      expect(byId.archive.configBlob).not.toContain(imageId.replace(/^sha256:/, ''))
    } else {
      expect(byId.archive.configBlob).toContain(imageId.replace(/^sha256:/, ''))
    }
  })

  it('has one layer per diff_id and per non-empty history entry, in manifest order', () => {
    const { archive, ends } = byId
    const config = archive.config as {
      rootfs: { diff_ids: string[] }
      history: HistoryItem[]
    }
    // `ENV` and the change-less `RUN true` are empty_layer entries on all three engines
    expect(config.history).toHaveLength(7)
    expect(config.history.filter((h) => h.empty_layer === true)).toHaveLength(2)
    expect(archive.layers).toHaveLength(5)
    expect(archive.layers).toHaveLength(config.rootfs.diff_ids.length)
    expect(archive.layers).toHaveLength(config.history.filter((h) => !h.empty_layer).length)
    // every layer blob was visited and ended once; the archive order is not the layer order
    expect(ends.map((l) => l.blob).sort()).toEqual(archive.layers.map((l) => l.blob).sort())
    for (const l of archive.layers) expect(ends.find((e) => e.blob === l.blob)).toEqual(l)
    if (engine.kind === '26.1') {
      // uncompressed OCI blobs: the blob digest is the diff_id
      expect(archive.layers.map((l) => `sha256:${l.blob.split('/').pop()}`)).toEqual(
        config.rootfs.diff_ids,
      )
    }
    // the base layer is the busybox import
    expect(byId.entries.get(archive.layers[0]!.blob)!.map((e) => e.path)).toContain('bin/busybox')
    expect(byId.contents.get('etc/passwd')).toMatch(/^root:x:0:0:/)
  })

  it('finds the 3 MiB /big in one layer and its whiteout .wh.big in a later one', () => {
    const layers = byId.archive.layers.map((l) => l.blob)
    // mode 0o644 on all engines: 20.10 writes 0100644, the adapter keeps the permission bits
    expect(entriesOf(RUN_BIG)).toEqual([
      expect.objectContaining({ path: 'big', type: 'file', size: 3 * 1024 * 1024, mode: 0o644 }),
    ])
    const rm = entriesOf(RUN_RM_BIG)
    expect(rm.map((e) => [e.path, e.type, e.whiteout])).toEqual([
      ['.wh.big', 'file', { kind: 'file', target: 'big' }],
      ['small', 'file', undefined],
    ])
    expect(layers.indexOf(layerOf(RUN_RM_BIG))).toBeGreaterThan(layers.indexOf(layerOf(RUN_BIG)))
    expect(byId.contents.get('small')).toBe('x\n')
  })

  it('gives the compression each engine stores: gzip only with the containerd image store', () => {
    // The graph-driver store (20.10, 26.1) keeps layers as unpacked directories and exports
    // them as plain tars. The containerd store keeps the blobs it made when the classic builder
    // committed each step, and those are gzip (application/vnd.oci.image.layer.v1.tar+gzip),
    // so `docker save` streams them as they are: gzip blobs much smaller than the layer.
    const expected = engine.containerdImageStore ? 'gzip' : 'none'
    for (const l of byId.archive.layers) expect(l.compression, l.blob).toBe(expected)
    const big = byId.archive.layers.find((l) => l.blob === layerOf(RUN_BIG))!
    if (engine.containerdImageStore) expect(big.sizeBytes).toBeLessThan(100_000)
    else expect(big.sizeBytes).toBe(512 + 3 * 1024 * 1024 + 1024) // header, data, end blocks
  })

  it('shows `rm -rf /d && mkdir /d` as an opaque dir (overlay2) or file whiteouts (containerd)', () => {
    expect(entriesOf(RUN_MKDIR).map((e) => e.path)).toEqual(['d', 'd/a', 'd/b', 'd/e', 'd/e/f'])
    const replaced = entriesOf(RUN_REPLACE_DIR).map((e) => [e.path, e.whiteout])
    if (engine.containerdImageStore) {
      // containerd's differ compares the two snapshots: one whiteout per removed name, and
      // /d/e's whiteout covers its contents
      expect(replaced).toEqual([
        ['d', undefined],
        ['d/.wh.a', { kind: 'file', target: 'd/a' }],
        ['d/.wh.b', { kind: 'file', target: 'd/b' }],
        ['d/c', undefined],
        ['d/.wh.e', { kind: 'file', target: 'd/e' }],
      ])
    } else {
      // overlay2 marks the re-created /d opaque (trusted.overlay.opaque), the export says so
      expect(replaced).toEqual([
        ['d', undefined],
        ['d/.wh..wh..opq', { kind: 'opaque', dir: 'd' }],
        ['d/c', undefined],
      ])
    }
  })

  it("has the image's history as docker history shows it", async () => {
    const out = await dockerOk(engine, [
      'history',
      '--no-trunc',
      '--format',
      '{{.CreatedBy}}\t{{.Comment}}',
      imageId,
    ])
    const cli = out
      .trimEnd()
      .split('\n')
      .map((l) => {
        const [createdBy, comment] = l.split('\t')
        return { createdBy, comment }
      })
      .reverse()
    const history = byId.archive.config.history as HistoryItem[]
    expect(
      history.map((h) => ({ createdBy: h.created_by ?? '', comment: h.comment ?? '' })),
    ).toEqual(cli)
    expect(history[0]!.comment).toBe('Imported from -')
  })

  it('lists the tags when exported by name, none when exported by id', async () => {
    expect(byId.archive.repoTags).toEqual([])
    const byTag = await readExport(api, TAG)
    expect(byTag.archive.repoTags).toEqual([TAG])
    expect(byTag.archive.layers).toEqual(byId.archive.layers)
    expect(byTag.archive.config).toEqual(byId.archive.config)
  })

  it('names the image when the engine refuses the export', async () => {
    await expect(api.exportImage('sst-archive/missing:1')).rejects.toThrow(
      /^export of image sst-archive\/missing:1 \(\/images\/\{id\}\/get\): .*/,
    )
  })
})
