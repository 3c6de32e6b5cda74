import { describe, expect, it } from 'vitest'
import { foreignOriginal, type KeptOriginal } from '../../../lib/assets/finalize.js'

const asset = { source: '/opt/app/music', dest: '/mnt/rd/music' }
const policy = {
  allowedRoots: ['/opt'],
  stateDir: '/var/lib/shipshape',
  backupDir: '/var/backups/s',
}
const kept = (over: Partial<KeptOriginal> = {}): KeptOriginal => ({
  workDir: '/var/backups/s/music/20261125T150405Z',
  original: '/opt/app/music.shipshape-20261125T150405Z',
  source: asset.source,
  dest: asset.dest,
  keepUntil: '2026-12-02T15:04:05.000Z',
  ...over,
})

describe('foreignOriginal: what --finalize may remove as root', () => {
  it('accepts the original the migration of this asset kept', () => {
    expect(foreignOriginal(kept(), asset, policy)).toBeNull()
  })

  it('refuses an original.json naming any other path (edited, or another asset)', () => {
    for (const original of ['/etc', '/opt/app', '/opt/app/music.shipshape-20990101T000000Z']) {
      expect(foreignOriginal(kept({ original }), asset, policy)).toMatch(/not touching it/)
    }
    expect(foreignOriginal(kept({ source: '/opt/other' }), asset, policy)).toMatch(/not touching/)
    expect(foreignOriginal(kept({ dest: '/mnt/rd/x' }), asset, policy)).toMatch(/not touching/)
  })

  it('refuses when the configured source is outside the allowed roots', () => {
    const sys = { source: '/etc/ssl', dest: '/mnt/rd/ssl' }
    const k = kept({
      source: sys.source,
      dest: sys.dest,
      original: '/etc/ssl.shipshape-20261125T150405Z',
    })
    expect(foreignOriginal(k, sys, policy)).toMatch(/system path/)
  })
})
