import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ConfigError, ExitCode } from '../../../lib/errors.js'
import { parseConfigText } from '../../../lib/config/load.js'
import { configToInput, type Config } from '../../../lib/config/schema.js'

const FILE = '/etc/shipshape/test.yaml'
const fixture = (name: string) => new URL(`../../fixtures/config/${name}`, import.meta.url)

/** The ConfigError parseConfigText throws for `text`. */
function problemsOf(text: string, file = FILE): ConfigError {
  try {
    parseConfigText(text, file)
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return err as ConfigError
  }
  throw new Error('expected a ConfigError')
}

const yaml = (...lines: string[]) => lines.join('\n') + '\n'

describe('parseConfigText: defaults', () => {
  it('an empty file is a complete config with every default', () => {
    const c: Config = parseConfigText('', FILE, { hostname: 'box1' })
    expect(c.host).toBe('box1')
    expect(c.stateDir).toBe('/var/lib/shipshape')
    expect(c.backupDir).toBe('/var/backups/shipshape')
    expect(c.docker).toEqual({ timeout: 3_000, callTimeout: 120_000 })
    expect(c.report).toEqual({
      top: 10,
      bigImage: 2e9,
      bigAssets: 1e9,
      paths: [],
      concurrency: 8,
      layersPerImage: 3,
      keep: 30,
    })
    expect(c.services).toEqual({})
    expect(c.assets).toEqual({})
    expect(c.prune).toEqual({
      keepTags: 3,
      backupsFor: 7 * 86_400_000,
      unusedImagesAfter: 30 * 86_400_000,
      stoppedContainersAfter: 7 * 86_400_000,
      buildCacheKeep: 10e9,
      diskThreshold: 0.85,
      protect: { images: [], labels: ['shipshape.keep=true'] },
      danglingAfter: 7 * 86_400_000,
      volumes: false,
      volumesAfter: 30 * 86_400_000,
      apply: false,
    })
    expect(c.schedule).toEqual({ timeout: 7_200_000 })
    expect(c.notify).toEqual({ webhookEnv: 'SHIPSHAPE_WEBHOOK_URL', diskLimit: 0.9 })
    expect(c.systemd).toEqual({
      unitDir: '/etc/systemd/system',
      environmentFile: '/etc/shipshape/shipshape.env',
      reportCalendar: '*-*-* 02:00:00',
      pruneCalendar: 'Sun *-*-* 03:30:00',
    })
  })

  it('a file with only comments is valid too', () => {
    expect(parseConfigText('# nothing here\n', FILE, { hostname: 'h' }).report.top).toBe(10)
  })

  it("the file's host wins over the machine's hostname", () => {
    expect(parseConfigText('host: srv759970\n', FILE, { hostname: 'other' }).host).toBe('srv759970')
  })

  it('fills nested defaults next to given keys', () => {
    const c = parseConfigText(
      yaml('report:', '  bigImage: 2GiB', 'prune:', '  protect:', '    images: ["postgres:*"]'),
      FILE,
    )
    expect(c.report.bigImage).toBe(2_147_483_648)
    expect(c.report.top).toBe(10)
    expect(c.prune.protect).toEqual({ images: ['postgres:*'], labels: ['shipshape.keep=true'] })
  })

  it('turns sizes, durations and percentages into bytes, ms and fractions', () => {
    const c = parseConfigText(
      yaml(
        'docker: { timeout: 30s }',
        'report: { bigImage: 500MiB, bigAssets: 1073741824 }',
        'prune: { backupsFor: 168h, buildCacheKeep: 1.5GB, diskThreshold: 90%, unusedImagesAfter: 2w }',
      ),
      FILE,
    )
    expect(c.docker.timeout).toBe(30_000)
    expect(c.report.bigImage).toBe(524_288_000)
    expect(c.report.bigAssets).toBe(1_073_741_824)
    expect(c.prune.backupsFor).toBe(604_800_000)
    expect(c.prune.buildCacheKeep).toBe(1_500_000_000)
    expect(c.prune.diskThreshold).toBe(0.9)
    expect(c.prune.unusedImagesAfter).toBe(1_209_600_000)
  })

  it('normalises absolute paths', () => {
    const c = parseConfigText(
      yaml('stateDir: /var/lib/shipshape/', 'report: { paths: [/opt//x/../y, /] }'),
      FILE,
    )
    expect(c.stateDir).toBe('/var/lib/shipshape')
    expect(c.report.paths).toEqual(['/opt/y', '/'])
  })

  it('encodes back to the YAML spelling (config show)', () => {
    const c = parseConfigText(
      yaml('report: { bigImage: 2GiB }', 'prune: { backupsFor: 168h }'),
      FILE,
      { hostname: 'h' },
    )
    const input = configToInput(c)
    expect(input.report?.bigImage).toBe('2GiB')
    expect(input.prune?.backupsFor).toBe('7d')
    expect(input.prune?.diskThreshold).toBe('85%')
    expect(parseConfigText(JSON.stringify(input), FILE)).toEqual(c)
  })
})

describe('parseConfigText: errors name file, line, column and key', () => {
  it('is a ConfigError with exit code 2', () => {
    const err = problemsOf('report: { top: 0 }\n')
    expect(err.exitCode).toBe(ExitCode.usage)
    expect(err.message).toBe(`${FILE}:1:16: report.top: must be a whole number from 1 to 1000`)
    expect(err.problems).toEqual([
      {
        file: FILE,
        line: 1,
        column: 16,
        key: 'report.top',
        message: 'must be a whole number from 1 to 1000',
      },
    ])
  })

  it('YAML syntax error: file and line from the parser', () => {
    // (inline: prettier refuses to read a broken YAML fixture)
    const err = problemsOf(
      yaml('report:', '  top: 10', '  paths: [/opt, /srv', 'prune:', '  keepTags: 3'),
    )
    expect(err.problems[0]).toMatchObject({ file: FILE, line: 4, column: 1, key: '' })
    expect(err.message).toMatch(
      /^\/etc\/shipshape\/test\.yaml:4:1: YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a \]/,
    )
  })

  it('YAML syntax error: tabs as indentation', () => {
    const err = problemsOf('report:\n\ttop: 10\n')
    expect(err.problems[0]).toMatchObject({ line: 2, column: 1 })
    expect(err.problems[0]?.message).toBe('YAML syntax: Tabs are not allowed as indentation')
  })

  it('an alias to a missing anchor is reported, not thrown raw', () => {
    const err = problemsOf(yaml('report:', '  paths: *nowhere'))
    expect(err.message).toMatch(/^\/etc\/shipshape\/test\.yaml:2:10: YAML: Unresolved alias/)
  })

  it('duplicate key is a YAML error on its line', () => {
    const err = problemsOf(yaml('report:', '  top: 5', '  top: 6'))
    expect(err.problems).toHaveLength(1)
    expect(err.problems[0]).toMatchObject({ line: 3, column: 3 })
    expect(err.message).toContain('Map keys must be unique')
  })

  it('unknown nested key: names the key itself and its line, with a suggestion', () => {
    const err = problemsOf(yaml('report:', '  top: 5', '  bigimage: 3GB'))
    expect(err.message).toBe(
      `${FILE}:3:3: report.bigimage: unknown key 'bigimage' (did you mean 'bigImage'?)`,
    )
  })

  it('unknown key with no close match lists the allowed keys', () => {
    const err = problemsOf(yaml('docker:', '  socket: /run/docker.sock'))
    expect(err.problems[0]).toMatchObject({ line: 2, column: 3, key: 'docker.socket' })
    expect(err.problems[0]?.message).toBe(
      "unknown key 'socket' (allowed: host, timeout, compose, callTimeout)",
    )
  })

  it('unknown key deep inside a record entry', () => {
    const err = problemsOf(
      yaml(
        'services:',
        '  whisperx:',
        '    container: whisperx',
        '    health:',
        '      url: https://x/health',
        '      expect: 200',
      ),
    )
    expect(err.problems).toHaveLength(1)
    expect(err.problems[0]).toMatchObject({
      line: 6,
      column: 7,
      key: 'services.whisperx.health.expect',
    })
  })

  it('bad size: names report.bigImage and its line', () => {
    const err = problemsOf(yaml('# comment', 'report:', '  top: 5', '  bigImage: 2 potatoes'))
    expect(err.message).toBe(
      `${FILE}:4:13: report.bigImage: '2 potatoes' is not a size: use e.g. 2GB, 500MiB`,
    )
  })

  it('ambiguous size and a size of the wrong type', () => {
    expect(problemsOf('report: { bigImage: 2G }\n').problems[0]?.message).toMatch(
      /ambiguous: write 2GB/,
    )
    expect(problemsOf('report: { bigImage: true }\n').problems[0]?.message).toBe(
      'must be a size such as 2GB or 500MiB (or a whole number of bytes)',
    )
  })

  it('bad duration and percentage', () => {
    const err = problemsOf(yaml('prune:', '  backupsFor: 7 days', '  diskThreshold: 85'))
    expect(err.problems.map((p) => [p.line, p.key, p.message])).toEqual([
      [
        2,
        'prune.backupsFor',
        "'7 days' is not a duration: use a whole number and one unit: 30s, 15m, 168h, 7d, 2w",
      ],
      [3, 'prune.diskThreshold', 'must be a percentage such as 85%'],
    ])
  })

  it('wrong types say what was expected and what was found', () => {
    const err = problemsOf(yaml('report: 3', 'prune:', '  volumes: yes'))
    expect(err.problems.map((p) => `${p.line}:${p.key}: ${p.message}`)).toEqual([
      '1:report: expected a mapping, got 3',
      "3:prune.volumes: expected true or false, got 'yes'",
    ])
  })

  it('a document that is not a mapping', () => {
    expect(problemsOf('- a\n- b\n').message).toBe(
      `${FILE}:1:1: (top level): expected a mapping, got a list`,
    )
  })

  it('relative paths are refused', () => {
    const err = problemsOf(yaml('report:', '  paths:', '    - /opt', '    - srv'))
    expect(err.message).toBe(`${FILE}:4:7: report.paths[1]: must be an absolute path`)
  })

  it('lists every problem, sorted by line', () => {
    const file = fixture('bad-many.yaml').pathname
    const err = problemsOf(readFileSync(file, 'utf8'), file)
    expect(err.problems.map((p) => `${p.line}:${p.column} ${p.key}`)).toEqual([
      '3:13 report.bigImage',
      '4:8 report.top',
      '5:11 report.paths[0]',
      '11:7 services.whisperx.health.password',
      '13:18 prune.diskThreshold',
      '15:5 prune.protect.imagez',
    ])
    const lines = err.message.split('\n')
    expect(lines[0]).toBe(`6 problems in ${file}:`)
    expect(lines[1]).toBe(
      `${file}:3:13: report.bigImage: '2 potatoes' is not a size: use e.g. 2GB, 500MiB`,
    )
  })
})

describe('secrets never in the file', () => {
  it.each(['password', 'token', 'secret', 'apiKey'])(
    'a key named %s is refused with the fix',
    (key) => {
      const err = problemsOf(
        yaml(
          'services:',
          '  whisperx:',
          '    container: whisperx',
          '    health:',
          '      url: https://x/h',
          `      ${key}: hunter2`,
        ),
      )
      expect(err.problems[0]).toMatchObject({ line: 6, key: `services.whisperx.health.${key}` })
      expect(err.problems[0]?.message).toMatch(
        /secrets never go in the config file .* passwordEnv .* passwordFile/,
      )
    },
  )

  it('a password inside a URL is refused', () => {
    const err = problemsOf(
      yaml(
        'services:',
        '  w:',
        '    container: w',
        '    health: { url: "https://u:hunter2@x/health" }',
      ),
    )
    expect(err.problems[0]?.message).toMatch(/must not contain a password/)
  })

  it('passwordEnv holds a variable name, not a value', () => {
    const err = problemsOf(
      yaml(
        'services:',
        '  w:',
        '    container: w',
        '    health: { url: https://x/h, passwordEnv: "s3cr3t!" }',
      ),
    )
    expect(err.problems[0]?.message).toMatch(/name of an environment variable .* not its value/)
  })

  it('passwordEnv and passwordFile are exclusive', () => {
    const err = problemsOf(
      yaml(
        'services:',
        '  w:',
        '    container: w',
        '    health:',
        '      url: https://x/h',
        '      userEnv: U',
        '      passwordEnv: P',
        '      passwordFile: /etc/shipshape/w.pass',
      ),
    )
    expect(err.problems).toEqual([
      expect.objectContaining({
        line: 8,
        key: 'services.w.health.passwordFile',
        message: 'name either passwordEnv or passwordFile, not both',
      }),
    ])
  })
})

describe('services, assets, schedule', () => {
  it('a service names compose (with service) or container', () => {
    const ok = parseConfigText(
      yaml(
        'services:',
        '  a: { compose: /opt/a/docker-compose.yml, service: a }',
        '  b: { container: b, build: /opt/b }',
      ),
      FILE,
    )
    expect(ok.services.a).toEqual({
      compose: '/opt/a/docker-compose.yml',
      service: 'a',
      gpu: 'unknown',
      buildTimeout: 2 * 3600_000,
      commitPause: true,
      update: 'off',
    })
    expect(ok.services.b).toEqual({
      container: 'b',
      build: '/opt/b',
      gpu: 'unknown',
      buildTimeout: 2 * 3600_000,
      commitPause: true,
      update: 'off',
    })

    const err = problemsOf(
      yaml(
        'services:',
        '  a: {}',
        '  b: { compose: /opt/b.yml, container: b }',
        '  c: { container: c, service: c }',
      ),
    )
    expect(err.problems.map((p) => `${p.line} ${p.key}: ${p.message}`)).toEqual([
      '2 services.a: name either compose (with service) or container',
      '3 services.b.container: name either compose or container, not both',
      '4 services.c.service: service is a compose service name: add compose',
    ])
  })

  it('health defaults and gpu values', () => {
    const c = parseConfigText(
      yaml(
        'services:',
        '  w:',
        '    container: w',
        '    gpu: expected-unused',
        '    health: { command: [curl, -f, http://localhost/health] }',
      ),
      FILE,
    )
    expect(c.services.w?.gpu).toBe('expected-unused')
    expect(c.services.w?.health).toEqual({
      command: ['curl', '-f', 'http://localhost/health'],
      expectStatus: 200,
      timeout: 60_000,
      retries: 5,
      stableFor: 10_000,
    })
    expect(
      problemsOf(yaml('services:', '  w: { container: w, gpu: maybe }')).problems[0]?.message,
    ).toBe("'maybe' is not one of required, expected-unused, unknown")
  })

  it('a service name must be a docker-style name', () => {
    const err = problemsOf(
      yaml('services:', '  ok: { container: ok }', '  ../etc: { container: x }'),
    )
    expect(err.problems[0]).toMatchObject({ line: 3, column: 3, key: 'services.../etc' })
    expect(err.problems[0]?.message).toMatch(/^bad name '..\/etc'/)
  })

  it('an asset needs source, dest, mount; dest inside the mount', () => {
    const c = parseConfigText(
      yaml(
        'assets:',
        '  music:',
        '    source: /opt/music',
        '    dest: /mnt/rd/music',
        '    mount: /mnt/rd',
      ),
      FILE,
    )
    expect(c.assets.music).toEqual({
      source: '/opt/music',
      dest: '/mnt/rd/music',
      mount: '/mnt/rd',
      mountType: 'fuse.rclone',
      restart: [],
      keepOriginal: 604_800_000,
      keepBackup: 0,
      backupTo: 'local',
      uploadTimeout: 1_800_000,
    })
    const err = problemsOf(
      yaml(
        'assets:',
        '  music:',
        '    source: /opt/music',
        '    dest: /srv/music',
        '    mount: /mnt/rd',
        '  b:',
        '    source: /opt/b',
      ),
    )
    expect(err.problems.map((p) => `${p.line} ${p.key}: ${p.message}`)).toEqual([
      '4 assets.music.dest: must be inside mount /mnt/rd',
      '6 assets.b.dest: is required',
      '6 assets.b.mount: is required',
    ])
  })

  it('schedule takes 5- or 6-field cron expressions only', () => {
    const c = parseConfigText(
      yaml('schedule:', '  report: "0 2 * * *"', '  prune: "0 30 3 * * 0"'),
      FILE,
    )
    expect(c.schedule).toEqual({
      report: '0 2 * * *',
      prune: '0 30 3 * * 0',
      timeout: 7_200_000,
    })
    const err = problemsOf(yaml('schedule:', '  report: "0 2 * *"', '  prune: "61 * * * *"'))
    expect(err.problems.map((p) => `${p.line} ${p.key}`)).toEqual([
      '2 schedule.report',
      '3 schedule.prune',
    ])
    expect(err.problems[0]?.message).toMatch(/has 4 field\(s\)/)
    expect(err.problems[1]?.message).toMatch(/61 is a invalid expression for minute/)
  })

  it('schedule.timeout: a duration from 1m to 7d (default 2h)', () => {
    expect(parseConfigText(yaml('schedule:', '  timeout: 45m'), FILE).schedule.timeout).toBe(
      2_700_000,
    )
    for (const [v, why] of [
      ['30s', /at least 1m/],
      ['0s', /at least 1m/],
      ['8d', /at most 7d/],
      ['2 hours', /duration/],
    ] as const) {
      const err = problemsOf(yaml('schedule:', `  timeout: ${v}`))
      expect(err.problems.map((p) => `${p.line} ${p.key}`)).toEqual(['2 schedule.timeout'])
      expect(err.problems[0]?.message).toMatch(why)
    }
  })
})
