// Lint for what tsc cannot see: promises nobody awaits or that land where a callback's result is dropped, and import order.
import { readFileSync } from 'node:fs';
import { defineConfig } from 'eslint/config';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/**
 * What git ignores (node_modules, data, models, dist, scratch folders), in flat-config terms: a pattern with no inner
 * "/" matches at any depth, as in .gitignore. Flat config does not read .gitignore itself.
 */
const gitignored = readFileSync(new URL('.gitignore', import.meta.url), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('!'))
  .map((p) => (p.startsWith('/') ? p.slice(1) : p.replace(/\/$/, '').includes('/') ? p : `**/${p}`));

export default defineConfig(
  { ignores: gitignored },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  {
    files: ['**/*.{ts,js,mjs}'],
    plugins: { 'import-x': importX },
    rules: {
      // node: built-ins, then packages, then this repository from far to near; the reader sees the dependencies first.
      'import-x/order': ['error', { groups: ['builtin', 'external', ['internal', 'parent'], ['sibling', 'index']], 'newlines-between': 'never' }],
      'import-x/first': 'error',
      'import-x/no-duplicates': 'error',
    },
  },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      // Type-aware: the promise rules need to know which expressions are promises. tsconfig.json's include is the project.
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      // A rejected promise nobody awaits is an unhandled rejection: it kills the process or loses the error. Mark an
      // intended fire-and-forget with `void` and give it a `.catch`.
      '@typescript-eslint/no-floating-promises': 'error',
      // An async function as an event handler or a forEach callback: its rejection goes nowhere.
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
    },
  },
);
