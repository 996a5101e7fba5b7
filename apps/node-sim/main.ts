// Command line of the simulated Ollama node: parses flags, starts the server, prints where it listens, stops on SIGTERM/SIGINT.
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createLogger } from '../../libs/logger/index.js';
import { createSimNode, KV_CACHE_TYPES, parseModelsArg, type KvCacheType, type SimModelSpec, type SimNodeOptions } from './sim-server.js';

const USAGE = `usage: node-sim --vram-gb G --models "name=sizeGb[,name=sizeGb...]" [options]
  --port P                 port to listen on (default 0: a free port, printed)
  --host H                 address to bind (default 127.0.0.1)
  --count N                run N simulated nodes in this process, same options, each on its own address (default 1):
                           ports P, P+1, ... on --host (with --port 0, a free port each), or with --spread-hosts
                           consecutive loopback addresses from --host (127.0.0.2, 127.0.0.3, ...) on one port;
                           prints one "listening on URL" line per node, in that order
  --spread-hosts           with --count: one loopback address per node from --host (which must be 127.x.y.z)
  --vram-gb G              memory for loaded models, GB = GiB as nvidia-smi means it (required)
  --models LIST            models on "disk", e.g. "qwen3:14b=9.3:tools+thinking,llava:7b=4.7:vision,nomic-embed-text=0.27:768" (required);
                           entry: name=sizeGb[:embeddingLength][:cap+cap...], caps from completion, embedding, tools, thinking, vision, insert
  --pullable LIST          more models /api/pull can fetch, same syntax (default none)
  --pull-mbps R            simulated download speed of /api/pull, megabytes per second (default 200)
  --disk-gb G              disk for installed models, GB = GiB; a pull that does not fit fails (default unlimited)
  --ram-gb R               system RAM for the layers of a model bigger than the VRAM (CPU offload), GB = GiB (default 64)
  --parallel N             concurrent requests (KV-cache slots) per loaded model, as OLLAMA_NUM_PARALLEL; more wait in FIFO order (default 4)
  --num-ctx C              context per slot when a request sets no options.num_ctx, tokens (default 4096)
  --kv-cache-type T        KV cache element type, as OLLAMA_KV_CACHE_TYPE: f16, q8_0 or q4_0 (default f16)
  --max-queue Q            requests that may wait for memory to load their model, as OLLAMA_MAX_QUEUE; more get a 503 (default 512)
  --tokens-per-second T    single-stream decode speed; a model decodes at T * 8 / max(sizeGb, 1) (default 200)
  --batch-exponent E       n requests decoding at once each run at speed * n^(E-1), aggregate n^E; 1 = parallelism is free (default 0.7)
  --cpu-speed-ratio X      CPU decode speed as a fraction of the GPU's, for the offloaded part of a model (default 0.1)
  --load-fixed-ms MS       fixed cost of every model load: runner start-up (default 1000)
  --load-ms-per-gb L       model load time per GB of weights, on top of --load-fixed-ms (default 20)
  --time-scale K           divide every simulated duration by K; answers report real-time-equivalent durations (default 1)
  --fast                   no load, prompt or per-token delays (benchmarks of Hydra's own overhead)
  --log-level LEVEL        pino level for logs on stderr (default info)
  sources of the defaults: docs/simulator.md
`;

/** A bad command line: the message names the flag; the process exits with code 2. */
class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface SimArgs extends Omit<SimNodeOptions, 'logger'> {
  logLevel: string;
  help: boolean;
  /** Nodes in this process (--count), each at its own address (simAddresses). */
  count: number;
  /** --spread-hosts: consecutive loopback addresses on one port instead of consecutive ports on one address. */
  spreadHosts: boolean;
}

/** Most nodes one process runs (--count): each is an HTTP server with its own timers. */
const MAX_COUNT = 1000;

/**
 * Where each of the `count` nodes listens: consecutive ports from `port` on `host` (port 0: a free port each), or with
 * `spreadHosts` consecutive IPv4 loopback addresses from `host`, all on `port`. Flags were checked by parseSimArgs.
 */
export function simAddresses(a: Pick<SimArgs, 'count' | 'spreadHosts' | 'host' | 'port'>): { host: string; port: number }[] {
  const host = a.host ?? '127.0.0.1';
  const port = a.port ?? 0;
  return Array.from({ length: a.count }, (_, i) => {
    if (!a.spreadHosts) return { host, port: port === 0 ? 0 : port + i };
    const o = host.split('.').map(Number);
    return { host: `${o[0]}.${o[1]}.${o[2]}.${o[3]! + i}`, port };
  });
}

function num(flag: string, raw: string | undefined, check: (n: number) => boolean, want: string): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || !check(n)) throw new UsageError(`--${flag} must be ${want}, got "${raw}"`);
  return n;
}

export function parseSimArgs(argv: string[]): SimArgs {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'vram-gb': { type: 'string' },
        models: { type: 'string' },
        pullable: { type: 'string' },
        'pull-mbps': { type: 'string' },
        'disk-gb': { type: 'string' },
        'ram-gb': { type: 'string' },
        parallel: { type: 'string' },
        'num-ctx': { type: 'string' },
        'kv-cache-type': { type: 'string' },
        'max-queue': { type: 'string' },
        'tokens-per-second': { type: 'string' },
        'batch-exponent': { type: 'string' },
        'cpu-speed-ratio': { type: 'string' },
        'load-fixed-ms': { type: 'string' },
        'load-ms-per-gb': { type: 'string' },
        'time-scale': { type: 'string' },
        fast: { type: 'boolean' },
        count: { type: 'string' },
        'spread-hosts': { type: 'boolean' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const str = (k: string): string | undefined => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  if (values.help === true) return { vramGb: 0, models: [], logLevel: 'info', help: true, count: 1, spreadHosts: false };
  const vramGb = num('vram-gb', str('vram-gb'), (n) => n > 0, 'a positive number of GB');
  if (vramGb === undefined) throw new UsageError('--vram-gb is required (memory for loaded models, in GB)');
  const modelsRaw = str('models');
  if (modelsRaw === undefined) throw new UsageError('--models is required, e.g. --models "qwen3:14b=9.3,llama3.1:70b=43"');
  const modelList = (flag: string, raw: string): SimModelSpec[] => {
    try {
      return parseModelsArg(raw);
    } catch (e) {
      throw new UsageError(`--${flag}: ${(e as Error).message}`);
    }
  };
  const models = modelList('models', modelsRaw);
  const count = num('count', str('count'), (n) => Number.isInteger(n) && n >= 1 && n <= MAX_COUNT, `an integer 1-${MAX_COUNT}`) ?? 1;
  const args: SimArgs = { vramGb, models, logLevel: str('log-level') ?? 'info', help: false, fast: values.fast === true, count, spreadHosts: values['spread-hosts'] === true };
  const port = num('port', str('port'), (n) => Number.isInteger(n) && n >= 0 && n <= 65535, 'an integer port 0-65535');
  const parallel = num('parallel', str('parallel'), (n) => Number.isInteger(n) && n >= 1, 'an integer >= 1');
  const tps = num('tokens-per-second', str('tokens-per-second'), (n) => n > 0, 'a positive number');
  const loadMsPerGb = num('load-ms-per-gb', str('load-ms-per-gb'), (n) => n >= 0, 'a number >= 0');
  const pullMBps = num('pull-mbps', str('pull-mbps'), (n) => n > 0, 'a positive number of MB/s');
  const diskGb = num('disk-gb', str('disk-gb'), (n) => n > 0, 'a positive number of GB');
  const ramGb = num('ram-gb', str('ram-gb'), (n) => n >= 0, 'a number of GB >= 0');
  const numCtx = num('num-ctx', str('num-ctx'), (n) => Number.isInteger(n) && n >= 4, 'an integer >= 4 (tokens)');
  const maxQueue = num('max-queue', str('max-queue'), (n) => Number.isInteger(n) && n >= 0, 'an integer >= 0');
  const batchExponent = num('batch-exponent', str('batch-exponent'), (n) => n > 0 && n <= 1, 'a number > 0 and <= 1');
  const cpuSpeedRatio = num('cpu-speed-ratio', str('cpu-speed-ratio'), (n) => n > 0 && n <= 1, 'a number > 0 and <= 1');
  const loadFixedMs = num('load-fixed-ms', str('load-fixed-ms'), (n) => n >= 0, 'a number of ms >= 0');
  const timeScale = num('time-scale', str('time-scale'), (n) => n > 0, 'a positive number');
  const kvCacheType = str('kv-cache-type');
  if (kvCacheType !== undefined) {
    if (!(KV_CACHE_TYPES as readonly string[]).includes(kvCacheType)) throw new UsageError(`--kv-cache-type must be one of ${KV_CACHE_TYPES.join(', ')}, got "${kvCacheType}"`);
    args.kvCacheType = kvCacheType as KvCacheType;
  }
  const pullable = str('pullable');
  if (pullable !== undefined) args.pullable = modelList('pullable', pullable);
  if (pullMBps !== undefined) args.pullMBps = pullMBps;
  if (diskGb !== undefined) args.diskGb = diskGb;
  if (ramGb !== undefined) args.ramGb = ramGb;
  if (port !== undefined) args.port = port;
  if (parallel !== undefined) args.parallel = parallel;
  if (numCtx !== undefined) args.numCtx = numCtx;
  if (maxQueue !== undefined) args.maxQueue = maxQueue;
  if (tps !== undefined) args.tokensPerSecond = tps;
  if (batchExponent !== undefined) args.batchExponent = batchExponent;
  if (cpuSpeedRatio !== undefined) args.cpuSpeedRatio = cpuSpeedRatio;
  if (loadFixedMs !== undefined) args.loadFixedMs = loadFixedMs;
  if (loadMsPerGb !== undefined) args.loadMsPerGb = loadMsPerGb;
  if (timeScale !== undefined) args.timeScale = timeScale;
  const host = str('host');
  if (host !== undefined) args.host = host;
  if (args.spreadHosts) {
    const o = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host ?? '');
    if (!o || o.slice(1).some((x) => Number(x) > 255)) throw new UsageError(`--spread-hosts needs --host set to an IPv4 loopback address to start from, e.g. --host 127.0.0.2, got ${host === undefined ? 'none' : `"${host}"`}`);
    if (Number(o[3]) + count - 1 > 254) throw new UsageError(`--spread-hosts from ${host} with --count ${count} runs past ${o[0]!.replace(/\d+$/, '254')}: start lower or use fewer nodes`);
  } else if (port !== undefined && port > 0 && port + count - 1 > 65535) {
    throw new UsageError(`--port ${port} with --count ${count} needs ports up to ${port + count - 1}, past 65535: start lower, or use --port 0 (free ports)`);
  }
  return args;
}

export async function main(argv: string[]): Promise<void> {
  let args: SimArgs;
  try {
    args = parseSimArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`node-sim: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return;
  }
  const logger = createLogger({ name: 'node-sim', level: args.logLevel, destination: process.stderr });
  const { logLevel: _level, help: _help, count: _count, spreadHosts: _spread, ...opts } = args;
  const nodes: Awaited<ReturnType<typeof createSimNode>>[] = [];
  const closeAll = () => Promise.all(nodes.map((n) => n.close().catch(() => undefined)));
  for (const at of simAddresses(args)) {
    try {
      nodes.push(await createSimNode({ ...opts, ...at, logger: args.count > 1 ? logger.child({ node: `${at.host}:${at.port}` }) : logger }));
    } catch (e) {
      await closeAll();
      throw new Error(`could not listen on ${at.host}:${at.port} (node ${nodes.length + 1} of ${args.count}): ${(e as Error).message}`);
    }
  }
  const models = opts.models.map((m) => `${m.name} ${m.sizeGb} GB`).join(', ');
  const scale = opts.timeScale !== undefined && opts.timeScale !== 1 ? `, time scale ${opts.timeScale}` : '';
  // One line per node, in address order: scripts read the URLs with /listening on (\S+)/.
  process.stdout.write(nodes.map((n) => `simulated Ollama node listening on ${n.url} (vram ${opts.vramGb} GB, models: ${models}${scale}${opts.fast ? ', fast mode' : ''})\n`).join(''));
  const stop = (signal: string): void => {
    logger.info({ signal, nodes: nodes.length }, 'simulated node stopping');
    void closeAll().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

function isDirectRun(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(resolve(entry)) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isDirectRun()) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`node-sim: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
