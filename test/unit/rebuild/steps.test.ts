/**
 * Each rebuild step through fakes of its ports (context.ts RebuildPorts) and a small in-memory
 * engine: run does its job, undo takes it back, a second run is the same as one, verify only reads.
 * No process, no file, no sleep: the clock is fake.
 */
import { describe, expect, it } from 'vitest'
import type { Output } from '../../../lib/cli/output.js'
import type { ServiceConfig } from '../../../lib/config/index.js'
import type { ComposeTarget } from '../../../lib/docker/compose.js'
import type { Engine } from '../../../lib/docker/engine.js'
import type { RebuildContext, RebuildPorts } from '../../../lib/rebuild/context.js'
import {
  buildFilesDir,
  type BackupRecord,
  type BuildFiles,
  type FileDiff,
} from '../../../lib/rebuild/records.js'
import { backupStep } from '../../../lib/rebuild/steps/backup.js'
import { buildStep, retagStep } from '../../../lib/rebuild/steps/build.js'
import { cleanupStep } from '../../../lib/rebuild/steps/cleanup.js'
import { keepFilesStep, restoreFilesStep } from '../../../lib/rebuild/steps/files.js'
import { healthStep } from '../../../lib/rebuild/steps/health.js'
import { pullStep } from '../../../lib/rebuild/steps/pull.js'
import { recreateStep } from '../../../lib/rebuild/steps/recreate.js'
import type { StepJournal } from '../../../lib/runbook/types.js'

const OLD = `sha256:${'a'.repeat(64)}`
const NEW = `sha256:${'b'.repeat(64)}`
const PULLED = `sha256:${'c'.repeat(64)}`
const COMMIT = `sha256:${'d'.repeat(64)}`
const STAMP = '20260101T000000Z'

interface FakeContainer {
  id: string
  name: string
  imageId: string
  running: boolean
  health: 'healthy' | 'unhealthy' | null
  labels: Record<string, string>
}

/** The Engine methods the steps use, over maps; `calls` lists every mutation. */
class FakeEngine {
  refs = new Map<string, string>()
  labels = new Map<string, Record<string, string>>()
  containers: FakeContainer[] = []
  calls: string[] = []
  async ping(): Promise<void> {}
  private n = 0

  inspectImage(ref: string) {
    const id = this.refs.get(ref) ?? (this.labels.has(ref) ? ref : undefined)
    return Promise.resolve(id ? { id, labels: this.labels.get(id) ?? {}, tags: [] } : null)
  }
  tagImage(id: string, repo: string, tag: string) {
    this.calls.push(`tag ${repo}:${tag}`)
    this.refs.set(`${repo}:${tag}`, id)
    return Promise.resolve()
  }
  removeImage(ref: string) {
    this.calls.push(`rmi ${ref}`)
    this.refs.delete(ref)
    return Promise.resolve()
  }
  commitContainer(_id: string, o: { repo: string; tag: string; changes: string[] }) {
    this.calls.push(`commit ${o.repo}:${o.tag}`)
    const labels = Object.fromEntries(
      o.changes.map((l) => {
        const m = /^LABEL ([^=]+)="(.*)"$/.exec(l) as RegExpExecArray
        return [m[1] as string, m[2] as string]
      }),
    )
    this.labels.set(COMMIT, labels)
    this.refs.set(`${o.repo}:${o.tag}`, COMMIT)
    return Promise.resolve(COMMIT)
  }
  inspectContainer(idOrName: string) {
    const c = this.containers.find((x) => x.id === idOrName || x.name === idOrName)
    return Promise.resolve(
      c
        ? { ...c, status: c.running ? 'running' : 'exited', startedAt: 'T0', restartCount: 0 }
        : null,
    )
  }
  listContainers() {
    return Promise.resolve(this.containers.map((c) => ({ ...c, state: 'running' })))
  }
  /** what compose up does: the service's container replaced by one on what the tag names */
  up(ref: string) {
    const imageId = this.refs.get(ref) as string
    const old = this.containers.find((c) => c.name === 'app-1')
    this.containers = this.containers.filter((c) => c !== old)
    this.containers.push({
      id: `c${++this.n}-${imageId.slice(7, 11)}`,
      name: 'app-1',
      imageId,
      running: true,
      health: 'healthy',
      labels: old?.labels ?? {},
    })
  }
}

/** Files, saved build files and backup records, in maps; `calls` lists every write. */
class FakeFs {
  files = new Map<string, Buffer>()
  buildFiles = new Map<string, BuildFiles>()
  records = new Map<string, BackupRecord>()
  dirs = new Set<string>()
  calls: string[] = []
  diffs: FileDiff[] = []
  aside: string | null = null

  port(): RebuildPorts['fs'] {
    return {
      mkdir: (dir) => {
        this.calls.push(`mkdir ${dir}`)
        this.dirs.add(dir)
        return Promise.resolve()
      },
      readIf: (file) => Promise.resolve(this.files.get(file) ?? null),
      writeFile: (file, data) => {
        this.calls.push(`write ${file}`)
        this.files.set(file, data)
        return Promise.resolve()
      },
      removeTree: (p) => {
        this.calls.push(`rm ${p}`)
        for (const m of [this.files, this.buildFiles] as Map<string, unknown>[]) {
          for (const k of [...m.keys()]) if (k === p || k.startsWith(`${p}/`)) m.delete(k)
        }
        this.dirs.delete(p)
        return Promise.resolve()
      },
      readBuildFiles: (backupDir, service, imageId) =>
        Promise.resolve(this.buildFiles.get(buildFilesDir(backupDir, service, imageId)) ?? null),
      saveRunFiles: (c, imageId, origin) => {
        const dir = buildFilesDir(c.backupDir, c.service, imageId)
        const had = this.buildFiles.get(dir)
        if (had) return Promise.resolve(had)
        this.calls.push(`save ${imageId.slice(7, 11)} ${origin}`)
        const rec: BuildFiles = {
          schema: 'shipshape.build-files/1',
          service: c.service,
          imageId,
          savedAt: c.ports.clock.now().toISOString(),
          origin,
          compose: null,
          entries: c.filesToKeep.map((f) => ({
            path: f.path,
            kept: f.path.split('/').pop() as string,
            role: f.role,
            sha256: 'x',
            mode: 0o644,
          })),
        }
        this.buildFiles.set(dir, rec)
        return Promise.resolve(rec)
      },
      writeBackupRecord: (_stateDir, r) => {
        this.calls.push(`record ${r.kind}`)
        this.records.set(`${r.stamp}-${r.kind}`, r)
        return Promise.resolve()
      },
      removeBackupRecord: (_stateDir, _service, stamp, kind) => {
        this.calls.push(`unrecord ${kind}`)
        this.records.delete(`${stamp}-${kind}`)
        return Promise.resolve()
      },
      diffBuildFiles: () => Promise.resolve(this.diffs),
      restoreBuildFiles: async (o) => {
        const dir = `/backup/replaced-${o.stamp}`
        await o.onAside?.(dir)
        this.calls.push('restore')
        this.aside = dir
        return { restored: this.diffs.map((d) => d.path), asideDir: dir }
      },
      unrestoreBuildFiles: (aside) => {
        this.calls.push(`unrestore ${aside}`)
        this.aside = null
        return Promise.resolve()
      },
    }
  }
}

function fakeJournal(): StepJournal & { notes: Record<string, unknown> } {
  const notes: Record<string, unknown> = {}
  return {
    notes,
    note: (d) => {
      Object.assign(notes, d)
      return Promise.resolve()
    },
    data: () => notes,
  }
}

const quietOut = (said: string[]): Output =>
  ({
    info: (m: string) => said.push(`info ${m}`),
    warn: (m: string) => said.push(`warn ${m}`),
    spinner: () => ({ update() {}, succeed() {}, fail() {}, stop() {} }),
  }) as unknown as Output

const TARGET: ComposeTarget = {
  project: 'proj',
  service: 'app',
  file: '/srv/app/compose.yml',
  cwd: '/srv/app',
} as ComposeTarget

function world(
  o: { kind?: 'compose' | 'container'; operation?: RebuildContext['operation'] } = {},
) {
  const kind = o.kind ?? 'compose'
  const engine = new FakeEngine()
  engine.labels.set(OLD, {})
  engine.refs.set('app:latest', OLD)
  engine.containers.push({
    id: 'c0-old',
    name: 'app-1',
    imageId: OLD,
    running: true,
    health: 'healthy',
    labels: { 'com.docker.compose.project': 'proj', 'com.docker.compose.service': 'app' },
  })
  const fs = new FakeFs()
  fs.files.set('/srv/app/compose.yml', Buffer.from('services: {}\n'))
  const clock = { t: 1_000_000 }
  const execCalls: string[][] = []
  const composeCalls: string[] = []
  const said: string[] = []
  const ports: RebuildPorts = {
    compose: {
      buildArgv: (t, b) => [
        'docker-compose',
        '-p',
        t.project,
        'build',
        ...(b.noCache ? ['--no-cache'] : []),
        t.service,
      ],
      upArgv: (t) => ['docker-compose', '-p', t.project, 'up', '-d', t.service],
      build: (t) => {
        composeCalls.push(`build ${t.service}`)
        engine.labels.set(NEW, {})
        engine.refs.set('app:latest', NEW)
        clock.t += 5000
        return Promise.resolve()
      },
      up: (t) => {
        composeCalls.push(`up ${t.service}`)
        engine.up('app:latest')
        return Promise.resolve()
      },
      targetFor: (c) => Promise.resolve(c.compose as ComposeTarget),
    },
    exec: {
      show: (argv) => argv.join(' '),
      runLogged: (argv) => {
        execCalls.push(argv)
        if (argv[1] === 'build') {
          engine.labels.set(NEW, {})
          engine.refs.set('app:latest', NEW)
        }
        if (argv[1] === 'pull') {
          engine.labels.set(PULLED, {})
          engine.refs.set(argv[2] as string, PULLED)
        }
        return Promise.resolve({ exitCode: 0, signal: null, timedOut: false, tail: [], ms: 1 })
      },
    },
    fs: fs.port(),
    clock: {
      now: () => new Date(clock.t),
      ms: () => clock.t,
      sleep: (ms) => {
        clock.t += ms
        return Promise.resolve()
      },
    },
  }
  const c = {
    operation: o.operation ?? 'rebuild',
    service: 'app',
    config: { commitPause: true, buildTimeout: 60_000 } as ServiceConfig,
    kind,
    imageRef: 'app:latest',
    repo: 'app',
    tag: 'latest',
    stamp: STAMP,
    paths: { workDir: `/backup/rebuild/app/${STAMP}`, log: `/state/logs/rebuild-app-${STAMP}.log` },
    fromImageId: OLD,
    refWasId: OLD,
    toImageId: null,
    containers: [{ id: 'c0-old', name: 'app-1' }],
    compose: kind === 'compose' ? TARGET : null,
    build: kind === 'container' ? { context: '/srv/app', dockerfile: '/srv/app/Dockerfile' } : null,
    filesToKeep: [{ path: '/srv/app/compose.yml', role: 'compose' }],
    stateDir: '/state',
    backupDir: '/backup',
    configMatchesRunning: null,
    health: { expectStatus: 200, timeout: 10_000, retries: 2, stableFor: 2000, container: true },
    healthyBefore: true,
    noCache: false,
    buildEnv: {},
    dockerCli: 'docker',
    engine: engine as unknown as Engine,
    out: quietOut(said),
    now: ports.clock.now,
    facts: { backups: [] },
    signal: new AbortController().signal,
    ports,
  } as RebuildContext
  return { c, engine, fs, clock, execCalls, composeCalls, said }
}

type World = ReturnType<typeof world>

/** everything a step can change, to compare a state with another */
const state = (w: World) => ({
  refs: [...w.engine.refs.entries()].sort(),
  containers: w.engine.containers.map((x) => `${x.name} ${x.imageId.slice(7, 11)} ${x.running}`),
  files: [...w.fs.files.keys()].sort(),
  buildFiles: [...w.fs.buildFiles.keys()].sort(),
  records: [...w.fs.records.keys()].sort(),
  toImageId: w.c.toImageId,
})

/** verify() only reads: no engine or file call, the same state before and after */
async function verifyReadOnly(w: World, verify: (c: RebuildContext) => Promise<boolean>) {
  const before = { s: state(w), e: w.engine.calls.length, f: w.fs.calls.length }
  const ok = await verify(w.c)
  expect({ s: state(w), e: w.engine.calls.length, f: w.fs.calls.length }).toEqual(before)
  return ok
}

describe('backup step', () => {
  it('tags the image, commits the container, writes the records, copies and saves the files', async () => {
    const w = world()
    const j = fakeJournal()
    await backupStep.run(w.c, j)
    expect(w.engine.refs.get(`app:shipshape-prev-${STAMP}`)).toBe(OLD)
    expect(w.engine.refs.get(`app:shipshape-backup-${STAMP}`)).toBe(COMMIT)
    expect(w.engine.refs.get(`app:shipshape-hold-${STAMP}`)).toBe(OLD)
    expect(w.engine.labels.get(COMMIT)).toMatchObject({
      'shipshape.backup.of': 'app',
      'shipshape.backup.kind': 'commit',
      'shipshape.backup.source': OLD,
    })
    expect([...w.fs.records.keys()].sort()).toEqual([`${STAMP}-commit`, `${STAMP}-image`])
    expect(w.fs.records.get(`${STAMP}-image`)?.created).toBe(new Date(1_000_000).toISOString())
    expect(w.fs.dirs.has(w.c.paths.workDir)).toBe(true)
    expect(w.fs.files.get(`${w.c.paths.workDir}/compose.yml`)?.toString()).toBe('services: {}\n')
    expect(w.fs.calls).toContain('save aaaa found-before-build')
    expect(j.notes).toMatchObject({ savedFromFiles: true, prev: OLD, commit: COMMIT, stamp: STAMP })
    expect(w.c.facts.backups.map((b) => b.kind)).toEqual(['image', 'commit'])
  })

  it('running twice is the same as once (one commit, one save)', async () => {
    const once = world()
    await backupStep.run(once.c, fakeJournal())
    const twice = world()
    const j = fakeJournal()
    await backupStep.run(twice.c, j)
    await backupStep.run(twice.c, j)
    expect(state(twice)).toEqual(state(once))
    expect(twice.engine.calls.filter((x) => x.startsWith('commit'))).toHaveLength(1)
    expect(twice.fs.calls.filter((x) => x.startsWith('save'))).toHaveLength(1)
    expect(twice.c.facts.backups).toEqual(once.c.facts.backups)
  })

  it('verify reads only, and says whether both backups are there', async () => {
    const w = world()
    expect(await verifyReadOnly(w, backupStep.verify!)).toBe(false)
    await backupStep.run(w.c, fakeJournal())
    w.c.facts.backups = []
    expect(await verifyReadOnly(w, backupStep.verify!)).toBe(true)
  })

  it('undo removes the backups, the records and the files it saved while the containers live', async () => {
    const w = world()
    const before = state(w)
    const j = fakeJournal()
    await backupStep.run(w.c, j)
    await backupStep.undo!(w.c, j)
    expect(state(w)).toEqual(before)
    expect(w.fs.calls).toContain(`rm ${w.c.paths.workDir}`)
    expect(w.c.facts.backups).toEqual([])
  })

  it('undo keeps the backups when a container the run started from is gone', async () => {
    const w = world()
    const j = fakeJournal()
    await backupStep.run(w.c, j)
    w.engine.up('app:latest') // compose replaced the old container
    await backupStep.undo!(w.c, j)
    expect(w.c.facts.backupsKept).toBe(true)
    expect(w.engine.refs.get(`app:shipshape-backup-${STAMP}`)).toBe(COMMIT)
    expect(w.fs.records.size).toBe(2)
    expect(w.said.some((s) => s.startsWith('warn backups kept'))).toBe(true)
  })
})

describe('build step', () => {
  it('compose: builds through the compose port and notes the new image', async () => {
    const w = world()
    const j = fakeJournal()
    await buildStep.run(w.c, j)
    expect(w.composeCalls).toEqual(['build app'])
    expect(w.execCalls).toEqual([])
    expect(w.c.toImageId).toBe(NEW)
    expect(w.c.facts.buildMs).toBe(5000)
    expect(j.notes).toEqual({ log: w.c.paths.log, toImageId: NEW })
    expect(buildStep.preview(w.c)[0]).toBe('docker-compose -p proj build app')
  })

  it('plain container: runs docker build through the exec port', async () => {
    const w = world({ kind: 'container' })
    await buildStep.run(w.c, fakeJournal())
    expect(w.execCalls).toEqual([
      ['docker', 'build', '-t', 'app:latest', '-f', '/srv/app/Dockerfile', '/srv/app'],
    ])
    expect(w.c.toImageId).toBe(NEW)
  })

  it('a failed docker build throws with the log named, and changes no tag', async () => {
    const w = world({ kind: 'container' })
    w.c.ports.exec.runLogged = () =>
      Promise.resolve({ exitCode: 1, signal: null, timedOut: false, tail: ['boom'], ms: 1 })
    await expect(buildStep.run(w.c, fakeJournal())).rejects.toThrow(
      `docker build exited 1: boom (full output: ${w.c.paths.log})`,
    )
    expect(w.engine.refs.get('app:latest')).toBe(OLD)
  })

  it('running twice is the same as once; verify reads only', async () => {
    const once = world()
    await buildStep.run(once.c, fakeJournal())
    const twice = world()
    const j = fakeJournal()
    expect(await verifyReadOnly(twice, buildStep.verify!)).toBe(false)
    await buildStep.run(twice.c, j)
    await buildStep.run(twice.c, j)
    expect(state(twice)).toEqual(state(once))
    expect(await verifyReadOnly(twice, buildStep.verify!)).toBe(true)
  })

  it('undo puts the tag back on what it named and names the failed image', async () => {
    const w = world()
    const j = fakeJournal()
    await buildStep.run(w.c, j)
    await buildStep.undo!(w.c, j)
    expect(w.engine.refs.get('app:latest')).toBe(OLD)
    expect(w.c.facts.failedImageId).toBe(NEW)
  })
})

describe('retag step (rollback)', () => {
  it('puts the backup under the tag, holds the images; undo takes both back', async () => {
    const w = world({ operation: 'rollback' })
    w.engine.labels.set(NEW, {})
    w.c.toImageId = NEW
    const before = state(w)
    const j = fakeJournal()
    await retagStep.run(w.c, j)
    await retagStep.run(w.c, j)
    expect(w.engine.refs.get('app:latest')).toBe(NEW)
    expect(await verifyReadOnly(w, retagStep.verify!)).toBe(true)
    await retagStep.undo!(w.c, j)
    expect(state(w)).toEqual(before)
  })
})

describe('pull step', () => {
  const pullWorld = () => {
    const w = world({ operation: 'update' })
    w.c.pullRef = 'app:2'
    return w
  }

  it('pulls through the exec port and puts the service’s tag on the pulled image', async () => {
    const w = pullWorld()
    const j = fakeJournal()
    await pullStep.run(w.c, j)
    expect(w.execCalls).toEqual([['docker', 'pull', 'app:2']])
    expect(w.engine.refs.get('app:latest')).toBe(PULLED)
    expect(w.c.toImageId).toBe(PULLED)
    expect(j.notes).toMatchObject({ pullRef: 'app:2', pullRefWas: null, toImageId: PULLED })
  })

  it('running twice is the same as once; verify reads only', async () => {
    const once = pullWorld()
    await pullStep.run(once.c, fakeJournal())
    const twice = pullWorld()
    const j = fakeJournal()
    await pullStep.run(twice.c, j)
    await pullStep.run(twice.c, j)
    expect(state(twice)).toEqual(state(once))
    expect(j.notes.pullRefWas).toBeNull()
    expect(await verifyReadOnly(twice, pullStep.verify!)).toBe(true)
  })

  it('undo puts the service’s tag and the pulled tag back on what they named', async () => {
    const w = pullWorld()
    w.engine.labels.set(NEW, {})
    w.engine.refs.set('app:2', NEW)
    const j = fakeJournal()
    await pullStep.run(w.c, j)
    expect(j.notes.pullRefWas).toBe(NEW)
    await pullStep.undo!(w.c, j)
    expect(w.engine.refs.get('app:latest')).toBe(OLD)
    expect(w.engine.refs.get('app:2')).toBe(NEW)
    expect(w.c.facts.failedImageId).toBe(PULLED)
  })
})

describe('recreate step (compose)', () => {
  const built = () => {
    const w = world()
    w.engine.labels.set(NEW, {})
    w.engine.refs.set('app:latest', NEW)
    w.c.toImageId = NEW
    return w
  }

  it('runs compose up through the port; the service runs the new image', async () => {
    const w = built()
    await recreateStep.run(w.c, fakeJournal())
    expect(w.composeCalls).toEqual(['up app'])
    expect(w.c.facts.containers).toEqual(['app-1'])
    expect(w.engine.containers.map((x) => x.imageId)).toEqual([NEW])
  })

  it('running twice is the same as once; verify reads only', async () => {
    const once = built()
    await recreateStep.run(once.c, fakeJournal())
    const twice = built()
    const j = fakeJournal()
    expect(await verifyReadOnly(twice, recreateStep.verify!)).toBe(false)
    await recreateStep.run(twice.c, j)
    await recreateStep.run(twice.c, j)
    expect(state(twice)).toEqual(state(once))
    expect(await verifyReadOnly(twice, recreateStep.verify!)).toBe(true)
  })

  it('undo puts the service back on the old image and checks its health (fake clock)', async () => {
    const w = built()
    const j = fakeJournal()
    await recreateStep.run(w.c, j)
    const t0 = w.clock.t
    await recreateStep.undo!(w.c, j)
    expect(w.engine.refs.get('app:latest')).toBe(OLD)
    expect(w.engine.containers.map((x) => x.imageId)).toEqual([OLD])
    expect(w.composeCalls).toEqual(['up app', 'up app'])
    expect(w.clock.t - t0).toBe(2000) // held for stableFor on the fake clock
  })

  it('undo leaves the old containers be when compose never replaced them', async () => {
    const w = built()
    await recreateStep.undo!(w.c, fakeJournal())
    expect(w.composeCalls).toEqual([])
    expect(w.engine.containers.map((x) => x.id)).toEqual(['c0-old'])
    expect(w.engine.refs.get('app:latest')).toBe(OLD)
  })

  it('an undo that ends unhealthy fails when the service was healthy before', async () => {
    const w = built()
    const j = fakeJournal()
    await recreateStep.run(w.c, j)
    w.engine.up = function (ref: string) {
      FakeEngine.prototype.up.call(this, ref)
      for (const x of this.containers) x.health = 'unhealthy'
    }
    await expect(recreateStep.undo!(w.c, j)).rejects.toThrow(/back on .* but not healthy/)
  })
})

describe('health step', () => {
  it('passes, holds for stableFor on the fake clock, and notes the result', async () => {
    const w = world()
    const j = fakeJournal()
    await healthStep.run(w.c, j)
    expect(w.c.facts.health?.ok).toBe(true)
    expect(w.c.facts.gateMs).toBe(2000)
    expect(j.notes).toEqual({ ok: true, attempts: 1, ms: 2000, heldMs: 2000 })
    // running again: the same
    await healthStep.run(w.c, j)
    expect(j.notes).toEqual({ ok: true, attempts: 1, ms: 2000, heldMs: 2000 })
    expect(w.engine.calls).toEqual([])
  })

  it('fails after its tries, waiting on the fake clock only', async () => {
    const w = world()
    for (const x of w.engine.containers) x.health = 'unhealthy'
    const j = fakeJournal()
    await expect(healthStep.run(w.c, j)).rejects.toThrow(/failed its health check .* after 3 tries/)
    expect(j.notes).toMatchObject({ ok: false, attempts: 3 })
    expect(w.clock.t - 1_000_000).toBeGreaterThan(0)
  })
})

describe('keep-files step', () => {
  const built = () => {
    const w = world()
    w.c.toImageId = NEW
    return w
  }

  it('saves the run’s files under the new image; undo removes what it saved', async () => {
    const w = built()
    const j = fakeJournal()
    expect(await verifyReadOnly(w, keepFilesStep.verify!)).toBe(false)
    await keepFilesStep.run(w.c, j)
    expect(w.fs.calls).toEqual(['save bbbb built'])
    expect(j.notes).toEqual({ saved: true })
    expect(await verifyReadOnly(w, keepFilesStep.verify!)).toBe(true)
    const once = state(w)
    await keepFilesStep.run(w.c, j)
    expect(state(w)).toEqual(once)
    expect(j.notes).toEqual({ saved: true })
    await keepFilesStep.undo!(w.c, j)
    expect(w.fs.buildFiles.size).toBe(0)
  })

  it('undo leaves files saved before the run', async () => {
    const w = built()
    await w.c.ports.fs.saveRunFiles(w.c, NEW, 'built')
    const j = fakeJournal()
    await keepFilesStep.run(w.c, j)
    await keepFilesStep.undo!(w.c, j)
    expect(w.fs.buildFiles.size).toBe(1)
  })
})

describe('restore-files step', () => {
  const saved = (restoreFiles: boolean) => {
    const w = world({ operation: 'rollback' })
    w.c.toImageId = OLD
    w.c.restoreFiles = restoreFiles
    w.fs.diffs = [
      { path: '/srv/app/Dockerfile', role: 'dockerfile', state: 'changed', patch: '-a\n+b\n' },
      { path: '/srv/app/.env', role: 'env', state: 'changed', patch: 'SECRET' },
    ]
    return w
  }

  it('shows the diff (not of a file that may hold passwords) and writes nothing without --restore-files', async () => {
    const w = saved(false)
    await w.c.ports.fs.saveRunFiles(w.c, OLD, 'built')
    w.fs.calls = []
    await restoreFilesStep.run(w.c, fakeJournal())
    expect(w.fs.calls).toEqual([])
    expect(w.said.join('\n')).not.toContain('SECRET')
    expect(w.said).toContain('info -a\n+b')
    expect(w.c.facts.files?.restored).toEqual([])
  })

  it('--restore-files writes back, notes the aside dir first; undo puts the disk back', async () => {
    const w = saved(true)
    await w.c.ports.fs.saveRunFiles(w.c, OLD, 'built')
    const j = fakeJournal()
    await restoreFilesStep.run(w.c, j)
    expect(j.notes).toEqual({ aside: `/backup/replaced-${STAMP}` })
    expect(w.c.facts.files?.restored).toEqual(['/srv/app/Dockerfile', '/srv/app/.env'])
    await restoreFilesStep.undo!(w.c, j)
    expect(w.fs.calls.at(-1)).toBe(`unrestore /backup/replaced-${STAMP}`)
    expect(w.fs.aside).toBeNull()
  })

  it('nothing saved with the image: nothing compared, nothing written', async () => {
    const w = saved(true)
    const j = fakeJournal()
    await restoreFilesStep.run(w.c, j)
    expect(w.c.facts.files).toMatchObject({ origin: null, restored: [] })
    expect(j.notes).toEqual({})
    await restoreFilesStep.undo!(w.c, j)
    expect(w.fs.calls).toEqual([])
  })
})

describe('cleanup step', () => {
  it('releases the hold tags and keeps the backups; twice is the same as once', async () => {
    const w = world()
    await backupStep.run(w.c, fakeJournal())
    await cleanupStep.run(w.c, fakeJournal())
    expect(w.engine.refs.has(`app:shipshape-hold-${STAMP}`)).toBe(false)
    expect(w.engine.refs.get(`app:shipshape-prev-${STAMP}`)).toBe(OLD)
    const once = state(w)
    await cleanupStep.run(w.c, fakeJournal())
    expect(state(w)).toEqual(once)
  })
})
