/**
 * Priorities for the journal: when stderr is the journal ($JOURNAL_STREAM names fd 2), warnings
 * and errors carry <4>/<3> so `journalctl -p warning` finds them; anywhere else, no prefix.
 */
import { spawn } from 'node:child_process'
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { priorityPrefix, stderrIsJournal } from '../../../lib/cli/output.js'
import { CLI } from '../../cli/run.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ss-journal-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('stderr as the journal', { timeout: 30_000 }, () => {
  const st = { dev: 2049, ino: 1234567 }
  it('is the journal only when $JOURNAL_STREAM names the very stream fd 2 is', () => {
    expect(stderrIsJournal({ JOURNAL_STREAM: '2049:1234567' }, () => st)).toBe(true)
    expect(stderrIsJournal({ JOURNAL_STREAM: '2049:7654321' }, () => st)).toBe(false)
    expect(stderrIsJournal({}, () => st)).toBe(false)
    expect(stderrIsJournal({ JOURNAL_STREAM: 'garbage' }, () => st)).toBe(false)
    expect(priorityPrefix('warning', true)).toBe('<4>')
    expect(priorityPrefix('error', true)).toBe('<3>')
    expect(priorityPrefix('error', false)).toBe('')
  })

  it('the built CLI: an error line gets <3> when its stderr is the stream named, none otherwise', async () => {
    const run = async (journal: boolean): Promise<string> => {
      const file = path.join(dir, `stderr-${journal}`)
      const fd = openSync(file, 'w')
      const s = fstatSync(fd)
      const env = {
        PATH: process.env.PATH,
        SHIPSHAPE_CONFIG_DIR: path.join(dir, 'no-etc'),
        ...(journal ? { JOURNAL_STREAM: `${s.dev}:${s.ino}` } : { JOURNAL_STREAM: '1:1' }),
      }
      const code = await new Promise<number | null>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          [CLI, '--docker-host', `unix://${path.join(dir, 'absent.sock')}`, 'report'],
          { env, stdio: ['ignore', 'ignore', fd] },
        )
        child.on('error', reject)
        child.on('close', resolve)
      })
      closeSync(fd)
      expect(code).toBe(3)
      return readFileSync(file, 'utf8')
    }
    expect(await run(true)).toMatch(/^<3>shipshape: /m)
    const plain = await run(false)
    expect(plain).toMatch(/^shipshape: /m)
    expect(plain).not.toContain('<3>')
  })
})
