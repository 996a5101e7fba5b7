// The seeded workload: Poisson arrivals (open loop), Zipf model popularity, num_predict from a log-uniform draw; identical for every router.
import { mulberry32 } from '../../libs/core/index.js';
import { popularity } from './fleet-spec.js';

export interface WorkRequest {
  /** Index in the workload; the common set is matched by it. */
  i: number;
  /** Arrival, real-time-equivalent seconds after the start. */
  atS: number;
  model: string;
  numPredict: number;
  prompt: string;
}

/** The seeded PRNG shared with the rest of the tree (mulberry32: the same sequence on every machine for one seed). */
export const seededRandom = (seed: number): (() => number) => mulberry32(seed);

/** Output lengths: log-uniform between these (tokens), so short answers are common and long ones occur. */
export const NUM_PREDICT_MIN = 32;
export const NUM_PREDICT_MAX = 512;
/** Prompt words per request (each word is one simulated token). */
export const PROMPT_TOKENS = 24;

const FILLER = 'please answer the following question about distributed systems and queues in a few short clear sentences with one example each'.split(' ');

export interface WorkloadOptions {
  seed: number;
  requests: number;
  /** Arrivals per second, real-time equivalent. */
  ratePerS: number;
  /** Only these models (default: all), keeping their popularity ranks. */
  models?: readonly string[];
  /** Output lengths, tokens, log-uniform (default NUM_PREDICT_MIN-NUM_PREDICT_MAX). */
  numPredict?: readonly [number, number];
}

/** Mean of a log-uniform draw between `min` and `max`. */
export const logUniformMean = (min: number, max: number): number => (max === min ? min : (max - min) / Math.log(max / min));
export const MEAN_NUM_PREDICT = logUniformMean(NUM_PREDICT_MIN, NUM_PREDICT_MAX);

/** The same requests for the same options, on any machine. */
export function generateWorkload(o: WorkloadOptions): WorkRequest[] {
  const rnd = seededRandom(o.seed);
  const pop = Object.entries(popularity(o.models));
  const [lo, hi] = o.numPredict ?? [NUM_PREDICT_MIN, NUM_PREDICT_MAX];
  const drawModel = (): string => {
    let x = rnd();
    for (const [m, w] of pop) if ((x -= w) < 0) return m;
    return pop[pop.length - 1]![0];
  };
  const out: WorkRequest[] = [];
  let t = 0;
  for (let i = 0; i < o.requests; i++) {
    t += -Math.log(1 - rnd()) / o.ratePerS;
    const model = drawModel();
    const numPredict = Math.round(lo * (hi / lo) ** rnd());
    const words = Array.from({ length: PROMPT_TOKENS - 2 }, (_, k) => FILLER[(i + k) % FILLER.length]);
    out.push({ i, atS: t, model, numPredict, prompt: `request ${i} ${words.join(' ')}` });
  }
  return out;
}
