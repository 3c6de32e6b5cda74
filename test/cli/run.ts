import { spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const CLI = path.join(root, 'dist/scripts/shipshape.js')

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

/** Runs the built CLI (npm test builds first) with an argument array and a clean env. */
export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 60_000,
): Promise<CliResult> {
  return runCliAt(CLI, args, env, timeoutMs)
}

/** runCli for the CLI at `cli` (another copy of the package). */
export function runCliAt(
  cli: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 60_000,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now()
    const child = spawn(process.execPath, [cli, ...args], {
      // the machine's /etc/shipshape is never read: a directory that does not exist stands for it
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        SHIPSHAPE_CONFIG_DIR: path.join(root, 'test', 'no-etc-shipshape'),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - t0 }))
  })
}
