/**
 * Writes the generated config files (run `npm run gen:schema` after changing
 * lib/config/schema.ts or config/default.yaml; unit tests fail while they are stale):
 * - config/shipshape.schema.json from lib/config/schema.ts
 * - lib/config/default.ts, the embedded copy of config/default.yaml
 */
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { CONFIG_SCHEMA_FILE, configJsonSchemaText } from '../lib/config/jsonschema.js'
import { findPackageRoot } from '../lib/config/load.js'

function defaultModuleSource(yamlText: string): string {
  const literal = yamlText.replace(/\\/g, '\\\\').replace(/`/g, '\\`').replace(/\$\{/g, '\\${')
  return (
    '// Generated from config/default.yaml by `npm run gen:schema`: do not edit.\n' +
    '// Embedded so that an install without config/ still has its default config;\n' +
    '// test/unit/config-files.test.ts fails when the two differ.\n' +
    `export const DEFAULT_CONFIG_YAML = \`${literal}\`\n`
  )
}

async function main(): Promise<void> {
  const root = findPackageRoot(import.meta.url)
  const schemaFile = path.join(root, CONFIG_SCHEMA_FILE)
  await writeFile(schemaFile, configJsonSchemaText())
  const yamlText = await readFile(path.join(root, 'config/default.yaml'), 'utf8')
  const moduleFile = path.join(root, 'lib/config/default.ts')
  await writeFile(moduleFile, defaultModuleSource(yamlText))
  process.stderr.write(`wrote ${schemaFile}\nwrote ${moduleFile}\n`)
}

await main()
