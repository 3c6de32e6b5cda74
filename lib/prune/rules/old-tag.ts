/**
 * old-tag: all but the newest keepTags tags of each repository, among the images still there
 * (not taken whole by an earlier rule). shipshape's own tags and digests count for no repository.
 * An image whose every tag is an extra one goes whole; else its extra tags go one by one and the
 * image keeps its others. A backup's tag stays (only old-backup removes a backup); a guarded
 * image's tag stays, said once (as the image, or else as the tag).
 */
import { cmp, ordinal, plural, timeOf } from '../context.js'
import { guard, imageCandidate, takenImages, type ImageFacts, type ImageSet } from '../facts.js'
import { isShipshapeTag, repoOf, tagOf } from '../refs.js'
import type { Candidate, Keep, PrunePolicy } from '../types.js'
import type { Rule } from './types.js'

interface TagEntry {
  ref: string
  tag: string
  created: number
  f: ImageFacts
}

interface Extra {
  e: TagEntry
  /** 4 for the 4th newest tag of its repository */
  rank: number
  repo: string
}

/** Tag names of one creation time, newest first: 'latest', then 'v10' before 'v9'. */
const tagCollator = new Intl.Collator('en', { numeric: true })

const newestFirst = (a: TagEntry, b: TagEntry): number =>
  b.created - a.created ||
  Number(b.tag === 'latest') - Number(a.tag === 'latest') ||
  tagCollator.compare(b.tag, a.tag) ||
  cmp(b.tag, a.tag) ||
  cmp(a.f.img.id, b.f.img.id)

/** repository → its tags on the images not taken */
function tagsByRepo(images: ImageSet, taken: ReadonlySet<string>): Map<string, TagEntry[]> {
  const repos = new Map<string, TagEntry[]>()
  for (const f of images.all) {
    if (taken.has(f.img.id)) continue
    for (const ref of f.img.tags) {
      if (ref.includes('@') || isShipshapeTag(ref)) continue
      const repo = repoOf(ref)
      const e = { ref, tag: tagOf(ref), created: timeOf(f.img.createdAt) ?? 0, f }
      const list = repos.get(repo)
      if (list) list.push(e)
      else repos.set(repo, [e])
    }
  }
  return repos
}

/** image id → its tags past keepTags that may go; the ones that stay are kept (said why) */
function extraTags(
  repos: Map<string, TagEntry[]>,
  policy: PrunePolicy,
  keptImages: ReadonlySet<string>,
  kept: Keep[],
): Map<string, Extra[]> {
  const extras = new Map<string, Extra[]>()
  for (const [repo, list] of repos) {
    if (list.length <= policy.keepTags) continue
    list.sort(newestFirst)
    list.slice(policy.keepTags).forEach((e, i) => {
      const why = e.f.backup
        ? `a ${e.f.backup.kind} backup of ${e.f.backup.service}: only old-backup removes it`
        : guard(e.f)
      if (why) {
        if (!keptImages.has(e.f.img.id)) {
          kept.push({ kind: 'tag', name: e.ref, id: e.f.img.id, reason: why })
        }
        return
      }
      const item = { e, rank: policy.keepTags + i + 1, repo }
      const x = extras.get(e.f.img.id)
      if (x) x.push(item)
      else extras.set(e.f.img.id, [item])
    })
  }
  return extras
}

export const oldTag: Rule = {
  id: 'old-tag',
  order: 4,
  kinds: ['image', 'tag'],
  select({ ctx, images, draft }) {
    const { policy } = ctx
    const candidates: Candidate[] = []
    const kept: Keep[] = []
    const keptImages = new Set(draft.kept.filter((k) => k.kind === 'image').map((k) => k.id))
    const repos = tagsByRepo(images, takenImages(draft.candidates))
    const keeping = `keeping the newest ${plural(policy.keepTags, 'tag')}`
    const why = (x: Extra) => `the ${ordinal(x.rank)} newest tag of ${x.repo} (${keeping})`
    for (const [id, extras] of extraTags(repos, policy, keptImages, kept)) {
      const f = extras[0]!.e.f
      extras.sort((a, b) => cmp(a.e.ref, b.e.ref))
      if (extras.length === f.img.tags.length) {
        const last = extras.length === 1 ? 'its last tag' : 'all its tags'
        const reason = `${extras.map(why).join('; ')}; ${last}, no container uses it`
        // named by its first extra tag (not by its name), as the untags would be
        candidates.push({ ...imageCandidate(f, 'old-tag', reason), name: extras[0]!.e.ref })
      } else {
        for (const x of extras) {
          candidates.push({
            kind: 'tag',
            name: x.e.ref,
            id,
            sizeBytes: 0,
            rule: 'old-tag',
            reason: `${why(x)}; the image keeps its other tags`,
          })
        }
      }
    }
    return { candidates, kept }
  },
}
