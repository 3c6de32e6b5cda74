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

export function inspectFindings(scan: ScanResult, opts: RuleOptions = {}): Finding[] {
  const out: Finding[] = []
  const bk = scan.buckets
  const add = (f: Finding) => {
    if (f.estimatedSavingsBytes > 0 || f.rule === 'root-user' || f.rule === 'no-healthcheck')
      out.push(f)
  }

  // CUDA torch and NVIDIA libraries
  const cudaParts = ['nvidia-libs', 'libtorch-cuda', 'cudnn', 'triton'].map((n) => ({
    n,
    ...b(bk, n),
  }))
  const cudaBytes = cudaParts.reduce((a, p) => a + p.bytes, 0)
  if (scan.torch?.cuda || cudaBytes > 0) {
    add({
      rule: 'cuda-torch',
      message:
        `${scan.torch ? `torch ${scan.torch.version} (CUDA ${scan.torch.cuda ?? '?'})` : 'CUDA libraries'} ship ` +
        `${formatBytes(cudaBytes)} of CUDA code (${cudaParts
          .filter((p) => p.bytes > 0)
          .map((p) => `${p.n} ${formatBytes(p.bytes)}`)
          .join(', ')}); ` +
        'on a host without a GPU the CPU build saves it (check with shipshape torch-check)',
      estimatedSavingsBytes: cudaBytes,
      fix: cpuSuggestion(scan.torch?.version ?? null),
    })
  }

  // build tools from dpkg
  const tools = (scan.dpkg?.packages ?? []).filter((p) => BUILD_TOOL.test(p.name))
  const toolBytes = tools.reduce((a, p) => a + p.sizeBytes, 0)
  add({
    rule: 'build-tools',
    message: `build tools left in the final image: ${list(tools.map((p) => p.name))} (${formatBytes(toolBytes)})`,
    estimatedSavingsBytes: toolBytes,
    fix: [
      '# build in a builder stage, copy only the result into a slim final stage',
      'FROM python:3.11-slim AS builder',
      'RUN apt-get update && apt-get install -y --no-install-recommends gcc g++ && rm -rf /var/lib/apt/lists/*',
      'RUN pip install --no-cache-dir --prefix=/install -r requirements.txt',
      'FROM python:3.11-slim',
      'COPY --from=builder /install /usr/local',
      '# runtime-only packages: apt-get install -y --no-install-recommends <runtime deps>',
    ].join('\n'),
  })

  const pip = b(bk, 'pip-cache')
  add({
    rule: 'pip-cache',
    message: `pip's download cache is in the image: ${formatBytes(pip.bytes)} (${pip.top.map((t) => '/' + t.path).join(', ')})`,
    estimatedSavingsBytes: pip.bytes,
    fix: 'RUN pip install --no-cache-dir -r requirements.txt\n# or keep the cache out of the layers: RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt',
  })
  const npm = b(bk, 'npm-cache')
  add({
    rule: 'npm-cache',
    message: `npm/yarn cache is in the image: ${formatBytes(npm.bytes)}`,
    estimatedSavingsBytes: npm.bytes,
    fix: 'RUN npm ci --omit=dev && npm cache clean --force\n# or: RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev',
  })
  const apt = b(bk, 'apt-lists')
  add({
    rule: 'apt-lists',
    message: `apt package lists and caches left: ${formatBytes(apt.bytes)}`,
    estimatedSavingsBytes: apt.bytes,
    fix: 'RUN apt-get update && apt-get install -y --no-install-recommends <packages> \\\n && rm -rf /var/lib/apt/lists/*   # in the same RUN, or the lists stay in a lower layer',
  })
  const pyc = b(bk, 'pycache')
  const pyc2 = b(bk, 'pyc')
  add({
    rule: 'pycache',
    message: `compiled Python bytecode (__pycache__, .pyc): ${formatBytes(pyc.bytes + pyc2.bytes)} in ${pyc.files + pyc2.files} files`,
    estimatedSavingsBytes: pyc.bytes + pyc2.bytes,
    fix: 'ENV PYTHONDONTWRITEBYTECODE=1\nRUN find / -xdev -depth -name __pycache__ -type d -exec rm -rf {} + 2>/dev/null; true   # in the RUN that installs',
  })
  const tests = b(bk, 'package-tests')
  add({
    rule: 'package-tests',
    message: `test directories inside installed packages: ${formatBytes(tests.bytes)}`,
    estimatedSavingsBytes: tests.bytes,
    fix: "RUN find /usr/local/lib/python3*/site-packages -depth -type d \\( -name tests -o -name test \\) -exec rm -rf '{}' +",
  })
  const docs = b(bk, 'package-docs')
  add({
    rule: 'package-docs',
    message: `documentation (usr/share/doc, man pages, package docs): ${formatBytes(docs.bytes)}`,
    estimatedSavingsBytes: docs.bytes,
    fix: 'RUN rm -rf /usr/share/doc/* /usr/share/man/* /usr/share/info/*   # in the RUN that installs packages',
  })
  const git = b(bk, 'git')
  add({
    rule: 'git-dir',
    message: `.git directories in the image: ${formatBytes(git.bytes)} (${git.top.map((t) => '/' + t.path).join(', ')})`,
    estimatedSavingsBytes: git.bytes,
    fix: '# .dockerignore\n.git\n**/.git',
  })

  const minWaste = opts.wastedMinBytes ?? 1_000_000
  for (const l of scan.layers) {
    if (l.wastedBytes < minWaste) continue
    add({
      rule: 'wasted-layer',
      message: `layer ${l.index} (${l.createdBy || l.comment || 'no instruction'}) adds ${formatBytes(l.wastedBytes)} that later layers overwrite or delete`,
      estimatedSavingsBytes: l.wastedBytes,
      fix: '# delete temporary files in the same RUN that creates them, or build them in a stage and COPY --from= only the result',
    })
  }

  const fullBase = (scan.dpkg?.packages ?? []).filter(
    (p) => FULL_BASE.test(p.name) && !BUILD_TOOL.test(p.name),
  )
  const fullBaseBytes = fullBase.reduce((a, p) => a + p.sizeBytes, 0)
  if (fullBase.length >= 5) {
    add({
      rule: 'non-slim-base',
      message: `a full (non-slim) base image: ${fullBase.length} packages a slim base does not carry (${list(fullBase.map((p) => p.name))}), ${formatBytes(fullBaseBytes)}`,
      estimatedSavingsBytes: fullBaseBytes,
      fix: 'FROM python:3.11-slim   # or node:<version>-slim / debian:<release>-slim instead of the full image',
    })
  }

  const user = scan.image.user.trim()
  if (
    user === '' ||
    user === 'root' ||
    user === '0' ||
    user.startsWith('0:') ||
    user.startsWith('root:')
  ) {
    add({
      rule: 'root-user',
      message: 'the image runs as root',
      estimatedSavingsBytes: 0,
      fix: 'RUN useradd --system --uid 10001 --no-create-home app\nUSER app',
    })
  }
  if (!scan.image.healthcheck) {
    add({
      rule: 'no-healthcheck',
      message: 'the image declares no HEALTHCHECK',
      estimatedSavingsBytes: 0,
      fix: 'HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD curl -fsS http://localhost:8000/health || exit 1',
    })
  }
  return out.sort(
    (x, y) => y.estimatedSavingsBytes - x.estimatedSavingsBytes || x.rule.localeCompare(y.rule),
  )
}
