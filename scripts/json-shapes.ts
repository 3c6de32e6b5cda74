/**
 * The `--json` output of every command, one named type per schema string. `npm run gen:schema`
 * writes schema/<name>.<version>.json from these types (scripts/gen-schema.ts) and
 * `npm run check:schema` fails while a committed file differs from what they generate.
 * Add a line here when a command gets a new JSON shape; bump the version when one changes
 * incompatibly.
 */
import type { MigrateResult } from '../lib/migrate-assets/index.js'
import type { Manifest } from '../lib/shared/manifest-types.js'
import type { ConfigCheckJson, ConfigShowJson } from '../lib/config/json.js'
import type { ConfigOrigin } from '../lib/config/load.js'
import type { DoctorResult } from '../lib/doctor/index.js'
import type { ConfigInitJson } from '../lib/config-init/index.js'
import type { InspectReport } from '../lib/scan/inspect.js'
import type { PruneResult } from '../lib/prune/index.js'
import type { RebuildResult } from '../lib/rebuild/index.js'
import type { Report } from '../lib/report/types.js'
import type { SystemdResult } from '../lib/systemd/index.js'
import type { TorchCheckReport } from '../lib/torch-check/index.js'

type WithSchema<T extends { schema: string }, S extends T['schema']> = Omit<T, 'schema'> & {
  schema: S
}

export type ReportJson = Report
export type InspectJson = InspectReport
export type TorchCheckJson = TorchCheckReport
export type MigrateAssetsJson = MigrateResult
export type RebuildJson = WithSchema<RebuildResult, 'shipshape.rebuild/1'>
export type RollbackJson = WithSchema<RebuildResult, 'shipshape.rollback/1'>
export type UpdateJson = WithSchema<RebuildResult, 'shipshape.update/1'>
export type PruneJson = PruneResult
export type SystemdJson = SystemdResult
export type ConfigInitOutputJson = ConfigInitJson
export type DoctorJson = DoctorResult
export type ConfigCheckOutputJson = ConfigCheckJson
/** As ConfigShowJson; `config` is the config schema's output side, which gen-schema fills in
 * from lib/config/schema.ts (the generator cannot read zod's inferred type). */
export interface ConfigShowOutputJson {
  schema: 'shipshape.config/1'
  source: string
  origin: ConfigOrigin
  /** the effective config after defaults: sizes in bytes, durations in milliseconds, percentages as fractions */
  config: Record<string, unknown>
}
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const configShowMatches: Same<
  Omit<ConfigShowOutputJson, 'config'>,
  Omit<ConfigShowJson, 'config'>
> = true
void configShowMatches
/** Not a command's output: the manifest.json that migrate-assets writes beside each backup. */
export type ManifestJson = Manifest

/** schema string → the command that prints it and the type above. */
export const JSON_SHAPES = [
  { schema: 'shipshape.report/1', command: 'report', type: 'ReportJson' },
  { schema: 'shipshape.inspect/1', command: 'inspect', type: 'InspectJson' },
  { schema: 'shipshape.torch-check/1', command: 'torch-check', type: 'TorchCheckJson' },
  { schema: 'shipshape.migrate-assets/1', command: 'migrate-assets', type: 'MigrateAssetsJson' },
  { schema: 'shipshape.rebuild/1', command: 'rebuild', type: 'RebuildJson' },
  { schema: 'shipshape.rollback/1', command: 'rollback', type: 'RollbackJson' },
  { schema: 'shipshape.update/1', command: 'update', type: 'UpdateJson' },
  { schema: 'shipshape.prune/1', command: 'prune', type: 'PruneJson' },
  { schema: 'shipshape.systemd/1', command: 'systemd print|install', type: 'SystemdJson' },
  { schema: 'shipshape.config-init/1', command: 'config init', type: 'ConfigInitOutputJson' },
  { schema: 'shipshape.doctor/1', command: 'doctor', type: 'DoctorJson' },
  { schema: 'shipshape.config-check/1', command: 'config check', type: 'ConfigCheckOutputJson' },
  { schema: 'shipshape.config/1', command: 'config show', type: 'ConfigShowOutputJson' },
  {
    schema: 'shipshape.manifest/1',
    command: 'migrate-assets (manifest.json)',
    type: 'ManifestJson',
  },
] as const

/** schema/shipshape.report.1.json for "shipshape.report/1" */
export function jsonShapeFile(schema: string): string {
  return `schema/${schema.replace('/', '.')}.json`
}
