import { describe, expect, it } from 'vitest'
import { backupLabels, readBackupLabels } from '../../../lib/shared/labels.js'

describe('backup labels', () => {
  it('reads back what rebuild writes on a commit', () => {
    const b = {
      of: 'web',
      created: '2026-01-02T03:04:05.000Z',
      kind: 'commit' as const,
      source: 'sha256:abc',
    }
    const labels = backupLabels(b)
    expect(labels).toEqual({
      'shipshape.backup.of': 'web',
      'shipshape.backup.created': '2026-01-02T03:04:05.000Z',
      'shipshape.backup.kind': 'commit',
      'shipshape.backup.source': 'sha256:abc',
    })
    expect(readBackupLabels({ ...labels, other: 'x' })).toEqual(b)
  })

  it('reads an unlabelled image as nulls, and any kind but commit as an image backup', () => {
    expect(readBackupLabels({})).toEqual({ of: null, created: null, kind: 'image', source: null })
    expect(readBackupLabels({ 'shipshape.backup.kind': 'snapshot' }).kind).toBe('image')
  })
})
