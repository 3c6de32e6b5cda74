/**
 * The unit templates are the checked-in files in the package's systemd/ directory, read at run
 * time: one copy to review and diff, shipped by npm ("files" lists systemd/) and present in a
 * clone, found from dist/ as config/hosts/ is (findPackageRoot). Embedding them as strings would
 * leave two copies to keep in step.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { findPackageRoot } from '../config/load.js'

/** The units, in the order they are printed and installed; each is a template file. */
export const UNIT_NAMES = [
  'shipshape-report.service',
  'shipshape-report.timer',
  'shipshape-prune.service',
  'shipshape-prune.timer',
  'shipshape-schedule.service',
] as const
export type UnitName = (typeof UNIT_NAMES)[number]

export type Templates = Record<UnitName, string>

export function templateDir(): string {
  return path.join(findPackageRoot(import.meta.url), 'systemd')
}

const cache = new Map<string, Templates>()

/** The templates in `dir` (default: the package's systemd/), read once. */
export function loadTemplates(dir: string = templateDir()): Templates {
  let t = cache.get(dir)
  if (!t) {
    t = Object.fromEntries(
      UNIT_NAMES.map((n) => [n, readFileSync(path.join(dir, n), 'utf8')]),
    ) as Templates
    cache.set(dir, t)
  }
  return t
}
