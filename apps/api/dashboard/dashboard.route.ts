// /dashboard: the live cluster page (plain HTML, JS and CSS from ./page, no build step) and its one JSON endpoint.
// Mounted behind the same key check as Bull Board (app.ts).
import { readFileSync } from 'node:fs';
import { Router, type Request, type Response } from 'express';
import { ActivityLog } from '../../../libs/activity/index.js';
import { BOARD_PATH } from '../board.js';
import type { ApiContext } from '../context.js';
import { route } from '../errors.js';
import { stateReader } from './state.js';

export const DASHBOARD_PATH = '/dashboard';

/** Everything the page loads comes from this origin; it renders text only (no inline script or style, no eval). */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PAGE = new URL('./page/', import.meta.url);
const ASSETS = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
} as const;

export function dashboardRouter(ctx: ApiContext): Router {
  const r = Router();
  const drainer = ctx.history;
  const history = drainer
    ? async (since: number) => {
        const store = drainer.current;
        if (!store) throw new Error(drainer.status().last_error ?? 'the store is still opening');
        return { store: store.dialect, models: await store.stats({ by: 'model', since }) };
      }
    : null;
  const state = stateReader({ redis: ctx.redis, keys: ctx.keys, producer: ctx.producer, nodes: ctx.nodes, activity: new ActivityLog(ctx.redis, ctx.keys), boardPath: BOARD_PATH, history });
  for (const [path, asset] of Object.entries(ASSETS)) {
    // Read once, when the app is built: a few KB, and a missing file fails at start, not on the first visit.
    const body = readFileSync(new URL(asset.file, PAGE));
    r.get(path, (_req: Request, res: Response) => {
      res.setHeader('Content-Type', asset.type);
      res.setHeader('Cache-Control', 'no-cache');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.setHeader('Content-Security-Policy', CSP);
      res.send(body);
    });
  }
  r.get(
    '/state',
    route(async (_req: Request, res: Response) => {
      const s = await state();
      res.setHeader('Cache-Control', 'no-store');
      res.json(s);
    }),
  );
  return r;
}
