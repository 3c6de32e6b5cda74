import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  ensureReportDir,
  readPreviousReport,
  reportFileStem,
  writeReportFiles,
} from '../../lib/report/growth.js'
import type { Report } from '../../lib/report/types.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ss-out-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

const usage = { count: 0, active: 0, sizeBytes: 0, reclaimableBytes: 0 }
const report = (at: string): Report =>
  ({
    schema: 'shipshape.report/1',
    generatedAt: at,
    images: [],
    paths: [],
    disk: {
      images: usage,
      containers: usage,
      volumes: usage,
      buildCache: usage,
      totalBytes: 0,
      reclaimableBytes: 0,
    },
  }) as unknown as Report

describe('report files (--out)', () => {
  it('skips a truncated or foreign newest file with a warning and uses the one before', async () => {
    await writeReportFiles(dir, report('2026-11-20T02:00:00.000Z'), '# a\n')
    await writeFile(
      path.join(dir, `${reportFileStem(new Date('2026-11-21T02:00:00Z'))}.json`),
      '{"schema":"shipshape.report/1"}',
    )
    await writeFile(
      path.join(dir, `${reportFileStem(new Date('2026-11-22T02:00:00Z'))}.json`),
      '{not json',
    )
    const warnings: string[] = []
    const prev = await readPreviousReport(
      dir,
      (w) => warnings.push(w),
      new Date('2026-11-25T02:00:00Z'),
    )
    expect(prev?.report.generatedAt).toBe('2026-11-20T02:00:00.000Z')
    expect(warnings).toHaveLength(2)
  })
  it('ignores a report dated after the current one (a clock set ahead)', async () => {
    await writeReportFiles(dir, report('2026-11-20T02:00:00.000Z'), '# a\n')
    await writeReportFiles(dir, report('2030-01-01T00:00:00.000Z'), '# future\n')
    const prev = await readPreviousReport(dir, () => {}, new Date('2026-11-25T02:00:00Z'))
    expect(prev?.report.generatedAt).toBe('2026-11-20T02:00:00.000Z')
  })
  it('writes JSON and Markdown atomically, leaving no temp file', async () => {
    const files = await writeReportFiles(dir, report('2026-11-25T02:00:00.000Z'), '# md\n')
    expect(path.basename(files.jsonFile)).toBe('shipshape-report-20261125T020000Z.json')
    expect((await readdir(dir)).sort()).toEqual([
      'shipshape-report-20261125T020000Z.json',
      'shipshape-report-20261125T020000Z.md',
    ])
  })
  it('refuses an --out that is a file, before any work (exit 2)', async () => {
    const file = path.join(dir, 'f')
    await writeFile(file, 'x')
    await expect(ensureReportDir(path.join(file, 'sub'))).rejects.toMatchObject({ exitCode: 2 })
    await expect(ensureReportDir(path.join(dir, 'new', 'sub'))).resolves.toBeUndefined()
  })
})
