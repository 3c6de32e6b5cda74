import { describe, expect, it } from 'vitest'
import { mountsBelow, parseMountinfo } from '../../../lib/host/mountinfo.js'
import { isUnder } from '../../../lib/shared/paths.js'
import { parseDuOutput } from '../../../lib/host/du.js'

const sample = [
  '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
  '40 22 0:45 / /mnt/rd rw,nosuid,nodev,relatime shared:20 - fuse.rclone rd: rw,user_id=0,group_id=0,allow_other',
  '41 22 0:46 / /opt/with\\040space rw - tmpfs tmpfs rw',
  '42 22 0:47 / /opt/data rw - xfs /dev/vdb rw',
].join('\n')

describe('parseMountinfo', () => {
  it('reads mount point, type, source and unescapes octal', () => {
    const m = parseMountinfo(sample)
    expect(m).toHaveLength(4)
    expect(m[1]).toMatchObject({ mountPoint: '/mnt/rd', fsType: 'fuse.rclone', source: 'rd:' })
    expect(m[1]?.superOptions).toContain('allow_other')
    expect(m[2]?.mountPoint).toBe('/opt/with space')
  })
  it('lists the mounts strictly below a directory', () => {
    expect(mountsBelow(parseMountinfo(sample), '/opt').map((m) => m.mountPoint)).toEqual([
      '/opt/with space',
      '/opt/data',
    ])
    expect(mountsBelow(parseMountinfo(sample), '/mnt/rd')).toEqual([])
  })
})

describe('isUnder', () => {
  it('matches whole path components only', () => {
    expect(isUnder('/opt/a', '/opt')).toBe(true)
    expect(isUnder('/opt', '/opt')).toBe(true)
    expect(isUnder('/optical', '/opt')).toBe(false)
    expect(isUnder('/anything', '/')).toBe(true)
  })
})

describe('parseDuOutput', () => {
  it('reads NUL-separated records, names with tabs and newlines included', () => {
    const out = '4096\t/opt/a\n b\0' + '12288\t/opt/tab\there\0' + '16384\t/opt\0'
    expect(parseDuOutput(out)).toEqual([
      { path: '/opt/a\n b', sizeBytes: 4096 },
      { path: '/opt/tab\there', sizeBytes: 12288 },
      { path: '/opt', sizeBytes: 16384 },
    ])
  })
})
