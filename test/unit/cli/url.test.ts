import { describe, expect, it } from 'vitest'
import { displayUrl, redactUrl } from '../../../lib/cli/url.js'

const SLACK = 'https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX'

describe('displayUrl', () => {
  it('scheme and host only: never path, query, userinfo or fragment', () => {
    expect(displayUrl(SLACK)).toBe('https://hooks.slack.com')
    expect(displayUrl('https://discord.com/api/webhooks/123/tok3n')).toBe('https://discord.com')
    expect(displayUrl('https://user:pa55@hooks.example:8443/x?token=abc#frag')).toBe(
      'https://hooks.example:8443',
    )
    expect(displayUrl('http://[::1]:9000/hook/secret')).toBe('http://[::1]:9000')
    // the default port is not shown; the scheme and host are lower-cased
    expect(displayUrl('HTTPS://Hooks.Example:443/a')).toBe('https://hooks.example')
  })
  it('an unparsable URL: "(invalid URL)", nothing of it', () => {
    expect(displayUrl('hooks.slack.com/services/T000/SECRET')).toBe('(invalid URL)')
    expect(displayUrl('')).toBe('(invalid URL)')
    expect(displayUrl('http://')).toBe('(invalid URL)')
  })
})

describe('redactUrl', () => {
  it('replaces the URL in any spelling, and its path, query, fragment and password alone', () => {
    const url =
      'https://bot:pa55word@hooks.example/services/T000/B000/XXXXSECRETXXXX?token=qwerty#frag1'
    const text = [
      `fetch ${url} failed`,
      'to https://hooks.example/services/T000/B000/XXXXSECRETXXXX?token=qwerty#frag1',
      'path /services/T000/B000/XXXXSECRETXXXX',
      'segment XXXXSECRETXXXX',
      'query token=qwerty',
      'password pa55word',
    ].join('\n')
    const out = redactUrl(text, url)
    for (const secret of ['XXXXSECRETXXXX', 'qwerty', 'pa55word', 'frag1', '/services'])
      expect(out).not.toContain(secret)
    expect(out).toContain('fetch https://hooks.example failed')
    expect(out.split('\n')[1]).toBe('to https://hooks.example')
  })
  it('a path segment equal to part of the host does not cut into the host put back', () => {
    expect(
      redactUrl('at https://hooks.example/hooks/abcd', 'https://hooks.example/hooks/abcd'),
    ).toBe('at https://hooks.example')
  })
  it('text without the URL is left alone; an unparsable URL is hidden as given', () => {
    expect(redactUrl('connect ECONNREFUSED 127.0.0.1:1', SLACK)).toBe(
      'connect ECONNREFUSED 127.0.0.1:1',
    )
    expect(redactUrl('bad: not a url SECRET', 'not a url SECRET')).toBe('bad: (invalid URL)')
  })
})
