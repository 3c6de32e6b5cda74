/**
 * The one schema of the per-host config. Types are inferred from it; the JSON Schema for
 * editors (config/shipshape.schema.json) is generated from its input side.
 *
 * Sizes, durations and percentages are strings in YAML and numbers here (bytes, milliseconds,
 * a fraction 0..1). They are codecs, not plain transforms, so `z.encode(configSchema, config)`
 * turns an effective config back into YAML-ready values (`config show`).
 */
import os from 'node:os'
import path from 'node:path'
import { validateDetailed } from 'node-cron'
import * as z from 'zod'
import { parseEngineAddress } from '../shared/address.js'
import type { ShipshapeError } from '../errors.js'
import {
  durationSetting,
  parseDuration,
  parsePercent,
  parseSize,
  percentSetting,
  sizeSetting,
} from './units.js'

function decodeWith<T>(parse: (v: T) => number) {
  return (value: T, payload: z.core.ParsePayload<T>): number => {
    try {
      return parse(value)
    } catch (err) {
      payload.issues.push({ code: 'custom', message: (err as Error).message, input: value })
      return z.NEVER
    }
  }
}

const SIZE_MESSAGE = 'must be a size such as 2GB or 500MiB (or a whole number of bytes)'

/** "2GB" (10⁹ bytes), "2GiB" (2³⁰ bytes), or a YAML number of bytes → bytes. */
export const sizeSchema = z
  .codec(
    z.union(
      [
        z.string().meta({
          pattern: '^\\s*\\d+(\\.\\d+)? ?([kKmMgGtTpPeEzZyY][iI]?)?[bB]\\s*$',
          examples: ['2GB', '500MiB', '1.5GB'],
        }),
        z.number().int().min(0),
      ],
      { error: SIZE_MESSAGE },
    ),
    z.number().int().min(0),
    { decode: decodeWith(parseSize), encode: sizeSetting },
  )
  .meta({ description: 'A size: kB/MB/GB/TB are powers of 1000, KiB/MiB/GiB/TiB powers of 1024' })

/** "30s", "15m", "168h", "7d", "2w" → milliseconds. */
export const durationSchema = z
  .codec(
    z
      .string({ error: 'must be a duration such as 30s, 15m, 168h, 7d, 2w' })
      .meta({ pattern: '^\\s*\\d+[smhdw]\\s*$', examples: ['30s', '15m', '168h', '7d', '2w'] }),
    z.number().int().min(0),
    { decode: decodeWith(parseDuration), encode: durationSetting },
  )
  .meta({ description: 'A duration: a whole number and one unit out of s, m, h, d, w' })

/** "85%" → 0.85. */
export const percentSchema = z
  .codec(
    z
      .string({ error: 'must be a percentage such as 85%' })
      .meta({ pattern: '^\\s*\\d+(\\.\\d+)? ?%\\s*$', examples: ['85%'] }),
    z.number().min(0).max(1),
    { decode: decodeWith(parsePercent), encode: percentSetting },
  )
  .meta({ description: 'A percentage, e.g. 85%' })

const ABSOLUTE = 'must be an absolute path'

/** An absolute POSIX path, normalised ("/opt/x/" and "/opt//x" → "/opt/x"). */
export const absPathSchema = z.codec(
  z
    .string({ error: ABSOLUTE })
    .meta({ pattern: '^/' })
    .refine((p) => path.posix.isAbsolute(p), ABSOLUTE)
    .refine((p) => !p.includes('\0'), 'must not contain a NUL character'),
  z.string(),
  {
    decode: (p) => {
      const n = path.posix.normalize(p)
      return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n
    },
    encode: (p) => p,
  },
)

function int(min: number, max: number) {
  const error = `must be a whole number from ${min} to ${max}`
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error })
}

/** Container, compose service, service and asset names (docker's own name rule). */
const nameSchema = z
  .string({ error: 'must be a name' })
  .regex(
    /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/,
    'must be a name of letters, digits, "_", "." and "-" (starting with a letter or digit)',
  )

const envNameSchema = z
  .string({ error: 'must be the name of an environment variable' })
  .regex(
    /^[A-Za-z_][A-Za-z0-9_]*$/,
    'must be the name of an environment variable (e.g. WHISPERX_PASSWORD), not its value',
  )

const NO_SECRET_IN_URL = 'must not contain a password: use userEnv with passwordEnv or passwordFile'

const httpUrlSchema = z
  .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
  .refine((u) => URL.canParse(u) && new URL(u).password === '', NO_SECRET_IN_URL)

// The same parser the engine connection uses, so `config check` accepts exactly what works.
const engineAddressSchema = z
  .string({ error: 'must be an engine address' })
  .refine((u) => !URL.canParse(u) || new URL(u).password === '', NO_SECRET_IN_URL)
  .superRefine((u, ctx) => {
    try {
      parseEngineAddress(u)
    } catch (err) {
      const e = err as ShipshapeError
      ctx.addIssue({ code: 'custom', message: e.remedy ? `${e.message} (${e.remedy})` : e.message })
    }
  })

const cronSchema = z
  .string({ error: 'must be a cron expression such as "0 2 * * *"' })
  .superRefine((expr, ctx) => {
    const fields = expr.trim().split(/\s+/).filter(Boolean).length
    if (fields !== 5 && fields !== 6) {
      ctx.addIssue({
        code: 'custom',
        message: `'${expr}' has ${fields} field(s): a cron expression has 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)`,
      })
      return
    }
    const v = validateDetailed(expr)
    if (!v.valid) {
      ctx.addIssue({
        code: 'custom',
        message: `'${expr}' is not a valid cron expression: ${v.errors.map((e) => e.message).join('; ')}`,
      })
    }
  })

export const healthSchema = z
  .strictObject({
    url: httpUrlSchema.optional().describe('URL that answers expectStatus when healthy'),
    expectStatus: int(100, 599).default(200),
    userEnv: envNameSchema
      .optional()
      .describe('environment variable holding the basic-auth user for url'),
    passwordEnv: envNameSchema
      .optional()
      .describe('environment variable holding the basic-auth password for url'),
    passwordFile: absPathSchema
      .optional()
      .describe('file holding the basic-auth password for url (keep it mode 0600)'),
    timeout: durationSchema
      .prefault('60s')
      .describe('time allowed for the service to become healthy'),
    retries: int(0, 100)
      .default(5)
      .describe('tries after the first within timeout; the waits double and add up to timeout'),
    stableFor: durationSchema
      .prefault('10s')
      .describe(
        'after the checks first pass, how long they must keep passing (polled every second) while the containers stay up with no restart; 0s: the first pass decides',
      ),
    command: z
      .array(z.string(), { error: 'must be a list of arguments' })
      .min(1, 'must name a command')
      .optional()
      .describe('argv run inside the container (docker exec); exit 0 = healthy'),
    container: z
      .boolean()
      .optional()
      .describe("true: wait for the container's own Docker HEALTHCHECK to report healthy"),
  })
  .superRefine((h, ctx) => {
    if (h.passwordEnv !== undefined && h.passwordFile !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['passwordFile'],
        message: 'name either passwordEnv or passwordFile, not both',
      })
    }
    if (h.url === undefined && h.command === undefined && !h.container) {
      ctx.addIssue({ code: 'custom', message: 'needs url, command or container: true' })
    }
    if (h.url === undefined) {
      for (const key of ['userEnv', 'passwordEnv', 'passwordFile'] as const) {
        if (h[key] !== undefined) {
          ctx.addIssue({ code: 'custom', path: [key], message: `${key} is for url: add url` })
        }
      }
    }
  })

export const gpuExpectations = ['required', 'expected-unused', 'unknown'] as const

export const serviceSchema = z
  .strictObject({
    compose: absPathSchema.optional().describe('docker-compose.yml of the service'),
    service: nameSchema
      .optional()
      .describe('service name in the compose file (default: this entry’s name)'),
    container: nameSchema.optional().describe('container name, for a service not run by compose'),
    build: absPathSchema.optional().describe('build context directory'),
    dockerfile: z
      .string()
      .min(1)
      .optional()
      .describe('Dockerfile, relative to build (default: Dockerfile)'),
    health: healthSchema.optional(),
    sourceDir: absPathSchema
      .optional()
      .describe('application source on the host (torch-check looks there for CUDA calls too)'),
    buildNetwork: z
      .string()
      .min(1)
      .optional()
      .describe('network for RUN steps of a plain container build (docker build --network)'),
    buildTimeout: durationSchema
      .prefault('2h')
      .describe('a rebuild whose build takes longer fails'),
    commitPause: z
      .boolean()
      .default(true)
      .describe('pause the container while `rebuild` commits it as a backup (docker’s default)'),
    image: z
      .string()
      .min(1)
      .optional()
      .describe(
        'update: the registry reference to pull (default: the one the service runs); its image is put under the service’s own tag',
      ),
    update: z
      .enum(['off', 'notify', 'apply'])
      .default('off')
      .describe(
        'registry image services: notify = `update --auto` (the nightly timer) says when the registry has a newer image; apply = it also updates (backup, pull, recreate, health gate, rollback on failure)',
      ),
    gpu: z
      .enum(gpuExpectations)
      .default('unknown')
      .describe(
        'required: the service needs a GPU; expected-unused: it should run on CPU (torch-check flags a mismatch)',
      ),
  })
  .superRefine((s, ctx) => {
    if (s.compose === undefined && s.container === undefined) {
      ctx.addIssue({ code: 'custom', message: 'name either compose (with service) or container' })
    }
    if (s.compose !== undefined && s.container !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['container'],
        message: 'name either compose or container, not both',
      })
    }
    if (s.service !== undefined && s.compose === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['service'],
        message: 'service is a compose service name: add compose',
      })
    }
  })

const isUnder = (child: string, parent: string) =>
  child !== parent && child.startsWith(parent === '/' ? '/' : parent + '/')

export const assetSchema = z
  .strictObject({
    source: absPathSchema.describe('bind-mounted directory to move off the local disk'),
    dest: absPathSchema.describe('where it goes, inside mount'),
    mount: absPathSchema.describe('mountpoint that must be live (an rclone/FUSE mount)'),
    mountType: z
      .string()
      .min(1)
      .default('fuse.rclone')
      .describe('filesystem type the mount must have (/proc/self/mountinfo)'),
    restart: z
      .array(nameSchema)
      .default([])
      .describe('containers or services to restart after the swap'),
    health: healthSchema.optional(),
    keepOriginal: durationSchema
      .prefault('7d')
      .describe('how long the local original is kept after a migration'),
    keepBackup: durationSchema
      .prefault('0s')
      .describe(
        'how long the backup archive stays in backupDir once the original is finalized (prune moves or removes it then; never while the original is kept)',
      ),
    backupTo: z
      .enum(['local', 'remote'])
      .default('local')
      .describe(
        'where the backup archive ends: local (removed by prune after keepBackup) or remote (moved onto the mount under .shipshape-archives/, verified there, then removed locally)',
      ),
    remote: z
      .string()
      .min(1)
      .regex(/:/, 'must be an rclone remote such as rd: or rd:media')
      .optional()
      .describe(
        'rclone remote behind mount, checked with rclone itself (default: the mount’s source in /proc/self/mountinfo)',
      ),
    uploadTimeout: durationSchema
      .prefault('30m')
      .describe('how long to wait for the mount to upload every file to the remote'),
  })
  .superRefine((a, ctx) => {
    if (!isUnder(a.dest, a.mount)) {
      ctx.addIssue({
        code: 'custom',
        path: ['dest'],
        message: `must be inside mount ${a.mount}`,
      })
    }
    if (a.source === a.mount || isUnder(a.source, a.mount)) {
      ctx.addIssue({ code: 'custom', path: ['source'], message: `is already on mount ${a.mount}` })
    }
    if (a.source === a.dest || isUnder(a.dest, a.source) || isUnder(a.source, a.dest)) {
      ctx.addIssue({ code: 'custom', path: ['dest'], message: 'must not overlap source' })
    }
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
    docker: z
      .strictObject({
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
      .prefault({}),
    report: z
      .strictObject({
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
      })
      .prefault({}),
    services: z.record(nameSchema, serviceSchema).default({}),
    assets: z.record(nameSchema, assetSchema).default({}),
    prune: z
      .strictObject({
        keepTags: int(1, 1000).default(3).describe('newest tags kept per repository'),
        backupsFor: durationSchema
          .prefault('7d')
          .describe('backup images older than this go (never the newest per service)'),
        unusedImagesAfter: durationSchema
          .prefault('30d')
          .describe('unused images older than this go'),
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
          .describe(
            'dangling (untagged) images go only past this age (since built or last tagged here)',
          ),
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
      .prefault({}),
    schedule: z
      .strictObject({
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
      .prefault({}),
    notify: z
      .strictObject({
        webhookEnv: envNameSchema
          .default('SHIPSHAPE_WEBHOOK_URL')
          .describe(
            'environment variable holding the webhook URL (a secret: never in this file); unset → no notification',
          ),
        diskLimit: percentSchema
          .prefault('90%')
          .describe('the nightly report notifies when the engine’s disk use passes this'),
      })
      .prefault({}),
    systemd: z
      .strictObject({
        unitDir: absPathSchema
          .prefault('/etc/systemd/system')
          .describe('where `shipshape systemd install` writes the units'),
        environmentFile: absPathSchema
          .prefault('/etc/shipshape/shipshape.env')
          .describe(
            'EnvironmentFile= of the units: webhook URL, health-check passwords (mode 0600)',
          ),
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
      .prefault({}),
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
