/** Recommendations that need a rebuild name `shipshape rebuild <service>` when the config knows it. */
import { describe, expect, it } from 'vitest'
import { parseConfigText } from '../../../lib/config/index.js'
import { serviceOfContainer } from '../../../lib/config/services.js'
import { withDeepFindings } from '../../../lib/report/deep.js'
import type { Report } from '../../../lib/report/types.js'

const config = parseConfigText(
  [
    'services:',
    '  whisperx: { compose: /opt/whisperx/docker-compose.yml }',
    '  api: { container: api-1, build: /opt/api }',
  ].join('\n'),
  'test.yaml',
)

describe('serviceOfContainer', () => {
  it.each([
    [{ name: '/api-1', labels: {} }, 'api'],
    [
      {
        name: 'whisperx_whisperx_1',
        labels: {
          'com.docker.compose.service': 'whisperx',
          'com.docker.compose.project.config_files': '/opt/whisperx/docker-compose.yml',
        },
      },
      'whisperx',
    ],
    // compose v1 records the file as given on the command line: the working dir decides
    [
      {
        name: 'whisperx_whisperx_1',
        labels: {
          'com.docker.compose.service': 'whisperx',
          'com.docker.compose.project.config_files': 'docker-compose.yml',
          'com.docker.compose.project.working_dir': '/opt/whisperx',
        },
      },
      'whisperx',
    ],
    [
      {
        name: 'other_whisperx_1',
        labels: {
          'com.docker.compose.service': 'whisperx',
          'com.docker.compose.project.config_files': '/srv/other/docker-compose.yml',
          'com.docker.compose.project.working_dir': '/srv/other',
        },
      },
      null,
    ],
    [{ name: 'api-2', labels: {} }, null],
  ])('%j → %s', (c, want) => {
    expect(serviceOfContainer(config, c)?.[0] ?? null).toBe(want)
  })
})

describe('withDeepFindings', () => {
  const report = { recommendations: [] } as unknown as Report
  const deep = [
    {
      image: 'whisperx_whisperx:latest',
      id: 'sha256:aaa',
      wastedBytes: 0,
      findings: [
        {
          rule: 'cuda-torch',
          message: 'CUDA torch',
          estimatedSavingsBytes: 5e9,
          fix: '…',
        },
      ],
    },
  ]
  it('names the configured service that runs the image', () => {
    const r = withDeepFindings(report, deep as never, new Map([['sha256:aaa', ['whisperx']]]))
    expect(r.recommendations[0]?.reason).toMatch(/then shipshape rebuild whisperx$/)
  })
  it('says what to add when no configured service runs it', () => {
    const r = withDeepFindings(report, deep as never)
    expect(r.recommendations[0]?.reason).toMatch(
      /shipshape rebuild SERVICE, once the service is in the host config/,
    )
  })
})
