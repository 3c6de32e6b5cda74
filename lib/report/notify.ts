/**
 * Nightly-report extras: only the newest `report.keep` reports stay in the reports directory, and
 * a short notification goes to a webhook (its URL from the environment: a secret, shown only as
 * scheme://host by lib/cli/url.ts displayUrl())
 * when an image newly passes report.bigImage or the engine's disk use passes notify.diskLimit.
 */
import { readdir, rm, statfs } from 'node:fs/promises'
import path from 'node:path'
import { formatBytes } from '../config/index.js'
import { displayUrl } from '../cli/url.js'
import type { Report } from './types.js'

const STEM = /^(shipshape-report-\d{8}T\d{6}Z)\.(json|md)$/

/** The files of the reports beyond the newest `keep` (json and md together), oldest first. Pure. */
export function reportsToDrop(names: string[], keep: number): string[] {
  const stems = [...new Set(names.map((n) => STEM.exec(n)?.[1]).filter((s): s is string => !!s))]
    .sort()
    .reverse()
  const drop = new Set(stems.slice(Math.max(0, keep)))
  return names.filter((n) => drop.has(STEM.exec(n)?.[1] ?? '')).sort()
}

export async function dropOldReports(dir: string, keep: number): Promise<string[]> {
  const gone = reportsToDrop(await readdir(dir).catch(() => [] as string[]), keep)
  for (const n of gone) await rm(path.join(dir, n), { force: true })
  return gone
}

/** The engine disk's use as a fraction, when the engine is local; null otherwise. */
export async function engineDiskUse(report: Report): Promise<number | null> {
  if (!report.engine.address.startsWith('unix:') || !report.engine.dockerRootDir) return null
  try {
    const s = await statfs(report.engine.dockerRootDir)
    const total = Number(s.blocks) * Number(s.bsize)
    return total > 0 ? 1 - (Number(s.bfree) * Number(s.bsize)) / total : null
  } catch {
    return null
  }
}

export interface Notice {
  /** one line per reason */
  lines: string[]
  /** the message: host, then the lines */
  text: string
}

/**
 * Why to notify (pure): images over the threshold now that were not in the previous report (or
 * were under it), and a disk use over the limit. Null when there is nothing to say.
 */
export function noticeFor(
  report: Report,
  previous: Report | null,
  o: { diskUse: number | null; diskLimit: number },
): Notice | null {
  const lines: string[] = []
  const before = new Map<string, number>()
  for (const i of previous?.images ?? []) before.set(i.id, i.sizeBytes)
  const limit = report.thresholds.bigImageBytes
  for (const i of report.images) {
    if (i.sizeBytes <= limit) continue
    const was = before.get(i.id)
    if (previous && was !== undefined && was > limit) continue
    const name = i.tags[0] ?? i.id.slice(7, 19)
    lines.push(`image ${name} is ${formatBytes(i.sizeBytes)} (over ${formatBytes(limit)})`)
  }
  if (o.diskUse !== null && o.diskUse > o.diskLimit) {
    lines.push(
      `the engine's disk is ${Math.round(o.diskUse * 100)}% full (limit ${Math.round(o.diskLimit * 100)}%): shipshape prune`,
    )
  }
  if (!lines.length) return null
  return { lines, text: `shipshape on ${report.host}:\n- ${lines.join('\n- ')}` }
}

/**
 * POSTs {"text": …} (Slack/Mattermost/ntfy-style). Its errors name the webhook as scheme://host
 * only (displayUrl: Slack, Discord and Mattermost keep the token in the path) and fetch's failure
 * by its code (ECONNREFUSED, ENOTFOUND, UND_ERR_…), never by fetch's own message, which may
 * repeat the URL.
 */
export async function sendWebhook(
  url: string,
  notice: Notice,
  doFetch: typeof fetch = fetch,
): Promise<void> {
  const safe = displayUrl(url)
  let res: Response
  try {
    res = await doFetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: notice.text }),
      redirect: 'manual',
      signal: AbortSignal.timeout(10_000),
    })
  } catch (err) {
    const e = (err ?? {}) as Error & {
      cause?: { code?: unknown; errors?: { code?: unknown }[] }
    }
    // an errno-like token only: a cause's message may hold the URL, its path or its host's answer
    const token = (c: unknown) =>
      typeof c === 'string' && /^[A-Z][A-Z0-9_]{1,40}$/.test(c) ? c : undefined
    const why =
      e.name === 'TimeoutError'
        ? 'no answer within 10 s'
        : (token(e.cause?.code) ??
          token(e.cause?.errors?.[0]?.code) ??
          (typeof e.message === 'string' && /credentials/.test(e.message)
            ? 'a URL with user:password cannot be fetched'
            : 'request failed'))
    throw new Error(`webhook ${safe}: ${why}`)
  }
  await res.body?.cancel().catch(() => {})
  if (res.status < 200 || res.status >= 300) throw new Error(`webhook ${safe}: HTTP ${res.status}`)
}
