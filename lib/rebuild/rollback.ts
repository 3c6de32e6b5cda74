/**
 * `shipshape rollback SERVICE`: the service back on a backup image (default: the newest
 * shipshape-prev tag before what runs), health-checked, undone if it fails.
 */
import { UsageError } from '../errors.js'
import { chooseRollback, listBackups } from './list.js'
import { BACKUP_CREATED_LABEL, BACKUP_LABEL, BACKUP_SOURCE_LABEL } from '../shared/labels.js'
import type { Command, Prepared } from './prepare.js'
import { ROLLBACK_OPERATION, type RebuildOptions, type RebuildOutcome } from './result.js'
import { refused, serviceRunner } from './run.js'
import { rollbackSteps } from './steps/index.js'
import { serviceContainers } from './target.js'

export const runRollback = serviceRunner(
  ROLLBACK_OPERATION,
  rollbackSteps,
  'switched',
  chooseTarget,
)

/** Which image the rollback goes to (--to, else chooseRollback()); already there: nothing to do. */
async function chooseTarget(
  c: Command,
  name: string,
  p: Prepared,
  opts: RebuildOptions,
): Promise<RebuildOutcome | null> {
  const dirs = { stateDir: c.config.stateDir, backupDir: c.config.backupDir }
  const backups = await listBackups(c.engine, name, dirs)
  // a --resume does what the run it finishes was confirmed with
  p.ctx.restoreFiles =
    Boolean(opts.restoreFiles) || p.prior?.steps.get('retag')?.notes.restoreFiles === true
  if (!p.ctx.toImageId) {
    const runningNow = (await serviceContainers(p.ctx)).length
      ? (
          await Promise.all(
            (await serviceContainers(p.ctx)).map((x) => c.engine.inspectContainer(x.id)),
          )
        ).some((d) => d?.running)
      : false
    const cur = await c.engine.inspectImage(p.ctx.fromImageId)
    // what runs may itself be a backup: a prev tag on it (its earliest), or an older labelled copy
    const asPrev = backups
      .filter((b) => b.kind === 'image' && b.id === p.ctx.fromImageId)
      .map((b) => b.created)
      .sort()[0]
    const running = {
      id: p.ctx.fromImageId,
      source: cur?.labels[BACKUP_LABEL] ? (cur.labels[BACKUP_SOURCE_LABEL] ?? null) : null,
      created: cur?.labels[BACKUP_LABEL]
        ? (cur.labels[BACKUP_CREATED_LABEL] ?? null)
        : (asPrev ?? null),
    }
    let to: { id: string; label: string; source: string | null } | null = null
    if (opts.to) {
      const b = backups.find((x) => x.tag === opts.to || x.tag.endsWith(`:${opts.to}`))
      const img = b ? null : await c.engine.inspectImage(opts.to)
      to = b
        ? { id: b.id, label: b.tag, source: b.source }
        : img
          ? { id: img.id, label: opts.to, source: img.labels[BACKUP_SOURCE_LABEL] ?? null }
          : null
      if (!to) {
        throw new UsageError(
          `no backup or image ${opts.to} for ${name}`,
          `list the backups with: shipshape rollback ${name} --list`,
        )
      }
    } else {
      const b = chooseRollback(backups, running)
      if (!b) {
        p.refusals.push({
          check: 'backup',
          message: `${name} has no earlier shipshape-prev backup to roll back to (it runs ${p.ctx.fromImageId.slice(7, 19)})`,
          remedy: `name one with --to (shipshape rollback ${name} --list)`,
        })
        return refused(name, 'rollback', p)
      }
      to = { id: b.id, label: b.tag, source: b.source }
    }
    // only a running service is "already there": a stopped one is recreated and checked
    if (
      runningNow &&
      (to.id === p.ctx.fromImageId || to.source === p.ctx.fromImageId) &&
      !opts.resume &&
      !opts.rollback
    ) {
      c.out.info(`${name} already runs ${to.label} (${to.id.slice(7, 19)}): nothing to do`)
      return {
        result: { ...p.base, outcome: 'already-there', image: { ...p.base.image, to: to.id } },
      }
    }
    p.ctx.toImageId = to.id
    p.base.image.to = to.id
    c.out.info(
      `${name}: roll back ${p.ctx.imageRef} from ${p.ctx.fromImageId.slice(7, 19)} to ${to.label} (${to.id.slice(7, 19)})`,
    )
  }
  return null
}
