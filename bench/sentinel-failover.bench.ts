// What a Sentinel failover costs, with and without REDIS_MIN_REPLICAS_ACK: jobs lost, jobs completed twice, submits
// refused, and the time until jobs flow again, over several SIGKILLs of the master.
//
//   npm run bench:failover-sentinel -- [--failovers 4] [--scenarios kill,lag] [--replicas 1] [--lag-ms 500]
//
// Scenarios: `kill` SIGKILLs a master whose replicas keep up (loopback: replication lag well under a millisecond, and
// what the master wrote to a socket before dying still arrives); `lag` first cuts the replicas off for --lag-ms (each
// frozen with SIGSTOP, its replication connection closed by the master: a link that broke, a replica that fell
// behind), then kills the master and thaws them, so what the master accepted meanwhile exists nowhere else, as when
// a machine dies with unsent data. Each failover: the killed node comes back as a replica of the new master as soon
// as the sentinels switched (as a supervisor restarts it), then the group settles before the next. Real redis-server / redis-sentinel / hydra processes on this machine only; the
// node is simulated (labelled so). Two APIs share one worker: one with REDIS_MIN_REPLICAS_ACK=1, one without; each
// has a client that waits for its answers and one that does not (202, then polled).
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Load, startHydraOnSentinel, tally, type HydraOnSentinel, type Tally } from '../test/support/sentinel-cluster.js';
import { waitFor } from '../test/support/wait.js';
import { round, runBench } from './support.js';

interface Options {
  failovers: number;
  scenarios: ('kill' | 'lag')[];
  replicas: number;
  lagMs: number;
}

interface FailoverTimes {
  scenario: string;
  /** From the SIGKILL: sentinels agree on the new master; first job accepted (200, or 202 without wait) by each API. */
  switch_ms: number;
  flow_plain_ms: number;
  flow_ack_ms: number;
  /** When the killed node was started again as a replica. */
  rejoin_ms: number;
}

interface ScenarioResult {
  scenario: string;
  failovers: FailoverTimes[];
  with_ack: Tally;
  without_ack: Tally;
}

/** Until one of the loads (one API's clients) has an accepted answer to a submission made after `t`; when (ms since epoch). */
const firstOk = (ls: Load[], t: number, what: string): Promise<number> =>
  waitFor(
    () => {
      const at = Math.min(...ls.map((l) => l.okSince(t)[0]?.endedAt ?? Infinity));
      return Number.isFinite(at) ? at : null;
    },
    { timeoutMs: 60_000, intervalMs: 20, what },
  );

async function scenario(h: HydraOnSentinel, kind: 'kill' | 'lag', o: Options, log: (l: string) => void): Promise<ScenarioResult> {
  const loads = {
    ack: [new Load(h.ack, { clients: 1 }), new Load(h.ack, { clients: 1, wait: false, gapMs: 60 })],
    plain: [new Load(h.plain, { clients: 1 }), new Load(h.plain, { clients: 1, wait: false, gapMs: 60 })],
  };
  const every = [...loads.ack, ...loads.plain];
  every.forEach((l) => l.start());
  const times: FailoverTimes[] = [];
  try {
    for (let i = 0; i < o.failovers; i++) {
      await h.group.waitForHealthy(60_000);
      // A few seconds of steady flow before each kill.
      const warm = Date.now();
      await waitFor(() => every.every((l) => l.okSince(warm).length >= 5), { timeoutMs: 30_000, what: 'jobs flowing before the kill' });
      const old = await h.group.master();
      const replicas = h.group.nodes.filter((n) => n.port !== old && n.running());
      if (kind === 'lag') {
        replicas.forEach((n) => n.pause());
        const m = h.group.client(old);
        await m.connect();
        await m.call('CLIENT', 'KILL', 'TYPE', 'replica');
        m.disconnect();
        await new Promise((r) => setTimeout(r, o.lagMs)); // the lag being simulated, not a synchronisation
      }
      await h.group.node(old).kill('SIGKILL');
      const killedAt = Date.now();
      if (kind === 'lag') replicas.forEach((n) => n.resume());
      const next = await h.group.waitForSwitch(old, 60_000);
      const switchedAt = Date.now();
      await h.group.node(old).start({ port: next });
      const rejoinedAt = Date.now();
      const [plainAt, ackAt] = await Promise.all([firstOk(loads.plain, killedAt, 'the API without the ack to accept again'), firstOk(loads.ack, killedAt, 'the API with the ack to accept again')]);
      const t: FailoverTimes = { scenario: kind, switch_ms: switchedAt - killedAt, flow_plain_ms: plainAt - killedAt, flow_ack_ms: ackAt - killedAt, rejoin_ms: rejoinedAt - killedAt };
      times.push(t);
      log(`${kind} #${i + 1}: ${JSON.stringify(t)}`);
    }
  } finally {
    await Promise.all(every.map((l) => l.stop()));
  }
  const sum = async (api: typeof h.ack, ls: Load[]) => (await tally(h, api, ls.flatMap((l) => l.records), 30_000)).tally;
  return { scenario: kind, failovers: times, with_ack: await sum(h.ack, loads.ack), without_ack: await sum(h.plain, loads.plain) };
}

const line = (r: ScenarioResult, which: 'with_ack' | 'without_ack'): string => {
  const t = r[which];
  return `| ${r.scenario} | ${which === 'with_ack' ? 'REDIS_MIN_REPLICAS_ACK=1' : 'off'} | ${r.failovers.length} | ${t.submitted} | ${t.accepted} | ${t.completed} | ${t.lost} (${t.lost_after_running} had run) | ${t.vanished_while_waiting} | ${t.completed_twice} | ${t.refused} | ${t.refused_but_ran} |`;
};

runBench(async () => {
  const { values } = parseArgs({
    options: { failovers: { type: 'string', default: '4' }, scenarios: { type: 'string', default: 'kill,lag' }, replicas: { type: 'string', default: '1' }, 'lag-ms': { type: 'string', default: '500' } },
  });
  const o: Options = {
    failovers: Number(values.failovers),
    scenarios: values.scenarios.split(',').map((s) => s.trim()) as Options['scenarios'],
    replicas: Number(values.replicas),
    lagMs: Number(values['lag-ms']),
  };
  if (o.scenarios.some((s) => s !== 'kill' && s !== 'lag')) throw new Error('--scenarios takes kill and/or lag');
  const log = (l: string) => process.stdout.write(`${l}\n`);
  const results: ScenarioResult[] = [];
  for (const kind of o.scenarios) {
    // A fresh group and fresh processes per scenario: one's leftovers do not count in the other.
    const h = await startHydraOnSentinel({ group: { replicas: o.replicas } });
    try {
      results.push(await scenario(h, kind, o, log));
      if (!h.all().every((p) => p.alive())) throw new Error(`a Hydra process died: ${h.all().filter((p) => !p.alive()).map((p) => `${p.name}\n${p.output().slice(-2000)}`).join('\n')}`);
    } finally {
      await h.stop();
    }
  }
  log('\n| scenario | ack | failovers | submitted | accepted | completed | lost | vanished while waiting | completed twice | refused (503) | refused but ran |');
  log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) log(`${line(r, 'with_ack')}\n${line(r, 'without_ack')}`);
  const stat = (xs: number[]) => (xs.length ? `${round(Math.min(...xs) / 1000, 1)}-${round(Math.max(...xs) / 1000, 1)} s (median ${round(xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]! / 1000, 1)})` : '-');
  for (const r of results) {
    const f = r.failovers;
    log(
      `${r.scenario}: sentinels switched after ${stat(f.map((x) => x.switch_ms))}; accepting again without the ack after ${stat(f.map((x) => x.flow_plain_ms))}; ` +
        `with it after ${stat(f.map((x) => x.flow_ack_ms))} (killed node restarted as a replica after ${stat(f.map((x) => x.rejoin_ms))})`,
    );
  }
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL(`./results/sentinel-failover-${Date.now()}.json`, import.meta.url), JSON.stringify({ options: o, results }, null, 2));
});
