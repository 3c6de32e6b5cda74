/**
 * The one adapter that reads an image archive as the engine's export endpoint streams it
 * (`docker save`, GET /images/{id}/get), whatever the engine and image store:
 *
 * - legacy layout (Docker 20.10): `<id>/layer.tar`, `<id>/json`, `<id>/VERSION`, `<config>.json`,
 *   `manifest.json`, `repositories`;
 * - OCI layout (Docker 25+, moby#47065): `blobs/sha256/<hex>` for layers, config and manifests
 *   (in digest order, so layer and JSON blobs interleave; 26.1's graph-driver store adds the
 *   legacy `<id>/json` documents as blobs too), then `index.json`, `manifest.json`,
 *   `oci-layout`: the blobs come FIRST and manifest.json LAST, so the layer order and which
 *   blob is the config are only known at the end;
 * - layer blobs may be plain tars (graph-driver store), gzip (containerd image store,
 *   moby#49473) or zstd.
 *
 * Nothing is written to disk and no layer is held in memory: the archive and each layer are
 * walked as the bytes arrive by tarwalk.ts (synchronous: no stream or promise per entry or
 * chunk, see there why), a compressed layer through its decompressor; the body of an entry
 * nobody reads is skipped. Only small JSON blobs (config, manifests; up to JSON_MAX_BYTES
 * each) and the contents the visitor asks for are kept.
 *
 * API
 *
 *   readImageArchive(stream, visitor, { maxContentBytes? }) → Promise<ImageArchive>
 *     Reads the whole archive once. For every entry of every layer blob, in archive order
 *     (NOT layer order), awaits visitor.entry(blob, entry, content); content() reads the
 *     entry's bytes (files up to maxContentBytes, default 8 MiB; empty for non-files) and must
 *     be called inside the callback. After each layer blob, awaits visitor.layerEnd?(blob, info).
 *     Resolves with the layout, repo tags, parsed image config and the layers in manifest.json
 *     order (base first). Rejects with an ImageArchiveError naming the blob on a truncated or
 *     corrupt archive or layer, on a stream 'error', or when manifest.json is missing or names
 *     what is not there; an error thrown by the visitor rejects as it is.
 *
 *   detectCompression(head) → 'none' | 'gzip' | 'zstd' | 'unknown'
 *     What a blob is, from its first bytes (at least 512 for a plain tar): gzip 1f 8b,
 *     zstd 28 b5 2f fd, a tar header ('ustar' at offset 257 with a valid checksum) or an
 *     end-of-archive block (512 zero bytes: an empty tar) → 'none'.
 *
 * Layer blobs are recognised by their CONTENT, never by their file name (dive#507, #718).
 * Entry paths are normalised: no leading './' or '/', no trailing '/', no '.' or empty
 * segments ('..' is kept, never resolved); a layer's own root entry ('./') has path ''.
 * Modes are normalised to `& 0o7777` (Docker 20.10 writes the file type bits too: 0100644).
 * Whiteouts: '.wh..wh..opq' → { kind: 'opaque', dir }, '.wh.<name>' → { kind: 'file', target };
 * other '.wh..wh.*' names (AUFS metadata: .wh..wh.plnk, .wh..wh.aufs) are not whiteouts and
 * are reported as plain entries.
 *
 * Edge cases: a zero-length blob named as a layer by manifest.json is an empty layer (its
 * layerEnd comes once manifest.json has been read); a blob named twice in manifest.json is one
 * entry in the archive and is visited once; a tar blob that manifest.json does not name is
 * visited all the same (whether it is a layer is only known at the end); the archive must hold
 * exactly one image (manifest.json with one element). zstd needs the `zstd` command (Node 20's
 * zlib has no zstd): it is spawned with an argument array only when a zstd blob shows up.
 */
import {
  DEFAULT_MAX_CONTENT_BYTES,
  ImageArchiveError,
  VisitorFailure,
  message,
  normalizeEntryPath,
  type ArchiveLayer,
  type ImageArchive,
  type LayerVisitor,
  type ReadArchiveOptions,
  type ReadState,
} from './archive-format.js'
import { archiveEntry } from './archive-layers.js'
import { TarWalker } from './tarwalk.js'

export {
  detectCompression,
  ImageArchiveError,
  normalizeEntryPath,
  type ArchiveLayer,
  type ImageArchive,
  type LayerCompression,
  type LayerEntry,
  type LayerEntryType,
  type LayerVisitor,
  type ReadArchiveOptions,
  type Whiteout,
} from './archive-format.js'

interface ManifestItem {
  Config?: unknown
  RepoTags?: unknown
  Layers?: unknown
}

/** Read an image archive (see the file header). */
export async function readImageArchive(
  stream: NodeJS.ReadableStream,
  visitor: LayerVisitor,
  opts: ReadArchiveOptions = {},
): Promise<ImageArchive> {
  const st: ReadState = {
    visitor,
    maxContentBytes: opts.maxContentBytes ?? DEFAULT_MAX_CONTENT_BYTES,
    jsons: new Map(),
    layersSeen: new Map(),
    emptyBlobs: new Set(),
    notLayers: new Map(),
    links: new Map(),
    ociLayout: false,
    current: undefined,
    previous: undefined,
    running: new Set(),
    reads: new Set(),
    stopped: false,
  }
  const outer = new TarWalker((h) => archiveEntry(st, h))
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const wait = outer.push(chunk)
      if (wait) await wait
    }
    outer.end()
  } catch (err) {
    st.stopped = true
    for (const stop of st.running) stop()
    const where = st.current
      ? ` in blob ${st.current}`
      : st.previous
        ? ` after blob ${st.previous}`
        : ''
    const failure =
      err instanceof VisitorFailure
        ? err.error
        : err instanceof ImageArchiveError
          ? err
          : new ImageArchiveError(
              `image archive is truncated or corrupt${where}: ${message(err)}`,
              st.current,
              { cause: err },
            )
    for (const reject of st.reads) reject(failure) // a content() the visitor still awaits
    throw failure
  }
  return imageOf(st)
}

/** manifest.json: the layer order, the config, the tags. */
async function imageOf(st: ReadState): Promise<ImageArchive> {
  const resolve = (p: string): string => {
    let r = normalizeEntryPath(p)
    for (let hops = 0; hops < 16 && st.links.has(r); hops++) r = st.links.get(r)!
    return r
  }
  const manifest = st.jsons.get('manifest.json')
  if (!Array.isArray(manifest) || manifest.length === 0) {
    throw new ImageArchiveError(
      'image archive has no manifest.json (truncated, or not a docker save archive)',
    )
  }
  if (manifest.length > 1) {
    throw new ImageArchiveError(
      `image archive holds ${manifest.length} images; readImageArchive reads an archive of one image`,
    )
  }
  const item = manifest[0] as ManifestItem
  if (typeof item.Config !== 'string' || !Array.isArray(item.Layers)) {
    throw new ImageArchiveError('manifest.json has no Config or no Layers', 'manifest.json')
  }
  const configBlob = resolve(item.Config)
  const config = st.jsons.get(configBlob)
  if (!config || typeof config !== 'object' || Array.isArray(config)) {
    throw new ImageArchiveError(
      `config blob ${configBlob} named by manifest.json is not in the archive (or not a JSON object)`,
      configBlob,
    )
  }
  const layers: ArchiveLayer[] = []
  for (const named of item.Layers as unknown[]) {
    if (typeof named !== 'string') {
      throw new ImageArchiveError('manifest.json Layers holds a non-string', 'manifest.json')
    }
    const blob = resolve(named)
    let info = st.layersSeen.get(blob)
    if (!info && st.emptyBlobs.has(blob)) {
      info = { blob, compression: 'none', sizeBytes: 0 }
      st.layersSeen.set(blob, info)
      if (st.visitor.layerEnd) await st.visitor.layerEnd(blob, info)
    }
    if (!info) {
      const head = st.notLayers.get(blob)
      throw new ImageArchiveError(
        head !== undefined
          ? `layer blob ${blob} named by manifest.json is neither a tar nor gzip/zstd (starts with ${head})`
          : `layer blob ${blob} named by manifest.json is not in the archive`,
        blob,
      )
    }
    layers.push(info)
  }
  return {
    layout: st.ociLayout || st.jsons.has('index.json') ? 'oci' : 'legacy',
    repoTags: Array.isArray(item.RepoTags)
      ? item.RepoTags.filter((t): t is string => typeof t === 'string')
      : [],
    config: config as Record<string, unknown>,
    configBlob,
    layers,
  }
}
