// Every Redis key and channel Hydra uses, under one hash tag so multi-key scripts work on Redis Cluster.

export function hydraKeys(prefix: string) {
  return {
    prefix,
    /** BullMQ's key for a queue's structure, e.g. `{hydra}:infer.x:prioritized`. */
    queueKey: (queue: string, part: string) => `${prefix}:${queue}:${part}`,
    node: (id: string) => `${prefix}:node:${id}`,
    nodes: `${prefix}:nodes`,
    /** Hash {at: Redis ms, body: JSON NodeView[]}: the registry as one shared read, and its build lock (NodeRegistry.shared). */
    registrySnapshot: `${prefix}:nodes-snapshot`,
    /** An Idempotency-Key's claim (apps/api/idempotency.ts): per API key id (or "open"), the key's SHA-256. */
    idempotency: (scope: string, keyHash: string) => `${prefix}:idem:${scope}:${keyHash}`,
    registrySnapshotLock: `${prefix}:nodes-snapshot-lock`,
    reservations: (id: string) => `${prefix}:node:${id}:resv`,
    reservationPeak: (id: string) => `${prefix}:node:${id}:resv-peak`,
    /** "jobId|model|mb|priority|expiresAtMs": the job this node holds memory back for (reserve.lua, fence.lua). */
    nodeFence: (id: string) => `${prefix}:node:${id}:fence`,
    /** Session affinity: a waiting job's session key, and the node that last ran a job of that session. */
    jobSession: (jobId: string) => `${prefix}:jsess:${jobId}`,
    sessionNode: (session: string) => `${prefix}:sess:${session}`,
    /** Node id fencing this job: one node at a time drains for it. */
    fenceClaim: (jobId: string) => `${prefix}:fence-claim:${jobId}`,
    /** Hash process id → "slots|expiresAtMs": the worker processes sharing a node id (the node leaves with the last). */
    nodeProcs: (id: string) => `${prefix}:node:${id}:procs`,
    /** Hash {v: version token, s: JSON breaker state}: one circuit breaker per node id, shared by its processes. */
    nodeBreaker: (id: string) => `${prefix}:node:${id}:breaker`,
    /** Hash model → "tokensPerS|ttftMs|jobMs|samples|loadMs|loadSamples|updatedAtMs": measured speed (libs/registry/perf.ts). */
    nodePerf: (id: string) => `${prefix}:node:${id}:perf`,
    /** Hash queue name → JSON QueueInfo: every queue created at run time. */
    queues: `${prefix}:queues`,
    /** job id → queue name. */
    jobIndex: (jobId: string) => `${prefix}:jobq:${jobId}`,
    /** Redis Stream of a job's tokens and terminal event. */
    stream: (jobId: string) => `${prefix}:stream:${jobId}`,
    cancelFlag: (jobId: string) => `${prefix}:cancel:${jobId}`,
    /** List of the ids of a queue's finished jobs in one end state, newest first: their side keys leave as it is trimmed (lifecycle.ts). */
    retired: (queue: string, state: 'completed' | 'failed') => `${prefix}:retired:${queue}:${state}`,
    /** Number of SSE clients reading a job's stream right now (all API replicas). */
    streamReaders: (jobId: string) => `${prefix}:readers:${jobId}`,
    /** Node id that just failed an attempt of this job; it leaves the next attempt to others for a while. */
    excluded: (jobId: string) => `${prefix}:excl:${jobId}`,
    /** Counter the API increments right before a WAIT (REDIS_MIN_REPLICAS_ACK): the write that WAIT counts replicas of. */
    replicaAck: `${prefix}:replica-ack`,
    /** Fast failover (apps/worker/liveness.ts): zset, member = worker process id, score = its liveness connection's CLIENT ID. */
    live: `${prefix}:live`,
    /** Hash job id → JSON {q: queue, n: node id, t: lock token}: the jobs a worker process runs (liveness.ts). */
    liveJobs: (procId: string) => `${prefix}:live:${procId}:jobs`,
    agingLock: `${prefix}:aging-lock`,
    rehomeLock: `${prefix}:rehome-lock`,
    /** L1 cache entry (in the cache Redis, CACHE_REDIS_URL) and the hit/miss counters (in this Redis). */
    cache: (hash: string) => `${prefix}:cache:${hash}`,
    cacheStats: `${prefix}:cache-stats`,
    /** Workflow state (libs/workflows): meta hash, then per-step hashes keyed by step id. */
    workflow: (id: string) => `${prefix}:wf:${id}`,
    workflowSteps: (id: string) => `${prefix}:wf:${id}:steps`,
    workflowDefs: (id: string) => `${prefix}:wf:${id}:defs`,
    workflowDeps: (id: string) => `${prefix}:wf:${id}:deps`,
    workflowDependents: (id: string) => `${prefix}:wf:${id}:rdeps`,
    workflowSatisfied: (id: string) => `${prefix}:wf:${id}:sat`,
    workflowResults: (id: string) => `${prefix}:wf:${id}:res`,
    /** List of step ids in definition order. */
    workflowOrder: (id: string) => `${prefix}:wf:${id}:order`,
    /** Zset workflow id → created ms: workflows not yet finalised (the reconcile sweep walks it). */
    workflowsOpen: `${prefix}:wf-open`,
    workflowSweepLock: `${prefix}:wf-sweep-lock`,
    /** Batch (POST /v1/batches): hash of its fields and end counters, list of "queue jobId" per item, hash item index → end state. */
    batch: (id: string) => `${prefix}:batch:${id}`,
    batchItems: (id: string) => `${prefix}:batch:${id}:items`,
    batchEnds: (id: string) => `${prefix}:batch:${id}:ends`,
    /** List of JSON delivery attempts of a job's, workflow's or batch's callback, oldest first, capped (deliveries.ts). */
    deliveries: (id: string) => `${prefix}:dlv:${id}`,
    /** List of JSON activity entries, newest first, capped (libs/activity): finished jobs for the dashboard. */
    activity: `${prefix}:activity`,
    /** Stream of finished jobs and workflows waiting for the history store (libs/memory); the drainer's lock. */
    history: `${prefix}:history`,
    historyDrainLock: `${prefix}:history-drain-lock`,
    /** Cluster-wide Prometheus metrics (libs/metrics): one hash per metric, field = label values (+ histogram bucket). */
    metric: (name: string) => `${prefix}:metrics:${name}`,
    /** Set of the model names that have their own `model` label value (at most METRICS_MAX_MODELS; the rest are "other"). */
    metricModels: `${prefix}:metrics:models`,
    /** Set of the models a node had loaded at its last heartbeat: loads and unloads are the differences (TTL). */
    metricLoaded: (nodeId: string) => `${prefix}:metrics:loaded:${nodeId}`,
    channels: {
      /** Payload: queue name. Published after every add so idle workers look at once. */
      wake: `${prefix}:ch:wake`,
      /** Payload: queue name. A wake for one node (the API picks a few per job: libs/scheduling/wake.ts). */
      wakeNode: (nodeId: string) => `${prefix}:ch:wake:${nodeId}`,
      /** Payload: JSON {id, state}. Published when a job ends (completed or finally failed). */
      done: `${prefix}:ch:done`,
      /** Payload: job id. The worker running it aborts it. */
      cancel: `${prefix}:ch:cancel`,
      /**
       * Payload: node id (or empty). The registry changed in what routing looks at (a join, a leave, a health or model
       * change: whenever the shared snapshot is dropped); the API drops its cached node list.
       */
      registry: `${prefix}:ch:registry`,
    },
  } as const;
}
export type HydraKeys = ReturnType<typeof hydraKeys>;
