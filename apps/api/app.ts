// Builds the express app (never listens): JSON limits, auth, /v1 routes, Bull Board, health.
import express, { type Express, type Request, type Response } from 'express';
import type { ApiContext } from './context.js';
import { requireKey } from './auth.js';
import { BOARD_PATH, boardRouter } from './board.js';
import { errorHandler, route, sendError } from './errors.js';
import { jobsRouter } from './routes/jobs.route.js';
import { nodesRouter } from './routes/nodes.route.js';
import { ErrorCode, HydraError } from '../../libs/core/index.js';

export function buildApp(ctx: ApiContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.get(
    '/healthz',
    route(async (_req: Request, res: Response) => {
      const redisOk = await ctx.redis.ping().then(
        () => true,
        () => false,
      );
      res.status(redisOk ? 200 : 503).json({ ok: redisOk, redis: redisOk ? 'up' : 'down' });
    }),
  );

  const board = boardRouter(ctx);
  app.use(BOARD_PATH, requireKey(ctx.config.API_KEYS, { basicRealm: 'hydra' }), board.sync, board.router);

  app.use('/v1', requireKey(ctx.config.API_KEYS));
  app.use('/v1', express.json({ limit: ctx.config.BODY_LIMIT_BYTES, strict: false, type: () => true }));
  app.use(jobsRouter(ctx));
  app.use(nodesRouter(ctx));
  app.use((req, res) => sendError(res, new HydraError(ErrorCode.NotFound, `no route ${req.method} ${req.path}`)));
  app.use(errorHandler(ctx.logger));
  return app;
}
