/**
 * withCommand (lib/cli/command.ts): usage before the run, the result printed (JSON or for a
 * person), then the verdict's error — so a run that failed still prints its result with --json.
 * No config is read (config: 'none') and no engine opened: no I/O.
 */
import { Writable } from 'node:stream'
import { Command } from 'commander'
import { describe, expect, it } from 'vitest'
import { withCommand, type CommandOptions } from '../../../lib/cli/command.js'
import { RolledBackError, UsageError } from '../../../lib/errors.js'

interface Done {
  result: { n: number }
  error?: Error
}

function sink() {
  const chunks: string[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString())
      cb()
    },
  })
  return { stream, text: () => chunks.join('') }
}

/** A root with the global --json, and `thing NAME [--fail]` on withCommand. */
async function run(argv: string[], opts: Omit<CommandOptions<[string, Flags], Done>, 'io'>) {
  const stdout = sink()
  const stderr = sink()
  const calls: string[] = []
  const program = new Command('shipshape').option('--json').option('-q, --quiet')
  program.addCommand(
    new Command('thing')
      .argument('<name>')
      .option('--fail')
      .option('--bad')
      .action(
        withCommand<[string, Flags], Done>(
          async (_ctx, name: string, flags: Flags): Promise<Done> => {
            calls.push(`run ${name}`)
            return flags.fail
              ? { result: { n: 1 }, error: new RolledBackError('it failed') }
              : { result: { n: 2 } }
          },
          { ...opts, config: 'none', io: { stdout: stdout.stream, stderr: stderr.stream } },
        ),
      ),
  )
  const error = await program
    .parseAsync(['node', 'shipshape', ...argv])
    .then(() => null)
    .catch((e: unknown) => e)
  return { error, stdout: stdout.text(), stderr: stderr.text(), calls }
}

interface Flags {
  fail?: boolean
  bad?: boolean
}

const outcome: Omit<CommandOptions<[string, Flags], Done>, 'io'> = {
  before: (_g, _name, flags) => {
    if (flags.bad) throw new UsageError('--bad is bad')
  },
  json: (done) => done.result,
  human: (done, { out }, name) => {
    if (!done.error) out.human(`${name}: ${done.result.n}`)
  },
  verdict: (done) => done.error ?? null,
}

describe('withCommand', () => {
  it('--json: the result printed, no error', async () => {
    const r = await run(['--json', 'thing', 'a'], outcome)
    expect(r.error).toBeNull()
    expect(JSON.parse(r.stdout)).toEqual({ n: 2 })
  })

  it('--json and a failed run: the result printed first, then the verdict’s error', async () => {
    const r = await run(['--json', 'thing', 'a', '--fail'], outcome)
    expect(r.error).toBeInstanceOf(RolledBackError)
    expect((r.error as RolledBackError).exitCode).toBe(1)
    expect(JSON.parse(r.stdout)).toEqual({ n: 1 })
  })

  it('for a person: the human output gets the args; a failed run prints nothing but its error', async () => {
    const ok = await run(['thing', 'a'], outcome)
    expect(ok.error).toBeNull()
    expect(ok.stderr).toBe('a: 2\n')
    expect(ok.stdout).toBe('')
    const failed = await run(['thing', 'a', '--fail'], outcome)
    expect(failed.error).toBeInstanceOf(RolledBackError)
    expect(failed.stderr + failed.stdout).toBe('')
  })

  it('a usage error comes before the run', async () => {
    const r = await run(['--json', 'thing', 'a', '--bad'], outcome)
    expect(r.error).toBeInstanceOf(UsageError)
    expect(r.calls).toEqual([])
    expect(r.stdout).toBe('')
  })

  it('without a json mapping the result itself is printed; undefined prints nothing', async () => {
    const whole = await run(['--json', 'thing', 'a'], {})
    expect(JSON.parse(whole.stdout)).toEqual({ result: { n: 2 } })
    const none = await run(['--json', 'thing', 'a'], { json: () => undefined })
    expect(none.stdout).toBe('')
  })

  it('a command without a config says so when its context is asked for one', async () => {
    const r = await run(['thing', 'a'], {
      human: (_done, ctx) => {
        ctx.out.human(String(ctx.config))
      },
    })
    expect(String(r.error)).toMatch(/reads no config through its context/)
  })
})
