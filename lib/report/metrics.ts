/**
 * The report as a Prometheus textfile (node-exporter's textfile collector reads *.prom files from
 * one directory): pure rendering of the text exposition format, version 0.0.4. Names follow the
 * Prometheus conventions: the `shipshape_` prefix, base units in the name (`_bytes`, `_seconds`),
 * `_timestamp_seconds` for Unix times, one HELP and TYPE line per family, all gauges.
 */
import type { JournalState } from '../runbook/journal.js'
import { COMMIT_PREFIX, PREV_PREFIX } from '../shared/labels.js'
import { journalTarget } from '../runbook/operations.js'
import type { Report } from './types.js'

/** When an operation last finished well, from the journals (operation, target or null). */
export interface LastSuccess {
  operation: string
  target: string | null
  at: string
  durationSeconds: number
}

/** Pure: the newest run that ended ok of each operation and target. */
export function lastSuccesses(
  journals: readonly Pick<
    JournalState,
    'operation' | 'args' | 'outcome' | 'startedAt' | 'endedAt'
  >[],
): LastSuccess[] {
  const last = new Map<string, LastSuccess>()
  for (const j of journals) {
    if (j.outcome !== 'ok' || !j.endedAt) continue
    const target = journalTarget(j) ?? null
    const key = `${j.operation}\0${target ?? ''}`
    const prev = last.get(key)
    if (prev && prev.at >= j.endedAt) continue
    const ms = Date.parse(j.endedAt) - Date.parse(j.startedAt)
    last.set(key, {
      operation: j.operation,
      target,
      at: j.endedAt,
      durationSeconds: Number.isFinite(ms) ? Math.max(0, ms) / 1000 : 0,
    })
  }
  return [...last.values()]
}

export interface MetricsFacts {
  report: Report
  /** how long the report took to make */
  durationSeconds: number
  lastSuccess: LastSuccess[]
}

/** The repository a rebuild backup tag (`<repo>:shipshape-prev-…` / `:shipshape-backup-…`) is of. */
export function backupRepo(tags: readonly string[]): string | null {
  for (const ref of tags) {
    const colon = ref.lastIndexOf(':')
    if (colon <= ref.lastIndexOf('/')) continue
    const tag = ref.slice(colon + 1)
    if (tag.startsWith(PREV_PREFIX) || tag.startsWith(COMMIT_PREFIX)) return ref.slice(0, colon)
  }
  return null
}

interface Sample {
  labels?: Record<string, string>
  value: number
}

/** A label value escaped as the exposition format wants it: backslash, double quote, newline. */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

function family(name: string, help: string, samples: Sample[]): string[] {
  if (!samples.length) return []
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} gauge`]
  for (const s of samples) {
    const labels = Object.entries(s.labels ?? {})
      .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      .join(',')
    lines.push(`${name}${labels ? `{${labels}}` : ''} ${formatValue(s.value)}`)
  }
  return lines
}

function formatValue(v: number): string {
  return Number.isFinite(v) ? String(v) : v > 0 ? '+Inf' : v < 0 ? '-Inf' : 'NaN'
}

const seconds = (iso: string): number => Math.floor(Date.parse(iso) / 1000)

const DISK_TYPES = ['images', 'containers', 'volumes', 'buildCache'] as const
const typeLabel = (t: (typeof DISK_TYPES)[number]) => (t === 'buildCache' ? 'build_cache' : t)

/** The textfile: every family, sorted samples, a final newline. */
export function renderMetrics(f: MetricsFacts): string {
  const r = f.report
  const host = { host: r.host }
  const big = r.images
    .filter((i) => i.big)
    .map((i) => ({
      labels: { ...host, image: i.tags[0] ?? i.id.replace(/^sha256:/, '').slice(0, 12) },
      value: i.sizeBytes,
    }))
  const backups = new Map<string, { count: number; bytes: number }>()
  for (const i of r.images) {
    const service = backupRepo(i.tags)
    if (service === null) continue
    const b = backups.get(service) ?? { count: 0, bytes: 0 }
    b.count++
    b.bytes += i.uniqueBytes ?? i.sizeBytes
    backups.set(service, b)
  }
  const services = [...backups.keys()].sort()
  const assets = (r.migrations ?? []).flatMap((m) => [
    ...(m.original
      ? [{ labels: { ...host, asset: m.asset, place: 'original' }, value: m.original.bytes ?? 0 }]
      : []),
    ...(m.archive && m.archive.where !== 'removed'
      ? [
          {
            labels: { ...host, asset: m.asset, place: `archive_${m.archive.where}` },
            value: m.archive.bytes,
          },
        ]
      : []),
  ])
  const byType = (v: (u: Report['disk']['images']) => number): Sample[] =>
    DISK_TYPES.map((t) => ({ labels: { ...host, type: typeLabel(t) }, value: v(r.disk[t]) }))
  const lines = [
    ...family(
      'shipshape_engine_bytes',
      'Bytes the Docker engine uses, by type (docker system df).',
      byType((u) => u.sizeBytes),
    ),
    ...family(
      'shipshape_engine_reclaimable_bytes',
      'Bytes the engine could free, by type (unused images, stopped containers, unused volumes, build cache).',
      byType((u) => u.reclaimableBytes),
    ),
    ...family(
      'shipshape_image_bytes',
      'Size of each image over report.bigImage.',
      big.sort((a, b) => a.labels.image.localeCompare(b.labels.image)),
    ),
    ...family(
      'shipshape_path_bytes',
      'Bytes under each configured report.paths directory (du).',
      r.paths
        .filter((p) => p.sizeBytes !== null)
        .map((p) => ({ labels: { ...host, path: p.path }, value: p.sizeBytes! })),
    ),
    ...family(
      'shipshape_asset_bytes',
      'Bytes a migrated asset still holds on this host, by place (the kept original, its backup archive).',
      assets,
    ),
    ...family(
      'shipshape_backup_images',
      'Rebuild backup images kept, per repository of the service image.',
      services.map((s) => ({ labels: { ...host, repository: s }, value: backups.get(s)!.count })),
    ),
    ...family(
      'shipshape_backup_bytes',
      'Bytes the rebuild backup images of a service free when removed (their own layers).',
      services.map((s) => ({ labels: { ...host, repository: s }, value: backups.get(s)!.bytes })),
    ),
    ...family(
      'shipshape_last_success_timestamp_seconds',
      'When a shipshape operation last finished well (Unix time), by operation and target.',
      [
        { labels: { ...host, operation: 'report', target: '' }, value: seconds(r.generatedAt) },
        ...f.lastSuccess.map((l) => ({
          labels: { ...host, operation: l.operation, target: l.target ?? '' },
          value: seconds(l.at),
        })),
      ].sort(
        (a, b) =>
          a.labels.operation.localeCompare(b.labels.operation) ||
          a.labels.target.localeCompare(b.labels.target),
      ),
    ),
    ...family(
      'shipshape_run_duration_seconds',
      'How long the last good run of a shipshape operation took, by operation and target (the report: the one that wrote this file).',
      [
        { labels: { ...host, operation: 'report', target: '' }, value: f.durationSeconds },
        ...f.lastSuccess.map((l) => ({
          labels: { ...host, operation: l.operation, target: l.target ?? '' },
          value: l.durationSeconds,
        })),
      ]
        .map((s) => ({ ...s, value: Math.round(s.value * 1000) / 1000 }))
        .sort(
          (a, b) =>
            a.labels.operation.localeCompare(b.labels.operation) ||
            a.labels.target.localeCompare(b.labels.target),
        ),
    ),
  ]
  return lines.join('\n') + '\n'
}
