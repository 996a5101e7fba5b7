// Numbered SQL migrations per dialect (migrations/<dialect>/NNN_name.sql), applied in order and recorded in
// schema_migrations so each runs once.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function loadMigrations(dialect: 'sqlite' | 'postgres'): Migration[] {
  const dir = fileURLToPath(new URL(`./migrations/${dialect}/`, import.meta.url));
  return readdirSync(dir)
    .flatMap((f) => {
      const m = /^(\d+)_(.+)\.sql$/.exec(f);
      return m ? [{ version: Number(m[1]), name: m[2]!, sql: readFileSync(`${dir}${f}`, 'utf8') }] : [];
    })
    .sort((a, b) => a.version - b.version);
}
