// Renders GET /dashboard/state and asks again every refresh_ms. Builds DOM nodes with textContent only: model names,
// reasons and errors come from users and backends, and are never parsed as HTML.
'use strict';

(() => {
  const STATE_URL = '/dashboard/state';
  const MAX_MODELS_SHOWN = 4;
  const STATUS_LABEL = { down: 'down', breaker_open: 'breaker open', probing: 'probing', full: 'full', busy: 'busy', idle: 'idle' };
  const $ = (id) => document.getElementById(id);

  /** An element with attributes and children; strings become text nodes. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'href') el.href = safeHref(v);
      else if (k.startsWith('data-') || k === 'title' || k === 'role' || k.startsWith('aria-')) el.setAttribute(k, String(v));
      else throw new Error(`h: unexpected attribute ${k}`);
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  /** Links go only to paths on this server (Bull Board): nothing else, whatever a string holds. */
  function safeHref(v) {
    const s = String(v);
    return s.startsWith('/') && !s.startsWith('//') ? s : '#';
  }

  const fmtMb = (mb) => (mb >= 1024 ? `${(mb / 1024).toFixed(mb >= 10240 ? 0 : 1)} GB` : `${Math.round(mb)} MB`);
  function fmtMs(ms) {
    if (ms === null || ms === undefined) return '–';
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
    return `${Math.floor(ms / 60_000)}m ${Math.round((ms % 60_000) / 1000)}s`;
  }
  const fmtTime = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many || `${one}s`}`;

  /** Reserved (running jobs), other used (loaded models, other processes) and free, as a share of the node's memory. */
  function memoryBar(m) {
    const total = Math.max(m.total_mb, 1);
    const used = Math.max(0, m.total_mb - m.free_mb);
    const pct = (v) => `${Math.max(0, Math.min(100, (v / total) * 100)).toFixed(2)}%`;
    const reserved = h('span', { class: 'seg reserved' });
    reserved.style.width = pct(m.reserved_mb);
    const other = h('span', { class: 'seg used' });
    other.style.width = pct(Math.max(0, used - m.reserved_mb));
    const cap = h('span', { class: 'cap' });
    cap.style.left = pct(m.capacity_mb);
    const title = `${m.kind.toUpperCase()} ${fmtMb(m.total_mb)}: ${fmtMb(m.reserved_mb)} reserved by running jobs, ${fmtMb(used)} in use, ${fmtMb(m.free_mb)} free; the scheduler hands out up to ${fmtMb(m.capacity_mb)}`;
    return h(
      'div',
      { class: 'bar', role: 'img', 'aria-label': title, title, 'data-reserved-mb': m.reserved_mb, 'data-free-mb': m.free_mb, 'data-total-mb': m.total_mb },
      reserved,
      other,
      cap,
    );
  }

  function modelRow(m) {
    const perf = m.perf ? h('span', { class: 'm-perf', title: `${m.perf.samples} samples, first token ${fmtMs(m.perf.ttft_ms)}` }, `${m.perf.tokens_per_s.toFixed(0)} tok/s`) : null;
    const what = m.loaded ? `${fmtMb(m.vram_mb || m.size_mb)} loaded` : 'loading';
    return h(
      'li',
      { class: m.in_use > 0 ? 'model running' : 'model', title: `${m.name}: ${what}; ${m.in_use} of ${m.slots} backend slots in use` },
      h('span', { class: 'm-name' }, m.name),
      perf,
      h('span', { class: 'm-slots' }, `${m.in_use}/${m.slots}`),
    );
  }

  function nodeCard(n) {
    const tags = [n.simulated ? h('span', { class: 'tag sim', title: 'a simulated node (apps/node-sim): no real GPU' }, 'sim') : null, h('span', { class: 'tag' }, n.backend), h('span', { class: 'tag' }, n.type)];
    const m = n.memory;
    const facts = [`jobs ${n.active_jobs}/${n.slots}`];
    if (n.processes > 1) facts.push(plural(n.processes, 'process', 'processes'));
    if (n.breaker.state !== 'closed') facts.push(`breaker ${n.breaker.state.replace('_', '-')} (${plural(n.breaker.recent_failures, 'failure')})`);
    if (n.heartbeat_age_ms > 5000) facts.push(`heartbeat ${fmtMs(n.heartbeat_age_ms)} ago`);
    const models = n.models_loaded;
    const shown = models.slice(0, MAX_MODELS_SHOWN).map(modelRow);
    if (models.length > MAX_MODELS_SHOWN) {
      const rest = models.slice(MAX_MODELS_SHOWN);
      shown.push(h('li', { class: 'model more', title: rest.map((x) => x.name).join(', ') }, `+${rest.length} more loaded`));
    }
    if (models.length === 0) shown.push(h('li', { class: 'model none' }, `no model loaded (${plural(n.models_available, 'model')} available)`));
    return h(
      'article',
      { class: `node s-${n.status}`, 'data-node-id': n.id, 'data-status': n.status, title: `${n.id} — ${n.url}${n.version ? ` (${n.version})` : ''} on ${n.host}` },
      h('div', { class: 'node-head' }, h('span', { class: 'dot', title: STATUS_LABEL[n.status] || n.status }), h('span', { class: 'node-id' }, n.id), h('span', { class: 'status' }, STATUS_LABEL[n.status] || n.status), h('span', { class: 'tags' }, tags)),
      memoryBar(m),
      h('div', { class: 'bar-label' }, h('span', {}, `${fmtMb(m.reserved_mb)} reserved`), h('span', {}, `${fmtMb(m.free_mb)} free of ${fmtMb(m.total_mb)}${m.kind === 'ram' ? ' RAM' : ''}`)),
      h('div', { class: 'node-line' }, facts.join(' · ')),
      h('ul', { class: 'models' }, shown),
      n.error ? h('div', { class: 'node-error', title: n.error }, n.error) : null,
    );
  }

  function renderSummary(s) {
    const c = s.cluster;
    const pill = (label, value, warn) => h('span', { class: warn ? 'pill warn' : 'pill' }, h('b', {}, value), ` ${label}`);
    const pills = [
      pill('healthy', `${c.healthy}/${c.nodes}`, c.healthy < c.nodes),
      c.simulated ? pill('simulated', c.simulated) : null,
      pill('jobs running', `${c.active_jobs}/${c.slots}`),
      pill('waiting', c.waiting, false),
      c.delayed ? pill('retrying', c.delayed, true) : null,
      c.vram_total_mb ? pill('VRAM reserved', `${fmtMb(c.reserved_mb)} / ${fmtMb(c.vram_total_mb)}`) : null,
    ];
    $('summary').replaceChildren(...pills.filter(Boolean));
    const byStatus = {};
    for (const n of s.nodes) byStatus[n.status] = (byStatus[n.status] || 0) + 1;
    $('node-counts').textContent = Object.keys(STATUS_LABEL)
      .filter((k) => byStatus[k])
      .map((k) => `${byStatus[k]} ${STATUS_LABEL[k]}`)
      .join(' · ');
  }

  function renderNodes(s) {
    const grid = $('nodes');
    if (s.nodes.length === 0) return grid.replaceChildren(h('p', { class: 'empty' }, 'No node is registered. Start a worker: npx hydra worker (or hydra up --sim 3).'));
    grid.replaceChildren(...s.nodes.map(nodeCard));
  }

  const cell = (v, cls) => h('td', { class: cls }, v);
  const num = (v) => cell(v, v ? 'num' : 'num zero');

  function renderQueues(s) {
    const busy = s.queues.filter((q) => q.waiting || q.active || q.delayed || q.failed || q.waiting_children);
    const idle = s.queues.filter((q) => !busy.includes(q));
    const rows = busy.map((q) => {
      const target = q.kind === 'class' ? `model ${q.model}` : q.kind === 'node' ? `node ${q.node}` : q.kind;
      const bands = q.by_priority.length ? q.by_priority.map((b) => h('span', { class: 'chip', title: `${b.count} waiting at priority ${b.priority}` }, `p${b.priority} ${b.count}`)) : [h('span', { class: 'muted' }, q.waiting_children ? `${q.waiting_children} awaiting steps` : '–')];
      return h('tr', { 'data-queue': q.name }, h('td', {}, h('a', { href: q.board_url, title: `${target} — open in Bull Board` }, q.name)), num(q.waiting), h('td', { class: 'chips' }, bands), num(q.active), num(q.delayed), cell(q.failed, q.failed ? 'num bad' : 'num zero'));
    });
    if (rows.length === 0) rows.push(h('tr', {}, h('td', { class: 'empty' }, 'Nothing waiting or running.')));
    $('queues').tBodies[0].replaceChildren(...rows);
    $('queue-counts').textContent = `${s.queues.length} known`;
    $('idle-queues').textContent = idle.length ? `${plural(idle.length, 'idle queue')} not shown: ${idle.slice(0, 12).map((q) => q.name).join(', ')}${idle.length > 12 ? ', …' : ''}` : '';
  }

  function renderLatency(s) {
    const l = s.latency;
    const rows = l.models.map((m) => h('tr', {}, cell(m.model, 'model-name'), num(m.jobs), cell(m.failed, m.failed ? 'num bad' : 'num zero'), cell(fmtMs(m.total_ms && m.total_ms.p50), 'num'), cell(fmtMs(m.total_ms && m.total_ms.p95), 'num'), cell(fmtMs(m.ttft_ms && m.ttft_ms.p50), 'num'), cell(fmtMs(m.ttft_ms && m.ttft_ms.p95), 'num')));
    if (rows.length === 0) rows.push(h('tr', {}, h('td', { class: 'empty' }, 'No job ended in this window.')));
    $('latency').tBodies[0].replaceChildren(...rows);
    $('latency-window').textContent = `last ${Math.round(l.window_ms / 60_000)} min, submit to end`;
    $('latency-note').textContent = l.truncated ? `Busy cluster: only the last ${fmtMs(l.covered_ms)} fit the activity log.` : '';
  }

  function renderHistory(s) {
    const hist = s.history;
    if (!hist) return;
    const rows = hist.models.map((m) => h('tr', {}, cell(m.key, 'model-name'), num(m.jobs), num(m.completed), cell(m.failed, m.failed ? 'num bad' : 'num zero'), num(m.cancelled), num(m.completion_tokens), cell(fmtMs(m.p50_total_ms), 'num'), cell(fmtMs(m.p95_total_ms), 'num')));
    if (rows.length === 0) rows.push(h('tr', {}, h('td', { class: 'empty' }, hist.note || `No job ended in the last ${plural(hist.days, 'day')}.`)));
    $('history').tBodies[0].replaceChildren(...rows);
    $('history-window').textContent = `last ${plural(hist.days, 'day')}${hist.store ? `, ${hist.store}` : ''}`;
  }

  function renderDecisions(s) {
    const rows = s.decisions.map((d) => {
      const outcome = d.outcome === 'completed' ? h('span', { class: 'ok' }, 'completed') : h('span', { class: 'bad' }, d.error_code ? `failed: ${d.error_code}` : 'failed');
      return h(
        'tr',
        { 'data-job-id': d.job_id },
        cell(fmtTime(d.at)),
        h('td', {}, h('a', { href: d.board_url, title: `${d.job_id} — open in Bull Board` }, d.job_id.length > 13 ? `${d.job_id.slice(0, 8)}…` : d.job_id)),
        cell(d.model, 'model-name'),
        cell(d.node),
        cell(d.queue),
        cell(d.priority, 'num'),
        h('td', {}, outcome),
        cell(fmtMs(d.queued_ms), 'num'),
        cell(fmtMs(d.total_ms), 'num'),
        cell(fmtMs(d.ttft_ms), 'num'),
        h('td', { class: 'reason', title: d.reason }, d.reason),
      );
    });
    if (rows.length === 0) rows.push(h('tr', {}, h('td', { class: 'empty' }, 'No job has ended yet.')));
    $('decisions').tBodies[0].replaceChildren(...rows);
  }

  let last = null;
  function render(s) {
    last = s;
    $('board-link').href = safeHref(s.board_path);
    renderSummary(s);
    renderNodes(s);
    renderQueues(s);
    renderLatency(s);
    renderHistory(s);
    renderDecisions(s);
    document.body.dataset.generatedAt = s.generated_at;
  }

  function banner(text) {
    const b = $('banner');
    b.hidden = !text;
    b.textContent = text || '';
  }

  function tick() {
    if (!last) return;
    const age = Date.now() - Date.parse(last.generated_at);
    $('updated').textContent = `updated ${age < 2000 ? 'just now' : `${fmtMs(age)} ago`}`;
  }

  let timer = null;
  let polling = false;
  async function poll() {
    if (polling) return;
    polling = true;
    clearTimeout(timer);
    let wait = (last && last.refresh_ms) || 1500;
    try {
      const r = await fetch(STATE_URL, { headers: { accept: 'application/json' }, cache: 'no-store' });
      if (!r.ok) {
        const body = await r.json().catch(() => null);
        const why = body && body.error && body.error.message ? body.error.message : r.statusText;
        throw new Error(`${r.status} ${why}`);
      }
      render(await r.json());
      banner('');
    } catch (e) {
      banner(`Could not refresh the cluster state (${e.message}).${last ? ' Showing the last state read.' : ''} Retrying…`);
      wait = Math.max(wait, 3000);
    } finally {
      polling = false;
    }
    tick();
    if (!document.hidden) timer = setTimeout(poll, wait);
  }

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) void poll();
  });
  setInterval(tick, 1000);
  void poll();
})();
