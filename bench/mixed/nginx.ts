// The nginx baseline: plain round-robin over every node (it knows nothing of models), from a config generated in a temp dir.
import { accessSync, constants, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { child, freePort, until } from '../support.js';
import { stopProcess, type Fleet } from './sim-fleet.js';

/** nginx adds the upstream it picked as this response header, so the bench knows where each request went. */
export const NGINX_UPSTREAM = 'x-upstream';

/** The nginx binary on PATH (or in /usr/sbin, where Debian puts it), or null. */
export function findNginx(): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const d of dirs.filter(Boolean)) {
    try {
      accessSync(join(d, 'nginx'), constants.X_OK);
      return join(d, 'nginx');
    } catch {
      /* not here */
    }
  }
  return null;
}

/** Streaming passes through unbuffered; no retry on another upstream (`proxy_next_upstream off`), as a bare round-robin. */
export function nginxConfig(dir: string, port: number, upstreams: string[]): string {
  return `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream sims {
${upstreams.map((u) => `    server ${u.replace(/^https?:\/\//, '')};`).join('\n')}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://sims;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 3600s;
      proxy_next_upstream off;
      add_header ${NGINX_UPSTREAM} $upstream_addr always;
    }
  }
}
`;
}

export interface NginxRouter {
  url: string;
  stop(): Promise<void>;
}

export async function startNginx(bin: string, fleet: Fleet): Promise<NginxRouter> {
  const dir = mkdtempSync(join(tmpdir(), 'hydra-bench-nginx-'));
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, d));
  const port = await freePort();
  writeFileSync(join(dir, 'nginx.conf'), nginxConfig(dir, port, fleet.sims.map((s) => s.url)));
  const proc = child(bin, ['-p', dir, '-c', join(dir, 'nginx.conf')]);
  const url = `http://127.0.0.1:${port}`;
  // Our nginx must be the one answering: if it could not bind the port it has exited, whoever answers there is not it.
  await until('nginx', async () => proc.exitCode === null && (await fetch(`${url}/api/version`)).headers.has(NGINX_UPSTREAM), 15_000);
  return { url, stop: () => stopProcess(proc) };
}
