/**
 * The config's entries: a health check, a service (compose or plain container) and an asset
 * (a bind-mounted directory to move onto a mount), each checked as a whole (superRefine).
 */
import * as z from 'zod'
import {
  absPathSchema,
  durationSchema,
  envNameSchema,
  httpUrlSchema,
  int,
  nameSchema,
} from './fields.js'

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
