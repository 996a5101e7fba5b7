// Metrics of one process: Node's own (a lean set by default, prom-client's whole default set on request; once per
// process) and the Redis commands its connections send, as the process sees them (latency from send to reply, errors).
import type { Command } from 'ioredis';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { RedisClient } from '../queue/index.js';
import { renderFamilies } from './exposition.js';
import { MetricSet, type LocalCounter, type LocalHistogram } from './local-metrics.js';
import { NodeMetrics } from './node-metrics.js';

/** Node's own metrics as Prometheus text. */
interface ProcessMetrics {
  metrics(): Promise<string>;
}

let processSet: ProcessMetrics | null = null;

/**
 * Node's own metrics, made on the first call (later calls get that set, whatever they ask): they describe the
 * process, so several API contexts in one process (tests) share them. By default the lean set (node-metrics.ts:
 * CPU, memory, heap, event-loop lag, GC, version); `full` gives prom-client's whole default set instead (open fds,
 * handles by type, heap spaces, ...), which costs a scrape several times more CPU.
 */
export function processMetrics(options: { full?: boolean } = {}): ProcessMetrics {
  if (!processSet) {
    if (options.full) {
      const registry = new Registry();
      collectDefaultMetrics({ register: registry });
      processSet = registry;
    } else {
      const node = new NodeMetrics();
      processSet = { metrics: () => Promise.resolve(renderFamilies(node.families())) };
    }
  }
  return processSet;
}

/** Blocking commands wait by design: their time says nothing about Redis. */
const BLOCKING = new Set(['blpop', 'brpop', 'brpoplpush', 'blmove', 'blmpop', 'bzpopmin', 'bzpopmax', 'bzmpop', 'wait', 'subscribe', 'psubscribe', 'ssubscribe']);
const isBlocking = (c: Command): boolean =>
  BLOCKING.has(c.name) || ((c.name === 'xread' || c.name === 'xreadgroup') && c.args.some((a) => String(a).toUpperCase() === 'BLOCK'));

/** Errors that are part of the protocol, not failures: ioredis answers NOSCRIPT by sending the script itself. */
const isExpected = (e: unknown): boolean => e instanceof Error && e.message.startsWith('NOSCRIPT');

const SEEN = Symbol('hydra.metrics.seen');

/** Redis command metrics of one process; `observe` hooks a connection into them. */
export class RedisMetrics {
  private readonly duration: LocalHistogram<'connection'>;
  private readonly commands: LocalCounter<'connection' | 'command'>;
  private readonly errors: LocalCounter<'connection' | 'command'>;

  /** In `target`: a MetricSet (the API), or a prom-client registry (a worker's /metrics). */
  constructor(target: MetricSet | Registry) {
    const set = target instanceof MetricSet ? target : new MetricSet().alsoIn(target);
    this.duration = set.histogram({
      name: 'hydra_redis_command_duration_seconds',
      help: 'Time from sending a Redis command to its reply, as this process sees it (pipelined commands each count; blocking commands are left out).',
      labelNames: ['connection'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    });
    this.commands = set.counter({ name: 'hydra_redis_commands_total', help: 'Redis commands this process sent, by command.', labelNames: ['connection', 'command'] });
    this.errors = set.counter({
      name: 'hydra_redis_command_errors_total',
      help: 'Redis commands that failed (error reply, connection lost or refused while offline), by command.',
      labelNames: ['connection', 'command'],
    });
  }

  /**
   * Observe every command `redis` sends from now on, under `connection` (its role). Replaces the instance's
   * `sendCommand`: one clock read at send, one reaction on the reply; a command resent after a reconnect counts once.
   */
  observe(redis: RedisClient, connection: string): void {
    // A Cluster passes a third argument (the node, on redirections and offline-queue replays): handed on untouched.
    const send = redis.sendCommand.bind(redis) as (command: Command, ...rest: unknown[]) => unknown;
    const timer = this.duration.labels(connection);
    const counters = new Map<string, { ok: { inc(): void }; err: { inc(): void } }>();
    const countersOf = (name: string) => {
      let c = counters.get(name);
      if (!c) counters.set(name, (c = { ok: this.commands.labels(connection, name), err: this.errors.labels(connection, name) }));
      return c;
    };
    redis.sendCommand = (command: Command, ...rest: unknown[]) => {
      const c = command as Command & { [SEEN]?: true };
      if (!c[SEEN] && !isBlocking(c)) {
        c[SEEN] = true;
        const start = performance.now();
        const counts = countersOf(c.name);
        counts.ok.inc();
        c.promise.then(
          () => timer.observe((performance.now() - start) / 1000),
          (e: unknown) => {
            timer.observe((performance.now() - start) / 1000);
            if (!isExpected(e)) counts.err.inc();
          },
        );
      }
      return send(command, ...rest);
    };
  }
}
