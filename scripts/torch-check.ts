import { Command } from 'commander'
import { withCommand } from '../lib/cli/command.js'
import { formatBytes } from '../lib/config/units.js'
import { table } from '../lib/cli/table.js'
import { torchCheckOn, type TorchCheckReport } from '../lib/torch-check/index.js'

interface TorchOptions {
  all?: boolean
  scan: boolean
  probe: boolean
  timeout: string
}

function render(r: TorchCheckReport, color: boolean): string {
  const out = [
    `shipshape torch-check — host GPU: ${r.hostGpu.present ? `yes (${r.hostGpu.evidence.join(', ')})` : 'none'}`,
    '',
  ]
  const t = table(['TARGET', 'KIND', 'VERDICT', 'TORCH', 'CUDA', 'SAVINGS'], color)
  for (const x of r.targets)
    t.push([
      x.target + (x.service ? ` (${x.service})` : ''),
      x.kind + (x.container ? (x.container.running ? ', running' : ', stopped') : ''),
      x.verdict,
      x.torch?.version ?? '—',
      x.torch ? (x.torch.cuda ?? 'CPU') : '—',
      x.estimatedSavingsBytes ? formatBytes(x.estimatedSavingsBytes) : '—',
    ])
  out.push(t.toString())
  for (const x of r.targets) {
    out.push('', `${x.target}: ${x.verdict}`)
    for (const reason of x.reasons) out.push(`  - ${reason}`)
    for (const c of x.codeCalls.slice(0, 5))
      out.push(`  - CUDA call: /${c.path}:${c.line}: ${c.text}`)
    for (const f of x.findings) out.push(`  ! ${f}`)
    if (x.suggestion) out.push('  suggestion:', ...x.suggestion.split('\n').map((l) => `    ${l}`))
  }
  return out.join('\n')
}

export function torchCheckCommand(): Command {
  return new Command('torch-check')
    .description(
      'Is torch a CUDA or a CPU build, is a GPU requested and present, does the code call CUDA: a verdict with the saving of the CPU build (read-only)',
    )
    .argument(
      '[target...]',
      'containers (running or stopped) or images; container:NAME / image:REF to force one',
    )
    .option('--all', 'every container, and every image no container uses')
    .option('--no-scan', 'skip the static scan of the image content (runtime probe only)')
    .option(
      '--no-probe',
      'do not exec python in running containers (importing torch costs them memory and CPU)',
    )
    .option('--timeout <seconds>', 'how long the python probe in a container may take', '30')
    .addHelpText(
      'after',
      '\nVerdicts: gpu-unused | gpu-used | cpu-only | no-torch | unknown.\nExit codes: 0 checked, 2 bad usage/config or unknown target, 3 Docker engine unreachable.\nJSON shape: "schema": "shipshape.torch-check/1" (see README).',
    )
    .action(
      withCommand(
        // the context's engine: withCommand opens it once and closes it
        ({ config, spin, engine }, targets: string[], opts: TorchOptions) =>
          spin('Checking torch', async (progress) =>
            torchCheckOn(await engine(), config, targets, {
              all: opts.all,
              scan: opts.scan,
              probe: opts.probe,
              probeTimeoutMs: Math.max(1, Number(opts.timeout) || 30) * 1000,
              progress,
            }),
          ),
        { human: (report, { out }) => out.human(render(report, out.interactive)) },
      ),
    )
}
