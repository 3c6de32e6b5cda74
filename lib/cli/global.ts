import type { Command } from 'commander'

/** Options every command accepts (declared once on the root program). */
export interface GlobalOptions {
  config?: string
  dockerHost?: string
  json?: boolean
  quiet?: boolean
}

export function globalOptions(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals() as GlobalOptions
}
