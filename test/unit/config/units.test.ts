import { describe, expect, it } from 'vitest'
import {
  durationSetting,
  formatBytes,
  formatDuration,
  parseDuration,
  parsePercent,
  parseSize,
  percentSetting,
  sizeSetting,
} from '../../../lib/config/units.js'

describe('parseSize', () => {
  it('reads decimal units as powers of 1000 (GB, not GiB)', () => {
    expect(parseSize('2GB')).toBe(2_000_000_000)
    expect(parseSize('1.5GB')).toBe(1_500_000_000)
    // bytes-iec alone floors 4.1·10⁹ (a float product) to 4099999999
    expect(parseSize('4.1GB')).toBe(4_100_000_000)
    expect(parseSize('0.3 MB')).toBe(300_000)
    expect(parseSize('1.5GiB')).toBe(1_610_612_736)
    expect(parseSize('10GB')).toBe(10_000_000_000)
    expect(parseSize('500MB')).toBe(500_000_000)
    expect(parseSize('2kB')).toBe(2_000)
    expect(parseSize('2KB')).toBe(2_000)
    expect(parseSize('1TB')).toBe(1e12)
  })

  it('reads binary units as powers of 1024 (the `bytes` package reads "2GiB" as 2)', () => {
    expect(parseSize('2GiB')).toBe(2_147_483_648)
    expect(parseSize('500MiB')).toBe(524_288_000)
    expect(parseSize('1KiB')).toBe(1024)
    expect(parseSize('1.5GiB')).toBe(1_610_612_736)
  })

  it('takes bytes, a space before the unit, any case', () => {
    expect(parseSize('512B')).toBe(512)
    expect(parseSize('2 GB')).toBe(2e9)
    expect(parseSize('2gb')).toBe(2e9)
    expect(parseSize(' 2GB ')).toBe(2e9)
  })

  it('takes a number as a count of bytes, only a whole one ≥ 0', () => {
    expect(parseSize(2048)).toBe(2048)
    expect(parseSize(0)).toBe(0)
    expect(() => parseSize(-1)).toThrow(/-1 is not a size/)
    expect(() => parseSize(1.5)).toThrow(/whole number/)
    expect(() => parseSize(Number.NaN)).toThrow(/not a size/)
  })

  it('refuses garbage with the fix in the message', () => {
    expect(() => parseSize('2 potatoes')).toThrow(
      "'2 potatoes' is not a size: use e.g. 2GB, 500MiB",
    )
    expect(() => parseSize('')).toThrow(/not a size/)
    expect(() => parseSize('GB')).toThrow(/not a size/)
    expect(() => parseSize('-2GB')).toThrow(/not a size/)
    expect(() => parseSize('+2GB')).toThrow(/not a size/)
    expect(() => parseSize('2e9B')).toThrow(/not a size/)
    expect(() => parseSize('2GBs')).toThrow(/not a size/)
  })

  it('refuses a string without a unit', () => {
    expect(() => parseSize('2048')).toThrow("'2048' has no unit")
  })

  it('refuses "2G"-style sizes as ambiguous, naming both readings', () => {
    expect(() => parseSize('2G')).toThrow("'2G' is ambiguous: write 2GB (powers of 1000) or 2GiB")
    expect(() => parseSize('500M')).toThrow(/500MB .* or 500MiB/)
    expect(() => parseSize('2Gi')).toThrow(/ambiguous/)
    expect(() => parseSize('4k')).toThrow(/4kB .* or 4KiB/)
  })

  it('refuses a size past what a number holds exactly', () => {
    expect(() => parseSize('99999YB')).toThrow(/too large/)
  })
})

describe('parseDuration', () => {
  it('reads s, m, h, d, w into milliseconds', () => {
    expect(parseDuration('30s')).toBe(30_000)
    expect(parseDuration('15m')).toBe(900_000)
    expect(parseDuration('168h')).toBe(604_800_000)
    expect(parseDuration('7d')).toBe(604_800_000)
    expect(parseDuration('2w')).toBe(1_209_600_000)
    expect(parseDuration('0s')).toBe(0)
  })

  it('refuses anything else', () => {
    for (const bad of ['1.5h', '15min', '30', '', '7D', '1h30m', '-1d', '500ms', 'd', '7 days']) {
      expect(() => parseDuration(bad), bad).toThrow(
        `'${bad}' is not a duration: use a whole number`,
      )
    }
  })
})

describe('parsePercent', () => {
  it('reads a percentage into a fraction', () => {
    expect(parsePercent('85%')).toBe(0.85)
    expect(parsePercent('0%')).toBe(0)
    expect(parsePercent('100%')).toBe(1)
    expect(parsePercent('12.5%')).toBe(0.125)
  })

  it('refuses numbers without %, negatives and more than 100%', () => {
    expect(() => parsePercent('85')).toThrow("'85' is not a percentage: use e.g. 85%")
    expect(() => parsePercent('0.85')).toThrow(/not a percentage/)
    expect(() => parsePercent('-5%')).toThrow(/not a percentage/)
    expect(() => parsePercent('101%')).toThrow(/more than 100%/)
  })
})

describe('formatBytes', () => {
  it('prints decimal units with three significant digits, like docker', () => {
    expect(formatBytes(8_770_000_000)).toBe('8.77 GB')
    expect(formatBytes(8_774_912_345)).toBe('8.77 GB')
    expect(formatBytes(2e9)).toBe('2 GB')
    expect(formatBytes(4_820_000_000)).toBe('4.82 GB')
    expect(formatBytes(78_600_000)).toBe('78.6 MB')
    expect(formatBytes(17_300)).toBe('17.3 kB')
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(0)).toBe('0 B')
    expect(formatBytes(2_147_483_648)).toBe('2.15 GB')
  })

  it('carries into the next unit when rounding reaches 1000', () => {
    expect(formatBytes(999_999)).toBe('1 MB')
    expect(formatBytes(999_500_000)).toBe('1 GB')
  })

  it('keeps the sign of a negative size (shrinkage)', () => {
    expect(formatBytes(-1_500_000_000)).toBe('-1.5 GB')
  })
})

describe('formatDuration', () => {
  it('prints the two largest units', () => {
    expect(formatDuration(250)).toBe('250ms')
    expect(formatDuration(1_500)).toBe('1.5s')
    expect(formatDuration(45_000)).toBe('45s')
    expect(formatDuration(125_000)).toBe('2m 5s')
    expect(formatDuration(604_800_000)).toBe('7d')
    expect(formatDuration(129_600_000)).toBe('1d 12h')
    expect(formatDuration(90_061_000)).toBe('1d 1h')
    expect(formatDuration(3_600_000)).toBe('1h')
  })
})

describe('settings spelled back exactly (config show)', () => {
  it('sizes round-trip', () => {
    expect(sizeSetting(2e9)).toBe('2GB')
    expect(sizeSetting(2_147_483_648)).toBe('2GiB')
    expect(sizeSetting(1.5e9)).toBe('1500MB')
    expect(sizeSetting(1234)).toBe('1234B')
    expect(sizeSetting(0)).toBe('0B')
    for (const n of [2e9, 2_147_483_648, 1.5e9, 1234, 0, 10e9, 524_288_000]) {
      expect(parseSize(sizeSetting(n))).toBe(n)
    }
  })

  it('durations and percentages round-trip', () => {
    expect(durationSetting(604_800_000)).toBe('7d')
    expect(durationSetting(90_000)).toBe('90s')
    expect(durationSetting(0)).toBe('0s')
    expect(percentSetting(0.85)).toBe('85%')
    expect(parsePercent(percentSetting(0.125))).toBe(0.125)
    expect(() => durationSetting(1_500)).toThrow(/whole number of seconds/)
  })
})
