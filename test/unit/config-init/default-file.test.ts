import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { defaultConfigFile } from '../../../lib/config-init/index.js'
import { UsageError } from '../../../lib/errors.js'

describe('config init: where the file goes by default', () => {
  const env = { SHIPSHAPE_CONFIG_DIR: '/x/etc/shipshape' }
  it('an installed package writes into the system config directory (an upgrade keeps it)', () => {
    const installed = '/usr/local/lib/node_modules/shipshape'
    expect(defaultConfigFile(installed, 'box1', env)).toBe('/x/etc/shipshape/box1.yaml')
    expect(defaultConfigFile(installed, 'box1', {})).toBe('/etc/shipshape/box1.yaml')
  })
  it('a clone writes into its config/hosts/ (where the lookup finds it from a clone)', () => {
    expect(defaultConfigFile('/src/shipshape', 'box1', env)).toBe(
      path.join('/src/shipshape', 'config', 'hosts', 'box1.yaml'),
    )
  })
  it('a hostname that is not a plain name is refused, naming --out', () => {
    expect(() => defaultConfigFile('/src/shipshape', '../evil', env)).toThrow(UsageError)
  })
})
