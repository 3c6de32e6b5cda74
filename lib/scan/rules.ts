/**
 * inspect findings: pure rules over a ScanResult. Each finding says what it costs, what fixing
 * it saves and the Dockerfile change that fixes it. A new rule goes here, with a unit test.
 */
import { formatBytes } from '../config/units.js'
import type { Bucket, ScanResult } from './types.js'
import { cpuSuggestion } from './torch-verdict.js'

export interface Finding {
  rule: string
  message: string
  estimatedSavingsBytes: number
  fix: string
}

export interface RuleOptions {
  /** a layer's wasted bytes above this are a finding (default 1 MB) */
  wastedMinBytes?: number
}

const b = (buckets: Record<string, Bucket>, name: string): Bucket =>
  buckets[name] ?? { bytes: 0, files: 0, top: [] }

/** dpkg packages that build software: useful in a builder stage, dead weight in the final image. */
const BUILD_TOOL =
  /^(gcc|g\+\+|cpp|c\+\+|gcc-\d+|g\+\+-\d+|cpp-\d+|make|cmake|cmake-data|build-essential|binutils|binutils-[\w-]+|libbinutils|libgcc-\d+-dev|libstdc\+\+-\d+-dev|libc6-dev|libc-dev-bin|linux-libc-dev|autoconf|automake|libtool|pkg-config|pkgconf|git|git-man|curl|wget|python3(\.\d+)?-dev|libpython3(\.\d+)?-dev|patch|dpkg-dev|libcrypt-dev|rpcsvc-proto|libnsl-dev|libtirpc-dev)$/

/** Packages that only the full (non-slim) Debian/buildpack-deps bases carry. */
const FULL_BASE =
  /^(mercurial|mercurial-common|subversion|openssh-client|imagemagick.*|libmagickcore.*|libmagickwand.*|default-libmysqlclient-dev|libpq-dev|libsqlite3-dev|libxml2-dev|libxslt1-dev|libyaml-dev|libgdbm-dev|libncurses.*-dev|libreadline-dev|libbz2-dev|liblzma-dev|libffi-dev|libssl-dev|zlib1g-dev|libjpeg.*-dev|libpng-dev|libwebp-dev|libtiff-dev|libgdk-pixbuf.*|libglib2\.0-dev|libkrb5-dev|libdb-dev|libevent-dev|libcurl4-openssl-dev|bzr|procps|netbase|gnupg|dirmngr|xz-utils)$/

const list = (names: string[], n = 6) =>
  names.slice(0, n).join(', ') + (names.length > n ? ` and ${names.length - n} more` : '')

/** One rule: what it finds in a scan (pure). A finding with no savings is dropped unless `always`. */
export interface InspectRule {
  id: string
  /** a finding worth reporting even when it saves no bytes (root user, no HEALTHCHECK) */
  always?: boolean
  find: (scan: ScanResult, opts: RuleOptions) => Omit<Finding, 'rule'>[]
}

const bucketRule = (
  id: string,
  buckets: string[],
  message: (bytes: number, files: number, top: string) => string,
  fix: string,
): InspectRule => ({
  id,
  find: (scan) => {
    const parts = buckets.map((n) => b(scan.buckets, n))
    const bytes = parts.reduce((a, p) => a + p.bytes, 0)
    const files = parts.reduce((a, p) => a + p.files, 0)
    const top = parts.flatMap((p) => p.top.map((t) => '/' + t.path)).join(', ')
    return [{ message: message(bytes, files, top), estimatedSavingsBytes: bytes, fix }]
  },
})

const cudaTorch: InspectRule = {
  id: 'cuda-torch',
  find: (scan) => {
    const parts = ['nvidia-libs', 'libtorch-cuda', 'cudnn', 'triton'].map((n) => ({
      n,
      ...b(scan.buckets, n),
    }))
    const bytes = parts.reduce((a, p) => a + p.bytes, 0)
    if (!scan.torch?.cuda && bytes === 0) return []
    const what = scan.torch
      ? `torch ${scan.torch.version} (CUDA ${scan.torch.cuda ?? '?'})`
      : 'CUDA libraries'
    const each = parts
      .filter((p) => p.bytes > 0)
      .map((p) => `${p.n} ${formatBytes(p.bytes)}`)
      .join(', ')
    return [
      {
        message:
          `${what} ship ${formatBytes(bytes)} of CUDA code (${each}); ` +
          'on a host without a GPU the CPU build saves it (check with shipshape torch-check)',
        estimatedSavingsBytes: bytes,
        fix: cpuSuggestion(scan.torch?.version ?? null),
      },
    ]
  },
}

const buildTools: InspectRule = {
  id: 'build-tools',
  find: (scan) => {
    const tools = (scan.dpkg?.packages ?? []).filter((p) => BUILD_TOOL.test(p.name))
    const bytes = tools.reduce((a, p) => a + p.sizeBytes, 0)
    return [
      {
        message: `build tools left in the final image: ${list(tools.map((p) => p.name))} (${formatBytes(bytes)})`,
        estimatedSavingsBytes: bytes,
        fix: [
          '# build in a builder stage, copy only the result into a slim final stage',
          'FROM python:3.11-slim AS builder',
          'RUN apt-get update && apt-get install -y --no-install-recommends gcc g++ && rm -rf /var/lib/apt/lists/*',
          'RUN pip install --no-cache-dir --prefix=/install -r requirements.txt',
          'FROM python:3.11-slim',
          'COPY --from=builder /install /usr/local',
          '# runtime-only packages: apt-get install -y --no-install-recommends <runtime deps>',
        ].join('\n'),
      },
    ]
  },
}

const wastedLayer: InspectRule = {
  id: 'wasted-layer',
  find: (scan, opts) => {
    const minWaste = opts.wastedMinBytes ?? 1_000_000
    return scan.layers
      .filter((l) => l.wastedBytes >= minWaste)
      .map((l) => ({
        message: `layer ${l.index} (${l.createdBy || l.comment || 'no instruction'}) adds ${formatBytes(l.wastedBytes)} that later layers overwrite or delete`,
        estimatedSavingsBytes: l.wastedBytes,
        fix: '# delete temporary files in the same RUN that creates them, or build them in a stage and COPY --from= only the result',
      }))
  },
}

const nonSlimBase: InspectRule = {
  id: 'non-slim-base',
  find: (scan) => {
    const full = (scan.dpkg?.packages ?? []).filter(
      (p) => FULL_BASE.test(p.name) && !BUILD_TOOL.test(p.name),
    )
    if (full.length < 5) return []
    const bytes = full.reduce((a, p) => a + p.sizeBytes, 0)
    return [
      {
        message: `a full (non-slim) base image: ${full.length} packages a slim base does not carry (${list(full.map((p) => p.name))}), ${formatBytes(bytes)}`,
        estimatedSavingsBytes: bytes,
        fix: 'FROM python:3.11-slim   # or node:<version>-slim / debian:<release>-slim instead of the full image',
      },
    ]
  },
}

const rootUser: InspectRule = {
  id: 'root-user',
  always: true,
  find: (scan) => {
    const user = scan.image.user.trim()
    const root = user === '' || user === 'root' || user === '0' || /^(0|root):/.test(user)
    if (!root) return []
    return [
      {
        message: 'the image runs as root',
        estimatedSavingsBytes: 0,
        fix: 'RUN useradd --system --uid 10001 --no-create-home app\nUSER app',
      },
    ]
  },
}

const noHealthcheck: InspectRule = {
  id: 'no-healthcheck',
  always: true,
  find: (scan) =>
    scan.image.healthcheck
      ? []
      : [
          {
            message: 'the image declares no HEALTHCHECK',
            estimatedSavingsBytes: 0,
            fix: 'HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD curl -fsS http://localhost:8000/health || exit 1',
          },
        ],
}

/** The rules, in the order they are asked (findings are then sorted by savings, then rule id). */
export const INSPECT_RULES: InspectRule[] = [
  cudaTorch,
  buildTools,
  bucketRule(
    'pip-cache',
    ['pip-cache'],
    (bytes, _f, top) => `pip's download cache is in the image: ${formatBytes(bytes)} (${top})`,
    'RUN pip install --no-cache-dir -r requirements.txt\n# or keep the cache out of the layers: RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt',
  ),
  bucketRule(
    'npm-cache',
    ['npm-cache'],
    (bytes) => `npm/yarn cache is in the image: ${formatBytes(bytes)}`,
    'RUN npm ci --omit=dev && npm cache clean --force\n# or: RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev',
  ),
  bucketRule(
    'apt-lists',
    ['apt-lists'],
    (bytes) => `apt package lists and caches left: ${formatBytes(bytes)}`,
    'RUN apt-get update && apt-get install -y --no-install-recommends <packages> \\\n && rm -rf /var/lib/apt/lists/*   # in the same RUN, or the lists stay in a lower layer',
  ),
  bucketRule(
    'pycache',
    ['pycache', 'pyc'],
    (bytes, files) =>
      `compiled Python bytecode (__pycache__, .pyc): ${formatBytes(bytes)} in ${files} files`,
    'ENV PYTHONDONTWRITEBYTECODE=1\nRUN find / -xdev -depth -name __pycache__ -type d -exec rm -rf {} + 2>/dev/null; true   # in the RUN that installs',
  ),
  bucketRule(
    'package-tests',
    ['package-tests'],
    (bytes) => `test directories inside installed packages: ${formatBytes(bytes)}`,
    "RUN find /usr/local/lib/python3*/site-packages -depth -type d \\( -name tests -o -name test \\) -exec rm -rf '{}' +",
  ),
  bucketRule(
    'package-docs',
    ['package-docs'],
    (bytes) => `documentation (usr/share/doc, man pages, package docs): ${formatBytes(bytes)}`,
    'RUN rm -rf /usr/share/doc/* /usr/share/man/* /usr/share/info/*   # in the RUN that installs packages',
  ),
  bucketRule(
    'git-dir',
    ['git'],
    (bytes, _f, top) => `.git directories in the image: ${formatBytes(bytes)} (${top})`,
    '# .dockerignore\n.git\n**/.git',
  ),
  wastedLayer,
  nonSlimBase,
  rootUser,
  noHealthcheck,
]

export function inspectFindings(scan: ScanResult, opts: RuleOptions = {}): Finding[] {
  const out = INSPECT_RULES.flatMap((r) =>
    r
      .find(scan, opts)
      .filter((f) => r.always || f.estimatedSavingsBytes > 0)
      .map((f) => ({ rule: r.id, ...f })),
  )
  return out.sort(
    (x, y) => y.estimatedSavingsBytes - x.estimatedSavingsBytes || x.rule.localeCompare(y.rule),
  )
}
