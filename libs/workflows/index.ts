// Workflows: DAGs and fan-outs as BullMQ flows, the DAG coordinator, and the Hydra orchestration pipeline.
export * from './types.js';
export * from './template.js';
export * from './dag.js';
export * from './spec.js';
export * from './consensus.js';
export * from './orchestrator.js';
export * from './store.js';
export * from './coordinator.js';
export * from './finaliser.js';
export * from './repair.js';
export * from './view.js';
export { workflowKinds, type KindHandler, type KindHandlers } from './kinds/index.js';
