/**
 * After a healthy run: the old plain container kept aside goes (compose removed its own), and the
 * hold tag on the old image (hold.ts) is released; the backups stay.
 */
import { asideName, dropAside } from '../../docker/recreate.js'
import type { Step } from '../../runbook/types.js'
import type { RebuildContext } from '../context.js'
import { releaseImages } from '../hold.js'

export const cleanupStep: Step<RebuildContext> = {
  id: 'cleanup',
  title: 'Clean up: the old container kept aside, the hold tag',
  preview: (c) => [
    ...(c.kind === 'compose' || !c.containers[0]
      ? []
      : [`remove ${asideName(c.containers[0].name, c.stamp)} (the old container)`]),
    `untag ${c.repo}:shipshape-hold-${c.stamp} (named the old image during the run); the backups stay`,
  ],
  async run(c) {
    const old = c.containers[0]
    if (c.kind === 'container' && old) {
      await dropAside(c.engine, { aside: asideName(old.name, c.stamp), oldId: old.id })
    }
    await releaseImages(c)
  },
}
