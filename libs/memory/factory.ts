// Which history store MEMORY_URL names, and opening it (migrated): SQLite under HYDRA_DATA_DIR by default, PostgreSQL
// for postgres://, none for off. The driver is loaded only when used, so one mode never loads the other's.
import { join } from 'node:path';
import type { Config } from '../config/index.js';
import type { Logger } from '../logger/index.js';
import type { HistoryStore } from './store.js';
import type { VectorIndex } from './vectors.js';

export type MemoryTarget = { kind: 'off' } | { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

export function memoryTarget(config: Pick<Config, 'MEMORY_URL' | 'HYDRA_DATA_DIR'>): MemoryTarget {
  const v = config.MEMORY_URL;
  if (v === undefined) return { kind: 'sqlite', path: join(config.HYDRA_DATA_DIR, 'history.sqlite') };
  if (v === 'off') return { kind: 'off' };
  if (v.startsWith('sqlite:')) return { kind: 'sqlite', path: v.replace(/^sqlite:(\/\/)?/, '') };
  return { kind: 'postgres', url: v };
}

/** The store MEMORY_URL names, migrated; null when off. Throws when it cannot be opened (the caller decides to retry). */
export async function createHistoryStore(config: Pick<Config, 'MEMORY_URL' | 'HYDRA_DATA_DIR'>, logger: Logger): Promise<HistoryStore | null> {
  const t = memoryTarget(config);
  if (t.kind === 'off') return null;
  if (t.kind === 'sqlite') {
    const { SqliteHistoryStore } = await import('./sqlite-store.js');
    const store = new SqliteHistoryStore(t.path);
    logger.info({ store: 'sqlite', path: t.path }, 'history store open');
    return store;
  }
  const { PostgresHistoryStore } = await import('./postgres-store.js');
  const store = new PostgresHistoryStore(t.url, { onError: (e) => logger.warn({ err: e.message }, 'history store connection error') });
  try {
    await store.migrate();
  } catch (e) {
    await store.close().catch(() => undefined);
    throw e;
  }
  logger.info({ store: 'postgres' }, 'history store open');
  return store;
}

/**
 * The vector store (L4) beside the history: the same SQLite file or PostgreSQL database, migrated. Null when the
 * history is off or MEMORY_EMBED_MODEL is empty (vectors off). Throws when it cannot be opened (the caller retries).
 */
export async function createVectorStore(config: Pick<Config, 'MEMORY_URL' | 'HYDRA_DATA_DIR' | 'MEMORY_EMBED_MODEL'>, logger: Logger): Promise<VectorIndex | null> {
  const t = memoryTarget(config);
  if (t.kind === 'off' || !config.MEMORY_EMBED_MODEL) return null;
  if (t.kind === 'sqlite') {
    const { openSqliteVectors } = await import('./vectors-sqlite.js');
    const store = openSqliteVectors(t.path);
    logger.info({ store: 'sqlite', path: t.path, embed_model: config.MEMORY_EMBED_MODEL }, 'vector store open');
    return store;
  }
  const { openPostgresVectors } = await import('./vectors-postgres.js');
  const store = await openPostgresVectors(t.url, { onError: (e) => logger.warn({ err: e.message }, 'vector store connection error') });
  logger.info({ store: 'postgres', embed_model: config.MEMORY_EMBED_MODEL }, 'vector store open');
  return store;
}
