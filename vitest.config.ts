import { defineConfig } from 'vitest/config'

// Three projects:
//   unit    test/unit/**, test/cli/**   pure and fast, no engine
//   host    test/host/**                real rclone mounts in temp dirs (no engine)
//   engine  test/engine/** against ONE private dockerd started by the globalSetup
//           (kind from SHIPSHAPE_TEST_ENGINE: 20.10 | 26.1 | 26.1-containerd)
// `npm test` runs both; `npm run test:unit` / `npm run test:engine` run one.
export default defineConfig({
  test: {
    teardownTimeout: 120_000,
    projects: [
      {
        test: {
          name: 'unit',
          // test/cli: the built CLI against fake sockets, no engine either
          include: ['test/unit/**/*.test.ts', 'test/cli/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          // real rclone FUSE mounts in temp dirs (root, /dev/fuse); skipped loudly without them
          name: 'host',
          include: ['test/host/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'engine',
          include: ['test/engine/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
          // one engine is shared by the whole project: its files run one after another
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
})
