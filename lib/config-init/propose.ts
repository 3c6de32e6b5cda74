/**
 * `config init`, the pure half: what was found on the host (InitFacts) → a starting host config
 * (YAML spelling: "2GB", "7d") with the comments a person needs to review it. No I/O; render.ts
 * turns a Proposal into YAML text. The sections come from propose-services.ts,
 * propose-assets.ts and propose-protect.ts.
 */
import { EMBEDDED_DEFAULT } from '../config/load.js'
import { configSchema, configToInput, type Config } from '../config/schema.js'
import { formatBytes } from '../config/units.js'
import type { InitFacts } from './facts.js'
import { proposeAssets } from './propose-assets.js'
import { proposeProtect } from './propose-protect.js'
import { proposeServices } from './propose-services.js'
import {
  MAX_LISTED,
  plural,
  type Acc,
  type Note,
  type Proposal,
  type ProposeSettings,
} from './proposal.js'

export { guessHealth, type HealthGuess } from './guess-health.js'
export { assetSlug, sourceRefusal } from './propose-assets.js'
export { isDatabaseImage, repoOf } from './propose-protect.js'
export {
  toName,
  type DisabledEntry,
  type KeyPath,
  type Note,
  type Proposal,
  type ProposeSettings,
} from './proposal.js'

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * What the config init ran with sets apart from the defaults, kept (its thresholds, allowedRoots,
 * engine address…): the proposal then follows the same policy. Services, assets and the host
 * name are proposed afresh; report.paths and prune.protect.images are merged by the caller.
 */
export function carriedSettings(config: Config): Record<string, unknown> {
  const mine = configToInput(config) as Record<string, unknown>
  const defaults = configToInput(configSchema.parse({ host: config.host })) as Record<
    string,
    unknown
  >
  const skip = new Set(['host', 'services', 'assets', 'report.paths', 'prune.protect.images'])
  const diff = (a: unknown, b: unknown, at: string): unknown => {
    if (isPlainObject(a)) {
      const out: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(a)) {
        const key = at ? `${at}.${k}` : k
        if (skip.has(key)) continue
        const d = diff(v, isPlainObject(b) ? b[k] : undefined, key)
        if (d !== undefined) out[k] = d
      }
      return Object.keys(out).length ? out : undefined
    }
    return JSON.stringify(a) === JSON.stringify(b) ? undefined : a
  }
  return (diff(mine, defaults, '') as Record<string, unknown> | undefined) ?? {}
}

/** facts → the starting config with its comments. Pure. */
export function propose(facts: InitFacts, s: ProposeSettings): Proposal {
  const acc: Acc = {
    notes: [],
    guessed: [],
    trailing: { services: { disabled: [], lines: [] }, assets: { disabled: [], lines: [] } },
  }
  const services = proposeServices(facts, acc)
  const { assets, roots, outside } = proposeAssets(facts, s.config, acc)
  const protect = proposeProtect(facts)
  const loadedProtect = s.config.prune.protect.images
  const protectList = [...new Set([...loadedProtect, ...protect.refs.keys()])]
  const paths = [...new Set([...s.config.report.paths, ...roots])]

  // the document, in writing order; what the config init ran with changed is kept
  const { report: carriedReport, prune: carriedPrune, ...carriedTop } = carriedSettings(s.config)
  const pruneIn = (carriedPrune ?? {}) as Record<string, unknown>
  const config: Record<string, unknown> = {
    host: facts.hostname,
    ...carriedTop,
    report: { ...(carriedReport as object | undefined), paths },
    services,
    assets,
    prune: {
      ...pruneIn,
      protect: { ...(pruneIn.protect as object | undefined), images: protectList },
    },
  }

  const firstCarried = Object.keys(carriedTop)[0] ?? (carriedReport ? 'report' : null)
  const notes = [...acc.notes, ...sectionNotes(s, { firstCarried, paths, outside })]
  protectList.forEach((ref, i) =>
    notes.push({
      path: ['prune', 'protect', 'images', i],
      after:
        protect.refs.get(ref) ??
        (loadedProtect.includes(ref) ? `kept from ${s.configSource}` : undefined),
    }),
  )
  if (protect.unprotectable.length)
    notes.push({ path: ['prune', 'protect', 'images'], before: protect.unprotectable })

  return {
    header: headerLines(facts, s),
    config,
    notes: notes.filter((n) => n.before?.length || n.after),
    trailing: acc.trailing,
    guessed: acc.guessed,
    services: Object.keys(services),
    assets: Object.keys(assets),
    protect: protectList,
    warnings: [...facts.warnings],
  }
}

/** The comments of the sections themselves: what was kept, what report.paths, services, assets and prune hold. */
function sectionNotes(
  s: ProposeSettings,
  o: { firstCarried: string | null; paths: string[]; outside: string[] },
): Note[] {
  const { firstCarried, paths, outside } = o
  const notes: Note[] = []
  if (firstCarried)
    notes.push({
      path: [firstCarried],
      before: [`kept from ${s.configSource} (where it differs from the defaults):`],
    })
  notes.push({
    path: ['report', 'paths'],
    after: paths.length
      ? 'the allowed roots holding the bind-mounted directories, measured with du'
      : 'no bind-mounted directory below allowedRoots',
  })
  if (outside.length)
    notes.push({
      path: ['report', 'paths'],
      before: [
        `bind-mounted directories outside allowedRoots (${s.config.allowedRoots.join(', ')}), not measured:`,
        ...outside.slice(0, MAX_LISTED).map((o) => `  ${o}`),
        ...(outside.length > MAX_LISTED ? [`  … and ${outside.length - MAX_LISTED} more`] : []),
      ],
    })
  notes.push({
    path: ['services'],
    before: [
      'Every compose service (found by its com.docker.compose.* labels) and plain container.',
      'gpu: from GPU requests and the images’ ENV and history only; `shipshape torch-check --all`',
      'reads the image content. A plain container needs build: (or a shipshape.build label) to be rebuilt.',
    ],
  })
  notes.push({
    path: ['assets'],
    before: [
      `Bind-mounted directories over report.bigAssets (${formatBytes(s.config.report.bigAssets)}, du -x), each with a dest on`,
      'a live rclone/FUSE mount; `shipshape migrate-assets NAME --dry-run` shows the plan first.',
    ],
  })
  notes.push({
    path: ['prune'],
    before: [
      'Images of database-like containers (every tag) and of containers holding a named volume:',
      'prune never removes them.',
    ],
  })
  return notes
}

/** The file's opening comment: where it came from and how to review it. */
function headerLines(facts: InitFacts, s: ProposeSettings): string[] {
  const source =
    s.configSource === EMBEDDED_DEFAULT ? 'the embedded default config' : s.configSource
  return [
    `Host config for ${facts.hostname}, written by \`shipshape config init\` at ${s.now.toISOString()}`,
    `from what the engine at ${facts.engine} runs (${plural(facts.containers.length, 'container')}) and the bind mounts it found;`,
    `thresholds and allowedRoots from ${source}.`,
    '',
    'Review it before relying on it: a value marked "guessed" is a guess to confirm; an entry left',
    'commented out says why. `shipshape config check FILE` validates it; keys left out take the',
    'defaults (`shipshape config show`). Secrets never go here: a health check names environment',
    'variables (userEnv/passwordEnv) or a passwordFile.',
  ]
}
