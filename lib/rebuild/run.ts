/**
 * One run of rebuild, rollback or update through the runner: the runner reads the journals and
 * the lock once and hands the prior run to prepare(); the command's `start` says what is left to
 * decide (the target image, an early "nothing to do"); the runner confirms, re-checks under the
 * lock (the service still on what was read), runs the steps, and returns the summary the result
 * is built from. A failure comes back beside the result, never patched onto the error.
 */
import type { Engine } from '../docker/engine.js'
import { RefusedError } from '../errors.js'
import {
  RunbookNeedsPersonError,
  RunbookRolledBackError,
  runRunbook,
  type RunSummary,
  type Step,
} from '../runbook/index.js'
import type { RebuildContext, RebuildFacts } from './context.js'
import { findService, prepare, type Command, type Prepared } from './prepare.js'
import {
  OPERATIONS,
  ROLLBACK_OPERATION,
  type Operation,
  type RebuildOptions,
  type RebuildOutcome,
  type RebuildResult,
} from './result.js'
import { serviceContainers } from './target.js'

type Success = 'rebuilt' | 'switched' | 'updated'

/** A service command: its runbook, run once `start` has chosen what it does (an outcome: nothing to do). */
export function serviceRunner(
  operation: Operation,
  steps: Step<RebuildContext>[],
  success: Success,
  start: (
    c: Command,
    name: string,
    p: Prepared,
    opts: RebuildOptions,
  ) => Promise<RebuildOutcome | null>,
) {
  return (c: Command, name: string, opts: RebuildOptions = {}): Promise<RebuildOutcome> =>
    runService(c, name, operation, steps, success, opts, (p) => start(c, name, p, opts))
}

/**
 * Runs `operation` on the service `name`. `start` sees the prepared run (no refusal left) and
 * returns an outcome to stop with (already there, up to date, refused) or null to run the steps.
 */
export async function runService(
  c: Command,
  name: string,
  operation: Operation,
  steps: Step<RebuildContext>[],
  success: Success,
  opts: RebuildOptions,
  start: (p: Prepared) => Promise<RebuildOutcome | null>,
): Promise<RebuildOutcome> {
  findService(c.config, name) // an unknown service is bad usage before anything is read
  let p: Prepared | undefined
  const r = await runRunbook<RebuildContext, RebuildOutcome>({
    ...opts,
    stateDir: c.config.stateDir,
    operation,
    // an unfinished run of another of the three on the service blocks this one
    blockedBy: OPERATIONS.filter((o) => o !== operation),
    args: { service: name },
    target: name,
    command: (op) => `shipshape ${op} ${name}`,
    out: c.out,
    now: opts.now,
    steps,
    makeContext: async (prior) => {
      p = await prepare(c, name, operation, opts, prior)
      if (p.refusals.length && !p.prior) return { stop: refused(name, operation, p) }
      const stop = await start(p)
      return stop ? { stop } : { ctx: p.ctx }
    },
    recheck: (ctx) => recheck(ctx, opts),
    // the first Ctrl-C stops a build at once (its process group), so the runner can undo now
    // rather than after a build of up to buildTimeout; the runner's own trap does the rest
    interrupt: () => p?.abort(),
  })
  if ('stopped' in r) return r.stopped
  const done = p as Prepared
  const { summary, failure } = r
  if (!failure) {
    if (summary.outcome === 'ok' && operation !== ROLLBACK_OPERATION && done.ctx.toImageId) {
      done.ctx.facts.size = await sizes(c.engine, done.ctx.fromImageId, done.ctx.toImageId)
    }
    return { result: finish(done, summary, success, opts) }
  }
  if (failure instanceof RunbookRolledBackError && done.ctx.facts.wayBackUnhealthy) {
    // back as it was, but not healthy: for a person to look at
    const error = new RunbookNeedsPersonError(
      `${failure.message}; the way back is not healthy: ${done.ctx.facts.wayBackUnhealthy}`,
      `look at ${done.ctx.service} (its logs, shipshape doctor); the run is finished, nothing to resume`,
      summary,
      failure,
    )
    return { result: finish(done, summary, success, opts, error), error }
  }
  return { result: finish(done, summary, success, opts, failure), error: failure }
}

/** The refusals of a new run, all at once: exit 4, nothing changed. */
export function refused(name: string, operation: string, p: Prepared): RebuildOutcome {
  const lines = p.refusals.map((r) => `${r.message}${r.remedy ? ` (fix: ${r.remedy})` : ''}`)
  const error = new RefusedError(
    p.refusals.length === 1
      ? `${operation} ${name} refused: ${lines[0]}`
      : `${operation} ${name} refused, nothing changed:\n  - ${lines.join('\n  - ')}`,
    p.refusals.length === 1 ? undefined : 'fix each of the above, then run it again',
  )
  return { result: { ...p.base, outcome: 'refused', refusals: p.refusals }, error }
}

/**
 * Under the lock, after the confirmation (the runner has looked at the journals again): the
 * service may have changed while a person read the plan. A new run stops before anything changes
 * when its containers or image are not what was read.
 */
async function recheck(ctx: RebuildContext, opts: RebuildOptions): Promise<void> {
  if (opts.resume || opts.rollback) return
  const now = await serviceContainers(ctx)
  const details = await Promise.all(now.map((x) => ctx.engine.inspectContainer(x.id)))
  const same =
    now.length === ctx.containers.length &&
    ctx.containers.every((o) => now.some((x) => x.id === o.id)) &&
    details.some((d) => d?.imageId === ctx.fromImageId)
  if (!same) {
    throw new RefusedError(
      `${ctx.service} changed while the plan was shown (its containers or image are not what was read)`,
      'run the command again',
    )
  }
}

/** The image's size before and after a rebuild (inspect's Size), and the bytes saved. */
async function sizes(
  engine: Engine,
  from: string,
  to: string,
): Promise<NonNullable<RebuildFacts['size']>> {
  const [a, b] = await Promise.all([engine.inspectImage(from), engine.inspectImage(to)])
  const before = a?.sizeBytes ?? 0
  const after = b ? b.sizeBytes : null
  return {
    beforeBytes: before,
    afterBytes: after,
    savedBytes: after === null ? null : before - after,
  }
}

function finish(
  p: Prepared,
  summary: RunSummary,
  success: Success,
  opts: RebuildOptions,
  error?: unknown,
): RebuildResult {
  const f: RebuildFacts = p.ctx.facts
  const outcome: RebuildResult['outcome'] =
    summary.outcome === 'ok' ? (opts.rollback ? 'rolled-back' : success) : summary.outcome
  const logUsed = summary.steps.some(
    (s) => s.status !== 'pending' && (s.id === 'build' || s.id === 'recreate'),
  )
  return {
    ...p.base,
    outcome,
    image: { ...p.base.image, to: p.ctx.toImageId },
    backups: f.backups,
    log: logUsed ? p.ctx.paths.log : null,
    containers: f.containers ?? p.base.containers,
    health: f.health ?? null,
    timings: {
      buildMs: f.buildMs ?? null,
      recreateMs: f.recreateMs ?? null,
      gateMs: f.gateMs ?? null,
    },
    failedImage: f.failedImageId ?? null,
    ...(f.size ? { size: f.size } : {}),
    ...(f.files ? { files: f.files } : {}),
    warnings: [
      ...p.base.warnings,
      ...(f.filesFrom?.differ.length
        ? [
            `runs with the compose files saved with ${f.filesFrom.imageId.slice(7, 19)}; on disk ${f.filesFrom.differ.join(', ')} differ`,
          ]
        : []),
      ...(f.restoreFailed ? [`the build files were not written back: ${f.restoreFailed}`] : []),
    ],
    journal: summary.journal,
    steps: summary.steps,
    ...(error ? { error: (error as Error).message } : {}),
  }
}
