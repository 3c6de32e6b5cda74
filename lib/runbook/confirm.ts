import readline from 'node:readline'
import { RefusedError } from '../errors.js'

export interface ConfirmIO {
  input: NodeJS.ReadableStream & { isTTY?: boolean }
  output: NodeJS.WritableStream
}

/**
 * Asks a y/N question on the terminal (the question on stderr, so --json stdout stays clean).
 * No terminal to ask → RefusedError (exit 4): a timer or a pipe must say --yes. Ctrl-C or end of
 * input at the prompt is a no.
 */
export function ttyConfirm(
  question: string,
  io: ConfirmIO = { input: process.stdin, output: process.stderr },
): Promise<boolean> {
  if (!io.input.isTTY) {
    return Promise.reject(
      new RefusedError(
        'confirmation needed: run with --yes',
        'answer on a terminal, or add --yes (e.g. under a timer) once the --dry-run plan looks right',
      ),
    )
  }
  return new Promise((resolve) => {
    const rl = readline.createInterface({ input: io.input, output: io.output, terminal: true })
    let settled = false
    const done = (answer: boolean) => {
      if (settled) return
      settled = true
      rl.close()
      resolve(answer)
    }
    // without a listener, readline only pauses on Ctrl-C and the prompt would hang
    rl.on('SIGINT', () => {
      io.output.write('\n')
      done(false)
    })
    rl.on('close', () => done(false))
    rl.question(`${question} [y/N] `, (answer) => done(/^\s*y(es)?\s*$/i.test(answer)))
  })
}
