// API process entry: read env, bind (loopback only without API keys), serve until SIGTERM, then drain and exit.
import { pathToFileURL } from 'node:url';
import { isLoopbackHost, loadConfigOrExit } from '../../libs/config/index.js';
import { createLogger } from '../../libs/logger/index.js';
import { buildApp } from './app.js';
import { createApiContext } from './context.js';
import { Drain } from './drain.js';
import { startWebhookWorker } from './webhooks.js';

/** The longest closing the Redis connections may take after a drain, ms. */
const CLOSE_TIMEOUT_MS = 2000;

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const config = loadConfigOrExit(env, 'hydra api');
  const logger = createLogger({ name: 'api', level: config.LOG_LEVEL });
  let host = config.HOST;
  if (config.API_KEYS.length === 0 && !isLoopbackHost(host)) {
    logger.warn({ requested: host }, 'no API_KEYS configured: listening on loopback only (set API_KEYS to accept remote clients)');
    host = '127.0.0.1';
  } else if (config.API_KEYS.length === 0) {
    logger.info('no API_KEYS configured: API and Bull Board are open to loopback clients only');
  }
  const ctx = await createApiContext(config, logger);
  // Webhook deliveries (apps/api/webhooks.ts): every API replica takes its share of the deliveries queue.
  const webhooks = startWebhookWorker(ctx);
  const drain = new Drain(config.SHUTDOWN_GRACE_MS);
  const app = buildApp(ctx, drain);
  const server = app.listen(config.PORT, host, () => {
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : config.PORT;
    logger.info({ url: `http://${host}:${port}`, board: `http://${host}:${port}/admin/queues`, auth: config.API_KEYS.length > 0 }, 'api listening');
  });
  server.keepAliveTimeout = 65_000;
  // SIGTERM (a rolling restart): stop taking work, let what is in flight finish within SHUTDOWN_GRACE_MS, exit 0.
  // A second signal exits at once.
  const stop = (signal: NodeJS.Signals) => {
    if (drain.draining) {
      logger.warn({ signal, in_flight: drain.inFlight }, 'api exiting without finishing its drain');
      process.exit(1);
    }
    logger.info({ signal, in_flight: drain.inFlight, grace_ms: config.SHUTDOWN_GRACE_MS }, 'api draining');
    void drain.drain(server).then(async ({ ms, left }) => {
      if (left > 0) {
        // Past the grace: no close handler may run now (Ollama/OpenAI answers cancel their job when their client
        // goes), so exit with their connections open; their jobs go on and stay readable at /v1/jobs/:id.
        logger.warn({ ms, left }, 'api drain grace ended with requests still open: exiting');
        process.exit(0);
      }
      logger.info({ ms }, 'api drained');
      setTimeout(() => process.exit(0), CLOSE_TIMEOUT_MS).unref();
      await webhooks.close();
      await ctx.close().catch((e: Error) => logger.warn({ err: e.message }, 'closing the redis connections failed'));
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: Error) => {
    process.stderr.write(`hydra api: ${e.message}\n`);
    process.exit(1);
  });
}
