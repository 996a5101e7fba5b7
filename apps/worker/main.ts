// Worker process entry: read env, pick the backend, start the node agent, drain on SIGTERM.
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { ConfigError, loadConfigOrExit, type Config } from '../../libs/config/index.js';
import { createLogger, type Logger } from '../../libs/logger/index.js';
import type { InferenceBackend } from './backends/backend.js';
import { createOllamaBackend } from './backends/ollama.backend.js';
import { createOpenAIBackend } from './backends/openai.backend.js';
import { startNodeAgent } from './node-agent.js';

/** BACKEND=auto: Ollama when it answers, else an OpenAI-compatible server when configured, else llama.cpp in-process. */
export async function chooseBackend(config: Config, logger: Logger): Promise<InferenceBackend> {
  const kind = config.BACKEND;
  if (kind === 'ollama' || kind === 'auto') {
    const ollama = createOllamaBackend({ url: config.OLLAMA_URL, logger, requestTimeoutMs: config.BACKEND_TIMEOUT_MS });
    if (kind === 'ollama') return ollama;
    const probe = await ollama.probe(AbortSignal.timeout(1500));
    if (probe.healthy) return ollama;
    await ollama.close();
    logger.info({ url: config.OLLAMA_URL }, 'no Ollama answering; trying the next backend');
  }
  if (kind === 'openai' || (kind === 'auto' && config.OPENAI_BASE_URL)) {
    if (!config.OPENAI_BASE_URL) throw new ConfigError(['OPENAI_BASE_URL: required when BACKEND=openai']);
    return createOpenAIBackend({
      baseUrl: config.OPENAI_BASE_URL,
      ...(config.OPENAI_API_KEY ? { apiKey: config.OPENAI_API_KEY } : {}),
      logger,
      requestTimeoutMs: config.BACKEND_TIMEOUT_MS,
    });
  }
  // Loaded lazily: node-llama-cpp is optional and large.
  const { createLlamaCppBackend } = await import('./backends/llamacpp.backend.js');
  return createLlamaCppBackend({
    modelsDir: config.MODELS_DIR,
    ...(config.OLLAMA_MODELS_DIR ? { ollamaModelsDir: config.OLLAMA_MODELS_DIR } : {}),
    ...(config.LLAMA_THREADS ? { threads: config.LLAMA_THREADS } : {}),
    contextSize: config.NUM_CTX,
    logger,
  });
}

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const config = loadConfigOrExit(env, 'hydra worker');
  const logger = createLogger({ name: 'worker', level: config.LOG_LEVEL });
  const backend = await chooseBackend(config, logger);
  const nodeId = config.NODE_ID ?? os.hostname();
  const slots = config.WORKER_CONCURRENCY ?? (backend.kind === 'llamacpp' ? 1 : 4);
  const agent = await startNodeAgent({ config, logger, backend, nodeId, slots });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping: no new jobs, finishing active ones');
    agent.stop().then(
      () => process.exit(0),
      (e: Error) => {
        logger.error({ err: e.message }, 'unclean stop');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: Error) => {
    process.stderr.write(`hydra worker: ${e.message}\n`);
    process.exit(1);
  });
}
