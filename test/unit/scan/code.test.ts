import fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { findCudaCallsInDir } from '../../../lib/scan/code.js'

describe('findCudaCallsInDir', () => {
  let dir: string
  beforeAll(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ss-code-'))
    const files: Record<string, string> = {
      'app/main.py': 'import torch\nmodel.to("cuda")\n',
      'app/sub/infer.py': 'x = 1\n\ndevice = torch.device("cuda" if ok else "cpu")\n',
      'app/cpu.py': 'device = "cpu"\n',
      'app/notes.txt': 'model.cuda()\n',
      '.venv/lib/python3.11/site-packages/torch/x.py': 'y.cuda()\n',
      'node_modules/pkg/x.py': 'y.cuda()\n',
      '.git/hooks/x.py': 'y.cuda()\n',
      'app/huge.py': 'y.cuda()\n' + '#'.repeat(1024 * 1024),
    }
    for (const [p, c] of Object.entries(files)) {
      await fsp.mkdir(path.dirname(path.join(dir, p)), { recursive: true })
      await fsp.writeFile(path.join(dir, p), c)
    }
    await fsp.symlink(path.join(dir, 'app'), path.join(dir, 'link-to-app'))
  })
  afterAll(async () => {
    await fsp.rm(dir, { recursive: true, force: true })
  })

  it('greps application .py files, not installed packages, links or huge files', async () => {
    expect(await findCudaCallsInDir(dir)).toEqual([
      { path: path.join(dir, 'app/main.py'), line: 2, text: 'model.to("cuda")' },
      {
        path: path.join(dir, 'app/sub/infer.py'),
        line: 3,
        text: 'device = torch.device("cuda" if ok else "cpu")',
      },
    ])
  })

  it('finds nothing in a directory that does not exist', async () => {
    expect(await findCudaCallsInDir(path.join(dir, 'nope'))).toEqual([])
  })
})
