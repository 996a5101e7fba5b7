// `hydra pull`'s progress as text, from the NDJSON lines of the API's /api/pull: on a terminal one line per node,
// redrawn in place; otherwise a line each time a node's status changes. Pure: lines in, text to write out.

/** One NDJSON line of /api/pull: Ollama's progress fields, with `node` on every line about one node. */
export interface PullLine {
  status?: string;
  digest?: string;
  total?: number;
  completed?: number;
  node?: string;
  error?: string;
}

interface NodeState {
  status: string;
  /** Bytes per layer digest: the node's line shows the sum over the layers seen so far. */
  layers: Map<string, { total: number; completed: number }>;
}

/** Where the pull stands once its last line came: `success`, or the API's error text. */
export type PullEnd = { ok: true } | { ok: false; error: string };

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

/** Bytes as Ollama's CLI shows them (powers of 1000): 512 B, 1.5 MB, 860 MB, 2.0 GB. */
export function humanBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1000 && u < UNITS.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${Math.round(v)} B` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${UNITS[u]}`;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined);

/** The API tags each node's Ollama `success` as `success on node X` (so that Ollama clients do not stop early). */
const statusOf = (s: string): string => (/^success on node /.test(s) ? 'success' : s);

export class PullProgress {
  private readonly nodes = new Map<string, NodeState>();
  /** Node lines on the screen now (terminal mode): the next redraw moves up this many lines first. */
  private drawn = 0;
  private ended: PullEnd | null = null;

  constructor(private readonly opts: { tty: boolean; columns: number }) {}

  /** How the pull ended, or null while no final line came. */
  get end(): PullEnd | null {
    return this.ended;
  }

  /** The nodes the answer has named so far, in the order they first showed up. */
  get nodeIds(): string[] {
    return [...this.nodes.keys()];
  }

  /** Apply one line of the answer; returns what to write to stdout ('' when nothing changed that is shown). */
  apply(line: PullLine): string {
    if (typeof line.error === 'string') {
      this.ended = { ok: false, error: line.error };
      // The API reports the error once every node has ended: a node without its success is a node that failed.
      const failed = [...this.nodes].filter(([, n]) => n.status !== 'success');
      for (const [, n] of failed) n.status = 'failed';
      return this.opts.tty ? this.redraw() : failed.map(([id, n]) => `${this.nodeLine(id, n)}\n`).join('');
    }
    const status = typeof line.status === 'string' ? line.status : '';
    if (!line.node) {
      if (status === 'success') {
        this.ended = { ok: true };
        return '';
      }
      return status ? this.message(status) : '';
    }
    let n = this.nodes.get(line.node);
    const changed = !n || n.status !== statusOf(status);
    if (!n) {
      n = { status: '', layers: new Map() };
      this.nodes.set(line.node, n);
    }
    if (status) n.status = statusOf(status);
    const total = num(line.total);
    if (line.digest && total !== undefined) n.layers.set(line.digest, { total, completed: Math.min(total, num(line.completed) ?? 0) });
    if (this.opts.tty) return this.redraw();
    return changed && status ? `${this.nodeLine(line.node, n)}\n` : '';
  }

  /** A line about the whole pull (`pulling m on a, b`): above the node lines on a terminal. */
  private message(text: string): string {
    if (!this.opts.tty) return `${text}\n`;
    const up = this.drawn > 0 ? `\x1b[${this.drawn}A\r` : '';
    const block = this.block();
    return `${up}\x1b[2K${text}\n${block}`;
  }

  private redraw(): string {
    const up = this.drawn > 0 ? `\x1b[${this.drawn}A\r` : '';
    return `${up}${this.block()}`;
  }

  /** Every node's line, each cleared first; remembers how many lines it drew. */
  private block(): string {
    this.drawn = this.nodes.size;
    // A line longer than the terminal wraps, and the next redraw would move up too few lines.
    const fit = (s: string) => (s.length >= this.opts.columns ? s.slice(0, Math.max(1, this.opts.columns - 1)) : s);
    return [...this.nodes].map(([id, n]) => `\x1b[2K${fit(this.nodeLine(id, n))}\n`).join('');
  }

  private nodeLine(id: string, n: NodeState): string {
    const width = Math.max(...[...this.nodes.keys()].map((k) => k.length));
    let total = 0;
    let completed = 0;
    for (const l of n.layers.values()) {
      total += l.total;
      completed += l.completed;
    }
    const bytes = total > 0 ? `  ${String(Math.floor((completed / total) * 100)).padStart(3)}%  ${humanBytes(completed)}/${humanBytes(total)}` : '';
    return `${id.padEnd(width)}  ${n.status}${bytes}`;
  }
}
