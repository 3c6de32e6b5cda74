/**
 * `config init`: a service entry for every compose service (found by its labels), then for every
 * plain container, with its health check and GPU expectation; one that cannot be used as it is
 * stays a comment saying why. Pure.
 */
import path from 'node:path'
import { labelFiles } from '../shared/labels.js'
import type { ContainerFacts, InitFacts } from './facts.js'
import { AUTH_NOTE, guessHealth } from './guess-health.js'
import { runningRef } from './propose-protect.js'
import { toName, uniqueName, type Acc, type Entry, type Note } from './proposal.js'

const PROJECT = 'com.docker.compose.project'
const SERVICE = 'com.docker.compose.service'
const ONEOFF = 'com.docker.compose.oneoff'
/** a rebuild's old container kept aside (lib/docker/recreate.ts) */
const ASIDE = /-shipshape-old-[A-Za-z0-9_.-]+$/
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/

interface Group {
  project: string
  service: string
  containers: ContainerFacts[]
}

const byRunningThenName = (a: ContainerFacts, b: ContainerFacts) =>
  Number(b.running) - Number(a.running) || a.name.localeCompare(b.name)

/** health and gpu of a service entry, from its containers (the first is the one to ask). */
function serviceExtras(
  name: string,
  entry: Entry,
  notes: Note[],
  containers: ContainerFacts[],
  acc: Acc,
): void {
  const h = guessHealth(containers[0]!)
  if (h.health) {
    entry.health = h.health
    notes.push({ path: ['health', 'url' in h.health ? 'url' : 'container'], after: h.note })
    if (h.guessed) {
      acc.guessed.push(`services.${name}.health.url`)
      notes.push({ path: ['health'], before: [AUTH_NOTE] })
    }
  } else {
    notes.push({ path: [], before: [h.note] })
  }
  const asking = containers.find((c) => c.gpu.requested)
  if (asking) {
    entry.gpu = 'required'
    notes.push({
      path: ['gpu'],
      after: `${asking.name} requests a GPU: ${asking.gpu.reasons.join(', ')}`,
    })
    return
  }
  const hinted = containers.find((c) => c.cudaHints.length > 0)
  if (hinted) {
    entry.gpu = 'expected-unused'
    acc.guessed.push(`services.${name}.gpu`)
    notes.push({
      path: ['gpu'],
      before: [
        'guessed: no GPU is requested, and',
        ...hinted.cudaHints.map((h) => `  ${h}`),
        `Confirm with \`shipshape torch-check ${hinted.name}\` (it reads the image content).`,
      ],
    })
  }
}

/** An entry as proposed: active unless `why` says why it stays a comment. */
interface Proposed {
  name: string
  entry: Entry
  notes: Note[]
  why: string[]
}

/** Every compose service (by its labels), then the plain containers. */
export function proposeServices(facts: InitFacts, acc: Acc): Record<string, Entry> {
  const services: Record<string, Entry> = {}
  const used = new Set<string>()
  const add = ({ name, entry, notes, why }: Proposed) => {
    if (why.length) {
      acc.trailing.services.disabled.push({ name, why, entry, notes })
      return
    }
    services[name] = entry
    for (const n of notes) acc.notes.push({ ...n, path: ['services', name, ...n.path] })
  }
  for (const g of composeGroups(facts)) add(composeService(g, facts, used, acc))
  const plain = facts.containers
    .filter((c) => !c.labels[PROJECT] && !ASIDE.test(c.name))
    .sort((a, b) => a.name.localeCompare(b.name))
  for (const c of plain) add(plainService(c, used, acc))
  return services
}

/**
 * The compose services by project and service (one-offs left out), sorted by service; `shared`:
 * another project has a service of the same name.
 */
function composeGroups(facts: InitFacts): (Group & { shared: boolean })[] {
  const groups = new Map<string, Group>()
  for (const c of facts.containers) {
    const project = c.labels[PROJECT]
    const service = c.labels[SERVICE]
    if (!project || !service || /^true$/i.test(c.labels[ONEOFF] ?? '')) continue // one-offs
    const key = `${project}\0${service}`
    const g = groups.get(key) ?? { project, service, containers: [] }
    g.containers.push(c)
    groups.set(key, g)
  }
  const sorted = [...groups.values()].sort(
    (a, b) => a.service.localeCompare(b.service) || a.project.localeCompare(b.project),
  )
  const projectsOf = new Map<string, Set<string>>()
  for (const g of sorted)
    projectsOf.set(g.service, (projectsOf.get(g.service) ?? new Set()).add(g.project))
  return sorted.map((g) => ({ ...g, shared: (projectsOf.get(g.service)?.size ?? 0) > 1 }))
}

function composeService(
  g: Group & { shared: boolean },
  facts: InitFacts,
  used: Set<string>,
  acc: Acc,
): Proposed {
  const containers = [...g.containers].sort(byRunningThenName)
  const c0 = containers[0]!
  // two projects with the same service name: both entries are named project-service
  const name = uniqueName(
    toName(g.shared ? `${g.project}-${g.service}` : g.service, 'service'),
    used,
  )
  const files = labelFiles(c0)
  const stopped = containers.every((c) => !c.running)
  const notes: Note[] = [
    {
      path: [],
      before: [
        `compose project ${g.project}, service ${g.service}: ${containers.map((c) => c.name).join(', ')} (${runningRef(c0) ?? c0.imageId}${stopped ? '; stopped' : ''})`,
      ],
    },
  ]
  const why: string[] = []
  if (files.length === 0)
    why.push(
      'its containers have no com.docker.compose.project.config_files label: name its compose file',
    )
  if (!NAME.test(g.service))
    why.push(`the compose service name ${JSON.stringify(g.service)} is not a name the config takes`)
  const entry: Entry = {
    compose:
      files[0] ??
      path.posix.join(
        c0.labels['com.docker.compose.project.working_dir'] ?? '/',
        'docker-compose.yml',
      ),
  }
  if (name !== g.service) entry.service = g.service
  notes.push(...composeFileNotes(files, facts, g.service))
  serviceExtras(name, entry, notes, containers, acc)
  return { name, entry, notes, why }
}

/** What the compose files a service was started with say: more than one, gone, no build: for it. */
function composeFileNotes(files: string[], facts: InitFacts, service: string): Note[] {
  const notes: Note[] = []
  if (files.length > 1)
    notes.push({
      path: ['compose'],
      after: `started with ${files.length - 1} more: ${files
        .slice(1)
        .map((f) => path.posix.basename(f))
        .join(', ')} (rebuild passes every one)`,
    })
  const read = files.map((f) => facts.composeFiles[f])
  if (read[0] && !read[0].exists) {
    notes.push({ path: ['compose'], after: 'not on this host now: rebuild refuses until it is' })
  } else if (
    read.length > 0 &&
    read.every((f) => f?.servicesWithBuild) &&
    !read.some((f) => f!.servicesWithBuild!.includes(service))
  ) {
    notes.push({
      path: [],
      before: [
        'no build: for it in its compose files: rebuild refuses it (report, torch-check, prune use it)',
      ],
    })
  }
  return notes
}

function plainService(c: ContainerFacts, used: Set<string>, acc: Acc): Proposed {
  const name = uniqueName(toName(c.name, 'container'), used)
  const entry: Entry = { container: c.name }
  const notes: Note[] = []
  const about = `plain container ${c.name} (${runningRef(c) ?? c.imageId}${c.running ? '' : '; stopped'})`
  const why: string[] = []
  if (c.build && !c.build.problem) {
    entry.build = c.build.dir
    if (c.build.dockerfile) entry.dockerfile = c.build.dockerfile
    notes.push({ path: [], before: [about] })
    notes.push({ path: ['build'], after: 'from its shipshape.build label' })
  } else if (c.build?.problem) {
    why.push(`${about}: its shipshape.build label ${c.build.problem}`)
  } else {
    why.push(`${about}: no build context found — add build: DIR to rebuild it`)
  }
  serviceExtras(name, entry, notes, [c], acc)
  return { name, entry, notes, why }
}
