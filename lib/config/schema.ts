/**
 * The one schema of the per-host config. Types are inferred from it; the JSON Schema for
 * editors (config/shipshape.schema.json) is generated from its input side.
 *
 * Sizes, durations and percentages are strings in YAML and numbers here (bytes, milliseconds,
 * a fraction 0..1). They are codecs, not plain transforms, so `z.encode(configSchema, config)`
 * turns an effective config back into YAML-ready values (`config show`). The value schemas are
 * in fields.ts, the entries (services, assets, health checks) in entries.ts, the sections here.
 */
import os from 'node:os'
import * as z from 'zod'
import { assetSchema, healthSchema, serviceSchema } from './entries.js'
import {
  absPathSchema,
  cronSchema,
  durationSchema,
  engineAddressSchema,
  envNameSchema,
  int,
  nameSchema,
  percentSchema,
  sizeSchema,
} from './fields.js'

export { assetSchema, gpuExpectations, healthSchema, serviceSchema } from './entries.js'
export { absPathSchema, durationSchema, percentSchema, sizeSchema } from './fields.js'

/** The engine: its address and how long it may take to answer. */
const dockerSection = z.strictObject({
  host: engineAddressSchema
    .optional()
    .describe('engine address (default: $DOCKER_HOST, then the local socket)'),
  timeout: durationSchema
    .prefault('3s')
    .refine((ms) => ms >= 1000, 'must be at least 1s')
    .describe('how long the engine may take to answer the first call (unreachable → exit 3)'),
  compose: z
    .array(z.string().min(1))
    .min(1)
    .optional()
    .describe(
      'compose command, e.g. [docker-compose] or [docker, compose] (default: docker compose, then docker-compose)',
    ),
  callTimeout: durationSchema
    .prefault('2m')
    .refine((ms) => ms >= 1000, 'must be at least 1s')
    .describe('a later engine call silent this long is abandoned (a hung engine → exit 3)'),
})

/** `shipshape report`: what is shown and how much is measured at once. */
const reportSection = z.strictObject({
  top: int(1, 1000).default(10).describe('biggest images, layers and children shown'),
  bigImage: sizeSchema.prefault('2GB').describe('images above this are findings'),
  bigAssets: sizeSchema
    .prefault('1GB')
    .describe('bind-mounted directories above this are findings'),
  paths: z
    .array(absPathSchema)
    .default([])
    .describe('host directories measured with their largest children'),
  concurrency: int(1, 64).default(8).describe('parallel engine calls and directory scans'),
  layersPerImage: int(1, 100).default(3).describe('biggest layers listed per image'),
  keep: int(1, 10000)
    .default(30)
    .describe('reports kept in <stateDir>/reports by the nightly report (oldest go first)'),
  metricsFile: absPathSchema
    .optional()
    .describe(
      'the nightly report also writes a Prometheus textfile here (node-exporter textfile collector), e.g. /var/lib/prometheus/node-exporter/shipshape.prom',
    ),
})

/** `shipshape prune`: what goes when, and what is never removed. */
const pruneSection = z.strictObject({
  keepTags: int(1, 1000).default(3).describe('newest tags kept per repository'),
  backupsFor: durationSchema
    .prefault('7d')
    .describe('backup images older than this go (never the newest per service)'),
  unusedImagesAfter: durationSchema.prefault('30d').describe('unused images older than this go'),
  stoppedContainersAfter: durationSchema
    .prefault('7d')
    .describe('stopped containers older than this go'),
  buildCacheKeep: sizeSchema.prefault('10GB').describe('build cache kept'),
  diskThreshold: percentSchema
    .prefault('85%')
    .describe('above this disk use, least-recently-used images go first'),
  protect: z
    .strictObject({
      images: z
        .array(z.string().min(1))
        .default([])
        .describe('image references or globs never removed, e.g. postgres:*'),
      labels: z
        .array(z.string().regex(/^[^=\s]+(=.*)?$/, 'must be key or key=value'))
        .default(['shipshape.keep=true'])
        .describe('label (key or key=value) that protects an image or container'),
    })
    .prefault({}),
  danglingAfter: durationSchema
    .prefault('7d')
    .describe('dangling (untagged) images go only past this age (since built or last tagged here)'),
  volumes: z
    .boolean()
    .default(false)
    .describe('also remove volumes no container uses, past volumesAfter'),
  volumesAfter: durationSchema
    .prefault('30d')
    .describe('a volume goes only when no container has used it for this long'),
  apply: z
    .boolean()
    .default(false)
    .describe(
      'apply the plan without --yes when run without a TTY (the timer); an interactive prune still asks',
    ),
})

/** `shipshape schedule`: cron expressions of the jobs and their time limit. */
const scheduleSection = z.strictObject({
  report: cronSchema.optional().describe('cron expression for the report'),
  prune: cronSchema.optional().describe('cron expression for prune'),
  update: cronSchema
    .optional()
    .describe('cron expression for `update --auto --yes` (services with update: apply)'),
  timezone: z
    .string()
    .min(1)
    .optional()
    .describe('IANA time zone of the cron expressions (default: the host’s)'),
  timeout: durationSchema
    .prefault('2h')
    .refine((ms) => ms >= 60_000, 'must be at least 1m')
    .refine((ms) => ms <= 7 * 86_400_000, 'must be at most 7d')
    .describe(
      'longest run of one job (schedule and the timers’ TimeoutStartSec=): past it the job is killed as a process group and the next one runs',
    ),
})

/** The nightly report’s webhook. */
const notifySection = z.strictObject({
  webhookEnv: envNameSchema
    .default('SHIPSHAPE_WEBHOOK_URL')
    .describe(
      'environment variable holding the webhook URL (a secret: never in this file); unset → no notification',
    ),
  diskLimit: percentSchema
    .prefault('90%')
    .describe('the nightly report notifies when the engine’s disk use passes this'),
})

/** `shipshape systemd install`: where the units go and when the timers fire. */
const systemdSection = z.strictObject({
  unitDir: absPathSchema
    .prefault('/etc/systemd/system')
    .describe('where `shipshape systemd install` writes the units'),
  environmentFile: absPathSchema
    .prefault('/etc/shipshape/shipshape.env')
    .describe('EnvironmentFile= of the units: webhook URL, health-check passwords (mode 0600)'),
  reportCalendar: z
    .string()
    .min(1)
    .default('*-*-* 02:00:00')
    .describe('OnCalendar= of the nightly report timer'),
  pruneCalendar: z
    .string()
    .min(1)
    .default('Sun *-*-* 03:30:00')
    .describe('OnCalendar= of the weekly prune timer'),
})

export const configSchema = z
  .strictObject({
    host: z
      .string()
      .min(1)
      .default(() => os.hostname())
      .describe('host name shown in reports (default: the machine’s hostname)'),
    stateDir: absPathSchema.prefault('/var/lib/shipshape').describe('journals, reports, locks'),
    backupDir: absPathSchema
      .prefault('/var/backups/shipshape')
      .describe('backup archives and copies'),
    allowedRoots: z
      .array(absPathSchema)
      .default(['/opt', '/srv', '/home', '/data', '/var/www'])
      .describe(
        'directories whose subdirectories may be migrated or changed (/, /etc, /usr, /var/lib/docker… never)',
      ),
    docker: dockerSection.prefault({}),
    report: reportSection.prefault({}),
    services: z.record(nameSchema, serviceSchema).default({}),
    assets: z.record(nameSchema, assetSchema).default({}),
    prune: pruneSection.prefault({}),
    schedule: scheduleSection.prefault({}),
    notify: notifySection.prefault({}),
    systemd: systemdSection.prefault({}),
  })
  .meta({ title: 'shipshape host config' })

export type Config = z.output<typeof configSchema>
export type ConfigInput = z.input<typeof configSchema>
export type ServiceConfig = z.output<typeof serviceSchema>
export type AssetConfig = z.output<typeof assetSchema>
export type HealthConfig = z.output<typeof healthSchema>

/** An effective config back in its YAML spelling ("2GB", "7d", "85%"), e.g. for `config show`. */
export function configToInput(config: Config): ConfigInput {
  return z.encode(configSchema, config)
}
