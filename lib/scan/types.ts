/**
 * What the deep image scan (lib/scan/scan.ts) returns: the final filesystem of an image,
 * measured, with the facts the inspect rules and the torch check read. Plain data (JSON-safe).
 */
import type { ImageDetails } from '../docker/types.js'

export interface ScannedLayer {
  /** 0 = base layer */
  index: number
  blob: string
  compression: 'none' | 'gzip' | 'zstd'
  /** bytes of the blob as exported */
  blobBytes: number
  /** the history entry that made this layer (created_by), '' when unknown */
  createdBy: string
  comment: string
  /** sum of the sizes of the files this layer's tar holds */
  addedBytes: number
  files: number
  /** bytes of files this layer added that a later layer overwrote or deleted */
  wastedBytes: number
}

export interface SizedPath {
  path: string
  sizeBytes: number
  files: number
}

export interface PythonDistribution {
  name: string
  version: string
  /** the .dist-info (or .egg-info) directory */
  path: string
  /** bytes of the files the distribution installed (RECORD), as present in the final filesystem */
  sizeBytes: number
  files: number
}

export interface NodePackage {
  name: string
  /** the package directory, e.g. app/node_modules/@scope/name */
  path: string
  sizeBytes: number
}

export interface DpkgPackage {
  name: string
  version: string
  /** bytes of the files the package's .list names, as present in the final filesystem */
  sizeBytes: number
  /** dpkg's own Installed-Size (KiB × 1024) */
  installedSizeBytes: number
}

export interface CodeMatch {
  path: string
  line: number
  text: string
}

/** A named group of paths in the final filesystem (see lib/scan/buckets.ts). */
export interface Bucket {
  bytes: number
  files: number
  /** the biggest matching paths (directories or files), at most a handful */
  top: SizedPath[]
}

/** The image as the engine describes it (inspect), plus what only its content tells. */
export interface ImageFacts extends Omit<ImageDetails, 'sizeBytes'> {
  /** the engine's Size for the image (the listed one: under the containerd store it counts the
   *  unpacked snapshots too, which inspect's Size leaves out) */
  engineSizeBytes: number
  layout: 'legacy' | 'oci'
  /** /etc/os-release of the final filesystem (ID, VERSION_ID, PRETTY_NAME …), or null */
  osRelease: Record<string, string> | null
}

export interface ScanResult {
  image: ImageFacts
  layers: ScannedLayer[]
  /** Σ addedBytes of every layer */
  totalBytes: number
  /** bytes of the files in the final filesystem */
  finalBytes: number
  /** Σ wastedBytes: bytes shipped in layers but overwritten or deleted later */
  wastedBytes: number
  files: number
  /** biggest directories, depth-limited top N */
  directories: SizedPath[]
  python: { sitePackages: string[]; distributions: PythonDistribution[] }
  node: { packages: NodePackage[] }
  dpkg: { packages: DpkgPackage[] } | null
  /** bucket name → what matched (keys from lib/scan/buckets.ts) */
  buckets: Record<string, Bucket>
  /** torch as installed in the final filesystem (from torch/version.py), or null */
  torch: { version: string; cuda: string | null; path: string } | null
  /** CUDA calls in application Python code (outside site-/dist-packages and the stdlib) */
  cudaCalls: CodeMatch[]
}
