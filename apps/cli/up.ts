// `hydra up`: Redis (reuse or start a private one with AOF), the API, a worker on the best backend, optional simulated nodes.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigOrExit } from '../../libs/config/index.js';
import { parseRedisUrl, queueRedisTarget, redactRedisUrl, redisAnswers } from '../../libs/queue/index.js';
import { askOnTerminal, ensureRedisServer, systemHost } from './install-redis.js';
import { HYDRA_BIN } from './paths.js';

/** Concurrent requests per model on each simulated node, and the worker's NUM_PARALLEL for it. */
const SIM_PARALLEL = 4;

/** Simulated fleet for `--sim N`: labelled simulated everywhere; sizes in GB. */
const SIM_FLEET = [
  { vram: 24, models: 'qwen3:14b=9.3,llama3.2:3b=2.0,nomic-embed-text=0.27:768' },
  { vram: 80, models: 'llama3.1:70b=43,qwen3:14b=9.3,llama3.2:3b=2.0' },
  { vram: 8, models: 'llama3.2:3b=2.0,nomic-embed-text=0.27:768' },
];

const say = (s: string) => process.stdout.write(`${s}\n`);

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** A bad TLS parameter in REDIS_URL is a usage error, not a down Redis. */
function checkRedisUrl(url: string): void {
  try {
    parseRedisUrl(url);
  } catch (e) {
    process.stderr.write(`hydra up: ${(e as Error).message}\n`);
    process.exit(2);
  }
}

async function until(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

interface Child {
  name: string;
  proc: ChildProcess;
  log: string;
}

export async function up(argv: string[]): Promise<void> {
  const config = loadConfigOrExit(process.env, 'hydra up');
  const { values } = parseArgs({ args: argv, options: { sim: { type: 'string' }, 'no-worker': { type: 'boolean' }, 'install-redis': { type: 'boolean' } }, strict: true });
  const sims = values.sim === undefined ? 0 : Number(values.sim);
  if (!Number.isInteger(sims) || sims < 0 || sims > 32) {
    process.stderr.write(`hydra up: --sim must be an integer from 0 to 32, got "${values.sim}"\n`);
    process.exit(2);
  }
  const dataDir = resolve(config.HYDRA_DATA_DIR);
  const logDir = join(dataDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const children: Child[] = [];
  let stopping = false;

  const start = (name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv): Child => {
    const log = join(logDir, `${name}.log`);
    const out = createWriteStream(log, { flags: 'a' });
    // Its own process group: Ctrl-C in the terminal signals `up` alone, which stops each child once, in order (a child
    // that got the terminal's SIGINT and then up's SIGTERM took the second signal as "exit now", status 1).
    const proc = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    proc.stdout?.pipe(out);
    proc.stderr?.pipe(out);
    const child = { name, proc, log };
    proc.on('exit', (code, signal) => {
      if (!stopping) say(`hydra up: ${name} exited (${signal ?? `code ${code}`}); see ${log}`);
    });
    children.push(child);
    return child;
  };
  // A child killed by a signal has exitCode null but signalCode set: it has exited and will not emit 'exit' again.
  const stopEach = async (cs: Child[]) => {
    const running = cs.filter((c) => c.proc.exitCode === null && c.proc.signalCode === null);
    for (const c of running) c.proc.kill('SIGTERM');
    await Promise.all(running.map((c) => once(c.proc, 'exit')));
  };
  const stopAll = async () => {
    if (stopping) return;
    stopping = true;
    // The API first: it drains (open waits and answers finish, docs/api-replicas.md) while the workers still serve them;
    // then the workers (they finish or hand back their jobs), then the simulated nodes they talk to, Redis last.
    await stopEach(children.filter((c) => c.name === 'api'));
    await stopEach(children.filter((c) => c.name === 'worker' || c.name.startsWith('worker-')));
    await stopEach(children.filter((c) => c.name !== 'redis'));
    await stopEach(children.filter((c) => c.name === 'redis'));
  };
  process.on('SIGINT', () => void stopAll().then(() => process.exit(0)));
  process.on('SIGTERM', () => void stopAll().then(() => process.exit(0)));
  // `up` dying on an error must not leave its detached children running.
  process.on('exit', () => {
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGTERM');
  });

  // 1. Redis
  let redisUrl = config.REDIS_URL;
  checkRedisUrl(redisUrl);
  if (config.REDIS_SENTINELS.length > 0) {
    // A Sentinel-managed Redis is the user's: never start a private one in its place.
    const sentinels = config.REDIS_SENTINELS.map((x) => `${x.host}:${x.port}`).join(',');
    if (!(await redisAnswers(queueRedisTarget(config), 3000))) {
      process.stderr.write(`hydra up: the Redis master "${config.REDIS_SENTINEL_NAME}" does not answer through the sentinels ${sentinels} (REDIS_SENTINELS)\n`);
      process.exit(1);
    }
    say(`redis: using master "${config.REDIS_SENTINEL_NAME}" through the sentinels ${sentinels}`);
  } else if (config.REDIS_CLUSTER_NODES.length > 0) {
    // A Redis Cluster is the user's too.
    const nodes = config.REDIS_CLUSTER_NODES.map((x) => `${x.host}:${x.port}`).join(',');
    if (!(await redisAnswers(queueRedisTarget(config), 3000))) {
      process.stderr.write(`hydra up: the Redis Cluster at ${nodes} (REDIS_CLUSTER_NODES) does not answer, or is not in cluster_state:ok\n`);
      process.exit(1);
    }
    say(`redis: using the Redis Cluster at ${nodes}`);
  } else if (await redisAnswers(redisUrl)) {
    say(`redis: using ${redactRedisUrl(redisUrl)}`);
  } else {
    // No redis-server on PATH: install it with --install-redis or after a yes at the prompt (only with a terminal on
    // stdin and stdout: without one, never wait on input), else say the exact command (apps/cli/install-redis.ts).
    const found = await ensureRedisServer(systemHost(process.env), {
      install: values['install-redis'] === true,
      ask: process.stdin.isTTY && process.stdout.isTTY ? askOnTerminal : undefined,
      say,
      where: redactRedisUrl(config.REDIS_URL),
    });
    if (!found.ok) {
      process.stderr.write(found.message);
      process.exit(1);
    }
    // Debian's package starts its own service on 6379: when that is REDIS_URL, use it rather than start a second one.
    if (found.installed && (await until(() => redisAnswers(redisUrl), 2000))) say(`redis: using ${redactRedisUrl(redisUrl)} (the service the package started)`);
    else {
      const u = new URL(config.REDIS_URL);
      const port = u.hostname === '127.0.0.1' || u.hostname === 'localhost' ? Number(u.port || 6379) : await freePort();
      const dir = join(dataDir, 'redis');
      mkdirSync(dir, { recursive: true });
      start('redis', found.bin, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction', '--save', ''], process.env);
      redisUrl = `redis://127.0.0.1:${port}`;
      if (!(await until(() => redisAnswers(redisUrl), 10_000))) {
        process.stderr.write(`hydra up: redis-server did not start on port ${port}; see ${join(logDir, 'redis.log')}\n`);
        await stopAll();
        process.exit(1);
      }
      say(`redis: started a private redis-server on ${redisUrl} (AOF on, data in ${dir})`);
    }
  }
  const env = { ...process.env, REDIS_URL: redisUrl };

  // 2. Simulated nodes (each with its own worker)
  for (let i = 0; i < sims; i++) {
    const spec = SIM_FLEET[i % SIM_FLEET.length]!;
    const port = await freePort();
    // The worker's NUM_PARALLEL is the simulated node's --parallel (as it would be OLLAMA_NUM_PARALLEL): one number for both.
    start(`sim-${i + 1}`, process.execPath, [HYDRA_BIN, 'sim', '--port', String(port), '--vram-gb', String(spec.vram), '--models', spec.models, '--parallel', String(SIM_PARALLEL)], env);
    start(`worker-sim-${i + 1}`, process.execPath, [HYDRA_BIN, 'worker'], {
      ...env,
      BACKEND: 'ollama',
      OLLAMA_URL: `http://127.0.0.1:${port}`,
      NODE_ID: `sim-${i + 1}`,
      NODE_VRAM_GB: String(spec.vram),
      NUM_PARALLEL: String(SIM_PARALLEL),
    });
    say(`simulated node sim-${i + 1}: ${spec.vram} GB VRAM, models ${spec.models} (simulated, port ${port})`);
  }

  // 3. The real worker on the best backend found
  if (!values['no-worker']) {
    const workerEnv: NodeJS.ProcessEnv = { ...env };
    const ollamaUp = await fetch(`${config.OLLAMA_URL}/api/version`, { signal: AbortSignal.timeout(1500) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ollamaUp) say(`worker: Ollama at ${config.OLLAMA_URL}`);
    else if (config.OPENAI_BASE_URL) say(`worker: OpenAI-compatible server at ${config.OPENAI_BASE_URL}`);
    else {
      const dir = resolve(config.MODELS_DIR);
      const ggufs = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.gguf')) : [];
      if (ggufs.length === 0) {
        const { writeTinyModel } = await import('../../libs/tiny-model/index.js');
        const w = await writeTinyModel(join(dir, 'tiny-toy-llama.gguf'));
        say(`worker: no Ollama and no models found; serving the built-in toy model "${w.name}" (a toy, not a language model) from ${w.path}`);
      } else {
        say(`worker: llama.cpp in-process, models in ${dir}: ${ggufs.join(', ')}`);
      }
      workerEnv.BACKEND = config.BACKEND === 'auto' ? 'llamacpp' : config.BACKEND;
    }
    start('worker', process.execPath, [HYDRA_BIN, 'worker'], workerEnv);
  }

  // 4. The API
  start('api', process.execPath, [HYDRA_BIN, 'api'], env);
  const base = `http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${config.PORT}`;
  const apiUp = await until(() => fetch(`${base}/healthz`).then((r) => r.ok, () => false), 20_000);
  if (!apiUp) {
    process.stderr.write(`hydra up: the API did not answer at ${base}; see ${join(logDir, 'api.log')}\n`);
    await stopAll();
    process.exit(1);
  }
  const auth = config.API_KEYS.length ? ` -H "Authorization: Bearer $KEY"` : '';
  // Progress while the nodes come up (a llama.cpp worker loads its models first): one line per node that registers.
  const want = (values['no-worker'] ? 0 : 1) + sims;
  const seen = new Set<string>();
  await until(async () => {
    const r = await fetch(`${base}/v1/nodes`, { headers: config.API_KEYS[0] ? { authorization: `Bearer ${config.API_KEYS[0]}` } : {} }).catch(() => null);
    const j = (await r?.json().catch(() => null)) as { nodes?: { id: string; healthy: boolean; models_available?: string[] }[] } | null;
    for (const n of j?.nodes ?? []) {
      if (seen.has(n.id)) continue;
      seen.add(n.id);
      say(`node ${n.id} registered (${seen.size}/${want}${n.healthy ? '' : ', backend not answering yet'}): ${(n.models_available ?? []).join(', ') || 'no models'}`);
    }
    return seen.size >= want;
  }, 60_000);
  say(`
Hydra is up.
  API          ${base}/v1        (nodes: curl${auth} ${base}/v1/nodes)
  Bull Board   ${base}/admin/queues
  dashboard    ${base}/dashboard
  metrics      ${base}/metrics   (Prometheus)
  status       hydra status --watch
  logs         ${logDir}
Try:
  curl${auth} -s ${base}/v1/jobs -H 'content-type: application/json' \\
    -d '{"type":"generate","model":"<a model from /v1/nodes>","prompt":"abc","wait":true}'
Stop with Ctrl-C.`);
  await new Promise(() => {});
}
