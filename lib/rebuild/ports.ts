/**
 * The real side-effect ports of the rebuild steps (context.ts RebuildPorts): compose, the process
 * runner, the files (durable writes, backup records, saved build files) and the clock. The steps
 * import none of these modules; test/unit/rebuild-steps.test.ts gives them fakes.
 */
import { rm } from 'node:fs/promises'
import { composeBuild, composeBuildArgv, composeUp, composeUpArgv } from '../docker/compose.js'
import { mkdirDurable, readIf, writeFileDurable } from '../host/durable.js'
import { runLogged, showArgv } from '../host/run.js'
import type { RebuildPorts } from './context.js'
import { composeFor, saveRunFiles } from './files.js'
import {
  diffBuildFiles,
  readBuildFiles,
  removeBackupRecord,
  restoreBuildFiles,
  unrestoreBuildFiles,
  writeBackupRecord,
} from './records.js'

export function rebuildPorts(now: () => Date): RebuildPorts {
  return {
    compose: {
      buildArgv: composeBuildArgv,
      upArgv: composeUpArgv,
      build: composeBuild,
      up: composeUp,
      targetFor: composeFor,
    },
    exec: { show: showArgv, runLogged },
    fs: {
      mkdir: async (dir, mode) => {
        await mkdirDurable(dir, mode)
      },
      readIf,
      writeFile: (file, data, mode) => writeFileDurable(file, data, { mode }),
      removeTree: (p) => rm(p, { recursive: true, force: true }),
      readBuildFiles,
      saveRunFiles,
      writeBackupRecord,
      removeBackupRecord,
      diffBuildFiles,
      restoreBuildFiles,
      unrestoreBuildFiles,
    },
    clock: {
      now,
      ms: () => Date.now(),
      sleep: (ms) => new Promise<void>((r) => setTimeout(r, ms)),
    },
  }
}
