/**
 * Writes the generated files (run `npm run gen:schema` after changing one of their sources;
 * `npm run check:schema`, in `npm run check` and CI, fails while a committed one is stale):
 * - config/shipshape.schema.json from lib/config/schema.ts
 * - lib/config/default.ts, the embedded copy of config/default.yaml
 * - schema/<name>.<version>.json, the JSON Schema of each `--json` output, from the TypeScript
 *   types listed in scripts/json-shapes.ts
 * With --check it writes nothing and exits 1 naming every file that differs.
 * ts-json-schema-generator is pinned to 2.4.0: 2.5 and later need Node 22, shipshape runs on 20.
 */
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { createGenerator } from 'ts-json-schema-generator'
import * as z from 'zod'
import { CONFIG_SCHEMA_FILE, configJsonSchemaText } from '../lib/config/jsonschema.js'
import { findPackageRoot } from '../lib/config/load.js'
import { configSchema } from '../lib/config/schema.js'
import { JSON_SHAPES, jsonShapeFile } from './json-shapes.js'

const SCHEMA_DIR = 'schema'
type JsonObject = Record<string, unknown>

function defaultModuleSource(yamlText: string): string {
  const literal = yamlText.replace(/\\/g, '\\\\').replace(/`/g, '\\`').replace(/\$\{/g, '\\${')
  return (
    '// Generated from config/default.yaml by `npm run gen:schema`: do not edit.\n' +
    '// Embedded so that an install without config/ still has its default config;\n' +
    '// test/unit/config/files.test.ts fails when the two differ.\n' +
    `export const DEFAULT_CONFIG_YAML = \`${literal}\`\n`
  )
}

/** The effective config as `config show --json` prints it (draft-07, like the generator). */
function effectiveConfigSchema(): JsonObject {
  const generated = z.toJSONSchema(configSchema, {
    io: 'output',
    target: 'draft-7',
    unrepresentable: 'throw',
  }) as JsonObject & { properties?: { host?: { default?: unknown } } }
  delete generated.properties?.host?.default // the generating machine's hostname
  const { $schema: _drop, ...rest } = generated
  return rest
}

/** An alias (ReportJson = Report) comes out as a $ref to its definition: put that at the root. */
function inlineRoot(schema: JsonObject): JsonObject {
  const {
    $ref,
    definitions = {},
    ...top
  } = schema as JsonObject & {
    $ref?: string
    definitions?: Record<string, JsonObject>
  }
  const name = $ref?.startsWith('#/definitions/')
    ? decodeURIComponent($ref.slice('#/definitions/'.length))
    : undefined
  const body = name === undefined ? undefined : definitions[name]
  if (name === undefined || body === undefined) return schema
  const { [name]: _root, ...others } = definitions
  if (JSON.stringify(others).includes(`"${$ref}"`)) return schema // recursive: keep the $ref
  return Object.keys(others).length > 0
    ? { ...top, ...body, definitions: others }
    : { ...top, ...body }
}

/** schema/<name>.<version>.json → its text, one per entry of JSON_SHAPES. */
function outputSchemaTexts(root: string): Map<string, string> {
  const generator = createGenerator({
    path: path.join(root, 'scripts/json-shapes.ts'),
    tsconfig: path.join(root, 'tsconfig.build.json'),
    skipTypeCheck: true,
    expose: 'export',
    topRef: false,
    jsDoc: 'extended',
    additionalProperties: false,
  })
  const texts = new Map<string, string>()
  for (const shape of JSON_SHAPES) {
    const { $schema, ...rest } = inlineRoot(
      generator.createSchema(shape.type) as JsonObject,
    ) as JsonObject & { properties?: { schema?: { const?: unknown }; config?: unknown } }
    if (rest.properties?.schema?.const !== shape.schema) {
      throw new Error(`${shape.type}: its "schema" field is not the constant "${shape.schema}"`)
    }
    if (shape.schema === 'shipshape.config/1') rest.properties.config = effectiveConfigSchema()
    const [name, version] = shape.schema.split('/') as [string, string]
    const doc = {
      $schema,
      $id: `urn:${name.replace('.', ':')}:${version}`,
      title: `${shape.schema}: shipshape ${shape.command}`,
      description: `Generated from the TypeScript type ${shape.type} (scripts/json-shapes.ts) by \`npm run gen:schema\`: do not edit.`,
      ...rest,
    }
    texts.set(jsonShapeFile(shape.schema), JSON.stringify(doc, null, 2) + '\n')
  }
  return texts
}

async function readOr(file: string): Promise<string | null> {
  return readFile(file, 'utf8').catch(() => null)
}

async function main(): Promise<void> {
  const check = process.argv.includes('--check')
  const root = findPackageRoot(import.meta.url)
  const yamlText = await readFile(path.join(root, 'config/default.yaml'), 'utf8')
  const wanted = new Map<string, string>([
    [CONFIG_SCHEMA_FILE, configJsonSchemaText()],
    ['lib/config/default.ts', defaultModuleSource(yamlText)],
    ...outputSchemaTexts(root),
  ])
  const present = await readdir(path.join(root, SCHEMA_DIR)).catch(() => [] as string[])
  const extra = present.map((f) => `${SCHEMA_DIR}/${f}`).filter((f) => !wanted.has(f))
  const stale: string[] = []
  for (const [file, text] of wanted) {
    if ((await readOr(path.join(root, file))) !== text) stale.push(file)
  }
  if (check) {
    for (const f of stale) process.stderr.write(`stale: ${f}\n`)
    for (const f of extra) process.stderr.write(`not generated: ${f}\n`)
    if (stale.length + extra.length > 0) {
      process.stderr.write('run `npm run gen:schema` and commit the result\n')
      process.exitCode = 1
    } else process.stderr.write(`${wanted.size} generated files up to date\n`)
    return
  }
  await mkdir(path.join(root, SCHEMA_DIR), { recursive: true })
  for (const file of stale) {
    await writeFile(path.join(root, file), wanted.get(file) as string)
    process.stderr.write(`wrote ${file}\n`)
  }
  for (const file of extra) {
    await rm(path.join(root, file))
    process.stderr.write(`removed ${file}\n`)
  }
}

await main()
