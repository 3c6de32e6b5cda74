/**
 * The JSON Schema (draft 2020-12) of the config's input side, for editors
 * (yaml-language-server reads the `# yaml-language-server: $schema=…` line in the YAML).
 * `npm run gen:schema` writes it to config/shipshape.schema.json; a unit test keeps that
 * file equal to what this returns.
 */
import * as z from 'zod'
import { configSchema } from './schema.js'

export const CONFIG_SCHEMA_ID = 'urn:shipshape:config'
export const CONFIG_SCHEMA_FILE = 'config/shipshape.schema.json'

export function configJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(configSchema, {
    io: 'input',
    target: 'draft-2020-12',
    unrepresentable: 'throw',
  }) as Record<string, unknown> & { properties?: { host?: { default?: unknown } } }
  // The host default is the generating machine's hostname: not something to commit.
  delete generated.properties?.host?.default
  const { $schema, title, ...rest } = generated
  return {
    $schema,
    $id: CONFIG_SCHEMA_ID,
    title,
    description:
      'Per-host config of shipshape (config/hosts/<hostname>.yaml). Every key is optional.',
    ...rest,
  }
}

/** The file's exact text. */
export function configJsonSchemaText(): string {
  return JSON.stringify(configJsonSchema(), null, 2) + '\n'
}
