/**
 * `shipshape migrate-assets NAME --finalize`: removes the originals a migration kept aside once
 * their `keepOriginal` has passed, each removal a runbook step (lock, journal); it cannot be
 * undone, the backup archive stays. What may go and how is lib/assets/finalize.ts.
 */
import { lstat } from 'node:fs/promises'
import path from 'node:path'
import type { Output } from '../cli/output.js'
import type { Config } from '../config/index.js'
import type { RunSummary, Step } from '../runbook/index.js'
import {
  finalizeBlocker,
  findKeptOriginals,
  foreignOriginal,
  markRemoved,
  removeOriginal,
  unansweredMounts,
  type KeptOriginal,
} from '../assets/finalize.js'
import { assetCommand, openAssetRun } from './command.js'

function removeStep(k: KeptOriginal): Step<{ now: () => Date }> {
  return {
    id: `remove-${path.basename(k.workDir)}`,
    title: `Remove the original kept at ${k.original}`,
    preview: () => [
      `rm -r ${k.original} by descriptors, each entry checked against the manifest (kept until ${k.keepUntil}; the backup in ${k.workDir} stays)`,
    ],
    async run(ctx) {
      const blocker = await finalizeBlocker(k, ctx.now())
      if (blocker && !blocker.includes('is not there any more')) throw new Error(blocker)
      if (!blocker) await removeOriginal(k)
      await markRemoved(k, ctx.now())
    },
    async verify() {
      return !(await lstat(k.original).then(
        () => true,
        () => false,
      ))
    },
  }
}

export interface FinalizeResult {
  due: KeptOriginal[]
  kept: { original: string; why: string }[]
  summary: RunSummary | null
}

export async function runFinalize(
  ctx: { config: Config; out: Output },
  name: string,
  opts: {
    dryRun?: boolean
    yes?: boolean
    /** an interrupted --finalize: finish it (or close it: its removals cannot be undone) */
    resume?: boolean
    rollback?: boolean
    now?: () => Date
    confirm?: (q: string) => Promise<boolean>
  },
): Promise<FinalizeResult> {
  const now = opts.now ?? (() => new Date())
  // an interrupted --finalize blocks a new one (even with nothing due) until --resume/--rollback
  // an unfinished revert blocks it too: the originals are in the middle of being put back
  const run = await openAssetRun(
    { stateDir: ctx.config.stateDir, name, out: ctx.out, now },
    opts,
    ['migrate-assets-finalize', 'migrate-assets-revert'],
    assetCommand(name),
  )
  await unansweredMounts(ctx.config.backupDir, [name], (w) => ctx.out.warn(w))
  const all = await findKeptOriginals(ctx.config.backupDir, name)
  const due: KeptOriginal[] = []
  const kept: FinalizeResult['kept'] = []
  const asset = ctx.config.assets[name]
  for (const k of all) {
    const why =
      (asset ? foreignOriginal(k, asset, ctx.config) : `no asset named ${name}`) ??
      (await finalizeBlocker(k, now()))
    // continuing a run killed between the rm and its record: the step finds it gone and is done
    const interrupted = (opts.resume || opts.rollback) && why?.endsWith('is not there any more')
    if (why && !interrupted) {
      if (!k.removedAt && !k.revertedAt) kept.push({ original: k.original, why })
    } else due.push(k)
  }
  for (const k of kept) ctx.out.info(`${k.original}: stays (${k.why})`)
  if (!due.length) {
    ctx.out.info(`${name}: no original is due for removal`)
    return { due, kept, summary: null }
  }
  const { summary, failure } = await run.execute(due.map(removeStep), { now })
  if (failure) throw failure
  return { due, kept, summary }
}
