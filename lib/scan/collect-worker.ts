/**
 * The deep scan's worker thread (started by collect.ts collectInWorker): opens the image export
 * itself and posts back what collectArchive() kept. It imports neither dockerode nor the CLI:
 * a small heap is the point (see collect.ts).
 *
 * When the engine stops sending mid-export (connection lost, idle timeout), the archive reader
 * sees a truncated archive; that is the engine's failure (EngineError, exit 3), not a corrupt
 * image, so the stream's own error decides.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { describeCause, openExport, type ExportRequest } from '../docker/export.js'
import { EngineError } from '../errors.js'
import { collectArchive, errorMessageOf, type WorkerMessage } from './collect.js'

const { request, progress } = workerData as { request: ExportRequest; progress: boolean }
const post = (m: WorkerMessage) => parentPort!.postMessage(m)

let lost: unknown
try {
  const stream = await openExport(request)
  stream.on('error', (err) => (lost ??= err))
  stream.on('aborted', () => (lost ??= Object.assign(new Error('aborted'), { code: 'ECONNRESET' })))
  const collected = await collectArchive(
    stream,
    progress ? (bytes) => post({ type: 'progress', bytes }) : undefined,
  )
  post({ type: 'done', collected })
} catch (err) {
  post(
    errorMessageOf(
      lost === undefined
        ? err
        : new EngineError(
            `${request.what}: the engine stopped sending mid-export (${describeCause(lost)})`,
          ),
    ),
  )
}
