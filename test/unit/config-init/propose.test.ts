import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Command } from 'commander'
import { parseDocument } from 'yaml'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { parseConfigText } from '../../../lib/config/load.js'
import { configSchema, type Config } from '../../../lib/config/schema.js'
import { RefusedError, UsageError } from '../../../lib/errors.js'
import {
  cudaHints,
  type ContainerFacts,
  type FuseMount,
  type InitFacts,
} from '../../../lib/config-init/facts.js'
import { storageFuseMounts } from '../../../lib/config-init/gather.js'
import { writeConfigFile } from '../../../lib/config-init/index.js'
import {
  carriedSettings,
  guessHealth,
  isDatabaseImage,
  propose,
  repoOf,
  type Proposal,
} from '../../../lib/config-init/propose.js'
import { renderProposal } from '../../../lib/config-init/render.js'
import { configCommand } from '../../../scripts/config.js'
import { Sink } from '../support/sink.js'

const NOW = new Date('2026-03-04T05:06:07Z')
const GB = 1e9

function container(o: Partial<ContainerFacts> & { name: string }): ContainerFacts {
  return {
    id: `${o.name}-id`,
    image: 'app:1',
    imageId: `sha256:${'a'.repeat(64)}`,
    imageTags: [],
    running: true,
    labels: {},
    mounts: [],
    healthcheck: false,
    networkMode: 'appnet',
    published: [],
    exposed: [],
    gpu: { requested: false, reasons: [] },
    cudaHints: [],
    build: null,
    ...o,
  }
}

function composeLabels(project: string, service: string, workingDir: string, files: string) {
  return {
    'com.docker.compose.project': project,
    'com.docker.compose.service': service,
    'com.docker.compose.project.working_dir': workingDir,
    'com.docker.compose.project.config_files': files,
  }
}

const bind = (source: string, destination = '/data') => ({
  type: 'bind',
  source,
  destination,
  readOnly: false,
})

const RCLONE: FuseMount = {
  mountPoint: '/mnt/rd',
  fsType: 'fuse.rclone',
  source: 'rd:',
  live: true,
  problem: null,
}

function facts(o: Partial<InitFacts> = {}): InitFacts {
  return {
    hostname: 'box1',
    engine: 'unix:///var/run/docker.sock',
    containers: [],
    composeFiles: {},
    sources: {},
    mounts: [RCLONE],
    warnings: [],
    ...o,
  }
}

const config = (input: Record<string, unknown> = {}): Config =>
  configSchema.parse({ host: 'box1', ...input })

function run(f: InitFacts, cfg: Config = config()): { p: Proposal; text: string; parsed: Config } {
  const p = propose(f, { config: cfg, configSource: 'embedded default', now: NOW })
  const text = renderProposal(p, { schemaRef: '../shipshape.schema.json' })
  // every proposal must be a config `config check` accepts
  const parsed = parseConfigText(text, 'generated.yaml', { hostname: 'box1' })
  return { p, text, parsed }
}

describe('propose: services', () => {
  it('compose v1 relative config_files are resolved against the working dir', () => {
    const { parsed, p } = run(
      facts({
        containers: [
          container({
            name: 'whisperx_whisperx_1',
            labels: composeLabels('whisperx', 'whisperx', '/opt/whisperx', 'docker-compose.yml'),
          }),
        ],
      }),
    )
    expect(p.services).toEqual(['whisperx'])
    expect(parsed.services.whisperx?.compose).toBe('/opt/whisperx/docker-compose.yml')
    expect(parsed.services.whisperx?.service).toBeUndefined() // the entry's name is the service
  })

  it('compose v2 absolute files: the first one, the overrides named in a comment', () => {
    const { parsed, text } = run(
      facts({
        containers: [
          container({
            name: 'cal-web-1',
            labels: composeLabels(
              'cal',
              'web',
              '/srv/cal',
              '/srv/cal/compose.yaml,/srv/cal/compose.override.yaml',
            ),
          }),
        ],
      }),
    )
    expect(parsed.services.web?.compose).toBe('/srv/cal/compose.yaml')
    expect(text).toMatch(
      /compose: \/srv\/cal\/compose\.yaml # started with 1 more: compose\.override\.yaml/,
    )
  })

  it('two projects with the same service name: project-service entries with service:', () => {
    const { parsed, p } = run(
      facts({
        containers: [
          container({ name: 'a-web-1', labels: composeLabels('a', 'web', '/opt/a', 'c.yml') }),
          container({ name: 'b-web-1', labels: composeLabels('b', 'web', '/opt/b', 'c.yml') }),
          container({ name: 'b-db-1', labels: composeLabels('b', 'db', '/opt/b', 'c.yml') }),
          // a plain container already named like one of them does not take its name
          container({ name: 'a-web', build: { dir: '/opt/x', dockerfile: null, problem: null } }),
        ],
      }),
    )
    expect(p.services.sort()).toEqual(['a-web', 'a-web-2', 'b-web', 'db'])
    expect(parsed.services['a-web']).toMatchObject({ compose: '/opt/a/c.yml', service: 'web' })
    expect(parsed.services['b-web']).toMatchObject({ compose: '/opt/b/c.yml', service: 'web' })
    expect(parsed.services['a-web-2']).toMatchObject({ container: 'a-web', build: '/opt/x' })
    expect(parsed.services.db).toMatchObject({ compose: '/opt/b/c.yml' })
    expect(parsed.services.db?.service).toBeUndefined()
  })

  it('one-off `compose run` containers and rebuild leftovers are no services', () => {
    const { p } = run(
      facts({
        containers: [
          container({
            name: 'a-web-run-1',
            labels: {
              ...composeLabels('a', 'web', '/opt/a', 'c.yml'),
              'com.docker.compose.oneoff': 'True',
            },
          }),
          container({ name: 'api-shipshape-old-20261125T150405Z' }),
        ],
      }),
    )
    expect(p.services).toEqual([])
    expect(p.trailing.services.disabled).toEqual([])
  })

  it('a plain container without a build context is listed commented out, saying why', () => {
    const { parsed, text, p } = run(facts({ containers: [container({ name: 'api' })] }))
    expect(parsed.services).toEqual({})
    expect(p.services).toEqual([])
    expect(text).toContain('# plain container api (app:1): no build context found — add build: DIR')
    expect(text).toMatch(/^ {2}# api:\n {2}# {3}container: api$/m)
  })

  it('a shipshape.build label that names no Dockerfile keeps it commented, with the problem', () => {
    const { parsed, text } = run(
      facts({
        containers: [
          container({
            name: 'api',
            build: {
              dir: '/opt/api',
              dockerfile: null,
              problem: 'names /opt/api, and there is no /opt/api/Dockerfile',
            },
          }),
        ],
      }),
    )
    expect(parsed.services).toEqual({})
    expect(text).toContain(
      'its shipshape.build label names /opt/api, and there is no /opt/api/Dockerfile',
    )
  })

  it('a compose file without build: for the service is said so (rebuild refuses it)', () => {
    const { text } = run(
      facts({
        containers: [
          container({ name: 'p-web-1', labels: composeLabels('p', 'web', '/opt/p', 'c.yml') }),
        ],
        composeFiles: {
          '/opt/p/c.yml': { path: '/opt/p/c.yml', exists: true, servicesWithBuild: ['other'] },
        },
      }),
    )
    expect(text).toContain('no build: for it in its compose files: rebuild refuses it')
  })
})

describe('propose: health and gpu', () => {
  const compose = composeLabels('p', 'svc', '/opt/p', 'c.yml')

  it('the HEALTHCHECK → container: true, not guessed', () => {
    const { parsed, p } = run(
      facts({ containers: [container({ name: 'x', labels: compose, healthcheck: true })] }),
    )
    expect(parsed.services.svc?.health).toMatchObject({ container: true })
    expect(p.guessed).toEqual([])
  })

  it('a published HTTP port → a guessed url on the host side, marked for review', () => {
    const { parsed, p, text } = run(
      facts({
        containers: [
          container({
            name: 'x',
            labels: compose,
            published: [
              { port: 5432, protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 15432 },
              { port: 8080, protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 18080 },
            ],
          }),
        ],
      }),
    )
    expect(parsed.services.svc?.health?.url).toBe('http://127.0.0.1:18080/')
    expect(p.guessed).toEqual(['services.svc.health.url'])
    expect(text).toMatch(/url: http:\/\/127\.0\.0\.1:18080\/ # guessed: confirm/)
    expect(text).toContain('userEnv/passwordEnv: the NAMES of environment variables')
  })

  it.each([
    [
      'host network, EXPOSE 8000',
      { networkMode: 'host', exposed: [5432, 8000] },
      'http://127.0.0.1:8000/',
    ],
    [
      'bound to one address',
      { published: [{ port: 80, protocol: 'tcp', hostIp: '10.0.0.5', hostPort: 8081 }] },
      'http://10.0.0.5:8081/',
    ],
    [
      'bound to ::1',
      { published: [{ port: 80, protocol: 'tcp', hostIp: '::1', hostPort: 8081 }] },
      'http://[::1]:8081/',
    ],
    [
      'TLS port',
      { published: [{ port: 443, protocol: 'tcp', hostIp: '', hostPort: 8443 }] },
      'https://127.0.0.1:8443/',
    ],
    ['UDP only', { published: [{ port: 53, protocol: 'udp', hostIp: '', hostPort: 53 }] }, null],
    [
      'a database port only',
      { published: [{ port: 6379, protocol: 'tcp', hostIp: '', hostPort: 6379 }] },
      null,
    ],
    ['no port at all', {}, null],
  ] as const)('%s', (_what, o, url) => {
    const h = guessHealth(container({ name: 'x', ...(o as Partial<ContainerFacts>) }))
    expect(h.health).toEqual(url ? { url } : null)
    expect(h.guessed).toBe(url !== null)
  })

  it('no health check: a comment saying rebuild needs one', () => {
    const { parsed, text } = run(facts({ containers: [container({ name: 'x', labels: compose })] }))
    expect(parsed.services.svc?.health).toBeUndefined()
    expect(text).toContain(
      'no health check found (no HEALTHCHECK, no HTTP port): rebuild needs one',
    )
  })

  it('a database image never gets an HTTP guess', () => {
    const h = guessHealth(
      container({
        name: 'db',
        image: 'elasticsearch:8',
        published: [{ port: 9200, protocol: 'tcp', hostIp: '', hostPort: 9200 }],
      }),
    )
    expect(h.health).toBe(null)
  })

  it('a GPU request → required; CUDA hints without one → expected-unused, guessed', () => {
    const { parsed, p, text } = run(
      facts({
        containers: [
          container({
            name: 'a',
            labels: composeLabels('p', 'gpu', '/opt/p', 'c.yml'),
            gpu: { requested: true, reasons: ['runtime nvidia'] },
            cudaHints: ['CUDA_VERSION=12.4.1 in the image ENV'],
          }),
          container({
            name: 'b',
            labels: composeLabels('p', 'cpu', '/opt/p', 'c.yml'),
            cudaHints: ['CUDA_VERSION=12.4.1 in the image ENV'],
          }),
          container({ name: 'c', labels: composeLabels('p', 'plain', '/opt/p', 'c.yml') }),
        ],
      }),
    )
    expect(parsed.services.gpu?.gpu).toBe('required')
    expect(parsed.services.cpu?.gpu).toBe('expected-unused')
    expect(parsed.services.plain?.gpu).toBe('unknown') // the default: nothing written
    expect(p.guessed).toEqual(['services.cpu.gpu'])
    expect(text).toContain('gpu: required # a requests a GPU: runtime nvidia')
    expect(text).toContain('Confirm with `shipshape torch-check b`')
  })
})

describe('propose: prune.protect.images', () => {
  it.each([
    ['postgres:16', true],
    ['docker.io/library/postgres:16-alpine', true],
    ['bitnami/postgresql:15', true],
    ['mariadb@sha256:' + 'b'.repeat(64), true],
    ['clickhouse/clickhouse-server:24', true],
    ['redis/redis-stack-server:7', true],
    ['docker.elastic.co/elasticsearch/elasticsearch:8.14.0', true],
    ['minio/minio', true],
    ['reg.example:5000/team/mongo:7', true],
    ['prometheuscommunity/postgres-exporter:0.15', false],
    ['whisperx_whisperx', false],
    ['myredisapp:1', false],
  ])('%s database-like: %s', (ref, db) => {
    expect(isDatabaseImage(ref)).toBe(db)
  })

  it('repoOf strips tag and digest, not a registry port', () => {
    expect(repoOf('reg:5000/a/pg:16')).toBe('reg:5000/a/pg')
    expect(repoOf('reg:5000/a/pg')).toBe('reg:5000/a/pg')
    expect(repoOf('pg@sha256:abc')).toBe('pg')
  })

  it('a db container: its repository (every tag); a named-volume holder: its exact reference', () => {
    const { parsed, p, text } = run(
      facts({
        containers: [
          container({ name: 'db', image: 'postgres:16' }),
          container({ name: 'db2', image: 'postgres:15' }),
          container({
            name: 'app',
            image: 'myapp',
            mounts: [
              { type: 'volume', name: 'appdata', source: '/v', destination: '/d', readOnly: false },
            ],
          }),
          container({
            name: 'anon',
            image: 'other:2',
            mounts: [
              {
                type: 'volume',
                name: 'f'.repeat(64),
                source: '/v2',
                destination: '/d',
                readOnly: false,
              },
            ],
          }),
          // run by id: protected by one of its tags
          container({
            name: 'byid',
            image: 'sha256:' + 'c'.repeat(64),
            imageTags: ['cache:3'],
            mounts: [
              {
                type: 'volume',
                name: 'cachedata',
                source: '/v3',
                destination: '/d',
                readOnly: false,
              },
            ],
          }),
          container({ name: 'web', image: 'nginx:1' }),
        ],
      }),
    )
    expect(p.protect).toEqual(['cache:3', 'myapp:latest', 'postgres'])
    expect(parsed.prune.protect.images).toEqual(['cache:3', 'myapp:latest', 'postgres'])
    expect(text).toContain('- postgres # db (postgres:16): database-like, every tag kept')
    expect(text).toContain('- myapp:latest # app holds the named volume appdata')
  })

  it('an untagged image cannot be protected by name: said so', () => {
    const { p, text } = run(
      facts({
        containers: [
          container({
            name: 'db',
            image: 'sha256:' + 'd'.repeat(64),
            imageId: 'sha256:' + 'd'.repeat(64),
            imageTags: [],
            mounts: [
              { type: 'volume', name: 'x', source: '/v', destination: '/d', readOnly: false },
            ],
          }),
        ],
      }),
    )
    expect(p.protect).toEqual([])
    expect(text).toContain(
      'db runs the untagged image sha256:dddddddddddd: label it shipshape.keep=true',
    )
  })
})

describe('propose: assets', () => {
  const music = '/opt/impro/music'
  const base = (o: Partial<InitFacts> = {}) =>
    facts({
      containers: [
        container({ name: 'impro', mounts: [bind(music, '/music'), bind('/opt/impro/conf')] }),
        container({ name: 'player', mounts: [bind(music + '/', '/m')] }),
        container({
          name: 'nginx',
          mounts: [bind('/etc/nginx', '/etc/nginx'), bind('/run/docker.sock')],
        }),
      ],
      sources: {
        [music]: { path: music, kind: 'dir', sizeBytes: 4_100_000_000 },
        '/opt/impro/conf': { path: '/opt/impro/conf', kind: 'dir', sizeBytes: 4096 },
        '/etc/nginx': { path: '/etc/nginx', kind: 'dir', sizeBytes: null },
        '/run/docker.sock': { path: '/run/docker.sock', kind: 'socket', sizeBytes: null },
      },
      ...o,
    })

  it('a big directory: on the rclone mount, restarting every container that mounts it', () => {
    const { parsed, p, text } = run(base())
    expect(p.assets).toEqual(['impro-music'])
    expect(parsed.assets['impro-music']).toMatchObject({
      source: music,
      dest: '/mnt/rd/impro-music',
      mount: '/mnt/rd',
      mountType: 'fuse.rclone',
      restart: ['impro', 'player'],
    })
    expect(text).toContain('# 4.1 GB (du -x), bind-mounted by impro, player')
    expect(text).toContain('mount: /mnt/rd # a live rclone mount')
  })

  it('an asset under /etc is refused (named in a comment, not measured), small ones left out', () => {
    const { parsed, text } = run(base())
    expect(Object.values(parsed.assets).map((a) => a.source)).toEqual([music])
    expect(text).toContain(
      '# not considered, not measured: /etc/nginx (nginx): source /etc/nginx is a system path (/etc): never migrated',
    )
    expect(text).toContain('# 1 smaller bind-mounted directory (≤ report.bigAssets) left out')
    // a socket is no directory: not even listed
    expect(text.split('\n').filter((l) => l.includes('/run/docker.sock'))).toEqual([
      '# from what the engine at unix:///var/run/docker.sock runs (3 containers) and the bind mounts it found;',
    ])
  })

  it('bigAssets from the loaded config decides; a directory exactly at it is left out', () => {
    const at = run(base(), config({ report: { bigAssets: '4100MB' } }))
    expect(at.p.assets).toEqual([])
    const below = run(base(), config({ report: { bigAssets: '4GB' } }))
    expect(below.p.assets).toEqual(['impro-music'])
    const lowered = run(base(), config({ report: { bigAssets: '1kB' } }))
    expect(lowered.p.assets).toEqual(['impro-conf', 'impro-music'])
  })

  it('outside allowedRoots: not proposed, said so; allowedRoots from the config count', () => {
    const f = base({
      containers: [container({ name: 'x', mounts: [bind('/mnt/data/big')] })],
      sources: { '/mnt/data/big': { path: '/mnt/data/big', kind: 'dir', sizeBytes: null } },
    })
    const d = run(f)
    expect(d.p.assets).toEqual([])
    expect(d.text).toContain('/mnt/data/big (x): source /mnt/data/big is not below an allowed root')
    expect(d.parsed.report.paths).toEqual([])
    const withRoot = run(
      {
        ...f,
        sources: { '/mnt/data/big': { path: '/mnt/data/big', kind: 'dir', sizeBytes: 3 * GB } },
      },
      config({ allowedRoots: ['/mnt/data'] }),
    )
    expect(withRoot.p.assets).toEqual(['data-big'])
    expect(withRoot.parsed.allowedRoots).toEqual(['/mnt/data']) // kept, so migrate-assets agrees
    expect(withRoot.parsed.report.paths).toEqual(['/mnt/data'])
  })

  it('no live mount: the whole entry commented out, saying why', () => {
    const { parsed, p, text } = run(
      base({
        mounts: [{ ...RCLONE, live: false, problem: 'ENOTCONN: its FUSE process is gone' }],
      }),
    )
    expect(parsed.assets).toEqual({})
    expect(p.assets).toEqual([])
    expect(text).toContain('# impro-music: 4.1 GB (du -x), bind-mounted by impro, player')
    expect(text).toContain(
      '# not proposed: no live rclone/FUSE mount (/mnt/rd (fuse.rclone): ENOTCONN',
    )
    expect(text).toMatch(
      /^ {2}# impro-music:\n {2}# {3}source: \/opt\/impro\/music\n {2}# {3}dest: \/mnt\/REMOTE\/impro-music\n {2}# {3}mount: \/mnt\/REMOTE\n {2}# {3}restart: \[impro, player\]$/m,
    )
    const none = run(base({ mounts: [] }))
    expect(none.text).toContain('# not proposed: no rclone/FUSE mount in /proc/self/mountinfo')
  })

  it('rclone mounts first, other FUSE next (with its mountType and a remote: note)', () => {
    const sshfs: FuseMount = {
      mountPoint: '/mnt/ssh',
      fsType: 'fuse.sshfs',
      source: 'h:',
      live: true,
      problem: null,
    }
    const both = run(base({ mounts: [sshfs, { ...RCLONE, mountPoint: '/mnt/rd2' }] }))
    expect(both.parsed.assets['impro-music']?.mount).toBe('/mnt/rd2')
    const fuseOnly = run(base({ mounts: [sshfs] }))
    expect(fuseOnly.parsed.assets['impro-music']).toMatchObject({
      mount: '/mnt/ssh',
      mountType: 'fuse.sshfs',
      dest: '/mnt/ssh/impro-music',
    })
    expect(fuseOnly.text).toContain('not rclone: set remote: if rclone serves it')
  })

  it('a directory already on a mount, or inside a big one, is no asset of its own', () => {
    const { p, parsed } = run(
      facts({
        containers: [
          container({
            name: 'a',
            mounts: [bind('/srv/media'), bind('/srv/media/video'), bind('/mnt/rd/x')],
          }),
          container({ name: 'b', mounts: [bind('/srv/media/video')] }),
        ],
        sources: {
          '/srv/media': { path: '/srv/media', kind: 'dir', sizeBytes: 9 * GB },
          '/srv/media/video': { path: '/srv/media/video', kind: 'dir', sizeBytes: 8 * GB },
          '/mnt/rd/x': { path: '/mnt/rd/x', kind: 'dir', sizeBytes: null },
        },
      }),
    )
    expect(p.assets).toEqual(['srv-media'])
    expect(parsed.assets['srv-media']?.restart).toEqual(['a', 'b'])
  })
})

describe('propose: report.paths and carried settings', () => {
  it('report.paths: the allowed roots holding the bind-mounted directories', () => {
    const { parsed } = run(
      facts({
        containers: [
          container({
            name: 'a',
            mounts: [bind('/opt/a/x'), bind('/srv/b'), bind('/var/www/site'), bind('/etc/x')],
          }),
        ],
        sources: {
          '/opt/a/x': { path: '/opt/a/x', kind: 'dir', sizeBytes: 1 },
          '/srv/b': { path: '/srv/b', kind: 'dir', sizeBytes: 1 },
          '/var/www/site': { path: '/var/www/site', kind: 'dir', sizeBytes: 1 },
          '/etc/x': { path: '/etc/x', kind: 'dir', sizeBytes: null },
        },
      }),
    )
    expect(parsed.report.paths).toEqual(['/opt', '/srv', '/var/www'])
  })

  it('the embedded default carries nothing; a host config’s own settings are kept', () => {
    expect(carriedSettings(config())).toEqual({})
    const cfg = config({
      allowedRoots: ['/data'],
      report: { bigAssets: '500MB', paths: ['/data'] },
      docker: { host: 'unix:///run/d.sock' },
      prune: { keepTags: 5, protect: { images: ['redis:*'] } },
      services: { x: { container: 'x' } },
    })
    expect(carriedSettings(cfg)).toEqual({
      allowedRoots: ['/data'],
      docker: { host: 'unix:///run/d.sock' },
      report: { bigAssets: '500MB' },
      prune: { keepTags: 5 },
    })
    const { parsed, text } = run(facts(), cfg)
    expect(parsed.report).toMatchObject({ bigAssets: 500e6, paths: ['/data'] })
    expect(parsed.prune).toMatchObject({ keepTags: 5, protect: { images: ['redis:*'] } })
    expect(parsed.services).toEqual({}) // proposed afresh, not copied
    expect(text).toContain('# kept from embedded default (where it differs from the defaults):')
  })
})

describe('render', () => {
  it('parses with parseConfigText and keeps its comments', () => {
    const f = facts({
      containers: [
        container({
          name: 'impro',
          labels: composeLabels('impro', 'impro', '/opt/impro', 'docker-compose.yml'),
          mounts: [bind('/opt/impro/music')],
          published: [{ port: 80, protocol: 'tcp', hostIp: '', hostPort: 8080 }],
        }),
        container({ name: 'api' }),
      ],
      sources: { '/opt/impro/music': { path: '/opt/impro/music', kind: 'dir', sizeBytes: 2 * GB } },
    })
    const { text, parsed } = run(f)
    expect(text.startsWith('# yaml-language-server: $schema=../shipshape.schema.json\n')).toBe(true)
    expect(text).toContain('written by `shipshape config init` at 2026-03-04T05:06:07.000Z')
    // the comments are YAML comments of the document, where they belong
    const doc = parseDocument(text)
    // (a comment above a map's first key is the map's own when parsed)
    const services = doc.getIn(['services'], true) as { commentBefore?: string }
    expect(services.commentBefore).toContain('compose project impro, service impro')
    const url = doc.getIn(['services', 'impro', 'health', 'url'], true) as { comment?: string }
    expect(url.comment).toContain('guessed: confirm')
    // active entries parsed; the commented one is only text
    expect(Object.keys(parsed.services)).toEqual(['impro'])
    expect(parsed.assets['impro-music']?.dest).toBe('/mnt/rd/impro-music')
    expect(text).toContain('# api:')
    expect(parsed.host).toBe('box1')
  })

  it('names with odd characters stay valid YAML and valid names', () => {
    const { parsed } = run(
      facts({
        containers: [
          container({
            name: 'x',
            labels: composeLabels('my proj', 'svc', '/opt/my proj: #1', 'docker-compose.yml'),
            mounts: [bind('/opt/my proj: #1/data dir')],
          }),
        ],
        sources: {
          '/opt/my proj: #1/data dir': {
            path: '/opt/my proj: #1/data dir',
            kind: 'dir',
            sizeBytes: 3 * GB,
          },
        },
      }),
    )
    expect(parsed.services.svc?.compose).toBe('/opt/my proj: #1/docker-compose.yml')
    expect(Object.keys(parsed.assets)).toEqual(['my-proj-1-data-dir'])
    expect(parsed.assets['my-proj-1-data-dir']?.source).toBe('/opt/my proj: #1/data dir')
  })
})

describe('facts from raw engine data (pure)', () => {
  it('cudaHints: ENV, the CUDA wheel index, a plain pip install of torch; never the CPU wheel', () => {
    const none = { env: ['PATH=/bin'], labels: {} }
    expect(cudaHints({ env: ['CUDA_VERSION=12.4.1'], labels: {} }, [])).toEqual([
      "CUDA_VERSION=12.4.1 in the image's ENV (a CUDA base image)",
    ])
    expect(
      cudaHints(none, [
        { createdBy: 'RUN pip install torch --index-url https://download.pytorch.org/whl/cu121' },
      ]),
    ).toHaveLength(1)
    expect(
      cudaHints(none, [
        { createdBy: '/bin/sh -c pip install --no-cache-dir torch==2.3.0 whisperx' },
      ]),
    ).toHaveLength(1)
    expect(
      cudaHints(none, [
        { createdBy: 'RUN pip install torch --index-url https://download.pytorch.org/whl/cpu' },
      ]),
    ).toEqual([])
    expect(cudaHints(none, [{ createdBy: 'RUN pip install torchaudio-utils flask' }])).toEqual([])
    expect(cudaHints(none, [{ createdBy: 'RUN apt-get install -y python3' }])).toEqual([])
  })

  it('storageFuseMounts: FUSE only, no desktop/lxcfs/system ones, the visible one per point', () => {
    const m = (mountPoint: string, fsType: string, source = 's') => ({
      mountPoint,
      fsType,
      source,
      options: [],
      superOptions: [],
      device: '0:1',
    })
    const got = storageFuseMounts([
      m('/', 'ext4'),
      m('/sys/fs/fuse/connections', 'fusectl'),
      m('/var/lib/lxcfs', 'fuse.lxcfs'),
      m('/run/user/1000/doc', 'fuse.portal'),
      m('/mnt/rd', 'fuse.rclone', 'old:'),
      m('/mnt/ssh', 'fuse.sshfs'),
      m('/mnt/rd', 'fuse.rclone', 'new:'),
    ])
    expect(got.map((x) => `${x.mountPoint} ${x.source}`)).toEqual(['/mnt/ssh s', '/mnt/rd new:'])
  })
})

// --- the command ---------------------------------------------------------------------------

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'shipshape-init-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

const HOST_FACTS = facts({
  containers: [
    container({
      name: 'web-1',
      labels: composeLabels('p', 'web', '/opt/p', 'docker-compose.yml'),
      healthcheck: true,
    }),
    container({ name: 'db', image: 'postgres:16' }),
  ],
})

async function cmd(args: string[], env: NodeJS.ProcessEnv = {}) {
  const stdout = new Sink()
  const stderr = new Sink()
  const seen: Config[] = []
  const program = new Command('shipshape')
    .option('-c, --config <file>')
    .option('--json')
    .option('-q, --quiet')
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {} })
  program.addCommand(
    configCommand({
      stdout,
      stderr,
      env,
      hostname: 'box1',
      packageRoot: dir,
      now: () => NOW,
      initFacts: async (c) => {
        seen.push(c)
        return HOST_FACTS
      },
    }).exitOverride(),
  )
  let error: unknown
  try {
    await program.parseAsync(args, { from: 'user' })
  } catch (err) {
    error = err
  }
  return { stdout: stdout.text, stderr: stderr.text, error, seen }
}

describe('shipshape config init', () => {
  it('writes config/hosts/<hostname>.yaml where the lookup finds it, mode 0644, and says so', async () => {
    const r = await cmd(['config', 'init'])
    expect(r.error).toBeUndefined()
    const file = path.join(dir, 'config', 'hosts', 'box1.yaml')
    const text = await readFile(file, 'utf8')
    expect(text.startsWith('# yaml-language-server: $schema=../shipshape.schema.json\n')).toBe(true)
    expect(parseConfigText(text, file).services.web?.compose).toBe('/opt/p/docker-compose.yml')
    expect((await stat(file)).mode & 0o777).toBe(0o644)
    expect(r.stdout).toBe('')
    expect(r.stderr).toContain(`wrote ${file}: 1 services, 0 assets, 1 protected images`)
    expect(r.stderr).toContain('find it on this host (config/hosts/box1.yaml)')
    // and config check, run the same way, finds and accepts it
    const check = await cmd(['config', 'check'])
    expect(check.error).toBeUndefined()
    expect(check.stderr).toBe(`ok: ${file}\n`)
  })

  it('never overwrites without --force (exit 4 naming the file and --force); --force replaces', async () => {
    const file = path.join(dir, 'mine.yaml')
    await writeFile(file, 'host: handmade\n')
    const r = await cmd(['config', 'init', '--out', file])
    expect(r.error).toBeInstanceOf(RefusedError)
    expect((r.error as RefusedError).exitCode).toBe(4)
    expect((r.error as RefusedError).message).toContain(file)
    expect((r.error as RefusedError).remedy).toContain('--force')
    expect(r.seen).toEqual([]) // refused before anything was gathered
    expect(await readFile(file, 'utf8')).toBe('host: handmade\n')
    const forced = await cmd(['config', 'init', '--out', file, '--force'])
    expect(forced.error).toBeUndefined()
    expect(await readFile(file, 'utf8')).toContain('services:')
    expect((await stat(file)).mode & 0o777).toBe(0o644)
  })

  it('a file where a directory of the path should be: a usage error (2), not "exists" (4)', async () => {
    await writeFile(path.join(dir, 'afile'), 'x')
    for (const force of [false, true]) {
      const err = await writeConfigFile(path.join(dir, 'afile', 'x.yaml'), 'y: 2\n', {
        force,
      }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(UsageError)
      expect(String((err as Error).message)).toMatch(/cannot create .*afile: EEXIST/)
    }
  })

  it('the atomic write refuses a file that appeared after the early check', async () => {
    const file = path.join(dir, 'late.yaml')
    await writeFile(file, 'x: 1\n')
    await expect(writeConfigFile(file, 'y: 2\n', { force: false })).rejects.toBeInstanceOf(
      RefusedError,
    )
    expect(await readFile(file, 'utf8')).toBe('x: 1\n')
    await writeConfigFile(file, 'y: 2\n', { force: true })
    expect(await readFile(file, 'utf8')).toBe('y: 2\n')
    // no temp file left behind
    const { readdir } = await import('node:fs/promises')
    expect(await readdir(dir)).toEqual(['late.yaml'])
  })

  it('--stdout prints the YAML and writes nothing; --json gives the versioned shape', async () => {
    const r = await cmd(['config', 'init', '--stdout'])
    expect(r.error).toBeUndefined()
    expect(parseConfigText(r.stdout, 'stdout').prune.protect.images).toEqual(['postgres'])
    await expect(stat(path.join(dir, 'config'))).rejects.toThrow()
    const j = await cmd(['config', 'init', '--stdout', '--json'])
    const out = JSON.parse(j.stdout)
    expect(out).toMatchObject({
      schema: 'shipshape.config-init/1',
      file: null,
      services: ['web'],
      assets: [],
      protect: ['postgres'],
      guessed: [],
    })
    expect(out.yaml).toBe(r.stdout)
  })

  it('reads thresholds from the config given with --config', async () => {
    const cfg = path.join(dir, 'low.yaml')
    await writeFile(cfg, 'report:\n  bigAssets: 1MB\n')
    const r = await cmd(['config', 'init', '--stdout', '--config', cfg])
    expect(r.error).toBeUndefined()
    expect(r.seen[0]?.report.bigAssets).toBe(1e6)
    expect(parseConfigText(r.stdout, 'stdout').report.bigAssets).toBe(1e6)
  })

  it('--out with --stdout is bad usage', async () => {
    const r = await cmd(['config', 'init', '--stdout', '--out', path.join(dir, 'x.yaml')])
    expect(r.error).toBeInstanceOf(UsageError)
  })
})
