/**
 * The copy's resume log: an append-only record of finished files (JSON lines) in the state dir,
 * fsync'ed every LOG_SYNC_FILES files or LOG_SYNC_MS; a line torn by kill -9 is skipped.
 */
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { errCode } from '../host/safefs.js'
import { LOG_SYNC_FILES, LOG_SYNC_MS } from './copy-util.js'

export interface DoneRecord {
  path: string
  size: number
  mtimeMs: number
  sha256: string
}

export class DoneLog {
  private chain: Promise<void> = Promise.resolve()
  private unsynced = 0
  private lastSync = Date.now()
  private timer: NodeJS.Timeout | undefined
  private closed = false

  private constructor(private fh: FileHandle) {}

  static async open(file: string): Promise<{ log: DoneLog; done: Map<string, DoneRecord> }> {
    const done = new Map<string, DoneRecord>()
    let text = ''
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      if (errCode(err) !== 'ENOENT') throw err
    }
    // A line torn by kill -9 or power loss does not parse and is skipped.
    for (const line of text.split('\n')) {
      const rec = parseRecord(line)
      if (rec) done.set(rec.path, rec)
    }
    await mkdir(path.dirname(file), { recursive: true })
    const fh = await open(file, 'a')
    const log = new DoneLog(fh)
    // Fence off a torn last line so the next record starts on its own line.
    if (text !== '' && !text.endsWith('\n')) await fh.write('\n')
    return { log, done }
  }

  append(rec: DoneRecord): Promise<void> {
    this.chain = this.chain.then(async () => {
      await this.fh.write(JSON.stringify(rec) + '\n')
      this.unsynced++
      if (this.unsynced >= LOG_SYNC_FILES || Date.now() - this.lastSync >= LOG_SYNC_MS)
        await this.sync()
      else this.timer ??= setTimeout(() => void this.queueSync(), LOG_SYNC_MS).unref()
    })
    return this.chain
  }

  /** A sync on the timer; its failure surfaces at the next append or close. */
  private queueSync(): void {
    this.timer = undefined
    this.chain = this.chain.then(() => this.sync())
    this.chain.catch(() => {})
  }

  private async sync(): Promise<void> {
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    if (this.unsynced === 0) return
    await this.fh.sync()
    this.unsynced = 0
    this.lastSync = Date.now()
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    try {
      await this.chain
      await this.sync()
    } finally {
      await this.fh.close()
    }
  }
}

function parseRecord(line: string): DoneRecord | null {
  if (line === '') return null
  try {
    const r = JSON.parse(line) as Partial<DoneRecord>
    if (
      typeof r.path === 'string' &&
      typeof r.size === 'number' &&
      typeof r.mtimeMs === 'number' &&
      typeof r.sha256 === 'string'
    )
      return { path: r.path, size: r.size, mtimeMs: r.mtimeMs, sha256: r.sha256 }
  } catch {
    // torn or foreign line
  }
  return null
}
