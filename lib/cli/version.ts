/** shipshape's own version: package.json's, read once (from lib/ and from dist/lib/ alike). */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { findPackageRoot } from '../config/load.js'

let version: string | undefined

export function shipshapeVersion(): string {
  version ??= (
    JSON.parse(
      readFileSync(path.join(findPackageRoot(import.meta.url), 'package.json'), 'utf8'),
    ) as {
      version: string
    }
  ).version
  return version
}
