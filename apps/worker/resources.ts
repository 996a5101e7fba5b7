// What this node can hold: VRAM from nvidia-smi, else NODE_VRAM_GB minus what the backend has loaded; RAM for CPU nodes.
import { execFile } from 'node:child_process';
import os from 'node:os';
import type { BackendProbe, KvCacheType, ModelAvailable, NodeLoadedModel, NodeModel, NodeRecord } from '../../libs/core/index.js';
import { memoryFactsOf, needMbFor } from '../../libs/scheduling/index.js';

const MB = 1024 * 1024;

export interface GpuMemory {
  total_mb: number;
  free_mb: number;
}

let nvidiaSmiMissing = false;

/** Sum over all GPUs from nvidia-smi, or null when there is none (the result of a missing binary is remembered). */
export function readNvidiaSmi(timeoutMs = 2000): Promise<GpuMemory | null> {
  if (nvidiaSmiMissing) return Promise.resolve(null);
  return new Promise((resolve) => {
    execFile('nvidia-smi', ['--query-gpu=memory.total,memory.free', '--format=csv,noheader,nounits'], { timeout: timeoutMs }, (err, stdout) => {
      if (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') nvidiaSmiMissing = true;
        return resolve(null);
      }
      resolve(parseNvidiaSmi(stdout));
    });
  });
}

export function parseNvidiaSmi(stdout: string): GpuMemory | null {
  let total = 0;
  let free = 0;
  for (const line of stdout.trim().split('\n')) {
    const [t, f] = line.split(',').map((x) => Number(x.trim()));
    if (!Number.isFinite(t) || !Number.isFinite(f)) return null;
    total += t!;
    free += f!;
  }
  return total > 0 ? { total_mb: total, free_mb: free } : null;
}

export interface RecordInputs {
  id: string;
  url: string;
  backend: NodeRecord['backend'];
  probe: BackendProbe;
  gpu: GpuMemory | null;
  nodeVramGb?: number;
  nodeRamGb?: number;
  bufferMb: number;
  numCtx: number;
  numParallel: number;
  /** KV_CACHE_TYPE; the backend's own (probe.kv_cache_type) wins. Default f16. */
  kvCacheType?: KvCacheType;
  slots: number;
  now: number;
  ram: { total_mb: number; free_mb: number };
  /** The machine the backend runs on; default this one (os.hostname()). */
  host?: string;
}

/**
 * Build the registry record. Capacity = memory the scheduler may hand to models: total minus the
 * safety buffer minus memory used by anything other than the backend's loaded models.
 */
export function buildNodeRecord(i: RecordInputs): NodeRecord {
  const loaded: NodeLoadedModel[] = i.probe.models_loaded.map((m) => ({
    name: m.name,
    size_mb: Math.round(m.size_bytes / MB),
    vram_mb: Math.round(m.vram_bytes / MB),
    size_bytes: m.size_bytes,
    vram_bytes: m.vram_bytes,
    ...(m.expires_at ? { expires_at: m.expires_at } : {}),
    ...(m.digest ? { digest: m.digest } : {}),
    ...(m.context_length ? { context_length: m.context_length } : {}),
  }));
  const loadedVram = loaded.reduce((a, m) => a + m.vram_mb, 0);
  const loadedTotal = loaded.reduce((a, m) => a + m.size_mb, 0);
  const mem = i.probe.memory;
  let vramTotal = 0;
  let vramFree = 0;
  if (i.gpu) {
    vramTotal = i.gpu.total_mb;
    vramFree = i.gpu.free_mb;
  } else if (mem && mem.vram_total > 0) {
    vramTotal = Math.round(mem.vram_total / MB);
    vramFree = Math.round(mem.vram_free / MB);
  } else if (i.nodeVramGb && i.nodeVramGb > 0) {
    // NODE_VRAM_GB is GiB, as nvidia-smi and GPU vendors mean "24 GB" (and as `hydra sim --vram-gb` holds): × 1024 MiB.
    vramTotal = Math.round(i.nodeVramGb * 1024);
    vramFree = Math.max(0, vramTotal - loadedVram);
  }
  const type = vramTotal > 0 ? 'gpu' : 'cpu';
  const ramTotal = i.nodeRamGb && i.nodeRamGb > 0 ? Math.round(i.nodeRamGb * 1024) : i.ram.total_mb;
  const ramFree = i.nodeRamGb && i.nodeRamGb > 0 ? Math.max(0, ramTotal - loadedTotal) : i.ram.free_mb;
  const [total, free, inModels] = type === 'gpu' ? [vramTotal, vramFree, loadedVram] : [ramTotal, ramFree, loadedTotal];
  const external = Math.max(0, total - free - inModels);
  const capacity = Math.max(0, total - i.bufferMb - external);
  return {
    id: i.id,
    url: i.url,
    backend: i.backend,
    type,
    healthy: i.probe.healthy,
    ...(i.probe.error ? { error: i.probe.error } : {}),
    simulated: /simulated/i.test(i.probe.version ?? ''),
    host: i.host ?? os.hostname(),
    vram_total_mb: vramTotal,
    vram_available_mb: Math.max(0, vramFree - (type === 'gpu' ? i.bufferMb : 0)),
    ram_total_mb: ramTotal,
    ram_available_mb: Math.max(0, ramFree - (type === 'cpu' ? i.bufferMb : 0)),
    capacity_mb: capacity,
    buffer_mb: i.bufferMb,
    models_available: i.probe.models_available.map((m) => nodeModel(m, i, capacity)),
    models_loaded: loaded,
    slots: i.slots,
    num_ctx: i.numCtx,
    last_heartbeat: i.now,
    ...(i.probe.version ? { version: i.probe.version } : {}),
  };
}

/**
 * A model as the registry shows it, with its memory need at the node's NUM_CTX × NUM_PARALLEL (docs/scheduling.md,
 * "Memory admission") and the facts `needMbFor` recomputes it from at another context. A model of unknown size is
 * counted as taking the whole capacity (`need_source: 'unknown'`): it runs, but never beside another model.
 */
function nodeModel(m: ModelAvailable, i: RecordInputs, capacityMb: number): NodeModel {
  const kvType = i.probe.kv_cache_type ?? i.kvCacheType ?? 'f16';
  const out: NodeModel = {
    name: m.name,
    size_mb: Math.round(m.size_bytes / MB),
    need_mb: 0,
    size_bytes: m.size_bytes,
    ...(m.digest ? { digest: m.digest } : {}),
    ...(m.modified_at ? { modified_at: m.modified_at } : {}),
    details: m.details ?? {
      ...(m.family ? { family: m.family, families: [m.family] } : {}),
      ...(m.parameter_size ? { parameter_size: m.parameter_size } : {}),
      ...(m.quantization ? { quantization_level: m.quantization } : {}),
    },
    ...(m.capabilities ? { capabilities: m.capabilities } : {}),
    ...(m.arch?.context_length || m.context_length ? { context_length: m.arch?.context_length ?? m.context_length } : {}),
  };
  if (m.size_unknown) return { ...out, need_mb: capacityMb, need_source: 'unknown' };
  Object.assign(out, memoryFactsOf(m, kvType));
  const formula = out.kv_bytes_per_token === undefined ? Math.ceil(m.size_bytes / MB) : needMbFor(out, i.numCtx, i.numParallel);
  if (m.need_bytes) {
    const exact = Math.ceil(m.need_bytes / MB);
    return { ...out, need_mb: exact, need_source: 'backend', ...(out.kv_bytes_per_token === undefined ? {} : { correction_mb: exact - formula }) };
  }
  return { ...out, need_mb: formula, need_source: out.kv_bytes_per_token === undefined ? 'weights' : 'estimate' };
}

export const osRam = (): { total_mb: number; free_mb: number } => ({
  total_mb: Math.round(os.totalmem() / MB),
  free_mb: Math.round(os.freemem() / MB),
});
