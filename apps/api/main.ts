// API process entry: read env, bind (loopback only without API keys), serve until SIGTERM.
import { pathToFileURL } from 'node:url';
import { isLoopbackHost, loadConfigOrExit } from '../../libs/config/index.js';
import { createLogger } from '../../libs/logger/index.js';
import { buildApp } from './app.js';
import { createApiContext } from './context.js';

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
  const app = buildApp(ctx);
  const server = app.listen(config.PORT, host, () => {
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : config.PORT;
    logger.info({ url: `http://${host}:${port}`, board: `http://${host}:${port}/admin/queues`, auth: config.API_KEYS.length > 0 }, 'api listening');
  });
  server.keepAliveTimeout = 65_000;
  const stop = () => {
    server.close();
    server.closeAllConnections();
    void ctx.close().finally(() => process.exit(0));
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
