// The writes of a job's end beside BullMQ's own (job-end.ts, scripts/end-writes.lua), as the parts that own them
// (metrics, speed figures, activity, history, the done message) describe them.

/**
 * Scripts other parts own whose writes ride in a job's end: the job metrics (libs/metrics record.lua) and the node's
 * speed figures (libs/registry perf.lua). Given by the worker's composition root, so this library imports neither.
 */
export interface EndScripts {
  jobMetrics: string;
  nodePerf: string;
}

/**
 * A write of a job's end: made in the call that completes the job, only if BullMQ completed it (`jobEnder`), or after a
 * final failure in a call of its own (`endWriter`). A Redis command (its name first in `args`, then the rest after its
 * keys), or a call of one of the `EndScripts`. `then` gets its reply, or the error it failed with (the end stands).
 */
export interface SentWrite {
  kind: 'command' | keyof EndScripts;
  keys: readonly string[];
  args: readonly (string | number)[];
  then?: (reply: unknown, err: Error | null) => void;
}

/**
 * A write of a job's end that sends nothing in the end's call: `then` runs in this process once the end is recorded,
 * never when it is refused (the job metrics gathered over many jobs and sent together: libs/metrics/batch.ts).
 */
export interface LocalWrite {
  kind: 'local';
  then: () => void;
}

export type EndWrite = SentWrite | LocalWrite;
