// `hydra discover <list-or-cidr>... [--ports P,...] [--json] [--timeout-ms N] [--concurrency N]`: one scan for Ollama
// and OpenAI-compatible servers (the worker's DISCOVER scan), printed as a table or JSON. Exit 0: at least one server
// found; 1: none; 2: usage errors. docs/discovery.md.
import { parseArgs } from 'node:util';
import { parseDiscoverTargets, parsePortList, type DiscoverTarget } from '../../libs/config/index.js';
import { scanTargets, type FoundServer } from '../worker/main.js';

const USAGE = 'usage: hydra discover <host|host:port|http(s)://host:port|a.b.c.d/n>[,...] [--ports P,...] [--json] [--timeout-ms N] [--concurrency N]';

interface DiscoverOptions {
  targets: DiscoverTarget[];
  ports: number[];
  json: boolean;
  timeoutMs: number;
  concurrency: number;
}

function options(argv: string[]): DiscoverOptions {
  const fail = (msg: string): never => {
    process.stderr.write(`hydra discover: ${msg}\n${USAGE}\n`);
    process.exit(2);
  };
  let parsed: { values: { ports?: string; json?: boolean; 'timeout-ms'?: string; concurrency?: string }; positionals: string[] };
  try {
    parsed = parseArgs({
      args: argv,
      options: { ports: { type: 'string' }, json: { type: 'boolean' }, 'timeout-ms': { type: 'string' }, concurrency: { type: 'string' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    return fail((e as Error).message);
  }
  if (parsed.positionals.length === 0) return fail('name the hosts or networks to scan, e.g. hydra discover 10.0.0.0/24');
  const whole = (flag: string, raw: string | undefined, def: number, min: number, max: number): number => {
    if (raw === undefined) return def;
    const n = Number(raw);
    return /^\d+$/.test(raw) && n >= min && n <= max ? n : fail(`--${flag} must be a whole number from ${min} to ${max}, got "${raw}"`);
  };
  let targets: DiscoverTarget[] = [];
  let ports: number[] = [];
  try {
    targets = parseDiscoverTargets(parsed.positionals.join(','));
  } catch (e) {
    return fail((e as Error).message);
  }
  try {
    ports = parsePortList(parsed.values.ports ?? '11434');
  } catch (e) {
    return fail(`--ports ${(e as Error).message}`);
  }
  return {
    targets,
    ports,
    json: parsed.values.json === true,
    timeoutMs: whole('timeout-ms', parsed.values['timeout-ms'], 1000, 10, 60_000),
    concurrency: whole('concurrency', parsed.values.concurrency, 64, 1, 1024),
  };
}

/** The found servers as aligned columns: address, kind, version, models. */
export function discoverTable(found: readonly FoundServer[]): string {
  const rows = [['ADDRESS', 'KIND', 'VERSION', 'MODELS'], ...found.map((f) => [f.url, f.kind, f.version ?? '-', f.models.join(', ') || '-'])];
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((v, c) => (c < 3 ? v.padEnd(widths[c]!) : v)).join('  ')).join('\n');
}

export async function discover(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const o = options(argv);
  const t0 = Date.now();
  const found = await scanTargets(o.targets, {
    ports: o.ports,
    concurrency: o.concurrency,
    timeoutMs: o.timeoutMs,
    ...(env.OPENAI_API_KEY ? { apiKey: env.OPENAI_API_KEY } : {}),
  });
  const ms = Date.now() - t0;
  if (o.json) process.stdout.write(`${JSON.stringify(found.map(({ url, host, port, kind, version, models }) => ({ url, host, port, kind, ...(version ? { version } : {}), models })))}\n`);
  else if (found.length > 0) process.stdout.write(`${discoverTable(found)}\n`);
  process.stderr.write(`hydra discover: ${found.length} server${found.length === 1 ? '' : 's'} found in ${ms} ms\n`);
  process.exitCode = found.length > 0 ? 0 : 1;
}
