/**
 * lib/host/mountprobe.ts: the pure half (which mounts a look at a path reaches, how a probe's
 * outcome reads, the warning) and probeMount's deadline with stand-in commands. The real hung
 * FUSE mount (rclone stopped with SIGSTOP) is test/host/hung-mount.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { MountEntry } from '../../../lib/host/mountinfo.js'
import {
  clearProbeCache,
  guardPath,
  isRemoteMount,
  judgeProbe,
  mountsTouching,
  mountWarning,
  probeMount,
} from '../../../lib/host/mountprobe.js'

const m = (mountPoint: string, fsType: string): MountEntry => ({
  mountPoint,
  fsType,
  source: 'x',
  options: [],
  superOptions: [],
  device: '0:1',
})

const MOUNTS = [
  m('/', 'ext4'),
  m('/srv', 'xfs'),
  m('/srv/media', 'fuse.rclone'),
  m('/srv/media/deep', 'nfs4'),
  m('/srv/other', 'tmpfs'),
  m('/mnt/nas', 'cifs'),
  m('/mnt/nas', 'cifs'), // mounted twice: once in the answer
]

afterEach(() => clearProbeCache())

/** A probe that never answers (the mount point comes after it as $0 $1). */
const HANG = ['sh', '-c', 'sleep 30']

describe('which mounts a look at a path reaches (pure)', () => {
  it('FUSE of any kind and network file systems are remote; local ones are not', () => {
    for (const t of ['fuse', 'fuse.rclone', 'fuse.sshfs', 'fuseblk', 'nfs', 'nfs4', 'cifs', '9p'])
      expect(isRemoteMount({ fsType: t }), t).toBe(true)
    for (const t of ['ext4', 'xfs', 'btrfs', 'tmpfs', 'overlay', 'fusectl'])
      expect(isRemoteMount({ fsType: t }), t).toBe(false)
  })

  it('the remote mount holding a path; with below, every remote mount under it', () => {
    const pts = (p: string, below?: boolean) =>
      mountsTouching(MOUNTS, p, below === undefined ? {} : { below }).map((x) => x.mountPoint)
    expect(pts('/srv/media/music/a.mp3')).toEqual(['/srv/media'])
    expect(pts('/srv/media')).toEqual(['/srv/media'])
    expect(pts('/srv/media/deep/x')).toEqual(['/srv/media/deep'])
    expect(pts('/srv/app')).toEqual([])
    expect(pts('/srv', true)).toEqual(['/srv/media', '/srv/media/deep'])
    expect(pts('/srv/media', true)).toEqual(['/srv/media', '/srv/media/deep'])
    expect(pts('/', true)).toEqual(['/srv/media', '/srv/media/deep', '/mnt/nas'])
    // a sibling whose name starts alike is not below
    expect(pts('/srv/med', true)).toEqual([])
  })
})

describe('a probe outcome (pure)', () => {
  const r = { exitCode: 0, signal: null, timedOut: false, stderr: '' }
  it('reads the deadline as hung, ENOTCONN as gone, an answer (even an error) as live', () => {
    expect(
      judgeProbe('/m', { ...r, exitCode: null, signal: 'SIGTERM', timedOut: true }, 5000, 5003),
    ).toEqual({
      mountPoint: '/m',
      state: 'hung',
      detail: 'no answer to statfs within 5 s',
      ms: 5003,
    })
    expect(
      judgeProbe(
        '/m',
        {
          ...r,
          exitCode: 1,
          stderr:
            "stat: cannot read file system information for '/m': Transport endpoint is not connected\n",
        },
        5000,
        3,
      ),
    ).toMatchObject({ state: 'gone', detail: 'Transport endpoint is not connected' })
    expect(judgeProbe('/m', r, 5000, 2)).toMatchObject({ state: 'live' })
    expect(
      judgeProbe('/m', { ...r, exitCode: 1, stderr: 'stat: ... Permission denied\n' }, 5000, 2),
    ).toMatchObject({ state: 'live', detail: 'answers: stat: ... Permission denied' })
  })

  it('the warning names the mount, what was skipped and the fix', () => {
    const w = mountWarning(
      {
        mountPoint: '/srv/media',
        state: 'hung',
        detail: 'no answer to statfs within 5 s',
        ms: 5000,
      },
      'du of /srv',
    )
    expect(w).toBe(
      'the mount /srv/media does not answer (no answer to statfs within 5 s: hung): skipped du of /srv; fix: fusermount3 -uz /srv/media, then mount it again',
    )
    expect(
      mountWarning(
        { mountPoint: '/m', state: 'gone', detail: 'Transport endpoint is not connected', ms: 1 },
        'x',
      ),
    ).toMatch(
      /^the mount \/m is gone \(Transport endpoint is not connected: its process died\): skipped x; fix: fusermount3 -uz \/m/,
    )
  })
})

describe('probeMount: a child with a deadline, asked once per mount', () => {
  it('a probe that does not answer is killed at the deadline: hung, in about that time', async () => {
    const t0 = Date.now()
    const p = await probeMount('/nowhere-1', { timeoutMs: 400, command: HANG })
    expect(p).toMatchObject({ mountPoint: '/nowhere-1', state: 'hung' })
    expect(p.detail).toBe('no answer to statfs within 0.4 s')
    expect(Date.now() - t0).toBeLessThan(3000)
  })

  it('the answer is cached per process: a second ask does not run the probe again', async () => {
    const first = await probeMount('/nowhere-2', { timeoutMs: 400, command: HANG })
    const t0 = Date.now()
    const again = await probeMount('/nowhere-2', { timeoutMs: 400, command: HANG })
    expect(again).toBe(first)
    expect(Date.now() - t0).toBeLessThan(100)
  })

  it('ENOTCONN from the probe is gone; the real stat -f on / is live', async () => {
    const gone = await probeMount('/nowhere-3', {
      command: [
        'sh',
        '-c',
        'echo "stat: cannot read file system information for $1: Transport endpoint is not connected" >&2; exit 1',
      ],
    })
    expect(gone.state).toBe('gone')
    expect((await probeMount('/')).state).toBe('live')
  })

  it('guardPath asks only the remote mounts a path reaches and returns those not live', async () => {
    // /srv/other is tmpfs (not asked); /srv/media and /srv/media/deep are
    const hung = await guardPath('/srv', {
      mounts: MOUNTS,
      below: true,
      timeoutMs: 300,
      command: HANG,
    })
    expect(hung.map((p) => [p.mountPoint, p.state])).toEqual([
      ['/srv/media', 'hung'],
      ['/srv/media/deep', 'hung'],
    ])
    expect(await guardPath('/srv/other/x', { mounts: MOUNTS, command: ['false'] })).toEqual([])
  })
})
