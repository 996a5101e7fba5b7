// Ollama-style options → node-llama-cpp sampling and stopping, with Ollama's defaults for whatever a job leaves out. Pure.
import type { InferenceOptions } from '../../../../libs/core/index.js';

/**
 * Ollama's built-in defaults (api/types.go DefaultOptions), so a job samples the same way on this backend as on
 * Ollama. A model's own defaults (an Ollama store's params layer) sit between these and the job's options.
 */
export const OLLAMA_DEFAULTS = {
  temperature: 0.8,
  top_k: 40,
  top_p: 0.9,
  min_p: 0,
  repeat_penalty: 1.1,
  repeat_last_n: 64,
} as const;

export interface GenerationPlan {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  seed?: number;
  repeatPenalty: false | { penalty: number; lastTokens?: number; frequencyPenalty?: number; presencePenalty?: number };
  /** Undefined: until end of text or a full context window (never an endless generation). */
  maxTokens?: number;
  stop: string[];
  /** num_ctx, when the job (or the model's defaults) set one. */
  contextSize?: number;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Merge defaults (lowest first) with the job's options and translate. Unknown keys are ignored. */
export function planGeneration(options: InferenceOptions | undefined, modelDefaults: Record<string, unknown> = {}): GenerationPlan {
  const o: Record<string, unknown> = { ...OLLAMA_DEFAULTS, ...modelDefaults, ...(options ?? {}) };
  const temperature = num(o.temperature) ?? OLLAMA_DEFAULTS.temperature;
  const seed = num(o.seed);
  const numPredict = num(o.num_predict);
  const numCtx = num(o.num_ctx);
  const stop = Array.isArray(o.stop) ? o.stop.filter((s): s is string => typeof s === 'string' && s.length > 0) : [];

  const penalty = num(o.repeat_penalty) ?? 1;
  const lastN = num(o.repeat_last_n) ?? OLLAMA_DEFAULTS.repeat_last_n;
  const frequencyPenalty = num(o.frequency_penalty);
  const presencePenalty = num(o.presence_penalty);
  // repeat_last_n: 0 disables the penalty, -1 means the whole context (node-llama-cpp: lastTokens unset).
  const penalise = lastN !== 0 && (penalty !== 1 || !!frequencyPenalty || !!presencePenalty);

  return {
    // 0 is greedy in both Ollama and node-llama-cpp.
    temperature: Math.max(0, temperature),
    // Ollama's top_k 0 and node-llama-cpp's 0 both mean "whole vocabulary".
    topK: Math.max(0, Math.trunc(num(o.top_k) ?? OLLAMA_DEFAULTS.top_k)),
    topP: num(o.top_p) ?? OLLAMA_DEFAULTS.top_p,
    minP: num(o.min_p) ?? OLLAMA_DEFAULTS.min_p,
    // Ollama's seed -1 (or none) means random.
    ...(seed !== undefined && seed >= 0 ? { seed: Math.trunc(seed) } : {}),
    repeatPenalty: penalise
      ? {
          penalty,
          ...(lastN > 0 ? { lastTokens: Math.trunc(lastN) } : {}),
          ...(frequencyPenalty ? { frequencyPenalty } : {}),
          ...(presencePenalty ? { presencePenalty } : {}),
        }
      : false,
    // num_predict > 0 caps the reply; -1 (infinite), -2 (fill the context) and 0 all run to end of text or a full context.
    ...(numPredict !== undefined && numPredict > 0 ? { maxTokens: Math.trunc(numPredict) } : {}),
    stop,
    ...(numCtx !== undefined && numCtx > 0 ? { contextSize: Math.trunc(numCtx) } : {}),
  };
}

/** Ollama's keep_alive 0 ("0", "0s", "0m") asks for the model to be unloaded right after the request. */
export function unloadsAfter(keepAlive: string | number | undefined): boolean {
  if (keepAlive === undefined) return false;
  if (typeof keepAlive === 'number') return keepAlive === 0;
  return /^\s*0+(\.0+)?\s*(ms|s|m|h)?\s*$/.test(keepAlive);
}

/** node-llama-cpp's stop reasons → Ollama's done_reason. */
export function doneReason(stopReason: string): 'stop' | 'length' {
  return stopReason === 'maxTokens' ? 'length' : 'stop';
}
