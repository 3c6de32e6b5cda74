import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { noticeFor, reportsToDrop, sendWebhook } from '../../../lib/report/notify.js'
import type { Report } from '../../../lib/report/types.js'

const GB = 1e9
function report(images: { id: string; tag: string; size: number }[], host = 'srv1'): Report {
  return {
    host,
    thresholds: { bigImageBytes: 2 * GB, bigAssetsBytes: GB, top: 10 },
    images: images.map((i) => ({ id: i.id, tags: [i.tag], sizeBytes: i.size })),
  } as unknown as Report
}

describe('reportsToDrop', () => {
  const names = [
    'shipshape-report-20261120T020000Z.json',
    'shipshape-report-20261120T020000Z.md',
    'shipshape-report-20261121T020000Z.json',
    'shipshape-report-20261121T020000Z.md',
    'shipshape-report-20261122T020000Z.json',
    'notes.txt',
    'shipshape-report-20261122T020000Z.md',
  ]
  it('keeps the newest N reports, json and md together, never foreign files', () => {
    expect(reportsToDrop(names, 2)).toEqual([
      'shipshape-report-20261120T020000Z.json',
      'shipshape-report-20261120T020000Z.md',
    ])
    expect(reportsToDrop(names, 3)).toEqual([])
    expect(reportsToDrop(names, 1)).toHaveLength(4)
  })
})

describe('noticeFor', () => {
  const prev = report([
    { id: 'sha256:a', tag: 'whisperx:latest', size: 8.8 * GB },
    { id: 'sha256:b', tag: 'api:1', size: 1.5 * GB },
  ])
  it('names an image that newly passes the threshold, not one already over it', () => {
    const cur = report([
      { id: 'sha256:a', tag: 'whisperx:latest', size: 8.8 * GB },
      { id: 'sha256:b', tag: 'api:1', size: 2.5 * GB },
      { id: 'sha256:c', tag: 'new:1', size: 3 * GB },
    ])
    const n = noticeFor(cur, prev, { diskUse: 0.5, diskLimit: 0.9 })
    expect(n?.lines).toEqual([
      'image api:1 is 2.5 GB (over 2 GB)',
      'image new:1 is 3 GB (over 2 GB)',
    ])
    expect(n?.text).toMatch(/^shipshape on srv1:\n- image api:1/)
  })
  it('the disk over its limit; nothing at all → null', () => {
    expect(noticeFor(prev, prev, { diskUse: 0.93, diskLimit: 0.9 })?.lines).toEqual([
      "the engine's disk is 93% full (limit 90%): shipshape prune",
    ])
    expect(noticeFor(prev, prev, { diskUse: 0.5, diskLimit: 0.9 })).toBeNull()
    expect(noticeFor(prev, prev, { diskUse: null, diskLimit: 0.9 })).toBeNull()
  })
})

describe('sendWebhook', () => {
  async function server(status: number) {
    const got: string[] = []
    const s = http.createServer((req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => (body += c.toString()))
      req.on('end', () => {
        got.push(`${req.method} ${req.url} ${req.headers['content-type']} ${body}`)
        res.writeHead(status).end()
      })
    })
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
    const port = (s.address() as AddressInfo).port
    return { got, url: `http://127.0.0.1:${port}/hook/T0KEN?secret=abc`, close: () => s.close() }
  }
  it('POSTs the text as JSON', async () => {
    const s = await server(200)
    await sendWebhook(s.url, { lines: ['x'], text: 'shipshape on h:\n- x' })
    s.close()
    expect(s.got).toEqual([
      'POST /hook/T0KEN?secret=abc application/json {"text":"shipshape on h:\\n- x"}',
    ])
  })
  it('a failure names the URL without its secrets', async () => {
    const s = await server(500)
    const err = await sendWebhook(s.url, { lines: [], text: '' }).catch((e: Error) => e)
    s.close()
    expect(String(err)).toMatch(/HTTP 500/)
    expect(String(err)).not.toMatch(/abc/)
    const closed = await server(200)
    closed.close()
    const dead = await sendWebhook(closed.url.replace('secret=abc', 'token=zzz'), {
      lines: [],
      text: '',
    }).catch((e: Error) => e)
    expect(String(dead)).toMatch(/ECONNREFUSED/)
    expect(String(dead)).not.toMatch(/zzz/)
    const creds = await sendWebhook('http://user:pw@127.0.0.1:1/x', { lines: [], text: '' }).catch(
      (e: Error) => e,
    )
    expect(String(creds)).toMatch(/user:password cannot be fetched/)
    expect(String(creds)).not.toMatch(/:pw@/)
  })

  // Slack, Discord and Mattermost keep the token in the path
  const TOKEN = 'XXXXSECRETXXXX'
  const notice = { lines: ['x'], text: 'shipshape on h:\n- x' }
  const shown = (e: unknown) => `${String(e)} ${(e as Error).stack ?? ''}`

  it('HTTP 500 from a webhook with its token in the path: scheme://host only', async () => {
    const s = await server(500)
    const base = s.url.slice(0, s.url.indexOf('/hook'))
    const url = `${base}/services/T000/B000/${TOKEN}?x=${TOKEN}#${TOKEN}`
    const err = await sendWebhook(url, notice).catch((e: unknown) => e)
    s.close()
    expect(s.got).toHaveLength(1)
    expect((err as Error).message).toBe(`webhook ${base}: HTTP 500`)
    expect(shown(err)).not.toContain(TOKEN)
    expect(shown(err)).not.toContain('/services')
  })

  it('a refused connection (closed port): the code, never the path token', async () => {
    const s = await server(200)
    const base = s.url.slice(0, s.url.indexOf('/hook'))
    s.close()
    const err = await sendWebhook(`${base}/services/T000/B000/${TOKEN}`, notice).catch(
      (e: unknown) => e,
    )
    expect((err as Error).message).toBe(`webhook ${base}: ECONNREFUSED`)
    expect(shown(err)).not.toContain(TOKEN)
  })

  it("fetch's own messages (which may repeat the URL) never reach the error", async () => {
    const url = `https://hooks.slack.com/services/T000/B000/${TOKEN}`
    const throwing = (cause: unknown) =>
      (async () => {
        throw new TypeError(`fetch failed for ${url}`, { cause })
      }) as unknown as typeof fetch
    for (const cause of [
      new Error(`getaddrinfo EAI_AGAIN hooks.slack.com ${url}`),
      Object.assign(new Error(`other side closed: ${url}`), { code: 'UND_ERR_SOCKET' }),
      Object.assign(new Error('x'), { code: `weird ${url}` }),
      undefined,
    ]) {
      const err = await sendWebhook(url, notice, throwing(cause)).catch((e: unknown) => e)
      expect((err as Error).message).toMatch(/^webhook https:\/\/hooks\.slack\.com: /)
      expect(shown(err)).not.toContain(TOKEN)
    }
    const invalid = await sendWebhook(`hooks.slack.com/services/${TOKEN}`, notice).catch(
      (e: unknown) => e,
    )
    expect((invalid as Error).message).toMatch(/^webhook \(invalid URL\): /)
    expect(shown(invalid)).not.toContain(TOKEN)
  })
})
