// `hydra memory prune --older-than AGE [--json]`: delete the results history's rows that finished more than AGE ago
// (and the vectors made of them) from the store MEMORY_URL names (the SQLite file under HYDRA_DATA_DIR by default),
// run on the machine that holds it. The API's drainer does the same every hour with MEMORY_RETENTION_DAYS.
import { parseArgs } from 'node:util';
import { loadConfigOrExit } from '../../libs/config/index.js';
import { createLogger } from '../../libs/logger/index.js';
import { createHistoryStore, memoryTarget } from '../../libs/memory/index.js';

const USAGE = 'usage: hydra memory prune --older-than AGE [--json]   (AGE: 90s, 15m, 24h, 30d)';
const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "30d" → ms; null when it is not an age. */
export function parseAge(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)([smhd])$/.exec(text.trim());
  return m ? Number(m[1]) * UNITS[m[2]!]! : null;
}

export async function memory(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const fail = (msg: string): never => {
    process.stderr.write(`hydra memory: ${msg}\n${USAGE}\n`);
    process.exit(2);
  };
  const [sub, ...rest] = argv;
  if (sub !== 'prune') return fail(sub ? `unknown subcommand "${sub}"` : 'a subcommand is required');
  let values: { 'older-than'?: string; json?: boolean };
  try {
    ({ values } = parseArgs({ args: rest, options: { 'older-than': { type: 'string' }, json: { type: 'boolean' } }, strict: true }));
  } catch (e) {
    return fail((e as Error).message);
  }
  if (values['older-than'] === undefined) return fail('--older-than is required (nothing is deleted without it)');
  const age = parseAge(values['older-than']);
  if (age === null || age <= 0) return fail(`--older-than must be an age such as 90s, 15m, 24h or 30d, got "${values['older-than']}"`);
  const config = loadConfigOrExit(env, 'hydra memory');
  const target = memoryTarget(config);
  if (target.kind === 'off') return fail('the results history is off (MEMORY_URL=off): nothing to prune');
  const store = (await createHistoryStore(config, createLogger({ name: 'hydra-memory', level: 'warn', destination: process.stderr })))!;
  try {
    await store.migrate();
    const before = Date.now() - age;
    const r = await store.prune(before);
    const where = target.kind === 'sqlite' ? target.path : 'PostgreSQL (MEMORY_URL)';
    if (values.json) process.stdout.write(`${JSON.stringify({ store: target.kind, before: new Date(before).toISOString(), deleted_rows: r.rows, deleted_vectors: r.vectors, left_rows: await store.count() })}\n`);
    else process.stdout.write(`pruned ${where}: ${r.rows} row(s) finished before ${new Date(before).toISOString()} and ${r.vectors} vector(s) made of them; ${await store.count()} row(s) left\n`);
  } finally {
    await store.close();
  }
}
