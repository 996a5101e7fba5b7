// Worker process entry: read env, pick the backend, start the node agent, drain on SIGTERM.
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { loadConfigOrExit } from '../../libs/config/index.js';
import { createLogger } from '../../libs/logger/index.js';
import { chooseBackend } from './backends/index.js';
import { startNodeAgent } from './node-agent.js';

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const config = loadConfigOrExit(env, 'hydra worker');
  const logger = createLogger({ name: 'worker', level: config.LOG_LEVEL });
  const backend = await chooseBackend(config, logger);
  const nodeId = config.NODE_ID ?? os.hostname();
  const slots = config.WORKER_CONCURRENCY ?? (backend.kind === 'llamacpp' ? 1 : 4);
  // Signals are handled from the start: a SIGTERM that arrives while the agent is still starting (it registers the node
  // with its first heartbeat, before it is ready to drain) waits for the start, then drains, instead of killing the
  // process mid-way and leaving its registration behind.
  const agentReady = startNodeAgent({ config, logger, backend, nodeId, slots });
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
