// Prometheus metrics: per-process (Node, Redis commands) and cluster-wide (jobs recorded into Redis by workers, queues
// and nodes read at scrape time), the text format, and bounded label values. docs/metrics.md lists every metric.
export * from './exposition.js';
export * from './stored.js';
export * from './finished-job.js';
export * from './token-timing.js';
export * from './process-metrics.js';
export * from './local-metrics.js';
export * from './model-labels.js';
export * from './cluster-metrics.js';
export * from './recording.js';
export * from './batch.js';
