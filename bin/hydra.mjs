#!/usr/bin/env node
// The `hydra` command: runs the TypeScript sources directly through tsx (no build step).
import { register } from 'tsx/esm/api';

register();
const { run } = await import('../apps/cli/main.ts');
await run(process.argv.slice(2));
