/**
 * What runs still need, from the journals (pure): prune never removes what these pins name.
 */
import { journalCommands } from '../runbook/operations.js'
import { isUnfinished, type JournalState } from '../runbook/journal.js'
import type { PrunePin } from './types.js'

/** Every string value in a journal's args and notes: ids, names, tags a run may need again. */
function stringsOf(v: unknown, out: Set<string>): Set<string> {
  if (typeof v === 'string') out.add(v)
  else if (Array.isArray(v)) for (const x of v) stringsOf(x, out)
  else if (v && typeof v === 'object') for (const x of Object.values(v)) stringsOf(x, out)
  return out
}

const IMAGE_ID = /^sha256:[0-9a-f]{64}$/
const SERVICE_OPS = new Set(['rebuild', 'rollback', 'update'])

/**
 * Pure: what runs still need. An unfinished journal pins everything it names (containers it
 * stopped or set aside, images it holds or built), with the command that finishes it; the last
 * rebuild/rollback/update of a service, when it was a rollback, pins the images it names (the
 * newer build it moved away from is dangling now: `rollback --to` that id brings it back).
 */
export function journalPins(
  journals: Pick<JournalState, 'file' | 'operation' | 'args' | 'steps' | 'outcome' | 'startedAt'>[],
  configFile: string | null,
): PrunePin[] {
  const pins: PrunePin[] = []
  const lastOfService = new Map<string, (typeof journals)[number]>()
  for (const j of journals) {
    const notes = [...j.steps.values()].map((s) => s.notes)
    if (isUnfinished(j as JournalState)) {
      const target = j.args.asset ?? j.args.service
      const cmds = journalCommands(j, { configFile })
      pins.push({
        values: [...stringsOf([j.args, notes], new Set())],
        reason: `named by the unfinished ${j.operation} run${typeof target === 'string' ? ` of ${target}` : ''} (${j.file}): ${cmds.fix}`,
      })
      continue
    }
    const service = j.args.service
    // a run that was undone changed nothing: the rollback before it stays the last word
    if (!SERVICE_OPS.has(j.operation) || typeof service !== 'string' || j.outcome !== 'ok') continue
    const prev = lastOfService.get(service)
    if (!prev || j.startedAt > prev.startedAt) lastOfService.set(service, j)
  }
  for (const [service, j] of [...lastOfService].sort(([a], [b]) => a.localeCompare(b))) {
    if (j.operation !== 'rollback' || j.outcome !== 'ok') continue
    const ids = [
      ...stringsOf(
        [...j.steps.values()].map((s) => s.notes),
        new Set(),
      ),
    ].filter((v) => IMAGE_ID.test(v))
    if (ids.length) {
      pins.push({
        values: ids,
        reason: `named by the last rollback of ${service} (${j.startedAt}): \`shipshape rollback ${service} --to <id>\` may want it back; it goes after the next rebuild or update of ${service}`,
      })
    }
  }
  return pins
}
