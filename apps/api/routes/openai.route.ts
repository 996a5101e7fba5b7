// The OpenAI API (/v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models) as a drop-in over Hydra's queue.
import { Router } from 'express';
import type { ApiContext } from '../context.js';

export function openaiRouter(_ctx: ApiContext): Router {
  return Router();
}
