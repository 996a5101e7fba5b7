// Token timing of inference calls, measured where tokens arrive: a backend wrapper notes the first token's time and the
// gaps between tokens of each call, keyed by the call's abort signal (one per job), until the job's end takes them.
import { bucketIndex } from './exposition.js';
import { STORED } from './stored.js';

export interface TokenTiming {
  /** When the first token (reasoning or answer) arrived, ms since the epoch; null when none did. */
  firstAt: number | null;
  /** Inter-token gaps per bucket of STORED.interToken (seconds), not cumulative; the last is +Inf. */
  gapCounts: number[];
  gapSum: number;
  gaps: number;
}

interface Hooks {
  signal: AbortSignal;
  onToken?: (text: string) => void;
  onThinking?: (text: string) => void;
}

/** The calls that stream tokens; embed and model management pass through untouched. */
interface Streaming {
  generate(call: never, hooks: Hooks): Promise<unknown>;
  chat(call: never, hooks: Hooks): Promise<unknown>;
}

interface TokenTimer<B> {
  /** The backend, same interface, with generate and chat timed. */
  backend: B;
  /** The timing of the call made with `signal`, once (it is forgotten after). */
  take(signal: AbortSignal | undefined): TokenTiming | undefined;
}

/** Wrap `backend`: per token one clock read and a bucket lookup, nothing else on the token path. */
export function tokenTimer<B extends Streaming>(backend: B): TokenTimer<B> {
  const bounds = STORED.interToken.buckets;
  const timings = new WeakMap<AbortSignal, TokenTiming>();
  const timed =
    (fn: (call: never, hooks: Hooks) => Promise<unknown>) =>
    (call: never, hooks: Hooks): Promise<unknown> => {
      const t: TokenTiming = { firstAt: null, gapCounts: new Array<number>(bounds.length + 1).fill(0), gapSum: 0, gaps: 0 };
      timings.set(hooks.signal, t);
      let last = 0;
      const tick = () => {
        const now = performance.now();
        if (t.firstAt === null) t.firstAt = Date.now();
        else {
          const gap = (now - last) / 1000;
          t.gapCounts[bucketIndex(bounds, gap)]!++;
          t.gapSum += gap;
          t.gaps++;
        }
        last = now;
      };
      const wrap = (f: ((text: string) => void) | undefined) =>
        f &&
        ((text: string) => {
          tick();
          f(text);
        });
      return fn.call(backend, call, { ...hooks, onToken: wrap(hooks.onToken), onThinking: wrap(hooks.onThinking) });
    };
  const generate = timed(backend.generate as Streaming['generate']);
  const chat = timed(backend.chat as Streaming['chat']);
  const proxied = new Proxy(backend, {
    get(target, prop) {
      if (prop === 'generate') return generate;
      if (prop === 'chat') return chat;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return {
    backend: proxied,
    take(signal) {
      if (!signal) return undefined;
      const t = timings.get(signal);
      timings.delete(signal);
      return t;
    },
  };
}
