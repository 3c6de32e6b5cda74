/**
 * `shipshape migrate-assets NAME --finalize`: removes the originals a migration kept aside once
 * their `keepOriginal` has passed — and only while the migration still stands (source is the
 * symlink to dest) and dest still holds every file of the manifest with its size. Each removal
 * is a runbook step (lock, journal); it cannot be undone, the backup archive stays.
 */
import { lstat, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Output } from '../cli/output.js'
import type { Config } from '../config/index.js'
import { runRunbook, type RunSummary, type Step } from '../runbook/index.js'
import { priorRun } from '../runbook/prior.js'
import { readManifest } from './manifest.js'
import { checkSourcePath } from './policy.js'

export interface KeptOriginal {
  /** the run's work dir in backupDir (holds original.json, manifest.json, the archive) */
  workDir: string
  original: string
  source: string
  dest: string
  keepUntil: string
  removedAt?: string
}

export async function findKeptOriginals(backupDir: string, name: string): Promise<KeptOriginal[]> {
  const dir = path.join(backupDir, name)
  const stamps = await readdir(dir).catch(() => [] as string[])
  const out: KeptOriginal[] = []
  for (const s of stamps.sort()) {
    const workDir = path.join(dir, s)
    try {
      const j = JSON.parse(
        await readFile(path.join(workDir, 'original.json'), 'utf8'),
      ) as Partial<KeptOriginal>
      if (typeof j.original === 'string' && typeof j.keepUntil === 'string') {
        out.push({
          workDir,
          original: j.original,
          source: String(j.source),
          dest: String(j.dest),
          keepUntil: j.keepUntil,
          ...(j.removedAt ? { removedAt: j.removedAt } : {}),
        })
      }
    } catch {
      // a run that did not finish has no original.json: nothing kept to finalize
    }
  }
  return out
}

/**
 * original.json is a plain file in backupDir: before anything is removed as root, what it names
 * must be exactly what this asset's migration makes — `<source>.shipshape-<stamp of its run
 * dir>` for the configured source and dest, a source the allowed-roots policy accepts.
 * Pure; null when it is.
 */
export function foreignOriginal(
  k: KeptOriginal,
  asset: { source: string; dest: string },
  policy: { allowedRoots: string[]; stateDir: string; backupDir: string },
): string | null {
  const expected = `${asset.source}.shipshape-${path.basename(k.workDir)}`
  if (k.source !== asset.source || k.dest !== asset.dest || k.original !== expected) {
    return `${path.join(k.workDir, 'original.json')} names ${k.original}, not this asset's kept original ${expected}: not touching it`
  }
  const refused = checkSourcePath(asset.source, policy)
  return refused.length ? refused[0]!.message : null
}

/** Why this original may not go yet (null: it may). Reads only. */
export async function finalizeBlocker(k: KeptOriginal, now: Date): Promise<string | null> {
  if (k.removedAt) return `removed already (${k.removedAt})`
  if (new Date(k.keepUntil) > now) return `kept until ${k.keepUntil}`
  if (
    !(await lstat(k.original).then(
      (s) => s.isDirectory(),
      () => false,
    ))
  ) {
    return `${k.original} is not there any more`
  }
  const link = await readlink(k.source).catch(() => null)
  if (link !== k.dest) return `${k.source} is not the symlink to ${k.dest} any more`
  const manifest = await readManifest(path.join(k.workDir, 'manifest.json')).catch(() => null)
  if (!manifest) return `the run's manifest is unreadable`
  let missing = 0
  for (const e of manifest.entries) {
    if (e.kind !== 'file') continue
    const st = await stat(path.join(k.dest, e.path)).catch(() => null)
    if (st?.size !== e.size) missing++
  }
  if (missing) return `${missing} file(s) of the manifest are missing or changed in ${k.dest}`
  return null
}

function removeStep(k: KeptOriginal): Step<{ now: () => Date }> {
  return {
    id: `remove-${path.basename(k.workDir)}`,
    title: `Remove the original kept at ${k.original}`,
    preview: () => [
      `rm -r ${k.original} (kept until ${k.keepUntil}; the backup in ${k.workDir} stays)`,
    ],
    async run(ctx) {
      const blocker = await finalizeBlocker(k, ctx.now())
      if (blocker && !blocker.includes('is not there any more')) throw new Error(blocker)
      await rm(k.original, { recursive: true, force: true })
      await writeFile(
        path.join(k.workDir, 'original.json'),
        JSON.stringify({ ...k, workDir: undefined, removedAt: ctx.now().toISOString() }, null, 2) +
          '\n',
      )
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
  await priorRun({
    stateDir: ctx.config.stateDir,
    operations: ['migrate-assets-finalize'],
    key: 'asset',
    target: name,
    dryRun: opts.dryRun,
    resume: opts.resume,
    rollback: opts.rollback,
    command: () => `shipshape migrate-assets ${name} --finalize`,
  })
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
      if (!k.removedAt) kept.push({ original: k.original, why })
    } else due.push(k)
  }
  for (const k of kept) ctx.out.info(`${k.original}: stays (${k.why})`)
  if (!due.length) {
    ctx.out.info(`${name}: no original is due for removal`)
    return { due, kept, summary: null }
  }
  const summary = await runRunbook(
    due.map(removeStep),
    { now },
    {
      dryRun: opts.dryRun,
      yes: opts.yes,
      resume: opts.resume,
      rollback: opts.rollback,
      stateDir: ctx.config.stateDir,
      operation: 'migrate-assets-finalize',
      args: { asset: name },
      out: ctx.out,
      confirm: opts.confirm,
      now,
    },
  )
  return { due, kept, summary }
}
