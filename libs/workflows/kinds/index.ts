// The workflow kinds Hydra knows, as the map the coordinator receives: adding a kind is one file and one line here.
import type { WorkflowKind } from '../types.js';
import { dagKind } from './dag.js';
import { distributeKind } from './distribute.js';
import type { KindHandler, KindHandlers } from './kind.js';
import { orchestrateKind } from './orchestrate.js';

export type { KindHandler, KindHandlers, RenderContext, Summary } from './kind.js';

/** A kind without a handler does not compile. */
export const workflowKinds: KindHandlers = { dag: dagKind, distribute: distributeKind, orchestrate: orchestrateKind } satisfies Record<WorkflowKind, KindHandler>;
