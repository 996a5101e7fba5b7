// One zod schema for every environment variable; a bad value stops the process with a message naming the variable.
import { isIP } from 'node:net';
import os from 'node:os';
import { z } from 'zod';
import { BACKEND_KINDS, KV_CACHE_TYPES } from '../core/index.js';
import { parseDiscoverTargets, parsePortList } from './discover-targets.js';
import { ConfigError } from './errors.js';

export { ConfigError };

export * from './discover-targets.js';

const number = () => z.coerce.number({ error: 'must be a number' });
const int = (def: number, min = 0) => number().int('must be a whole number').min(min, `must be at least ${min}`).default(def);
const redisUrl = z
  .string()
  .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
  .refine((v) => URL.canParse(v), 'is not a valid URL');
const httpUrl = z
  .string()
  .regex(/^https?:\/\//, 'must start with http:// or https://')
  .refine((v) => URL.canParse(v), 'is not a valid URL');
/** A WEBHOOK_ALLOW entry: a host name, an IPv4/IPv6 address, or a CIDR of either. */
const webhookAllowEntry = (x: string): boolean => {
  const [addr, bits, more] = x.split('/');
  if (more !== undefined || !addr) return false;
  const v = isIP(addr.replace(/^\[|\]$/g, ''));
  if (bits !== undefined) return v !== 0 && /^\d{1,3}$/.test(bits) && Number(bits) <= (v === 4 ? 32 : 128);
  return v !== 0 || /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$/.test(addr);
};
const optional = <T extends z.ZodTypeAny>(s: T) => z.preprocess((v) => (v === '' ? undefined : v), s.optional());
/** 1/true/yes or 0/false/no. */
const flag = () =>
  z
    .enum(['1', 'true', 'yes', '0', 'false', 'no'], { error: 'must be 1 or 0 (true/false, yes/no)' })
    .default('0')
    .transform((v) => v === '1' || v === 'true' || v === 'yes');
/**
 * Server addresses, "host:port,host:port" (IPv6 as "[::1]:26379"); the port defaults to `defaultPort`. Empty: none.
 * `what` names them in the error, e.g. "Sentinel addresses".
 */
const hostList = (defaultPort: number, what: string) =>
  z
    .string()
    .default('')
    .transform((s, ctx) => {
      const out: { host: string; port: number }[] = [];
      for (const item of s.split(',').map((i) => i.trim()).filter(Boolean)) {
        const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+))(?::(\d+))?$/.exec(item);
        const port = Number(m?.[3] ?? defaultPort);
        if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
          ctx.addIssue({ code: 'custom', message: `must be "host:port,..." (${what}, e.g. "10.0.0.5:${defaultPort},10.0.0.6:${defaultPort}"); "${item}" is not` });
          return z.NEVER;
        }
        out.push({ host: (m[1] ?? m[2])!, port });
      }
      return out;
    });
/** A Sentinel master group name, as in `sentinel monitor <name> ...`. */
const sentinelName = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be a Sentinel master name (letters, digits, . _ -)');
/** Comma-separated model names, e.g. "qwen3:14b,llama3.1:8b". */
const modelList = z
  .string()
  .default('')
  .transform((s) => [...new Set(s.split(',').map((m) => m.trim()).filter(Boolean))]);
const CATALOG_CAPS = ['code', 'math', 'reasoning', 'general'] as const;
const CATALOG_FORMAT = `must be "model=capability+capability,..." with capabilities from ${CATALOG_CAPS.join(', ')}, e.g. "qwen2.5-coder:7b=code,qwen2-math:7b=math+reasoning"`;
/** The orchestrator's model catalog: what each model is good at, "model=cap+cap,...". Split at the last "=". */
const modelCatalog = z
  .string()
  .default('')
  .transform((s, ctx) => {
    const out: { model: string; capabilities: (typeof CATALOG_CAPS)[number][] }[] = [];
    for (const entry of s.split(',').map((e) => e.trim()).filter(Boolean)) {
      const at = entry.lastIndexOf('=');
      const model = entry.slice(0, at).trim();
      const caps = entry.slice(at + 1).split('+').map((c) => c.trim());
      const bad = caps.find((c) => !(CATALOG_CAPS as readonly string[]).includes(c));
      if (at <= 0 || !model || bad !== undefined) {
        ctx.addIssue({ code: 'custom', message: `${CATALOG_FORMAT}; "${entry}" ${at <= 0 || !model ? 'is not model=capabilities' : `has the unknown capability "${bad}"`}` });
        return z.NEVER;
      }
      out.push({ model, capabilities: [...new Set(caps)] as (typeof CATALOG_CAPS)[number][] });
    }
    return out;
  });
const MODEL_SIZES_FORMAT = 'must be "name=GB,..." with sizes in GB (GiB), e.g. "qwen3:14b=9.3,llama3.2:3b=2"';
/**
 * Model weight sizes in GB (GiB) by name, "name=GB,...". Split at the last "=": model names may hold ":" and "/".
 * For OpenAI-compatible servers, which list their models but not their sizes.
 */
const modelSizes = z
  .string()
  .default('')
  .transform((s, ctx) => {
    const out: Record<string, number> = {};
    for (const item of s.split(',').map((i) => i.trim()).filter(Boolean)) {
      const at = item.lastIndexOf('=');
      const name = item.slice(0, at).trim();
      const raw = item.slice(at + 1).trim();
      const gb = Number(raw);
      if (at <= 0 || name === '' || raw === '' || !Number.isFinite(gb) || gb < 0) {
        ctx.addIssue({ code: 'custom', message: `${MODEL_SIZES_FORMAT}; "${item}" is not` });
        return z.NEVER;
      }
      out[name] = gb;
    }
    return out;
  });

/** Every variable Hydra reads. `.env.example` documents each one; keep them in step (a test checks). */
const ConfigSchema = z.object({
  // shared
  REDIS_URL: redisUrl.default('redis://127.0.0.1:6379'),
  /** Sentinels that know the queue's master (docs/operations.md#redis-sentinel); REDIS_URL then gives only its credentials, db and TLS. */
  REDIS_SENTINELS: hostList(26379, 'Sentinel addresses'),
  REDIS_SENTINEL_NAME: sentinelName.default('mymaster'),
  REDIS_SENTINEL_PASSWORD: optional(z.string()),
  /** TLS to the sentinels themselves (the master's TLS is REDIS_URL's rediss://). */
  REDIS_SENTINEL_TLS: flag(),
  /** Seed nodes of a Redis Cluster (docs/operations.md#redis-cluster); REDIS_URL then gives only the credentials and TLS. */
  REDIS_CLUSTER_NODES: hostList(6379, 'Redis Cluster nodes'),
  /** After adding a job the API waits until this many replicas have it (WAIT) before answering; fewer in time = 503. 0 = off. */
  REDIS_MIN_REPLICAS_ACK: int(0, 0).refine((n) => n <= 16, 'must be at most 16'),
  REDIS_REPLICA_ACK_TIMEOUT_MS: int(1000, 1).refine((n) => n <= 60_000, 'must be at most 60000'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  QUEUE_PREFIX: z.string().regex(/^\{[a-z0-9_-]+\}$/, 'must be a Redis hash tag like {hydra}').default('{hydra}'),
  HEARTBEAT_MS: int(2000, 100),
  JOB_ATTEMPTS: int(3, 1),
  BACKOFF_MS: int(1000, 0),
  BACKOFF_MAX_MS: int(30_000, 0),
  JOB_RETENTION_S: int(86_400, 60),
  /** How long an Idempotency-Key stands for its request (apps/api/idempotency.ts), s. */
  IDEMPOTENCY_TTL_S: int(86_400, 60),
  /** Completed / finally failed jobs kept per queue (BullMQ removeOnComplete/removeOnFail count); their side keys leave with them. */
  JOB_RETENTION_COUNT: int(50_000, 1),
  JOB_RETENTION_FAILED_COUNT: int(50_000, 1),
  NUM_CTX: int(4096, 128),
  NUM_PARALLEL: int(1, 1),
  /** Element type of the node's KV cache, as its OLLAMA_KV_CACHE_TYPE: sizes the KV cache in the memory estimate. */
  KV_CACHE_TYPE: z.preprocess(
    (v) => (typeof v === 'string' ? v.trim().toLowerCase() : v),
    z.enum(KV_CACHE_TYPES, { error: `must be one of ${KV_CACHE_TYPES.join(', ')} (the node's OLLAMA_KV_CACHE_TYPE; f16 when unset)` }).default('f16'),
  ),
  // api
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: int(8080, 0).refine((p) => p <= 65535, 'must be a port number (0-65535)'),
  API_KEYS: z
    .string()
    .default('')
    .transform((s) => s.split(',').map((k) => k.trim()).filter(Boolean))
    .refine((keys) => keys.every((k) => k.length >= 16), 'each key must be at least 16 characters'),
  /** "key=priority,..." default priority (1-10) of requests made with a key that send no X-Hydra-Priority. */
  API_KEY_PRIORITIES: z
    .string()
    .default('')
    .transform((s, ctx) => {
      const out = new Map<string, number>();
      for (const item of s.split(',').map((x) => x.trim()).filter(Boolean)) {
        const at = item.lastIndexOf('=');
        const p = Number(item.slice(at + 1));
        if (at <= 0 || !Number.isInteger(p) || p < 1 || p > 10) {
          ctx.addIssue({ code: 'custom', message: 'must be "key=priority,..." with priorities 1-10 (an entry is not)' });
          return out;
        }
        out.set(item.slice(0, at), p);
      }
      return out;
    }),
  BODY_LIMIT_BYTES: int(1_048_576, 1024),
  WAIT_MAX_MS: int(300_000, 1000),
  STREAM_RECONNECT_GRACE_MS: int(5000, 0),
  /** SIGTERM: the longest an API replica drains (in-flight waits and streams finish) before it exits, ms (docs/api-replicas.md). */
  SHUTDOWN_GRACE_MS: int(30_000, 0),
  MAX_PROMPT_CHARS: int(200_000, 0),
  RATE_LIMIT_PER_MIN: int(0, 0),
  // worker (node agent)
  NODE_ID: optional(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'may contain only letters, digits, _ . - (max 64)')),
  NODE_URL: optional(z.string()),
  BACKEND: z.enum(['auto', ...BACKEND_KINDS]).default('auto'),
  OLLAMA_URL: httpUrl.default('http://127.0.0.1:11434'),
  OPENAI_BASE_URL: optional(httpUrl),
  OPENAI_API_KEY: optional(z.string()),
  OPENAI_MODEL_SIZES: modelSizes,
  MODELS_DIR: z.string().default('./models'),
  OLLAMA_MODELS_DIR: optional(z.string()),
  LLAMA_THREADS: optional(number().int('must be a whole number').min(1, 'must be at least 1').max(256, 'must be at most 256')),
  NODE_VRAM_GB: optional(number().min(0, 'must not be negative')),
  NODE_RAM_GB: optional(number().min(0, 'must not be negative')),
  VRAM_BUFFER_MB: int(200, 0),
  WORKER_CONCURRENCY: optional(number().int('must be a whole number').min(1, 'must be at least 1').max(256, 'must be at most 256')),
  LOCALITY_WAIT_MS: int(500, 0),
  /** Best fit: a cold job is left this long (ms) to another idle node where it fits better (docs/scheduling.md). */
  BEST_FIT_WAIT_MS: int(250, 0),
  /** Session affinity: how long (s) a session stays tied to the node that ran its last turn; 0 turns it off. */
  SESSION_AFFINITY_S: int(600, 0),
  AGING_STEP_MS: int(10_000, 10),
  /** Waiting jobs a queue may hold before submits to it get 503 + Retry-After; 0 = unbounded (like OLLAMA_MAX_QUEUE). */
  MAX_QUEUE_DEPTH: int(0, 0),
  /** How long a model stays routable (queued, not 422) after the last node that had it stopped heartbeating (ms). */
  MODEL_GRACE_MS: int(60_000, 0),
  POLL_MS: int(1000, 10),
  /** Worker: log each node agent's dispatch round times (p50/p99/max) this often, ms; 0 = off (bench/scale.bench.ts). */
  DISPATCH_TIMING_LOG_MS: int(0, 0),
  LOCK_DURATION_MS: int(6000, 1000),
  STALLED_INTERVAL_MS: int(2000, 500),
  MAX_STALLED_COUNT: int(1, 0),
  /**
   * Fast failover (docs/reliability.md): every this long (ms) one live worker process, in turn, checks that each
   * registered worker's Redis connection is still open; 0 turns it off (a dead worker's jobs then wait for their locks).
   */
  LIVENESS_CHECK_MS: int(250, 0),
  /** How long (ms) a worker's connection must stay gone before the worker is taken for dead: longer than a reconnect. */
  LIVENESS_GRACE_MS: int(700, 100),
  BACKEND_TIMEOUT_MS: int(600_000, 100),
  DRAIN_MODE: z.enum(['requeue', 'finish']).default('requeue'),
  DRAIN_GRACE_MS: int(30_000, 0),
  BREAKER_FAILURES: int(3, 1),
  BREAKER_WINDOW_MS: int(30_000, 100),
  BREAKER_COOLDOWN_MS: int(10_000, 100),
  EXCLUDE_FAILED_NODE_MS: int(10_000, 0),
  /** Serve every Ollama / OpenAI-compatible server found on these hosts or IPv4 CIDRs as a node of this one process (docs/discovery.md). */
  DISCOVER: z
    .string()
    .default('')
    .transform((v, ctx) => {
      try {
        return parseDiscoverTargets(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: `must be a comma list of host, host:port, http(s)://host:port or a.b.c.d/n: ${(e as Error).message}` });
        return z.NEVER;
      }
    }),
  DISCOVER_PORTS: z
    .string()
    .default('11434')
    .transform((v, ctx) => {
      try {
        return parsePortList(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return z.NEVER;
      }
    }),
  DISCOVER_INTERVAL_MS: int(30_000, 100),
  DISCOVER_CONCURRENCY: int(64, 1).refine((n) => n <= 1024, 'must be at most 1024'),
  DISCOVER_TIMEOUT_MS: int(1000, 10).refine((n) => n <= 60_000, 'must be at most 60000'),
  // L1 cache and workflows (api and worker)
  CACHE_REDIS_URL: optional(redisUrl),
  /** The cache's own master at the same sentinels (REDIS_SENTINELS); CACHE_REDIS_URL then gives only its credentials. */
  CACHE_REDIS_SENTINEL_NAME: optional(sentinelName),
  CACHE_TTL_S: int(3600, 1),
  CACHE_MAX_ENTRY_BYTES: int(262_144, 256),
  ORCH_LIGHT_MODEL: optional(z.string().min(1)),
  ORCH_HEAVY_MODEL: optional(z.string().min(1)),
  /** The orchestrator's model catalog: the pool of each subtask type when its ORCH_MODELS_<TYPE> is empty. */
  ORCH_CATALOG: modelCatalog,
  ORCH_MODELS_CODE: modelList,
  ORCH_MODELS_MATH: modelList,
  ORCH_MODELS_REASONING: modelList,
  ORCH_MODELS_GENERAL: modelList,
  // metrics (docs/metrics.md)
  /** A worker's own /metrics (process metrics) on this port; 0 = off. Binds HOST as the API does (loopback without API_KEYS). */
  METRICS_PORT: int(0, 0).refine((p) => p <= 65535, 'must be a port number (0-65535)'),
  /** Distinct `model` label values in metrics; further models are counted as model="other" (bounded cardinality). */
  METRICS_MAX_MODELS: int(50, 1),
  /**
   * A worker gathers the job metrics of the jobs it ends over this long and records them together (one call per model);
   * 0 = inside each job's end call. Cluster job metrics lag by up to this; a worker that dies loses its unflushed part.
   */
  METRICS_FLUSH_MS: int(250, 0).refine((v) => v <= 60_000, 'must be at most 60000 (one minute)'),
  // results history (libs/memory, docs/memory.md)
  /** Where finished jobs and workflows are kept: unset = SQLite at HYDRA_DATA_DIR/history.sqlite, sqlite:<path>, postgres://..., or off. */
  MEMORY_URL: optional(
    z
      .string()
      .refine((v) => v === 'off' || /^sqlite:.+/.test(v) || (/^postgres(ql)?:\/\/.+/.test(v) && URL.canParse(v)), 'must be postgres://user:pass@host:port/db, sqlite:<path>, or off'),
  ),
  /** Records kept in the Redis stream while the history store is away (then the oldest are dropped): ~1-3 KB each. */
  MEMORY_STREAM_MAX: int(100_000, 1000),
  /** Rows (and their vectors) older than this many days are deleted every hour; 0 = kept for good. */
  MEMORY_RETENTION_DAYS: int(0, 0),
  /** The embed model the cluster runs (as low-priority embed jobs) for vectors of the history and /v1/memory/search; empty = vectors off. */
  MEMORY_EMBED_MODEL: optional(z.string().min(1).max(200)),
  /** cache: "semantic": the cosine similarity a stored prompt needs at least (a request's semantic_threshold overrides). */
  SEMANTIC_CACHE_THRESHOLD: number().min(0.5, 'must be at least 0.5').max(1, 'must be at most 1').default(0.9),
  /** cache: "semantic" across API keys: a stored answer to another key's request may answer this one. */
  SEMANTIC_CACHE_SHARED: flag(),
  /** API key ids (k_ + 16 hex, as the history records them) whose requests use cache: "semantic" when they set no cache; "*" for all. */
  SEMANTIC_CACHE_KEYS: z
    .string()
    .default('')
    .transform((s) => s.split(',').map((k) => k.trim()).filter(Boolean))
    .refine((ks) => ks.every((k) => k === '*' || /^k_[0-9a-f]{16}$/.test(k)), 'must be API key ids (k_ + 16 hex digits: printf %s "$KEY" | sha256sum | cut -c1-16) or *, comma-separated'),
  // batches and webhooks (docs/api.md "Batches", "Webhooks")
  /** Requests one POST /v1/batches may hold. */
  BATCH_MAX_REQUESTS: int(1000, 1).refine((n) => n <= 100_000, 'must be at most 100000'),
  /** Key of the X-Hydra-Signature HMAC-SHA256 on every callback; unset = callbacks are not signed. */
  WEBHOOK_SECRET: optional(z.string().min(16, 'must be at least 16 characters')),
  /** Hosts, addresses and CIDRs a callback_url may reach although they are loopback, private or link-local (webhook-allow.ts). */
  WEBHOOK_ALLOW: z
    .string()
    .default('')
    .transform((s, ctx) => {
      const out = s.split(',').map((x) => x.trim().toLowerCase()).filter(Boolean);
      const bad = out.find((x) => !webhookAllowEntry(x));
      if (bad !== undefined) {
        ctx.addIssue({ code: 'custom', message: `must be a comma list of host names, IP addresses and CIDRs (e.g. "hooks.internal,10.1.0.0/16,127.0.0.1"); "${bad}" is none of them` });
        return z.NEVER;
      }
      return out;
    }),
  /** One callback POST may take this long (ms) before it counts as failed and is retried. */
  WEBHOOK_TIMEOUT_MS: int(5000, 100).refine((n) => n <= 120_000, 'must be at most 120000'),
  /** Deliveries of one callback (first try + retries). */
  WEBHOOK_MAX_ATTEMPTS: int(5, 1).refine((n) => n <= 50, 'must be at most 50'),
  /** Retry backoff of a failed callback: exponential from this (ms): 1 s, 2 s, 4 s, ... */
  WEBHOOK_BACKOFF_MS: int(1000, 0),
  // launcher
  HYDRA_DATA_DIR: z.string().default('./data'),
  /** The file of settings every hydra command loads first (dotenv.ts); the environment wins over it. */
  HYDRA_ENV_FILE: optional(z.string().min(1)),
  // command-line client (hydra status)
  HYDRA_URL: httpUrl.default('http://127.0.0.1:8080'),
  HYDRA_API_KEY: optional(z.string().min(1)),
});
export type Config = z.infer<typeof ConfigSchema>;

/** Variables whose values are secrets. */
export const SECRET_VARS = new Set(['API_KEYS', 'API_KEY_PRIORITIES', 'OPENAI_API_KEY', 'HYDRA_API_KEY', 'REDIS_SENTINEL_PASSWORD', 'WEBHOOK_SECRET']);
/** Variables whose values may hold a password in their user-info part (shown with it masked). */
export const URL_VARS = new Set(['REDIS_URL', 'CACHE_REDIS_URL', 'MEMORY_URL']);


/** Parse an environment (process.env in apps/*\/main.ts). Throws ConfigError naming each bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const picked: Record<string, string | undefined> = {};
  for (const key of Object.keys(ConfigSchema.shape)) picked[key] = env[key] === '' ? undefined : env[key];
  const r = ConfigSchema.safeParse(picked);
  if (r.success) {
    const problems = redisSettingProblems(r.data);
    if (problems.length > 0) throw new ConfigError(problems);
    return r.data;
  }
  throw new ConfigError(
    r.error.issues.map((i) => {
      const name = String(i.path[0] ?? '?');
      // Secrets never reach a log or a terminal, even when they are the bad value.
      const raw = env[name] ?? '';
      const shown = SECRET_VARS.has(name) ? '(secret, not shown)' : JSON.stringify(URL_VARS.has(name) ? raw.replace(/\/\/[^@/]*@/, '//***@') : raw);
      return `${name}=${shown}: ${i.message}`;
    }),
  );
}

/**
 * Redis settings that mean something only together (a Sentinel setting without REDIS_SENTINELS would be ignored
 * silently), or not at all (Sentinel and Cluster).
 */
function redisSettingProblems(c: Config): string[] {
  if (c.REDIS_SENTINELS.length > 0 && c.REDIS_CLUSTER_NODES.length > 0) {
    return ['REDIS_SENTINELS and REDIS_CLUSTER_NODES are both set: Hydra reaches Redis through Sentinel or through a Redis Cluster, not both; unset one'];
  }
  if (c.REDIS_SENTINELS.length > 0) return [];
  const set = [
    ...(c.REDIS_SENTINEL_PASSWORD !== undefined ? ['REDIS_SENTINEL_PASSWORD'] : []),
    ...(c.REDIS_SENTINEL_TLS ? ['REDIS_SENTINEL_TLS'] : []),
    ...(c.CACHE_REDIS_SENTINEL_NAME !== undefined ? ['CACHE_REDIS_SENTINEL_NAME'] : []),
  ];
  return set.map((name) => `${name} is set but REDIS_SENTINELS is not: set REDIS_SENTINELS=host:port,... (the Sentinel addresses), or unset ${name}`);
}

export const CONFIG_KEYS = Object.keys(ConfigSchema.shape) as (keyof Config)[];

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);
export const isLoopbackHost = (h: string): boolean => LOOPBACK.has(h) || h.startsWith('127.');

/** For a process entry point: the config, or a message naming each bad variable on stderr and exit code 2. */
export function loadConfigOrExit(env: Record<string, string | undefined>, command: string): Config {
  try {
    return loadConfig(env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`${command}: ${e.message}\n`);
    process.exit(2);
  }
}

/** Job options every process builds the same way (libs/queue's catalog reads these). */
export const jobSettingsOf = (c: Config) => ({
  attempts: c.JOB_ATTEMPTS,
  backoffMs: c.BACKOFF_MS,
  retentionS: c.JOB_RETENTION_S,
  retentionCount: c.JOB_RETENTION_COUNT,
  retentionFailedCount: c.JOB_RETENTION_FAILED_COUNT,
});

/** This machine's names: a node whose registered host is one of them is local (prefer_local). */
export const localHostNames = (): string[] => [os.hostname(), 'localhost', '127.0.0.1'];
export { dotEnvLoaded, loadDotEnv, type DotEnv } from './dotenv.js';
