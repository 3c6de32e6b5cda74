import js from '@eslint/js'
import tseslint from 'typescript-eslint'

const RUNNER = 'start child processes through lib/host/run.ts (the one process runner)'

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.cache/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // CommonJS tool configs (.dependency-cruiser.cjs)
    files: ['**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { module: 'writable', require: 'readonly' },
    },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'no-console': 'off',
    },
  },
  {
    // every child process goes through the one runner (lib/host/run.ts, on zx)
    files: ['lib/**/*.ts', 'scripts/**/*.ts'],
    ignores: ['lib/host/run.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...['node:child_process', 'child_process'].map((name) => ({ name, message: RUNNER })),
            { name: 'zx', importNames: ['$'], message: RUNNER },
          ],
        },
      ],
    },
  },
  {
    // a module a person can hold in mind: files under 500 lines, functions under 120 (issue 18)
    files: ['lib/**/*.ts', 'scripts/**/*.ts'],
    rules: {
      'max-lines': ['error', { max: 500 }],
      'max-lines-per-function': ['error', { max: 120 }],
    },
  },
)
