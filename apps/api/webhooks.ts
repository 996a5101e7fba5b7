// The API's webhook delivery worker: a BullMQ Worker on the deliveries queue (libs/queue/deliveries.ts) that POSTs the
// ended job's, workflow's or batch's view to its callback URL, signed (X-Hydra-Signature, HMAC-SHA256 with
// WEBHOOK_SECRET), with a timeout and no redirects; a non-2xx answer or a timeout is retried with exponential backoff
// up to WEBHOOK_MAX_ATTEMPTS. Each attempt is appended to the callback's delivery log. The allow-list is checked again
// on the address connected to; a refused address is logged and not retried.
import { createHmac } from 'node:crypto';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { Agent, request } from 'undici';
import { createRedis, DeliveryJobSchema, logDelivery, queueRedisTarget, DELIVERY_QUEUE, type DeliveryAttempt, type DeliveryEvent, type DeliveryJob } from '../../libs/queue/index.js';
import type { ApiContext } from './context.js';
import { withDeliveries } from './job-view.js';
import { batchView } from './services/batches.js';
import { findJob } from './services/jobs.js';
import { checkCallbackUrl, guardedLookup, RefusedAddressError } from './webhook-allow.js';

/** Deliveries in flight at once per API process (each mostly waits on the receiver). */
const DELIVERY_CONCURRENCY = 16;

interface WebhookWorker {
  close(): Promise<void>;
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: what a receiver recomputes to check a callback. */
function signature(secret: string, body: string, t: number): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

/** The event of a job or workflow whose end the queuer did not name, from its view. */
const eventOf = (d: DeliveryJob, state: string): DeliveryEvent => {
  if (d.event) return d.event;
  if (d.target === 'workflow') return state === 'completed' ? 'workflow.completed' : 'workflow.failed';
  if (d.target === 'batch') return state === 'cancelled' ? 'batch.cancelled' : 'batch.completed';
  return state === 'completed' ? 'job.completed' : state === 'cancelled' ? 'job.cancelled' : 'job.failed';
};

/** The body: `{event, data}` with the target's view as it is now (the job view includes its deliveries so far). */
async function bodyOf(ctx: ApiContext, d: DeliveryJob): Promise<{ event: DeliveryEvent; data: unknown }> {
  let data: { state: string } & Record<string, unknown>;
  if (d.target === 'job') {
    const found = await findJob(ctx, d.id);
    data = found.kind === 'found' ? ((await withDeliveries(ctx.redis, ctx.keys, found.view)) as never) : { id: d.id, state: found.kind === 'cancelled' ? 'cancelled' : 'unknown' };
  } else if (d.target === 'workflow') {
    data = ((await ctx.coordinator.view(d.id)) as never) ?? { id: d.id, state: 'unknown' };
  } else {
    data = ((await batchView(ctx, d.id)) as never) ?? { id: d.id, state: 'unknown' };
  }
  return { event: eventOf(d, data.state), data };
}

export function startWebhookWorker(ctx: ApiContext): WebhookWorker {
  const { config, keys, logger } = ctx;
  const log = logger.child({ part: 'webhooks' });
  const timeout = config.WEBHOOK_TIMEOUT_MS;
  // Every connection resolves through the allow-list check; undici follows no redirects unless told to.
  const agent = new Agent({ connect: { lookup: guardedLookup(() => ctx.config.WEBHOOK_ALLOW), timeout }, headersTimeout: timeout, bodyTimeout: timeout });
  const connection = createRedis(queueRedisTarget(config), 'worker');
  connection.on('error', () => {});

  const record = (id: string, entry: DeliveryAttempt) =>
    logDelivery(ctx.redis, keys, id, entry, config.JOB_RETENTION_S).catch((e: Error) => log.warn({ id, err: e.message }, 'delivery not logged'));

  const deliver = async (job: Job): Promise<void> => {
    const parsed = DeliveryJobSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`invalid delivery: ${parsed.error.message}`);
    const d = parsed.data;
    const attempt = job.attemptsMade + 1;
    const at = new Date().toISOString();
    const fields = { delivery: job.id, target: d.target, id: d.id, attempt };
    // Checked again now (the allow-list may have changed, the name may resolve elsewhere): refused = logged, not retried.
    const verdict = await checkCallbackUrl(d.url, ctx.config.WEBHOOK_ALLOW);
    if (!verdict.ok) {
      await record(d.id, { attempt, at, status_code: null, ok: false, error: `refused: ${verdict.why}`, duration_ms: 0 });
      log.warn({ ...fields, why: verdict.why }, 'callback refused by the allow-list');
      throw new UnrecoverableError(`callback refused: ${verdict.why}`);
    }
    let body = d.body;
    let event = d.event;
    if (body === undefined) {
      const b = await bodyOf(ctx, d);
      body = JSON.stringify(b);
      event = b.event;
      // Fixed now: every retry sends the same bytes (and so the same signed payload).
      await job.updateData({ ...d, event, body });
    }
    const t = Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'hydra-webhooks',
      'x-hydra-event': event ?? `${d.target}.end`,
      'x-hydra-delivery': job.id!,
      ...(config.WEBHOOK_SECRET ? { 'x-hydra-signature': signature(config.WEBHOOK_SECRET, body, t) } : {}),
    };
    const started = performance.now();
    let status: number | null = null;
    let error: string | undefined;
    let refused = false;
    try {
      const r = await request(d.url, { method: 'POST', headers, body, dispatcher: agent, signal: AbortSignal.timeout(timeout) });
      status = r.statusCode;
      await r.body.dump().catch(() => undefined);
    } catch (e) {
      const err = e as Error & { code?: string; cause?: { code?: string } };
      refused = err instanceof RefusedAddressError || err.code === 'EHYDRAREFUSED' || err.cause instanceof RefusedAddressError;
      error = err.name === 'TimeoutError' || err.name === 'AbortError' ? `no answer within WEBHOOK_TIMEOUT_MS (${timeout} ms)` : (err.cause instanceof Error ? err.cause.message : err.message);
    }
    const ok = status !== null && status >= 200 && status < 300;
    const entry: DeliveryAttempt = {
      attempt,
      at,
      status_code: status,
      ok,
      ...(error ? { error: refused ? `refused: ${error}` : error } : !ok ? { error: `the receiver answered ${status}` } : {}),
      duration_ms: Math.round(performance.now() - started),
    };
    await record(d.id, entry);
    if (ok) return void log.info({ ...fields, status, ms: entry.duration_ms }, 'callback delivered');
    const last = attempt >= (job.opts.attempts ?? 1);
    log.warn({ ...fields, status, err: entry.error, final: last || refused }, refused ? 'callback refused by the allow-list' : last ? 'callback failed for good' : 'callback failed; will retry');
    if (refused) throw new UnrecoverableError(entry.error);
    throw new Error(entry.error);
  };

  const worker = new Worker(DELIVERY_QUEUE, deliver, { connection, prefix: keys.prefix, concurrency: DELIVERY_CONCURRENCY, skipVersionCheck: true });
  worker.on('error', (e) => log.warn({ err: e.message }, 'webhook worker error'));
  let closed: Promise<void> | null = null;
  return {
    close() {
      closed ??= (async () => {
        await worker.close().catch(() => undefined);
        await agent.close().catch(() => undefined);
        connection.disconnect();
      })();
      return closed;
    },
  };
}
