// Bull Board at /admin/queues, kept in step with the queue registry so queues created at run time appear.
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { RequestHandler, Router } from 'express';
import type { ApiContext } from './context.js';

export const BOARD_PATH = '/admin/queues';

export function boardRouter(ctx: ApiContext): { sync: RequestHandler; router: Router } {
  const server = new ExpressAdapter();
  server.setBasePath(BOARD_PATH);
  const board = createBullBoard({ queues: [], serverAdapter: server, options: { uiConfig: { boardTitle: 'Hydra queues' } } });
  const shown = new Set<string>();
  let lastSync = 0;
  const sync: RequestHandler = (_req, _res, next) => {
    if (Date.now() - lastSync < 500) return next();
    lastSync = Date.now();
    ctx.producer
      .listQueues()
      .then((queues) => {
        for (const q of queues.sort((a, b) => a.name.localeCompare(b.name))) {
          if (shown.has(q.name)) continue;
          board.addQueue(new BullMQAdapter(ctx.producer.queue(q.name), { readOnlyMode: false }));
          shown.add(q.name);
        }
        next();
      })
      .catch(next);
  };
  return { sync, router: server.getRouter() as Router };
}
