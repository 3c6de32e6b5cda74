/**
 * The facts every image rule reads, gathered once after the container rules (a container this
 * plan removes no longer keeps its image in use, and was a use of it): each image's name, what
 * removing it frees, its guards (held, pinned, in use, protected), whether it is a backup, and
 * when it was last used. Pure.
 */
import {
  BACKUP_CREATED_LABEL,
  BACKUP_KIND_LABEL,
  BACKUP_LABEL,
  HOLD_PREFIX,
  PREV_PREFIX,
} from '../shared/labels.js'
import { stampTime } from '../shared/stamp.js'
import { byName, containerName, names, timeOf, type PlanContext, cmp } from './context.js'
import { isShipshapeTag, repoOf, tagOf } from './refs.js'
import type { Candidate, Keep, PruneContainer, PruneImage, PruneRule } from './types.js'

export interface ImageFacts {
  img: PruneImage
  name: string
  unique: number
  /** the hold tag, when a rebuild or rollback holds it */
  held: string | null
  /** why an unfinished run (or the last rollback) still needs it */
  pinned: string | null
  protectedBy: string | null
  backup: { service: string; kind: 'image' | 'commit'; created: number | null } | null
  /** containers that stay */
  users: PruneContainer[]
  /** containers this plan removes */
  freedBy: PruneContainer[]
  lastUse: { at: number; text: string } | null
}

/** Every image's facts, sorted by id, and who is built on whom (local parents only). */
export interface ImageSet {
  all: ImageFacts[]
  byId: Map<string, ImageFacts>
  /** parent id → ids of the images built on it */
  children: Map<string, string[]>
}

/** What removing the image frees: its size less the layers other images share (when known). */
export function uniqueBytes(img: Pick<PruneImage, 'sizeBytes' | 'sharedBytes'>): number {
  return img.sharedBytes === null ? img.sizeBytes : Math.max(0, img.sizeBytes - img.sharedBytes)
}

const shortId = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12)

function push<K, V>(m: Map<K, V[]>, key: K, v: V): void {
  const list = m.get(key)
  if (list) list.push(v)
  else m.set(key, [v])
}

/** The images' facts, given the container candidates the plan has so far. */
export function imageFacts(ctx: PlanContext, candidates: readonly Candidate[]): ImageSet {
  const removed = new Set(candidates.filter((c) => c.kind === 'container').map((c) => c.id))
  const users = new Map<string, PruneContainer[]>()
  const freed = new Map<string, PruneContainer[]>()
  for (const c of byName(ctx.inv.containers)) push(removed.has(c.id) ? freed : users, c.imageId, c)
  const all = [...ctx.inv.images]
    .sort((a, b) => cmp(a.id, b.id))
    .map((img) => factsOf(ctx, img, users.get(img.id) ?? [], freed.get(img.id) ?? []))
  const byId = new Map(all.map((f) => [f.img.id, f]))
  const children = new Map<string, string[]>()
  for (const f of all) {
    if (f.img.parentId && byId.has(f.img.parentId)) push(children, f.img.parentId, f.img.id)
  }
  return { all, byId, children }
}

function factsOf(
  ctx: PlanContext,
  img: PruneImage,
  users: PruneContainer[],
  freedBy: PruneContainer[],
): ImageFacts {
  const tags = [...img.tags].sort()
  const glob = ctx.protectGlob(tags)
  const label = ctx.protectLabel(img.labels)
  const backup = backupOf(img, tags)
  const backupTag = tags.find((r) => isShipshapeTag(r) && !tagOf(r).startsWith(HOLD_PREFIX))
  return {
    img,
    name: (backup ? backupTag : undefined) ?? tags[0] ?? shortId(img.id),
    unique: uniqueBytes(img),
    held: tags.find((r) => tagOf(r).startsWith(HOLD_PREFIX)) ?? null,
    pinned: ctx.pinOf([img.id, ...tags]),
    protectedBy: glob
      ? `protected by protect.images ${glob}`
      : label
        ? `protected by the label ${label}`
        : null,
    backup,
    users,
    freedBy,
    lastUse: lastUseOf(ctx, img, freedBy),
  }
}

/**
 * A backup: a labelled copy (older shipshape), or an image named only by shipshape's tags with a
 * prev tag on it (the very image a service ran, kept for a rollback).
 */
function backupOf(img: PruneImage, tags: string[]): ImageFacts['backup'] {
  const prevRef = tags.find((r) => tagOf(r).startsWith(PREV_PREFIX))
  const onlyOurs = tags.length > 0 && tags.every(isShipshapeTag)
  const service = img.labels[BACKUP_LABEL] ?? (prevRef && onlyOurs ? repoOf(prevRef) : undefined)
  if (service === undefined) return null
  return {
    service,
    kind: img.labels[BACKUP_KIND_LABEL] === 'commit' ? 'commit' : 'image',
    created:
      timeOf(img.labels[BACKUP_CREATED_LABEL]) ??
      (prevRef ? stampTime(tagOf(prevRef).slice(PREV_PREFIX.length)) : null) ??
      timeOf(img.createdAt),
  }
}

/**
 * When the image was last used. With no recorded use, an image counts as used when it came to
 * this host (pulled, built, tagged), not when it was built upstream: yesterday's pull of a
 * year-old image is new here; a record older than the image's arrival (removed, then pulled or
 * loaded again) is stale. A container that goes in this plan was a use of its image too.
 */
function lastUseOf(
  ctx: PlanContext,
  img: PruneImage,
  freedBy: PruneContainer[],
): ImageFacts['lastUse'] {
  const { ago } = ctx
  const recorded = timeOf(ctx.inv.lastUsed[img.id])
  const created = timeOf(img.createdAt)
  const arrived = timeOf(img.arrivedAt)
  let lastUse =
    recorded !== null && (arrived === null || recorded >= arrived)
      ? { at: recorded, text: `last used ${ago(recorded)}` }
      : arrived !== null && (created === null || arrived >= created)
        ? {
            at: arrived,
            text: `pulled or tagged here ${ago(arrived)}, ${recorded === null ? 'no recorded use' : 'not used since'}`,
          }
        : created !== null
          ? { at: created, text: `created ${ago(created)}, no recorded use` }
          : null
  // the latest of the containers that go counts
  for (const c of freedBy) {
    const stop = timeOf(c.finishedAt) ?? timeOf(c.createdAt)
    if (stop !== null && (lastUse === null || stop > lastUse.at)) {
      lastUse = { at: stop, text: `its container ${containerName(c)} stopped ${ago(stop)}` }
    }
  }
  return lastUse
}

/** Why no rule may take the image (held, pinned, in use, protected), or null. */
export function guard(f: ImageFacts): string | null {
  return f.held
    ? `held by a running rebuild or rollback (${f.held})`
    : f.pinned
      ? f.pinned
      : f.users.length
        ? `in use by ${names(f.users, true)}`
        : f.protectedBy
}

/** '; no container left once a, b go (this plan)' when this plan removes its containers */
export function freedNote(f: ImageFacts): string {
  return f.freedBy.length
    ? `; no container left once ${names(f.freedBy, false)} ${f.freedBy.length === 1 ? 'goes' : 'go'} (this plan)`
    : ''
}

/** The whole image goes (by id, with the tags it had when planned). */
export function imageCandidate(f: ImageFacts, rule: PruneRule, reason: string): Candidate {
  return {
    kind: 'image',
    name: f.name,
    id: f.img.id,
    sizeBytes: f.unique,
    rule,
    reason,
    tags: [...f.img.tags].sort(),
  }
}

export function imageKeep(f: ImageFacts, reason: string): Keep {
  return { kind: 'image', name: f.name, id: f.img.id, reason }
}

/** ids of the images the plan so far removes whole */
export function takenImages(candidates: readonly Candidate[]): Set<string> {
  return new Set(candidates.filter((c) => c.kind === 'image').map((c) => c.id))
}

/** the first image built on this one that stays (not in taken), or null */
export function stayingChild(
  images: ImageSet,
  taken: ReadonlySet<string>,
  id: string,
): ImageFacts | null {
  const c = (images.children.get(id) ?? []).find((x) => !taken.has(x))
  return c === undefined ? null : (images.byId.get(c) ?? null)
}
