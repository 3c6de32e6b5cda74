import { describe, expect, it } from 'vitest'
import { displaySafe, instruction, safeText } from '../../../lib/cli/table.js'
import { renderHuman, renderMarkdown } from '../../../lib/report/render.js'
import type { Report } from '../../../lib/report/types.js'

const usage = { count: 0, active: 0, sizeBytes: 0, reclaimableBytes: 0 }
const evil = '/opt/esc\u001b[31mRED\u001b[0m\nfake row <script>'
const report = {
  schema: 'shipshape.report/1',
  generatedAt: '2026-11-25T02:00:00.000Z',
  host: 'h',
  configSource: 'test',
  engine: {
    address: 'unix:///x',
    version: '20.10',
    apiVersion: '1.41',
    engineApiVersion: '1.41',
    os: 'linux',
    arch: 'amd64',
    storageDriver: 'overlay2',
    dockerRootDir: '/d',
    imageStore: 'classic',
  },
  thresholds: { bigImageBytes: 1, bigAssetsBytes: 1, top: 10 },
  disk: {
    images: usage,
    containers: usage,
    volumes: usage,
    buildCache: usage,
    totalBytes: 0,
    reclaimableBytes: 0,
  },
  images: [],
  containers: [],
  volumes: [],
  paths: [
    {
      path: '/opt',
      exists: true,
      sizeBytes: 10,
      mountedBy: [],
      children: [{ path: evil, depth: 1, sizeBytes: 10, mountedBy: [] }],
      mounts: [],
      warnings: [],
    },
  ],
  recommendations: [],
  warnings: [],
} as unknown as Report

describe('renderers and names from the host', () => {
  it('never pass control characters to the terminal', () => {
    const out = renderHuman(report, { color: false, layersPerImage: 3 })
    expect(out).not.toContain('\u001b')
    expect(out).toContain('esc\\x1b[31mRED\\x1b[0m\\nfake row')
  })
  it('escape HTML and line breaks in Markdown', () => {
    const out = renderMarkdown(report, { layersPerImage: 3 })
    expect(out).not.toContain('\u001b')
    expect(out).not.toContain('<script>')
    expect(out).toContain('&lt;script&gt;')
  })
  it('safeText and displaySafe', () => {
    expect(safeText('a\tb\u009bc')).toBe('a\\x09b\\x9bc')
    expect(displaySafe({ a: ['x\u0007'], n: 1 })).toEqual({ a: ['x\\x07'], n: 1 })
  })
  it('instruction() reads classic build-arg history lines', () => {
    expect(instruction('|1 HF_TOKEN=*** /bin/sh -c pip install x')).toBe(
      'RUN pip install x   (build args: HF_TOKEN=***)',
    )
  })
})
