/** After a healthy run: the old plain container kept aside goes (compose removed its own). */
import { asideName, dropAside } from '../../docker/recreate.js'
import type { Step } from '../../runbook/types.js'
import type { RebuildContext } from '../context.js'
import { releaseImages } from '../hold.js'

export const cleanupStep: Step<RebuildContext> = {
  id: 'cleanup',
  title: 'Remove the old container kept aside',
  preview: (c) =>
    c.kind === 'compose' || !c.containers[0]
      ? ['nothing (compose removed the old container)']
      : [
          `remove ${asideName(c.containers[0].name, c.stamp)} (the old container; the backups stay)`,
        ],
  async run(c) {
    const old = c.containers[0]
    if (c.kind === 'container' && old) {
      await dropAside(c.engine, { aside: asideName(old.name, c.stamp), oldId: old.id })
    }
    await releaseImages(c)
  },
}
