// The hydra command line: up (a whole local cluster), api, worker, status, pull, run, jobs, job, cancel, discover, sim, make-tiny-model, config.
const USAGE = `usage: hydra <command> [options]

  up [--sim N] [--no-worker] [--install-redis]
                               start a local cluster: Redis (REDIS_URL, or a private redis-server
                               with AOF under ./data), the API, and one worker on the best backend
                               found (Ollama, OPENAI_BASE_URL, else llama.cpp with the models in
                               MODELS_DIR, else the built-in toy model); --sim N adds N simulated nodes;
                               --install-redis installs redis-server when it is missing (apt-get, dnf,
                               yum, zypper, apk or brew; as root or through passwordless sudo), else
                               prints the exact command (in a terminal it asks first)
  api                          the API alone (env: REDIS_URL, PORT, HOST, API_KEYS, ...)
  worker                       one node agent alone (env: REDIS_URL, BACKEND, OLLAMA_URL, NODE_ID, NODE_VRAM_GB, ...),
                               or with DISCOVER=hosts-or-cidr one node per server found (docs/discovery.md)
  status [--watch] [--interval S]
                               the cluster as a table: nodes (health, VRAM, loaded models, slots, tokens/s)
                               and queues (waiting per priority, oldest wait), from the API at HYDRA_URL
                               (default http://127.0.0.1:8080) with HYDRA_API_KEY; --watch redraws every
                               S seconds (default 2) until Ctrl-C
  pull <model> [--node ID]... [--insecure]
                               pull a model onto the cluster's Ollama nodes through the API (HYDRA_URL,
                               HYDRA_API_KEY): every healthy Ollama node that can hold it, or each
                               --node named; shows each node's progress (percent, bytes, status) and
                               exits 0 only when every node has the model (--insecure: Ollama's
                               insecure registry option)
  run -m MODEL [--type generate|chat|embed] [--system S] [--priority P] [-o KEY=VALUE]... [--json] ["prompt"]
                               run one job through the API (HYDRA_URL, HYDRA_API_KEY) and stream its tokens as
                               they arrive (the prompt from stdin when none is given; -o sets inference options,
                               e.g. -o temperature=0); Ctrl-C cancels the job on its node; --json prints one JSON
                               object per event; exits 0 done, 1 failed, 130 cancelled
  jobs [--limit N] [--state S] [--model M] [--json]
                               recent jobs, newest first (state: waiting, active, delayed, completed, failed)
  job ID [--json]              one job: state, node, times, attempts, the answer or the error
  cancel ID [--json]           cancel a job: a waiting one is removed, a running one aborted on its node
  discover <hosts|a.b.c.d/n>[,...] [--ports P,...] [--json] [--timeout-ms N] [--concurrency N]
                               scan for Ollama and OpenAI-compatible servers (GET /api/version, /v1/models)
                               and print what answered: address, kind, version, models; exits 0 when
                               something was found, 1 when nothing was (docs/discovery.md)
  sim --vram-gb G --models "name=GB,..." [--port P]
                               one simulated Ollama node (for tests and demos without GPUs)
  make-tiny-model [--out PATH] write the toy GGUF model used by tests and the default cluster
  memory prune --older-than AGE [--json]
                               delete the results history's rows that finished more than AGE (30d, 24h)
                               ago, and their vectors, from the store MEMORY_URL names (docs/memory.md)
  config [--json]              the effective settings: every variable, its value (secrets masked) and where it
                               came from (environment, the settings file, default)

Every command first loads .env from the working directory (or the file HYDRA_ENV_FILE names); a variable set in
the environment wins over the file.
Every variable is listed with its default in .env.example.`;

export async function run(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  // Every command: the settings file (.env or HYDRA_ENV_FILE) under the environment, before anything reads it.
  const { ConfigError, loadDotEnv } = await import('../../libs/config/index.js');
  try {
    loadDotEnv(process.env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`hydra ${cmd ?? ''}: ${e.message}\n`.replace('hydra : ', 'hydra: '));
    process.exit(2);
  }
  switch (cmd) {
    case 'up': {
      const { up } = await import('./up.js');
      return up(rest);
    }
    case 'api': {
      const m = await import('../api/main.js');
      return m.main(process.env);
    }
    case 'worker': {
      const m = await import('../worker/main.js');
      return m.main(process.env);
    }
    case 'memory': {
      const m = await import('./memory.js');
      return m.memory(rest, process.env);
    }
    case 'config': {
      const m = await import('./config.js');
      return m.config(rest, process.env);
    }
    case 'status': {
      const m = await import('./status.js');
      return m.status(rest, process.env);
    }
    case 'pull': {
      const m = await import('./pull.js');
      return m.pull(rest, process.env);
    }
    case 'run': {
      const m = await import('./run.js');
      return m.run(rest, process.env);
    }
    case 'jobs':
    case 'job':
    case 'cancel': {
      const m = await import('./jobs.js');
      return m[cmd](rest, process.env);
    }
    case 'discover': {
      const m = await import('./discover.js');
      return m.discover(rest, process.env);
    }
    case 'sim': {
      const m = await import('../node-sim/main.js');
      return m.main(rest);
    }
    case 'make-tiny-model': {
      const m = await import('../../scripts/make-tiny-model.js');
      process.exitCode = await m.main(rest);
      return;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return;
    default:
      process.stderr.write(`hydra: unknown command "${cmd}"\n${USAGE}\n`);
      process.exitCode = 2;
  }
}
