/**
 * Saved plans: `prune --plan-out FILE` writes one, `prune --apply FILE` removes at most what it
 * names, each item checked against the plan made now (recheckSavedPlan, pure). The same check
 * narrows a confirmed plan to what is still true under the lock.
 */
import { readFile } from 'node:fs/promises'
import { UsageError } from '../errors.js'
import { PRUNE_SCHEMA, type PruneResult } from './result.js'
import { CANDIDATE_KINDS, type Candidate, type Keep, type PrunePlan } from './types.js'

/** A saved plan (prune --plan-out): what --apply may remove, at most. */
export interface SavedPlan {
  file: string
  generatedAt: string
  candidates: Candidate[]
}

const planKey = (c: Pick<Candidate, 'kind' | 'id' | 'name'>) =>
  `${c.kind}\0${c.id}\0${c.kind === 'tag' ? c.name : ''}`

/** Reads a plan `prune --plan-out` wrote; anything else is a usage error (exit 2). */
export async function readSavedPlan(file: string): Promise<SavedPlan> {
  let doc: unknown
  try {
    doc = JSON.parse(await readFile(file, 'utf8'))
  } catch (err) {
    throw new UsageError(
      `${file}: not a saved prune plan (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    )
  }
  const d = doc as Partial<PruneResult> | null
  const kinds = new Set<string>(CANDIDATE_KINDS)
  const ok =
    d?.schema === PRUNE_SCHEMA &&
    typeof d.generatedAt === 'string' &&
    Array.isArray(d.candidates) &&
    d.candidates.every(
      (c) =>
        c &&
        kinds.has(c.kind) &&
        typeof c.id === 'string' &&
        typeof c.name === 'string' &&
        typeof c.sizeBytes === 'number',
    )
  if (!ok || d.applied) {
    throw new UsageError(
      `${file}: not a saved prune plan (write one with \`shipshape prune --plan-out FILE\`)`,
    )
  }
  return { file, generatedAt: d.generatedAt!, candidates: d.candidates! }
}

/**
 * Pure: the saved plan against the plan made now. Only what both say goes; a saved item the
 * current plan does not take stays, with why (gone, now in use, newly protected, …).
 */
export function recheckSavedPlan(
  saved: SavedPlan,
  now: PrunePlan,
  present: (c: Candidate) => boolean,
): { go: Candidate[]; stay: Keep[]; notSaved: number } {
  const current = new Map(now.candidates.map((c) => [planKey(c), c]))
  const keptNow = new Map(now.kept.map((k) => [planKey(k), k]))
  const go: Candidate[] = []
  const stay: Keep[] = []
  const savedKeys = new Set<string>()
  for (const c of saved.candidates) {
    const key = planKey(c)
    savedKeys.add(key)
    const cur = current.get(key)
    const sameTags =
      c.kind !== 'image' || JSON.stringify(cur?.tags ?? []) === JSON.stringify(c.tags ?? [])
    if (cur && sameTags) {
      go.push(cur)
      continue
    }
    if (cur) {
      stay.push({
        kind: c.kind,
        name: c.name,
        id: c.id,
        reason: `in ${saved.file}, kept: its tags changed since the plan (now ${(cur.tags ?? []).join(', ') || 'none'})`,
      })
      continue
    }
    const why = !present(c)
      ? 'gone since the plan was made'
      : (keptNow.get(key)?.reason ?? 'the current policy no longer removes it')
    stay.push({ kind: c.kind, name: c.name, id: c.id, reason: `in ${saved.file}, kept: ${why}` })
  }
  const notSaved = now.candidates.filter((c) => !savedKeys.has(planKey(c))).length
  return { go, stay, notSaved }
}
