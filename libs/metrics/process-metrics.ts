// Metrics of one process: Node's own (prom-client's default set, once per process) and the Redis commands its
// connections send, as the process sees them (latency from send to reply, errors).
import type { Command, Redis } from 'ioredis';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

let processRegistry: Registry | null = null;

/**
 * prom-client's default metrics (CPU, memory, event loop lag, GC, handles) in a registry of their own, made on the
 * first call: they describe the process, so several API contexts in one process (tests) share them.
 */
export function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** Blocking commands wait by design: their time says nothing about Redis. */
const BLOCKING = new Set(['blpop', 'brpop', 'brpoplpush', 'blmove', 'blmpop', 'bzpopmin', 'bzpopmax', 'bzmpop', 'wait', 'subscribe', 'psubscribe', 'ssubscribe']);
const isBlocking = (c: Command): boolean =>
  BLOCKING.has(c.name) || ((c.name === 'xread' || c.name === 'xreadgroup') && c.args.some((a) => String(a).toUpperCase() === 'BLOCK'));

/** Errors that are part of the protocol, not failures: ioredis answers NOSCRIPT by sending the script itself. */
const isExpected = (e: unknown): boolean => e instanceof Error && e.message.startsWith('NOSCRIPT');

const SEEN = Symbol('hydra.metrics.seen');

/** Redis command metrics of one registry; `observe` hooks a connection into them. */
export class RedisMetrics {
  private readonly duration: Histogram<'connection'>;
  private readonly commands: Counter<'connection' | 'command'>;
  private readonly errors: Counter<'connection' | 'command'>;

  constructor(registry: Registry) {
    this.duration = new Histogram({
      name: 'hydra_redis_command_duration_seconds',
      help: 'Time from sending a Redis command to its reply, as this process sees it (pipelined commands each count; blocking commands are left out).',
      labelNames: ['connection'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    });
    this.commands = new Counter({ name: 'hydra_redis_commands_total', help: 'Redis commands this process sent, by command.', labelNames: ['connection', 'command'], registers: [registry] });
    this.errors = new Counter({
      name: 'hydra_redis_command_errors_total',
      help: 'Redis commands that failed (error reply, connection lost or refused while offline), by command.',
      labelNames: ['connection', 'command'],
      registers: [registry],
    });
  }

  /**
   * Observe every command `redis` sends from now on, under `connection` (its role). Replaces the instance's
   * `sendCommand`: one clock read at send, one reaction on the reply; a command resent after a reconnect counts once.
   */
  observe(redis: Redis, connection: string): void {
    const send = redis.sendCommand.bind(redis);
    const timer = this.duration.labels(connection);
    const counters = new Map<string, { ok: Counter.Internal; err: Counter.Internal }>();
    const countersOf = (name: string) => {
      let c = counters.get(name);
      if (!c) counters.set(name, (c = { ok: this.commands.labels(connection, name), err: this.errors.labels(connection, name) }));
      return c;
    };
    redis.sendCommand = (command: Command, stream?: Parameters<Redis['sendCommand']>[1]) => {
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
      return send(command, stream);
    };
  }
}
