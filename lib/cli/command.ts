/**
 * The command context every script builds its action with, once: the command's options → the
 * output → the config → the engine (opened lazily, only when the command asks for it) → run →
 * JSON or human output → the engine closed. Errors are not caught here: they reach the one
 * error → exit code map in scripts/shipshape.ts.
 */
import type { Command } from 'commander'
import { loadConfig, type Config, type LoadedConfig } from '../config/index.js'
import type { Engine } from '../docker/engine.js'
import { openEngine } from '../docker/open.js'
import { globalOptions, type GlobalOptions } from './global.js'
import { createOutput, type Output } from './output.js'

export interface CommandContext {
  /** the root's options: --config, --docker-host, --json, --quiet */
  g: GlobalOptions
  out: Output
  /** the config the lookup found (commands with `config: 'none'` must not read it) */
  readonly loaded: LoadedConfig
  readonly config: Config
  /** the engine, opened on first use (--docker-host › $DOCKER_HOST › docker.host › socket) */
  engine(): Promise<Engine>
  /** runs work under a spinner (a TTY only) that shows its progress lines */
  spin<T>(text: string, work: (progress: (text: string) => void) => Promise<T>): Promise<T>
}

export interface CommandOptions<A extends unknown[], R> {
  /** 'lookup' (default): the config --config or the lookup finds; 'none': the command reads its own */
  config?: 'lookup' | 'none'
  /** where output goes (tests); default the process's stdout/stderr */
  io?: { stdout?: NodeJS.WritableStream; stderr?: NodeJS.WritableStream & { isTTY?: boolean } }
  /** checks of the options alone, before the config is read (usage errors first) */
  before?: (g: GlobalOptions, ...args: A) => void
  /** with --json: what is printed (default: the result itself; undefined prints nothing) */
  json?: (r: R, ...args: A) => unknown
  /** without --json: prints the result for a person */
  human?: (r: R, ctx: CommandContext, ...args: A) => void
  /** after the output: an error for the exit code (e.g. a failed check), or null */
  verdict?: (r: R) => Error | null
}

/**
 * A commander action: `.action(withCommand(async (ctx, ...args) => result, opts))`, where args
 * are the command's positional arguments and its options, as commander passes them. The run comes
 * first so that the result's type, inferred from it, types the options' callbacks.
 */
export function withCommand<A extends unknown[], R>(
  fn: (ctx: CommandContext, ...args: A) => Promise<R>,
  opts: CommandOptions<A, NoInfer<R>> = {},
): (...argv: unknown[]) => Promise<void> {
  return async (...argv: unknown[]) => {
    const cmd = argv.at(-1) as Command
    const args = argv.slice(0, -1) as A
    const g = globalOptions(cmd)
    const out = createOutput({ json: g.json, quiet: g.quiet, ...opts.io })
    opts.before?.(g, ...args)
    const loaded = opts.config === 'none' ? null : await loadConfig({ file: g.config })
    let engine: Promise<Engine> | undefined
    const ctx: CommandContext = {
      g,
      out,
      get loaded() {
        if (!loaded) throw new Error('this command reads no config through its context')
        return loaded
      },
      get config() {
        return ctx.loaded.config
      },
      engine: () =>
        (engine ??= openEngine({
          config: ctx.config,
          dockerHost: g.dockerHost,
          warn: (w) => out.warn(w),
        })),
      spin: async (text, work) => {
        const spinner = out.spinner(text)
        try {
          return await work((t) => spinner.update(t))
        } finally {
          spinner.stop()
        }
      },
    }
    try {
      const r = await fn(ctx, ...args)
      if (g.json) {
        const data = opts.json ? opts.json(r, ...args) : r
        if (data !== undefined) out.data(JSON.stringify(data, null, 2))
      } else opts.human?.(r, ctx, ...args)
      const failed = opts.verdict?.(r)
      if (failed) throw failed
    } finally {
      if (engine) await engine.then((e) => e.close()).catch(() => {})
    }
  }
}
