import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { DEFAULT_CONFIG_YAML } from '../../../lib/config/default.js'
import {
  CONFIG_SCHEMA_FILE,
  CONFIG_SCHEMA_ID,
  configJsonSchemaText,
} from '../../../lib/config/jsonschema.js'
import { parseConfigText } from '../../../lib/config/load.js'

const repoFile = (rel: string) => new URL(`../../../${rel}`, import.meta.url)
const read = (rel: string) => readFileSync(repoFile(rel), 'utf8')
const FIX = 'run `npm run gen:schema` and commit the result'

describe('the repository’s config files', () => {
  it(`the embedded default is config/default.yaml byte for byte (${FIX})`, () => {
    expect(DEFAULT_CONFIG_YAML).toBe(read('config/default.yaml'))
  })

  it('config/default.yaml validates and spells out exactly the schema defaults', () => {
    const fromFile = parseConfigText(read('config/default.yaml'), 'config/default.yaml', {
      hostname: 'h',
    })
    expect(fromFile).toEqual(parseConfigText('', 'empty', { hostname: 'h' }))
    expect(fromFile.report.bigImage).toBe(2_000_000_000)
    expect(fromFile.prune.apply).toBe(false) // a dry prune unless --yes
  })

  it('config/hosts/example.yaml validates, with the runbook host’s values', () => {
    const c = parseConfigText(read('config/hosts/example.yaml'), 'config/hosts/example.yaml')
    expect(c.host).toBe('srv759970')
    expect(c.report.paths).toEqual(['/opt'])
    expect(Object.keys(c.services)).toEqual(['whisperx', 'impro-manager', 'calcom'])
    expect(c.services.whisperx).toMatchObject({
      compose: '/opt/whisperx/docker-compose.yml',
      service: 'whisperx',
      gpu: 'expected-unused',
      health: { userEnv: 'HEALTH_USER', passwordEnv: 'HEALTH_PASSWORD', timeout: 60_000 },
    })
    expect(c.assets['impro-music']).toEqual({
      source: '/opt/impro-manager/music',
      dest: '/mnt/rd/impro-manager-music',
      mount: '/mnt/rd',
      mountType: 'fuse.rclone',
      restart: ['impro-manager'],
      health: {
        url: 'https://impro-manager.srv759970.hstgr.cloud/health',
        expectStatus: 200,
        timeout: 60_000,
        retries: 5,
        stableFor: 10_000,
      },
      keepOriginal: 604_800_000,
      keepBackup: 0,
      backupTo: 'remote',
      uploadTimeout: 1_800_000,
    })
    expect(c.prune.protect.images).toEqual(['postgres:*'])
    expect(c.schedule).toEqual({ report: '0 2 * * *', prune: '30 3 * * 0', timeout: 7_200_000 })
  })

  it(`${CONFIG_SCHEMA_FILE} is what the generator produces now (${FIX})`, () => {
    expect(read(CONFIG_SCHEMA_FILE)).toBe(configJsonSchemaText())
  })

  it('the JSON Schema describes the input side (strings with units, closed objects)', () => {
    const schema = JSON.parse(configJsonSchemaText())
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema')
    expect(schema.$id).toBe(CONFIG_SCHEMA_ID)
    expect(schema.title).toBe('shipshape host config')
    expect(schema.additionalProperties).toBe(false)
    expect(schema.required).toBeUndefined()
    expect(schema.properties.host.default).toBeUndefined() // not the generating machine's name
    const report = schema.properties.report
    expect(report.additionalProperties).toBe(false)
    expect(report.properties.bigImage.default).toBe('2GB')
    expect(report.properties.bigImage.anyOf.map((s: { type: string }) => s.type)).toEqual([
      'string',
      'integer',
    ])
    expect(schema.properties.prune.properties.diskThreshold).toMatchObject({
      type: 'string',
      default: '85%',
    })
    expect(schema.properties.prune.properties.backupsFor).toMatchObject({
      type: 'string',
      default: '7d',
    })
    const health = schema.properties.services.additionalProperties.properties.health
    expect(Object.keys(health.properties)).not.toContain('password')
    expect(health.additionalProperties).toBe(false)
  })
})
