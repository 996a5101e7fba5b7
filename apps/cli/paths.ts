// Paths the cli's commands share; a leaf module, so no command imports main.ts back (that made an import cycle).
import { fileURLToPath } from 'node:url';

/** Absolute path of bin/hydra.mjs, for launching child processes. */
export const HYDRA_BIN = fileURLToPath(new URL('../../bin/hydra.mjs', import.meta.url));
