/**
 * One scan as its own process, for bench/scan.bench.ts (timed and RSS-measured from outside):
 *
 *   node dist/bench/scan-run.js DOCKER_HOST IMAGE [--json]
 *
 * Prints the ScanResult as JSON with --json, else a one-line summary.
 */
import { parseEngineAddress } from '../lib/shared/address.js'
import { connectEngine } from '../lib/docker/engine.js'
import { scanImage } from '../lib/scan/scan.js'

const [host, image, flag] = process.argv.slice(2)
if (!host || !image) {
  console.error('usage: scan-run.js DOCKER_HOST IMAGE [--json]')
  process.exit(2)
}
const engine = await connectEngine(parseEngineAddress(host))
const t0 = performance.now()
const scan = await scanImage(engine, image)
const ms = performance.now() - t0
engine.close()
if (flag === '--json') console.log(JSON.stringify(scan))
else {
  console.log(
    `${image}: ${scan.layers.length} layers, ${scan.files} files, total ${scan.totalBytes}, final ${scan.finalBytes}, wasted ${scan.wastedBytes}, engine ${scan.image.engineSizeBytes}, ${ms.toFixed(0)} ms`,
  )
}
