// The Ollama API (/, /api/*) as a drop-in: every request goes through Hydra's queue, scheduler and limits.
import { Router } from 'express';
import type { ApiContext } from '../context.js';

export function ollamaRouter(_ctx: ApiContext): Router {
  return Router();
}
