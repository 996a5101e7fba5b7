// Every Redis key and channel Hydra uses, under one hash tag so multi-key scripts work on Redis Cluster.

export function hydraKeys(prefix: string) {
  return {
    prefix,
    /** BullMQ's key for a queue's structure, e.g. `{hydra}:infer.x:prioritized`. */
    queueKey: (queue: string, part: string) => `${prefix}:${queue}:${part}`,
    node: (id: string) => `${prefix}:node:${id}`,
    nodes: `${prefix}:nodes`,
    reservations: (id: string) => `${prefix}:node:${id}:resv`,
    reservationPeak: (id: string) => `${prefix}:node:${id}:resv-peak`,
    /** Hash queue name → JSON QueueInfo: every queue created at run time. */
    queues: `${prefix}:queues`,
    /** job id → queue name. */
    jobIndex: (jobId: string) => `${prefix}:jobq:${jobId}`,
    /** Redis Stream of a job's tokens and terminal event. */
    stream: (jobId: string) => `${prefix}:stream:${jobId}`,
    cancelFlag: (jobId: string) => `${prefix}:cancel:${jobId}`,
    /** Node id that just failed an attempt of this job; it leaves the next attempt to others for a while. */
    excluded: (jobId: string) => `${prefix}:excl:${jobId}`,
    agingLock: `${prefix}:aging-lock`,
    channels: {
      /** Payload: queue name. Published after every add so idle workers look at once. */
      wake: `${prefix}:ch:wake`,
      /** Payload: JSON {id, state}. Published when a job ends (completed or finally failed). */
      done: `${prefix}:ch:done`,
      /** Payload: job id. The worker running it aborts it. */
      cancel: `${prefix}:ch:cancel`,
    },
  } as const;
}
export type HydraKeys = ReturnType<typeof hydraKeys>;
