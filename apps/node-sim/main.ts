// Command line of the simulated Ollama node: parses flags, starts the server, prints where it listens, stops on SIGTERM/SIGINT.
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createLogger } from '../../libs/logger/index.js';
import { createSimNode, parseModelsArg, type SimModelSpec, type SimNodeOptions } from './sim-server.js';

const USAGE = `usage: node-sim --vram-gb G --models "name=sizeGb[,name=sizeGb...]" [options]
  --port P                 port to listen on (default 0: a free port, printed)
  --host H                 address to bind (default 127.0.0.1)
  --vram-gb G              memory for loaded models, GB = GiB as nvidia-smi means it (required)
  --models LIST            models on "disk", e.g. "qwen3:14b=9.3:tools+thinking,llava:7b=4.7:vision,nomic-embed-text=0.27:768" (required);
                           entry: name=sizeGb[:embeddingLength][:cap+cap...], caps from completion, embedding, tools, thinking, vision, insert
  --pullable LIST          more models /api/pull can fetch, same syntax (default none)
  --pull-mbps R            simulated download speed of /api/pull, megabytes per second (default 200)
  --disk-gb G              disk for installed models, GB = GiB; a pull that does not fit fails (default unlimited)
  --parallel N             concurrent requests per loaded model, more wait in FIFO order (default 4)
  --tokens-per-second T    base decode speed; a model decodes at T * 8 / max(sizeGb, 1) (default 200)
  --load-ms-per-gb L       model load time per GB (default 20)
  --fast                   no load, prompt or per-token delays (benchmarks)
  --log-level LEVEL        pino level for logs on stderr (default info)
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
        parallel: { type: 'string' },
        'tokens-per-second': { type: 'string' },
        'load-ms-per-gb': { type: 'string' },
        fast: { type: 'boolean' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const str = (k: string): string | undefined => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  if (values.help === true) return { vramGb: 0, models: [], logLevel: 'info', help: true };
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
  const args: SimArgs = { vramGb, models, logLevel: str('log-level') ?? 'info', help: false, fast: values.fast === true };
  const port = num('port', str('port'), (n) => Number.isInteger(n) && n >= 0 && n <= 65535, 'an integer port 0-65535');
  const parallel = num('parallel', str('parallel'), (n) => Number.isInteger(n) && n >= 1, 'an integer >= 1');
  const tps = num('tokens-per-second', str('tokens-per-second'), (n) => n > 0, 'a positive number');
  const loadMsPerGb = num('load-ms-per-gb', str('load-ms-per-gb'), (n) => n >= 0, 'a number >= 0');
  const pullMBps = num('pull-mbps', str('pull-mbps'), (n) => n > 0, 'a positive number of MB/s');
  const diskGb = num('disk-gb', str('disk-gb'), (n) => n > 0, 'a positive number of GB');
  const pullable = str('pullable');
  if (pullable !== undefined) args.pullable = modelList('pullable', pullable);
  if (pullMBps !== undefined) args.pullMBps = pullMBps;
  if (diskGb !== undefined) args.diskGb = diskGb;
  if (port !== undefined) args.port = port;
  if (parallel !== undefined) args.parallel = parallel;
  if (tps !== undefined) args.tokensPerSecond = tps;
  if (loadMsPerGb !== undefined) args.loadMsPerGb = loadMsPerGb;
  const host = str('host');
  if (host !== undefined) args.host = host;
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
  const { logLevel: _level, help: _help, ...opts } = args;
  const node = await createSimNode({ ...opts, logger });
  const models = opts.models.map((m) => `${m.name} ${m.sizeGb} GB`).join(', ');
  process.stdout.write(`simulated Ollama node listening on ${node.url} (vram ${opts.vramGb} GB, models: ${models}${opts.fast ? ', fast mode' : ''})\n`);
  const stop = (signal: string): void => {
    logger.info({ signal }, 'simulated node stopping');
    void node.close().then(() => process.exit(0));
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
