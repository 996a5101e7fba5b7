// The backend table: how each backend kind is built from config, and BACKEND=auto as a walk down that table.
import type { BackendKind } from '../../../libs/core/index.js';
import { ConfigError, type Config } from '../../../libs/config/index.js';
import type { Logger } from '../../../libs/logger/index.js';
import type { InferenceBackend } from './backend.js';
import { createOllamaBackend } from './ollama.backend.js';
import { createOpenAIBackend } from './openai.backend.js';

export interface BackendEntry {
  /** Builds the backend; throws ConfigError when a variable it needs is missing. */
  create(config: Config, logger: Logger): Promise<InferenceBackend> | InferenceBackend;
  /** BACKEND=auto takes it only when it answers a probe within AUTO_PROBE_MS (a server that may simply not be running). */
  autoProbe: boolean;
  /** BACKEND=auto skips it when this says it is not configured (it has no default address). */
  configured?: (config: Config) => boolean;
}

/** How long BACKEND=auto waits for a probed backend: a local server answers in milliseconds. */
const AUTO_PROBE_MS = 1500;
const GIB = 1024 ** 3;

/**
 * Every backend kind (the list is BACKEND_KINDS in libs/core), in the order BACKEND=auto tries them: the last one
 * needs no server and is the fallback. Adding a backend: its file, its kind in BACKEND_KINDS, and one line here.
 */
export const BACKENDS: Record<BackendKind, BackendEntry> = {
  ollama: {
    create: (config, logger) => createOllamaBackend({ url: config.OLLAMA_URL, logger, requestTimeoutMs: config.BACKEND_TIMEOUT_MS }),
    autoProbe: true,
  },
  openai: {
    create: (config, logger) => {
      if (!config.OPENAI_BASE_URL) throw new ConfigError(['OPENAI_BASE_URL: required when BACKEND=openai']);
      return createOpenAIBackend({
        baseUrl: config.OPENAI_BASE_URL,
        ...(config.OPENAI_API_KEY ? { apiKey: config.OPENAI_API_KEY } : {}),
        // OpenAI-compatible servers do not report sizes; the scheduler needs bytes.
        modelSizes: Object.fromEntries(Object.entries(config.OPENAI_MODEL_SIZES).map(([name, gb]) => [name, Math.round(gb * GIB)])),
        logger,
        requestTimeoutMs: config.BACKEND_TIMEOUT_MS,
      });
    },
    autoProbe: false,
    configured: (config) => config.OPENAI_BASE_URL !== undefined,
  },
  llamacpp: {
    create: async (config, logger) => {
      // Loaded lazily: node-llama-cpp is optional and large.
      const { createLlamaCppBackend } = await import('./llamacpp.backend.js');
      return createLlamaCppBackend({
        modelsDir: config.MODELS_DIR,
        ...(config.OLLAMA_MODELS_DIR ? { ollamaModelsDir: config.OLLAMA_MODELS_DIR } : {}),
        ...(config.LLAMA_THREADS ? { threads: config.LLAMA_THREADS } : {}),
        contextSize: config.NUM_CTX,
        logger,
      });
    },
    autoProbe: false,
  },
};

/** BACKEND=<kind> builds that kind; BACKEND=auto takes the first configured entry of the table that answers (if probed). */
export async function chooseBackend(config: Config, logger: Logger): Promise<InferenceBackend> {
  if (config.BACKEND !== 'auto') return BACKENDS[config.BACKEND].create(config, logger);
  for (const [kind, entry] of Object.entries(BACKENDS) as [BackendKind, BackendEntry][]) {
    if (entry.configured && !entry.configured(config)) continue;
    const backend = await entry.create(config, logger);
    if (!entry.autoProbe) return backend;
    const probe = await backend.probe(AbortSignal.timeout(AUTO_PROBE_MS));
    if (probe.healthy) return backend;
    await backend.close();
    logger.info({ backend: kind, url: backend.url }, 'backend not answering; trying the next backend');
  }
  throw new Error('no backend in the table can serve BACKEND=auto: its last entry must need no server');
}
