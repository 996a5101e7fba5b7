// Discovery on loopback aliases: simulated nodes on 127.0.0.2, .3, .5 (and an OpenAI-compatible server on .6) share one
// port; `hydra discover 127.0.0.0/28` finds exactly them, and one worker process with DISCOVER serves each as a node:
// jobs run on the host that has their model, a server started later is picked up, a stopped one is dropped, and a
// SIGKILL of that process requeues the running jobs of all its nodes at once.
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HYDRA_BIN, startCluster, type TestCluster } from './support/cluster.js';
import { freePort, waitFor } from './support/wait.js';

let c: TestCluster | undefined;
let openai: Server | undefined;
afterEach(async () => {
  await c?.stop();
  c = undefined;
  openai?.closeAllConnections();
  await new Promise((r) => (openai ? openai.close(r) : r(undefined)));
  openai = undefined;
});

/** Whether `port` can be bound on `host` now. */
const bindable = (host: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = createTcpServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });

/** A port free on every address of 127.0.0.0/28, so the scan finds only this test's servers. */
async function portFreeOnTheNetwork(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await freePort();
    const free = await Promise.all(Array.from({ length: 14 }, (_, k) => bindable(`127.0.0.${k + 1}`, port)));
    if (free.every(Boolean)) return port;
  }
  throw new Error('no port free on all of 127.0.0.1-14');
}

/** A minimal OpenAI-compatible server: GET /v1/models only (no Ollama /api/version). */
function openaiServer(host: string, port: number): Promise<Server> {
  const s = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/v1/models') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: [{ id: 'oa:1b', object: 'model' }] }));
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
  });
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, host, () => resolve(s));
  });
}

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [HYDRA_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('discovery', () => {
  it('finds the servers of a /28, serves each as a node of one process, follows them coming and going', async () => {
    const port = await portFreeOnTheNetwork();
    c = await startCluster();
    // 1b models decode at 200 tokens/s here (tokensPerSecond · 8 / size): a job of 1000 tokens runs ~5 s.
    const sim = (host: string, model: string) => c!.sim({ host, port, vramGb: 16, models: [{ name: model, sizeGb: 1 }, { name: 'common:1b', sizeGb: 1 }], tokensPerSecond: 25, loadMsPerGb: 0 });
    const sims = { a: await sim('127.0.0.2', 'alpha:1b'), b: await sim('127.0.0.3', 'beta:1b'), g: await sim('127.0.0.5', 'gamma:1b') };
    openai = await openaiServer('127.0.0.6', port);

    // The one-shot scan: exactly these four, with their kind and models.
    const scan = await cli(['discover', '127.0.0.0/28', '--ports', String(port), '--json', '--timeout-ms', '1000']);
    expect(scan.code, scan.stderr).toBe(0);
    const found = JSON.parse(scan.stdout) as { url: string; kind: string; models: string[] }[];
    expect(found.map((f) => [f.url, f.kind])).toEqual([
      [`http://127.0.0.2:${port}`, 'ollama'],
      [`http://127.0.0.3:${port}`, 'ollama'],
      [`http://127.0.0.5:${port}`, 'ollama'],
      [`http://127.0.0.6:${port}`, 'openai'],
    ]);
    expect(found[0]!.models.sort()).toEqual(['alpha:1b', 'common:1b']);
    expect(found[3]!.models).toEqual(['oa:1b']);
    // Nothing on another port: exit 1; a network wider than /16: a usage error naming it.
    const none = await cli(['discover', '127.0.0.0/29', '--ports', String(await freePort()), '--timeout-ms', '500']);
    expect(none.code).toBe(1);
    const wide = await cli(['discover', '10.0.0.0/8']);
    expect(wide.code).toBe(2);
    expect(wide.stderr).toMatch(/larger than \/16/);

    // One worker process serving every server found, one node each, with deterministic ids.
    const denv = { DISCOVER: '127.0.0.0/28', DISCOVER_PORTS: String(port), DISCOVER_INTERVAL_MS: '500', DISCOVER_TIMEOUT_MS: '1000', NODE_ID: 'disc', NODE_VRAM_GB: '16', NUM_PARALLEL: '4' };
    let w = await c.worker(denv);
    const id = (last: number) => `disc-127.0.0.${last}-${port}`;
    for (const last of [2, 3, 5, 6]) {
      await c.waitForNode(id(last), (n) => n.healthy, 20_000).catch((e: Error) => {
        throw new Error(`${e.message}\nworker output:\n${w.output()}`);
      });
    }
    const nodes = await c.nodes();
    expect(nodes.map((n) => n.id).sort()).toEqual([2, 3, 5, 6].map(id).sort());
    expect(nodes.find((n) => n.id === id(6))?.backend).toBe('openai');
    expect(nodes.find((n) => n.id === id(2))).toMatchObject({ backend: 'ollama', url: `http://127.0.0.2:${port}`, vram_total_mb: 16 * 1024 });

    // A job for a model only one host has runs on that host's node.
    const run = async (body: Record<string, unknown>) => {
      const jid = (await c!.post('/v1/jobs', { type: 'generate', prompt: 'hi', options: { num_predict: 8 }, ...body })).body.id as string;
      return waitFor(async () => {
        const v = (await c!.get(`/v1/jobs/${jid}`)).body;
        return v.state === 'completed' || v.state === 'failed' ? v : null;
      }, { timeoutMs: 20_000, what: `job ${jid} to end` });
    };
    const done = await Promise.all([run({ model: 'alpha:1b' }), run({ model: 'beta:1b' }), run({ model: 'gamma:1b' })]);
    expect(done.map((d) => d.state)).toEqual(['completed', 'completed', 'completed']);
    expect(done.map((d) => d.result.node_id)).toEqual([id(2), id(3), id(5)]);
    expect([sims.a, sims.b, sims.g].map((s) => s.state().served)).toEqual([1, 1, 1]);

    // A server that appears later is picked up by a rescan; one that stops is dropped after 3 failed heartbeats.
    await sim('127.0.0.7', 'delta:1b');
    await c.waitForNode(id(7), (n) => n.healthy, 15_000);
    await sims.b.close();
    await waitFor(async () => !(await c!.nodes()).some((n) => n.id === id(3)), { timeoutMs: 15_000, what: `${id(3)} to leave /v1/nodes` });
    expect(w.output()).toMatch(/discovered server stopped answering/);

    // SIGKILL: the running jobs of two of its nodes go back to their queues at once, found by another live process.
    const plain = await c.worker({ BACKEND: 'ollama', OLLAMA_URL: sims.a.url, NODE_ID: 'plain', NODE_VRAM_GB: '16', NUM_PARALLEL: '4' });
    await c.waitForNode('plain', (n) => n.healthy, 20_000);
    const long = { prompt: 'long', options: { num_predict: 1000, sim_answer_tokens: 1000 } };
    const ids = await Promise.all(
      [[id(2), 'alpha:1b'], [id(5), 'gamma:1b']].map(async ([node, model]) => (await c!.post('/v1/jobs', { type: 'generate', model, node_id: node, ...long })).body.id as string),
    );
    await waitFor(async () => (await Promise.all(ids.map(async (j) => (await c!.get(`/v1/jobs/${j}`)).body.state))).every((s) => s === 'active'), { timeoutMs: 15_000, what: 'both long jobs to run' });
    // One process runs both: each job's view names its own node (the process's liveness record), not just the process.
    const nodesOf = await waitFor(async () => {
      const vs = await Promise.all(ids.map(async (j) => (await c!.get(`/v1/jobs/${j}`)).body));
      return vs.every((v) => v.node_id) ? vs.map((v) => [v.node_id, v.attempt]) : null;
    }, { what: 'the running views to name their nodes' });
    expect(nodesOf).toEqual([[id(2), 1], [id(5), 1]]);
    // ...and recorded by their process for fast failover (the record is written right after the take, without waiting:
    // a SIGKILL in that first moment leaves the job to BullMQ's lock, docs/reliability.md).
    await waitFor(
      async () => {
        const hashes = await c!.ctx.redis.keys(`${c!.ctx.keys.prefix}:live:*:jobs`);
        const tracked = (await Promise.all(hashes.map((h) => c!.ctx.redis.hkeys(h)))).flat();
        return ids.every((j) => tracked.includes(j));
      },
      { timeoutMs: 5000, intervalMs: 20, what: 'both long jobs recorded by the liveness tracker' },
    );
    await w.stop('SIGKILL');
    await waitFor(() => ids.every((j) => new RegExp(`worker process gone[^\\n]*${j}|${j}[^\\n]*worker process gone`).test(plain.output())), { timeoutMs: 15_000, what: 'the live worker to requeue both jobs' }).catch((e: Error) => {
      throw new Error(`${e.message}\nlive worker output:\n${plain.output().slice(-3000)}`);
    });
    // A new process with the same NODE_ID serves the same node ids and runs them (only they have the models, once the
    // plain worker is gone: a pinned job whose node stops heartbeating is moved to its model's class queue).
    await plain.stop('SIGTERM');
    w = await c.worker(denv);
    const ends = await Promise.all(
      ids.map((j) =>
        waitFor(async () => {
          const v = (await c!.get(`/v1/jobs/${j}`)).body;
          return v.state === 'completed' || v.state === 'failed' ? v : null;
        }, { timeoutMs: 30_000, what: `job ${j} to end after the restart` }),
      ),
    );
    expect(ends.map((e) => [e.state, e.result?.node_id])).toEqual([
      ['completed', id(2)],
      ['completed', id(5)],
    ]);
  }, 90_000);
});
