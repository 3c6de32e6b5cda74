/**
 * `migrate-assets --revert` flags that do not go together: usage errors (exit 2), refused before
 * the config or the engine is read (the config named does not even exist).
 */
import { describe, expect, it } from 'vitest'
import { runCli } from './run.js'

const run = (...flags: string[]) =>
  runCli(['--config', '/nonexistent/shipshape.yaml', 'migrate-assets', 'music', ...flags])

describe('migrate-assets --revert: usage', { timeout: 20_000 }, () => {
  it('--revert with --finalize → exit 2', async () => {
    const r = await run('--revert', '--finalize')
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--revert and --finalize exclude each other/)
  })

  it('--remove-copy without --revert → exit 2', async () => {
    const r = await run('--remove-copy', '--yes')
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--remove-copy goes with --revert/)
  })

  it('--revert --resume --rollback → exit 2', async () => {
    const r = await run('--revert', '--resume', '--rollback')
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--resume and --rollback exclude each other/)
  })

  it('--help documents --revert and --remove-copy', async () => {
    const r = await runCli(['migrate-assets', '--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/--revert\s/)
    expect(r.stdout).toMatch(/--remove-copy\s/)
  })
})
