/**
 * records.ts against a temp dir (files only, no engine): build files saved whole, read back,
 * diffed against the disk and written back with the disk's files saved aside; backup records.
 */
import { readIf } from '../../../lib/host/durable.js'
import { mkdtemp, readFile, rm, stat, symlink, writeFile, mkdir } from 'node:fs/promises'
import { execFileSync } from 'node:child_process'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { parseConfigHash } from '../../../lib/docker/compose.js'
import {
  diffBuildFiles,
  keptCompose,
  keptNames,
  listBuildFiles,
  readBackupRecords,
  readBuildFiles,
  removeBackupRecord,
  restoreBuildFiles,
  saveBuildFiles,
  unrestoreBuildFiles,
  writeBackupRecord,
} from '../../../lib/rebuild/records.js'

let root: string
let proj: string
let backupDir: string
const id = `sha256:${'1'.repeat(64)}`

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'ss-rec-'))
  proj = path.join(root, 'app')
  backupDir = path.join(root, 'backups')
  await mkdir(proj)
  await writeFile(path.join(proj, 'docker-compose.yml'), 'services:\n  web: {build: .}\n')
  await writeFile(path.join(proj, 'Dockerfile'), 'FROM x\n# one\n', { mode: 0o640 })
})
afterEach(async () => {
  await rm(root, { recursive: true, force: true })
})

const save = (files = ['docker-compose.yml', 'Dockerfile', '.env']) =>
  saveBuildFiles({
    backupDir,
    service: 'web',
    imageId: id,
    origin: 'built',
    compose: { project: 'app', cwd: proj },
    files: files.map((f) => ({
      path: path.join(proj, f),
      role: f.endsWith('.yml') ? ('compose' as const) : f === '.env' ? 'env' : 'dockerfile',
    })),
    now: new Date('2026-12-07T10:00:00Z'),
  })

describe('build files', () => {
  it('keeps what exists, 0600, with hashes; the record reads back; a second save keeps the first', async () => {
    const rec = await save()
    expect(rec.entries.map((e) => [path.basename(e.path), e.role])).toEqual([
      ['docker-compose.yml', 'compose'],
      ['Dockerfile', 'dockerfile'],
    ])
    const dir = path.join(backupDir, 'build-files', 'web', '1'.repeat(64))
    expect((await stat(path.join(dir, 'files', 'Dockerfile'))).mode & 0o777).toBe(0o600)
    expect(rec.entries[1]?.mode).toBe(0o640)
    expect(await readBuildFiles(backupDir, 'web', id)).toEqual(rec)
    await writeFile(path.join(proj, 'Dockerfile'), 'FROM y\n')
    const again = await save()
    expect(again.savedAt).toBe(rec.savedAt)
    expect(await readFile(path.join(dir, 'files', 'Dockerfile'), 'utf8')).toBe('FROM x\n# one\n')
    expect((await listBuildFiles(backupDir, 'web')).map((r) => r.imageId)).toEqual([id])
  })

  it('a build file that is a symbolic link (or a fifo) is not followed: left out', async () => {
    await writeFile(path.join(root, 'secret'), 'root only\n')
    await symlink(path.join(root, 'secret'), path.join(proj, '.env'))
    await rm(path.join(proj, 'Dockerfile'))
    execFileSync('mkfifo', [path.join(proj, 'Dockerfile')])
    const rec = await save()
    expect(rec.entries.map((e) => path.basename(e.path))).toEqual(['docker-compose.yml'])
    expect(await readIf(path.join(proj, '.env'))).toBeNull()
  })

  it('compose from the copies; no .env saved → an empty one of its own', async () => {
    const rec = await save()
    const k = keptCompose(backupDir, rec)!
    expect(k.files).toHaveLength(1)
    expect(k.files[0]).toMatch(/build-files\/web\/1+\/files\/docker-compose\.yml$/)
    expect(await readFile(k.envFile, 'utf8')).toBe('')
  })

  it('diffs against the disk, restores with the disk files saved aside, keeping the mode', async () => {
    const rec = await save()
    expect((await diffBuildFiles(backupDir, rec)).map((d) => d.state)).toEqual(['same', 'same'])
    await writeFile(path.join(proj, 'Dockerfile'), 'FROM x\n# two\n')
    const d = await diffBuildFiles(backupDir, rec)
    expect(d[1]?.state).toBe('changed')
    expect(d[1]?.patch).toMatch(/^-# one$/m)
    expect(d[1]?.patch).toMatch(/^\+# two$/m)
    const r = await restoreBuildFiles({ backupDir, rec, stamp: '20261207T100000Z' })
    expect(r.restored).toEqual([path.join(proj, 'Dockerfile')])
    expect(await readFile(path.join(proj, 'Dockerfile'), 'utf8')).toBe('FROM x\n# one\n')
    expect((await stat(path.join(proj, 'Dockerfile'))).mode & 0o777).toBe(0o640)
    expect(await readFile(path.join(r.asideDir!, 'files', 'Dockerfile'), 'utf8')).toBe(
      'FROM x\n# two\n',
    )
    // the compose file was the same: left alone
    expect((await diffBuildFiles(backupDir, rec)).every((x) => x.state === 'same')).toBe(true)
  })

  it('the undo puts back what the restore replaced and removes what it made', async () => {
    const rec = await save()
    await writeFile(path.join(proj, 'Dockerfile'), 'FROM x\n# two\n')
    await rm(path.join(proj, 'docker-compose.yml'))
    const r = await restoreBuildFiles({ backupDir, rec, stamp: '20261207T100002Z' })
    expect(r.restored.sort()).toEqual(
      [path.join(proj, 'Dockerfile'), path.join(proj, 'docker-compose.yml')].sort(),
    )
    await unrestoreBuildFiles(r.asideDir!)
    expect(await readFile(path.join(proj, 'Dockerfile'), 'utf8')).toBe('FROM x\n# two\n')
    await expect(stat(path.join(proj, 'docker-compose.yml'))).rejects.toThrow(/ENOENT/)
  })

  it('a symbolic link where a file goes stops the restore before anything is written', async () => {
    const rec = await save()
    await writeFile(path.join(proj, 'Dockerfile'), 'FROM x\n# two\n')
    await rm(path.join(proj, 'docker-compose.yml'))
    await symlink('/etc/hostname', path.join(proj, 'docker-compose.yml'))
    await expect(restoreBuildFiles({ backupDir, rec, stamp: '20261207T100003Z' })).rejects.toThrow(
      /symbolic link/,
    )
    expect(await readFile(path.join(proj, 'Dockerfile'), 'utf8')).toBe('FROM x\n# two\n')
  })

  it('a missing file on disk is named missing and written back', async () => {
    const rec = await save()
    await rm(path.join(proj, 'Dockerfile'))
    expect((await diffBuildFiles(backupDir, rec))[1]?.state).toBe('missing')
    await restoreBuildFiles({ backupDir, rec, stamp: '20261207T100001Z' })
    expect(await readFile(path.join(proj, 'Dockerfile'), 'utf8')).toBe('FROM x\n# one\n')
  })
})

describe('backup records', () => {
  it('written, read back per service, removed', async () => {
    const state = path.join(root, 'state')
    const r = {
      schema: 'shipshape.backup-record/1' as const,
      service: 'web',
      tag: 'app:shipshape-prev-20261207T100000Z',
      id,
      kind: 'image' as const,
      created: '2026-12-07T10:00:00.000Z',
      source: id,
      stamp: '20261207T100000Z',
    }
    await writeBackupRecord(state, r)
    await writeFile(path.join(state, 'backups', 'web', 'junk.json'), '{')
    expect(await readBackupRecords(state, 'web')).toEqual([r])
    expect(await readBackupRecords(state, 'other')).toEqual([])
    await removeBackupRecord(state, 'web', r.stamp, 'image')
    expect(await readBackupRecords(state, 'web')).toEqual([])
  })
})

describe('keptNames', () => {
  it('numbers names that meet, and never gives one twice', () => {
    expect(keptNames(['/a/x', '/b/x', '/c/x.2'])).toEqual(['x', 'x.2', 'x.2.2'])
    expect(keptNames(['/a/docker-compose.yml', '/a/Dockerfile'])).toEqual([
      'docker-compose.yml',
      'Dockerfile',
    ])
  })
})

describe('parseConfigHash', () => {
  it('finds the service line of `config --hash`', () => {
    const h = 'a'.repeat(64)
    expect(parseConfigHash(`other ${'b'.repeat(64)}\nweb ${h}\n`, 'web')).toBe(h)
    expect(parseConfigHash('web\n', 'web')).toBeNull()
    expect(parseConfigHash('', 'web')).toBeNull()
  })
})
