import type { Engine } from '../docker/engine.js'

/** What `import torch` says inside a running container. */
export interface RuntimeProbe {
  /** the interpreter that answered, or null when none was found */
  python: string | null
  pythonVersion: string | null
  torch: string | null
  cuda: string | null
  cudaAvailable: boolean | null
  deviceCount: number | null
  /** `ImportError: …` when torch is there but does not import */
  importError: string | null
  /** the probe itself failed (timeout, exec refused, unreadable output) */
  error: string | null
}

const MARK = 'SHIPSHAPE-TORCH '

/** The probe: prints one JSON line; never raises (every failure is part of the answer). */
export const PROBE_SCRIPT = [
  'import json, sys',
  "r = {'python': sys.version.split()[0]}",
  'try:',
  '    import torch',
  "    r['torch'] = str(torch.__version__)",
  "    r['cuda'] = getattr(torch.version, 'cuda', None)",
  '    try:',
  "        r['available'] = bool(torch.cuda.is_available())",
  "        r['devices'] = int(torch.cuda.device_count())",
  '    except Exception as e:',
  "        r['cudaError'] = type(e).__name__ + ': ' + str(e)",
  'except ModuleNotFoundError as e:',
  "    r['missing'] = str(e)",
  'except BaseException as e:',
  "    r['importError'] = type(e).__name__ + ': ' + str(e)",
  `print(${JSON.stringify(MARK)} + json.dumps(r))`,
].join('\n')

export const PYTHONS = ['python3', 'python']

const nothingKnown = (python: string | null): RuntimeProbe => ({
  python,
  pythonVersion: null,
  torch: null,
  cuda: null,
  cudaAvailable: null,
  deviceCount: null,
  importError: null,
  error: null,
})

/** Parse the probe's output. Pure. */
export function parseProbeOutput(python: string, stdout: string): RuntimeProbe {
  const line = stdout.split('\n').find((l) => l.startsWith(MARK))
  const base = nothingKnown(python)
  if (!line) return { ...base, error: 'the probe printed no answer' }
  let r: Record<string, unknown>
  try {
    r = JSON.parse(line.slice(MARK.length)) as Record<string, unknown>
  } catch {
    return { ...base, error: 'the probe printed an unreadable answer' }
  }
  return {
    ...base,
    pythonVersion: typeof r.python === 'string' ? r.python : null,
    torch: typeof r.torch === 'string' ? r.torch : null,
    cuda: typeof r.cuda === 'string' ? r.cuda : null,
    cudaAvailable: typeof r.available === 'boolean' ? r.available : null,
    deviceCount: typeof r.devices === 'number' ? r.devices : null,
    importError:
      typeof r.importError === 'string'
        ? r.importError
        : typeof r.missing === 'string' && !/^No module named '?torch'?$/.test(r.missing)
          ? `ModuleNotFoundError: ${r.missing}` // torch is there, one of its dependencies is not
          : typeof r.cudaError === 'string'
            ? r.cudaError
            : null,
  }
}

/** An exec that failed because the program is not there (exit 126/127 or the runtime's message). */
export function missingProgram(exitCode: number | null, output: string): boolean {
  return (
    exitCode === 127 ||
    exitCode === 126 ||
    /executable file not found|no such file or directory/i.test(output)
  )
}

/**
 * Runs the probe in a running container with the first interpreter that exists.
 * Missing python and a broken torch are answers, not errors.
 */
export async function probeTorch(
  engine: Engine,
  containerId: string,
  timeoutMs = 30_000,
): Promise<RuntimeProbe> {
  for (const python of PYTHONS) {
    const res = await engine.exec(containerId, [python, '-c', PROBE_SCRIPT], { timeoutMs })
    if (res.timedOut)
      return {
        ...parseProbeOutput(python, ''),
        error: `no answer from ${python} within ${timeoutMs / 1000} s`,
      }
    if (missingProgram(res.exitCode, res.stdout + res.stderr) && !res.stdout.includes(MARK))
      continue
    const probe = parseProbeOutput(python, res.stdout)
    if (probe.error && res.stderr.trim())
      probe.error += `: ${res.stderr.trim().split('\n').slice(-1)[0]}`
    return probe
  }
  return nothingKnown(null) // no interpreter in the container
}
