/**
 * Sizes, durations and percentages as written in the host config, and their human forms.
 *
 * Sizes: decimal units (kB, MB, GB, … = powers of 1000, as `docker` prints them) and binary
 * units (KiB, MiB, GiB, … = powers of 1024), parsed by bytes-iec (not `bytes`, which reads
 * "2GiB" as 2). A unit is required in a string: "2G" is refused as ambiguous. A YAML number
 * is a count of bytes.
 *
 * Durations: a whole number and one unit out of s, m, h, d, w ("30s", "15m", "168h", "7d",
 * "2w"); nothing else.
 */
import bytes from 'bytes-iec'

const SIZE_HINT = 'use e.g. 2GB, 500MiB'
const DURATION_HINT = 'use a whole number and one unit: 30s, 15m, 168h, 7d, 2w'

/** Bytes from "2GB" (2·10⁹), "2GiB" (2·2³⁰), "1.5GB", "500MiB", "512B" or a number of bytes. */
export function parseSize(s: string | number): number {
  if (typeof s === 'number') {
    if (!Number.isSafeInteger(s) || s < 0) {
      throw new Error(
        `${s} is not a size: a number is a count of bytes (a whole number ≥ 0); or ${SIZE_HINT}`,
      )
    }
    return s
  }
  const text = s.trim()
  if (/^\d+(\.\d+)?$/.test(text)) {
    throw new Error(`'${s}' has no unit: ${SIZE_HINT} (or 2048B for bytes)`)
  }
  const ambiguous = /^(\d+(?:\.\d+)?) ?([kmgtpezy])(i?)$/i.exec(text)
  if (ambiguous) {
    const [, n, u = '', i] = ambiguous
    const unit = u.toUpperCase() === 'K' && !i ? 'k' : u.toUpperCase()
    throw new Error(
      `'${s}' is ambiguous: write ${n}${unit}B (powers of 1000) or ${n}${u.toUpperCase()}iB (powers of 1024)`,
    )
  }
  // bytes-iec also takes signs and a bare number; only unsigned numbers with a unit get here.
  if (!/^\d+(\.\d+)?( ?([kmgtpezy]i?)?b)$/i.test(text)) {
    throw new Error(`'${s}' is not a size: ${SIZE_HINT}`)
  }
  // bytes-iec floors the product ("4.1GB" → 4099999999): take only the unit from it, and round
  const m = /^(\d+(?:\.\d+)?) ?(.*)$/.exec(text)
  const unit = m ? bytes.parse(`1${m[2]}`) : null
  const n = m && unit !== null ? Math.round(Number(m[1]) * unit) : null
  if (n === null || !Number.isFinite(n)) throw new Error(`'${s}' is not a size: ${SIZE_HINT}`)
  if (!Number.isSafeInteger(n)) throw new Error(`'${s}' is too large a size`)
  return n
}

const DURATION_UNITS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const
type DurationUnit = keyof typeof DURATION_UNITS

/** Milliseconds from "30s", "15m", "168h", "7d" or "2w". */
export function parseDuration(s: string): number {
  const m = typeof s === 'string' ? /^(\d+)([smhdw])$/.exec(s.trim()) : null
  if (!m) throw new Error(`'${String(s)}' is not a duration: ${DURATION_HINT}`)
  const ms = Number(m[1]) * DURATION_UNITS[m[2] as DurationUnit]
  if (!Number.isSafeInteger(ms)) throw new Error(`'${s}' is too long a duration`)
  return ms
}

/** A fraction 0..1 from "85%" (or "85.5%"). */
export function parsePercent(s: string): number {
  const m = typeof s === 'string' ? /^(\d+(?:\.\d+)?) ?%$/.exec(s.trim()) : null
  if (!m) throw new Error(`'${String(s)}' is not a percentage: use e.g. 85%`)
  const pct = Number(m[1])
  if (pct > 100) throw new Error(`'${s}' is more than 100%`)
  return round12(pct / 100)
}

const round12 = (x: number) => Number(x.toPrecision(12))

const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB']

/**
 * Human size the way `docker images` prints it: decimal units (1 GB = 10⁹ bytes), three
 * significant digits, trailing zeros dropped — "8.77 GB", "1 GB", "512 B" (plus a space).
 */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return String(n)
  const sign = n < 0 ? '-' : ''
  let v = Math.abs(n)
  let i = 0
  while (v >= 1000 && i < DECIMAL_UNITS.length - 1) {
    v /= 1000
    i++
  }
  let rounded = Number(v.toPrecision(3))
  if (rounded >= 1000 && i < DECIMAL_UNITS.length - 1) {
    rounded = Number((rounded / 1000).toPrecision(3))
    i++
  }
  return `${sign}${rounded} ${DECIMAL_UNITS[i]}`
}

/**
 * Human duration: under a minute in seconds ("45s", "1.5s", "250ms"), otherwise the two
 * largest non-zero units of d/h/m/s ("7d", "1d 12h", "2m 5s").
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms)
  if (ms < 0) return `-${formatDuration(-ms)}`
  if (ms < 1_000) return `${Math.round(ms)}ms`
  if (ms < 60_000) return `${Number((ms / 1_000).toFixed(1))}s`
  let rest = Math.round(ms / 1_000) * 1_000
  const units = ['d', 'h', 'm', 's'] as const
  const first = units.findIndex((u) => rest >= DURATION_UNITS[u])
  const parts: string[] = []
  for (const u of units.slice(first, first + 2)) {
    const q = Math.floor(rest / DURATION_UNITS[u])
    rest -= q * DURATION_UNITS[u]
    if (q > 0) parts.push(`${q}${u}`)
  }
  return parts.join(' ')
}

/**
 * The exact config spelling of a byte count (for `config show`): the largest unit that divides
 * it evenly ("2GB", "2GiB", "1500MB"), else bytes ("1234B").
 */
export function sizeSetting(n: number): string {
  const candidates: [string, number][] = []
  for (let i = 6; i >= 1; i--) {
    candidates.push([`${'kMGTPE'[i - 1]}B`, 1000 ** i], [`${'KMGTPE'[i - 1]}iB`, 1024 ** i])
  }
  candidates.sort((a, b) => b[1] - a[1])
  for (const [unit, size] of candidates) {
    if (n >= size && n % size === 0) return `${n / size}${unit}`
  }
  return `${n}B`
}

/** The exact config spelling of milliseconds (whole seconds): "7d", "168h" → "7d", "90s". */
export function durationSetting(ms: number): string {
  for (const u of ['d', 'h', 'm', 's'] as const) {
    const size = DURATION_UNITS[u]
    if (ms >= size && ms % size === 0) return `${ms / size}${u}`
  }
  if (ms === 0) return '0s'
  throw new Error(`${ms} ms is not a whole number of seconds`)
}

/** The config spelling of a fraction: 0.85 → "85%". */
export function percentSetting(fraction: number): string {
  return `${round12(fraction * 100)}%`
}
