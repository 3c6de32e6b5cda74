/**
 * The deep scan's worker thread (started by collect.ts collectInWorker): opens the image export
 * itself and posts back what collectArchive() kept. It imports neither dockerode nor the CLI:
 * a small heap is the point (see collect.ts).
 */
import { parentPort, workerData } from 'node:worker_threads'
import { openExport, type ExportRequest } from '../docker/export.js'
import { collectArchive, errorMessageOf, type WorkerMessage } from './collect.js'

const { request, progress } = workerData as { request: ExportRequest; progress: boolean }
const post = (m: WorkerMessage) => parentPort!.postMessage(m)

try {
  const stream = await openExport(request)
  const collected = await collectArchive(
    stream,
    progress ? (bytes) => post({ type: 'progress', bytes }) : undefined,
  )
  post({ type: 'done', collected })
} catch (err) {
  post(errorMessageOf(err))
}
