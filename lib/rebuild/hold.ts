/**
 * For the length of a run, the image the service ran (and the one its tag named, if another)
 * keeps a name: `<repo>:shipshape-hold-<stamp>`. Once the build or a rollback moves the service's
 * tag, nothing else may name it, and the containerd image store removes an image with no name
 * left as soon as no container uses it (the classic store keeps it dangling) — then the undo could
 * not bring back the very image that ran. Released when the run ends, either way.
 */
import { HOLD_PREFIX } from '../shared/labels.js'
import type { RebuildContext } from './context.js'

const holds = (c: RebuildContext) => [
  { id: c.fromImageId, tag: `${HOLD_PREFIX}${c.stamp}` },
  ...(c.refWasId && c.refWasId !== c.fromImageId
    ? [{ id: c.refWasId, tag: `${HOLD_PREFIX}${c.stamp}-tag` }]
    : []),
]

export async function holdImages(c: RebuildContext): Promise<void> {
  for (const h of holds(c)) {
    if ((await c.engine.inspectImage(`${c.repo}:${h.tag}`))?.id !== h.id) {
      await c.engine.tagImage(h.id, c.repo, h.tag)
    }
  }
}

/** Removes the hold tags (only while they still name the held images). */
export async function releaseImages(c: RebuildContext): Promise<void> {
  for (const h of holds(c)) {
    const ref = `${c.repo}:${h.tag}`
    if ((await c.engine.inspectImage(ref))?.id === h.id) await c.engine.removeImage(ref)
  }
}
