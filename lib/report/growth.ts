import { constants } from 'node:fs'
import { access, readdir, readFile } from 'node:fs/promises'
import { RefusedError, UsageError } from '../errors.js'
import path from 'node:path'
import { mkdirDurable, writeFileDurable } from '../host/durable.js'
import { ensurePrivateDir } from '../host/private.js'
import { imageRef } from './analyze.js'
import { REPORT_SCHEMA, type Growth, type Report } from './types.js'

/** What changed since a previous report. Pure. */
export function computeGrowth(
  prev: Report,
  cur: Report,
  previousFile: string,
  top: number,
): Growth {
  const sizeOf = (r: Report) => new Map(r.images.map((i) => [imageRef(i), i.sizeBytes]))
  const before = sizeOf(prev)
  const after = sizeOf(cur)
  const images: Growth['images'] = []
  const newImages: Growth['newImages'] = []
  for (const [ref, size] of after) {
    const old = before.get(ref)
    if (old === undefined) newImages.push({ ref, sizeBytes: size })
    else if (old !== size)
      images.push({ ref, previousBytes: old, currentBytes: size, deltaBytes: size - old })
  }
  const removedImages = [...before]
    .filter(([ref]) => !after.has(ref))
    .map(([ref, sizeBytes]) => ({ ref, sizeBytes }))
  const prevPaths = new Map<string, number>()
  for (const p of prev.paths) {
    if (p.sizeBytes !== null) prevPaths.set(p.path, p.sizeBytes)
    for (const c of p.children) prevPaths.set(c.path, c.sizeBytes)
  }
  const paths: Growth['paths'] = []
  for (const p of cur.paths) {
    for (const e of [{ path: p.path, sizeBytes: p.sizeBytes }, ...p.children]) {
      const old = prevPaths.get(e.path)
      if (old === undefined || e.sizeBytes === null || old === e.sizeBytes) continue
      paths.push({
        path: e.path,
        previousBytes: old,
        currentBytes: e.sizeBytes,
        deltaBytes: e.sizeBytes - old,
      })
    }
  }
  const byDelta = <T extends { deltaBytes: number }>(a: T, b: T) =>
    Math.abs(b.deltaBytes) - Math.abs(a.deltaBytes)
  const bySize = <T extends { sizeBytes: number }>(a: T, b: T) => b.sizeBytes - a.sizeBytes
  const dd = (k: 'images' | 'containers' | 'volumes' | 'buildCache') =>
    cur.disk[k].sizeBytes - prev.disk[k].sizeBytes
  return {
    previousFile,
    previousAt: prev.generatedAt,
    disk: {
      images: dd('images'),
      containers: dd('containers'),
      volumes: dd('volumes'),
      buildCache: dd('buildCache'),
      total: cur.disk.totalBytes - prev.disk.totalBytes,
    },
    images: images.sort(byDelta).slice(0, top),
    newImages: newImages.sort(bySize).slice(0, top),
    removedImages: removedImages.sort(bySize).slice(0, top),
    paths: paths.sort(byDelta).slice(0, top),
  }
}

const PREFIX = 'shipshape-report-'

export function reportFileStem(at: Date): string {
  return (
    PREFIX +
    at
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z')
  )
}

/** The newest report in dir, or null (a file that does not parse is skipped with a warning). */
/** Enough of a report to compare with (a truncated or foreign file is not). */
function comparable(r: unknown): r is Report {
  const x = r as Partial<Report> | null
  return (
    !!x &&
    x.schema === REPORT_SCHEMA &&
    typeof x.generatedAt === 'string' &&
    Array.isArray(x.images) &&
    Array.isArray(x.paths) &&
    !!x.disk &&
    ['images', 'containers', 'volumes', 'buildCache'].every(
      (k) =>
        typeof (x.disk as unknown as Record<string, { sizeBytes?: unknown }>)[k]?.sizeBytes ===
        'number',
    )
  )
}

/**
 * The newest report in dir written before `before` (a file from a clock set ahead is skipped),
 * or null; a file that does not parse or is not a whole report is skipped with a warning.
 */
export async function readPreviousReport(
  dir: string,
  warn: (s: string) => void,
  before: Date = new Date(8.64e15),
): Promise<{ file: string; report: Report } | null> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return null
  }
  const limit = reportFileStem(before) + '.json'
  const candidates = names
    .filter((n) => n.startsWith(PREFIX) && n.endsWith('.json') && n < limit)
    .sort()
    .reverse()
  for (const name of candidates) {
    const file = path.join(dir, name)
    try {
      const report: unknown = JSON.parse(await readFile(file, 'utf8'))
      if (comparable(report)) return { file, report }
      warn(`${file}: not a whole ${REPORT_SCHEMA} report, ignored for growth`)
    } catch (err) {
      warn(`${file}: unreadable (${(err as Error).message}), ignored for growth`)
    }
  }
  return null
}

/** dir is stateDir or below it. Pure. */
export function isWithin(dir: string, parent: string): boolean {
  const rel = path.relative(path.resolve(parent), path.resolve(dir))
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))
}

/**
 * --out is checked before the report is made: a directory that exists or can be created (0750).
 * One inside stateDir (the nightly report's <stateDir>/reports) is private state: stateDir is
 * created 0700 first, and refused (exit 4) when another user could write it.
 */
export async function ensureReportDir(dir: string, stateDir?: string): Promise<void> {
  try {
    if (stateDir && isWithin(dir, stateDir)) await ensurePrivateDir(stateDir, 'stateDir')
    await mkdirDurable(dir, 0o750)
    await access(dir, constants.W_OK)
  } catch (err) {
    if (err instanceof RefusedError) throw err
    throw new UsageError(
      `cannot write reports into ${dir}: ${(err as NodeJS.ErrnoException).code ?? err}`,
    )
  }
}

/** Writes <dir>/shipshape-report-<UTC stamp>.{json,md} atomically and durably, mode 0640. */
export async function writeReportFiles(
  dir: string,
  report: Report,
  markdown: string,
): Promise<{ jsonFile: string; markdownFile: string }> {
  try {
    await mkdirDurable(dir, 0o750)
  } catch (err) {
    throw new UsageError(
      `cannot create the report directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? err}`,
    )
  }
  const stem = path.join(dir, reportFileStem(new Date(report.generatedAt)))
  const jsonFile = `${stem}.json`
  const markdownFile = `${stem}.md`
  for (const [file, text] of [
    [jsonFile, JSON.stringify(report, null, 2) + '\n'],
    [markdownFile, markdown],
  ] as const) {
    try {
      await writeFileDurable(file, text, { mode: 0o640 })
    } catch (err) {
      throw new UsageError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`)
    }
  }
  return { jsonFile, markdownFile }
}
