// Worker process entry: read env, then either pick the backend and serve it as one node, or (DISCOVER) scan for servers
// and serve each as a node of this process; drain on SIGTERM.
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { loadConfigOrExit, type Config } from '../../libs/config/index.js';
import { createLogger, type Logger } from '../../libs/logger/index.js';
import { startDiscovery } from './discovery.js';

// The scan, for `hydra discover` (the cli may import only an app's main).
export { discoveredNodeId, scanTargets, type FoundServer, type ScanOptions } from './discovery.js';

interface Running {
  stop(): Promise<void>;
}

// The process parts and backends load on demand: `hydra discover` imports this file for the scan alone.
async function serveDiscovered(config: Config, logger: Logger): Promise<Running> {
  const { startWorkerProcess } = await import('./worker-process.js');
  const proc = await startWorkerProcess(config, logger);
  const discovery = startDiscovery(proc, config, logger);
  await discovery.ready;
  return {
    async stop() {
      await discovery.stop();
      await proc.stop();
    },
  };
}

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const config = loadConfigOrExit(env, 'hydra worker');
  const logger = createLogger({ name: 'worker', level: config.LOG_LEVEL });
  if (config.DISCOVER.length > 0 && config.BACKEND === 'llamacpp') {
    process.stderr.write('hydra worker: DISCOVER finds Ollama and OpenAI-compatible servers; BACKEND=llamacpp runs in-process: unset one of them\n');
    process.exit(2);
  }
  let start: () => Promise<Running>;
  if (config.DISCOVER.length > 0) start = () => serveDiscovered(config, logger);
  else {
    const { chooseBackend } = await import('./backends/index.js');
    const { startSingleNode } = await import('./worker-process.js');
    const backend = await chooseBackend(config, logger);
    const nodeId = config.NODE_ID ?? os.hostname();
    const slots = config.WORKER_CONCURRENCY ?? (backend.kind === 'llamacpp' ? 1 : 4);
    start = () => startSingleNode(config, logger, { backend, nodeId, slots });
  }
  // Signals are handled from the start: a SIGTERM that arrives while the agent is still starting (it registers the node
  // with its first heartbeat, before it is ready to drain) waits for the start, then drains, instead of killing the
  // process mid-way and leaving its registration behind.
  const agentReady = start();
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping: no new jobs, finishing active ones');
    agentReady
      .then((agent) => agent.stop())
      .then(
        () => process.exit(0),
        (e: Error) => {
          logger.error({ err: e.message }, 'unclean stop');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await agentReady;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: Error) => {
    process.stderr.write(`hydra worker: ${e.message}\n`);
    process.exit(1);
  });
}
