/**
 * URLs that may hold a secret — the webhook URL from notify.webhookEnv above all: Slack, Discord
 * and Mattermost put the token in the PATH (https://hooks.slack.com/services/T000/B000/XXXX) —
 * are shown as scheme://host[:port] only, everywhere: stdout, stderr, reports, logs, journals.
 *
 *   displayUrl(url)         'https://hooks.slack.com'; never path, query, userinfo, fragment;
 *                           '(invalid URL)' when it does not parse
 *   redactUrl(text, url)    text with the URL (any spelling of it) and its secret-bearing parts
 *                           replaced: for messages built by code we do not own (fetch's errors)
 *
 * (Health-check URLs come from the config, which holds no secrets: lib/health/check.ts shows
 * their path with displayHealthUrl().)
 */

/** scheme://host[:port] of a URL; nothing else of it. */
export function displayUrl(url: string): string {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return '(invalid URL)'
  }
  return `${u.protocol}//${u.host}`
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

function decoded(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

/**
 * The text with every spelling of the URL replaced by displayUrl(url), and what is left of its
 * path, query, fragment and password (a path segment or query value of 4+ characters on its own)
 * by '…'.
 */
export function redactUrl(text: string, url: string): string {
  if (!url) return text
  const safe = displayUrl(url)
  const whole = new Set<string>([url])
  const pieces = new Set<string>()
  try {
    const u = new URL(url)
    whole.add(u.href)
    const bare = new URL(url)
    bare.username = ''
    bare.password = ''
    whole.add(bare.href)
    const tail = bare.href.slice(`${bare.protocol}//${bare.host}`.length)
    for (const p of [tail, u.pathname, u.search, u.hash]) {
      if (p.length > 1) pieces.add(p).add(decoded(p))
    }
    for (const seg of u.pathname.split('/')) if (seg.length >= 4) pieces.add(seg).add(decoded(seg))
    for (const v of u.searchParams.values()) if (v.length >= 4) pieces.add(v)
    if (u.password.length >= 3) pieces.add(u.password).add(decoded(u.password))
  } catch {
    // not a URL: only its text as given can be hidden
  }
  // the whole URL through a mark first: a piece must not cut into the host put in its place
  const MARK = '\u0000'
  let out = text.split(MARK).join('')
  const byLength = (a: string, b: string) => b.length - a.length
  for (const w of [...whole].sort(byLength)) out = out.replace(new RegExp(escape(w), 'g'), MARK)
  for (const p of [...pieces].sort(byLength)) out = out.replace(new RegExp(escape(p), 'g'), '…')
  return out.split(MARK).join(safe)
}
