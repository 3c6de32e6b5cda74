/**
 * The value schemas of the config: sizes, durations and percentages (codecs: YAML strings ⇄
 * numbers, see schema.ts), absolute paths, names, environment variable names, URLs without a
 * password, engine addresses (the parser the engine connection uses), cron expressions.
 */
import path from 'node:path'
import { validateDetailed } from 'node-cron'
import * as z from 'zod'
import type { ShipshapeError } from '../errors.js'
import { parseEngineAddress } from '../shared/address.js'
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

/** A setting written with a unit in YAML ("30s", "85%"), a number once parsed. */
function unitSchema(o: {
  error: string
  pattern: string
  examples: string[]
  value: z.ZodNumber
  parse: (v: string) => number
  encode: (n: number) => string
  description: string
}) {
  return z
    .codec(
      z.string({ error: o.error }).meta({ pattern: o.pattern, examples: o.examples }),
      o.value,
      { decode: decodeWith(o.parse), encode: o.encode },
    )
    .meta({ description: o.description })
}

/** "30s", "15m", "168h", "7d", "2w" → milliseconds. */
export const durationSchema = unitSchema({
  error: 'must be a duration such as 30s, 15m, 168h, 7d, 2w',
  pattern: '^\\s*\\d+[smhdw]\\s*$',
  examples: ['30s', '15m', '168h', '7d', '2w'],
  value: z.number().int().min(0),
  parse: parseDuration,
  encode: durationSetting,
  description: 'A duration: a whole number and one unit out of s, m, h, d, w',
})

/** "85%" → 0.85. */
export const percentSchema = unitSchema({
  error: 'must be a percentage such as 85%',
  pattern: '^\\s*\\d+(\\.\\d+)? ?%\\s*$',
  examples: ['85%'],
  value: z.number().min(0).max(1),
  parse: parsePercent,
  encode: percentSetting,
  description: 'A percentage, e.g. 85%',
})

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

export function int(min: number, max: number) {
  const error = `must be a whole number from ${min} to ${max}`
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error })
}

/** Container, compose service, service and asset names (docker's own name rule). */
export const nameSchema = z
  .string({ error: 'must be a name' })
  .regex(
    /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/,
    'must be a name of letters, digits, "_", "." and "-" (starting with a letter or digit)',
  )

export const envNameSchema = z
  .string({ error: 'must be the name of an environment variable' })
  .regex(
    /^[A-Za-z_][A-Za-z0-9_]*$/,
    'must be the name of an environment variable (e.g. WHISPERX_PASSWORD), not its value',
  )

const NO_SECRET_IN_URL = 'must not contain a password: use userEnv with passwordEnv or passwordFile'

export const httpUrlSchema = z
  .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
  .refine((u) => URL.canParse(u) && new URL(u).password === '', NO_SECRET_IN_URL)

// The same parser the engine connection uses, so `config check` accepts exactly what works.
export const engineAddressSchema = z
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

export const cronSchema = z
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
