/** compose's argv (pure): the files, the project, the project directory, the .env of a way back. */
import { describe, expect, it } from 'vitest'
import { composeHashArgv, composeUpArgv, type ComposeTarget } from '../../../lib/docker/compose.js'

const t = (over: Partial<ComposeTarget> = {}): ComposeTarget => ({
  cli: {
    argv: ['docker', 'compose'],
    version: 'v2',
    versionText: 'Docker Compose version v2.26.1',
  },
  file: '/opt/app/docker-compose.yml',
  extraFiles: ['/opt/app/docker-compose.override.yml'],
  project: 'app',
  service: 'web',
  cwd: '/opt/app',
  env: {},
  ...over,
})

describe('compose argv', () => {
  it('up: every file, the project and its directory; --pull never on v2', () => {
    expect(composeUpArgv(t())).toEqual([
      'docker',
      'compose',
      '-f',
      '/opt/app/docker-compose.yml',
      '-f',
      '/opt/app/docker-compose.override.yml',
      '-p',
      'app',
      '--project-directory',
      '/opt/app',
      'up',
      '-d',
      '--no-deps',
      '--no-build',
      '--force-recreate',
      '--pull',
      'never',
      '--',
      'web',
    ])
  })

  it('a way back: the saved copies, in the project directory, with their own --env-file', () => {
    const saved = '/var/backups/shipshape/build-files/web/abc/files'
    const argv = composeUpArgv(
      t({
        file: `${saved}/docker-compose.yml`,
        extraFiles: [`${saved}/docker-compose.override.yml`],
        envFile: '/var/backups/shipshape/build-files/web/abc/no.env',
      }),
    )
    expect(argv.slice(2, 12)).toEqual([
      '-f',
      `${saved}/docker-compose.yml`,
      '-f',
      `${saved}/docker-compose.override.yml`,
      '-p',
      'app',
      '--project-directory',
      '/opt/app',
      '--env-file',
      '/var/backups/shipshape/build-files/web/abc/no.env',
    ])
  })

  it('config --hash=SERVICE, for v1 and v2 alike', () => {
    expect(composeHashArgv(t()).slice(-2)).toEqual(['config', '--hash=web'])
    const v1 = t({
      cli: {
        argv: ['docker-compose'],
        version: 'v1',
        versionText: 'docker-compose version 1.29.2',
      },
    })
    expect(composeHashArgv(v1).slice(0, 1)).toEqual(['docker-compose'])
    expect(composeHashArgv(v1).slice(-2)).toEqual(['config', '--hash=web'])
  })
})
