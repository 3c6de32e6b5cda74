/** What several benches share: a host's worth of images on a private engine, and the median. */
import pLimit from 'p-limit'
import type { PrivateEngine } from '../test/harness/engine.js'
import { buildImage, busyboxImage } from '../test/harness/fixtures.js'

/** `count` small images in 40 repositories (`bench/app-N:vM`), four builds at a time. */
export async function buildFleet(engine: PrivateEngine, count: number): Promise<void> {
  const base = await busyboxImage(engine)
  const limit = pLimit(4)
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      limit(() =>
        buildImage(engine, {
          tag: `bench/app-${i % 40}:v${Math.floor(i / 40)}`,
          dockerfile: `FROM ${base}\nCOPY payload /srv/payload\nLABEL bench.n="${i}"\nENV N=${i}\nCMD ["sh"]\n`,
          files: { payload: Buffer.alloc(4096 + i * 512, i % 251) },
        }),
      ),
    ),
  )
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}
