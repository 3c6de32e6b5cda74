/**
 * The production install, as README "Install" and RUNBOOK step 0 give it: `npm pack` of this
 * checkout (--ignore-scripts: its prepare would rebuild dist/ under the other runs; npm test built
 * it), `npm i -g --omit=dev --ignore-scripts` of the tarball into a temporary prefix (npm's
 * cache, filled by `npm ci`, serves the packages), then the installed `shipshape`: --version,
 * config init (into the system config directory: an installed package keeps no config inside),
 * and report against the private engine with the config it wrote. dist/ must be built (npm test
 * builds it).
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { repoRoot, type PrivateEngine } from '../harness/engine.js'
import { describeEngine } from '../harness/suite.js'

const pexec = promisify(execFile)

describeEngine(
  'packaged install (npm pack, npm i -g --omit=dev)',
  (getEngine) => {
    let engine: PrivateEngine
    let tmp: string
    let prefix: string
    let etc: string
    let tarball: string
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
      version: string
    }

    const shipshape = (args: string[], env: NodeJS.ProcessEnv = {}) =>
      pexec(path.join(prefix, 'bin', 'shipshape'), args, {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, SHIPSHAPE_CONFIG_DIR: etc, ...env },
        timeout: 120_000,
      })

    beforeAll(async () => {
      engine = getEngine()
      tmp = await mkdtemp(path.join(engine.root, 'fx-install-'))
      prefix = path.join(tmp, 'prefix')
      etc = path.join(tmp, 'etc-shipshape')
      const packed = await pexec(
        'npm',
        ['pack', '--ignore-scripts', '--pack-destination', tmp, '--silent'],
        {
          cwd: repoRoot,
          timeout: 120_000,
        },
      )
      tarball = path.join(tmp, packed.stdout.trim().split('\n').at(-1)!)
      await pexec(
        'npm',
        [
          'install',
          '--global',
          '--prefix',
          prefix,
          '--omit=dev',
          '--ignore-scripts',
          '--prefer-offline',
          '--no-audit',
          '--no-fund',
          tarball,
        ],
        { timeout: 300_000 },
      )
    }, 600_000)

    afterAll(async () => {
      if (tmp) await rm(tmp, { recursive: true, force: true })
    })

    it('the tarball: dist without tests, bench, maps or the schema generator; RUNBOOK and LICENSE', async () => {
      const { stdout } = await pexec('tar', ['-tzf', tarball])
      const files = stdout.split('\n').filter(Boolean)
      expect(files).toContain('package/LICENSE')
      expect(files).toContain('package/RUNBOOK.md')
      expect(files).toContain('package/dist/scripts/shipshape.js')
      expect(files.some((f) => f.startsWith('package/systemd/'))).toBe(true)
      expect(files.some((f) => f.startsWith('package/config/'))).toBe(true)
      expect(files.filter((f) => /dist\/(test|bench)\/|\.map$|gen-schema/.test(f))).toEqual([])
      // no dev tool came with it
      const installed = await readdir(
        path.join(prefix, 'lib', 'node_modules', 'shipshape', 'node_modules'),
      )
      for (const dev of ['typescript', 'vitest', 'prettier', 'eslint'])
        expect(installed).not.toContain(dev)
    })

    it('the installed shipshape: --version, config init into /etc/shipshape, report with it', async () => {
      expect((await shipshape(['--version'])).stdout).toBe(`${pkg.version}\n`)
      const host = ['--docker-host', engine.dockerHost]
      const init = await shipshape([...host, 'config', 'init'])
      const written = path.join(etc, `${(await pexec('hostname')).stdout.trim()}.yaml`)
      expect(init.stderr + init.stdout).toContain(written)
      expect((await stat(written)).isFile()).toBe(true)
      expect(await readFile(written, 'utf8')).toMatch(/^report:|\nreport:/m)
      const shown = JSON.parse((await shipshape(['config', 'show', '--json'])).stdout) as {
        source: string
        origin: string
      }
      expect(shown).toMatchObject({ source: written, origin: 'etc' })
      const r = await shipshape([...host, '--json', 'report'])
      const report = JSON.parse(r.stdout) as {
        schema: string
        configSource: string
        images: unknown[]
      }
      expect(report.schema).toBe('shipshape.report/1')
      expect(report.configSource).toBe(written)
      expect(report.images.length).toBeGreaterThan(0)
    })
  },
  { anyEngine: true },
)
