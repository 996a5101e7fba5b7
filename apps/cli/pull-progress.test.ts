// `hydra pull`'s progress text: a line per status change without a terminal, one redrawn line per node on one,
// bytes summed over a node's layers, and how the pull ended.
import { describe, expect, it } from 'vitest';
import { humanBytes, PullProgress, type PullLine } from './pull-progress.js';

const W = 'sha256:aaaaaaaaaaaa0000';
const S = 'sha256:bbbbbbbbbbbb0000';
/** A node's lines as the API streams them: manifest, the weights in steps, a small layer, verify, write, success. */
const nodeLines = (node: string): PullLine[] => [
  { status: 'pulling manifest', node },
  { status: 'pulling aaaaaaaaaaaa', digest: W, total: 2_000_000_000, completed: 0, node },
  { status: 'pulling aaaaaaaaaaaa', digest: W, total: 2_000_000_000, completed: 1_000_000_000, node },
  { status: 'pulling aaaaaaaaaaaa', digest: W, total: 2_000_000_000, completed: 2_000_000_000, node },
  { status: 'pulling bbbbbbbbbbbb', digest: S, total: 500, completed: 500, node },
  { status: 'verifying sha256 digest', node },
  { status: 'writing manifest', node },
  { status: 'success on node ' + node, node },
];

const feed = (p: PullProgress, lines: PullLine[]) => lines.map((l) => p.apply(l)).join('');

describe('humanBytes', () => {
  it.each([
    [0, '0 B'],
    [999, '999 B'],
    [1_500_000, '1.5 MB'],
    [860_000_000, '860 MB'],
    [2_000_000_500, '2.0 GB'],
  ])('%d → %s', (n, s) => expect(humanBytes(n)).toBe(s));
});

describe('PullProgress without a terminal', () => {
  it('writes one line per status change, with percent and bytes over every layer', () => {
    const p = new PullProgress({ tty: false, columns: 80 });
    const out = feed(p, [{ status: 'pulling m on gpu8' }, ...nodeLines('gpu8'), { status: 'success on node gpu8', node: 'gpu8' }, { status: 'success' }]);
    expect(out.split('\n')).toEqual([
      'pulling m on gpu8',
      'gpu8  pulling manifest',
      'gpu8  pulling aaaaaaaaaaaa    0%  0 B/2.0 GB',
      'gpu8  pulling bbbbbbbbbbbb  100%  2.0 GB/2.0 GB',
      'gpu8  verifying sha256 digest  100%  2.0 GB/2.0 GB',
      'gpu8  writing manifest  100%  2.0 GB/2.0 GB',
      'gpu8  success  100%  2.0 GB/2.0 GB',
      '',
    ]);
    expect(out).not.toContain('\x1b[');
    expect(p.end).toEqual({ ok: true });
    expect(p.nodeIds).toEqual(['gpu8']);
  });

  it('marks the nodes without a success as failed when the error line comes, and keeps the error', () => {
    const p = new PullProgress({ tty: false, columns: 80 });
    feed(p, [{ status: 'pulling manifest', node: 'a' }, { status: 'pulling manifest', node: 'b' }, { status: 'success on node b', node: 'b' }]);
    const out = p.apply({ error: 'pull "m" failed on node(s) a (file does not exist)' });
    expect(out).toBe('a  failed\n');
    expect(p.end).toEqual({ ok: false, error: 'pull "m" failed on node(s) a (file does not exist)' });
  });

  it('has no end while neither the success nor an error line came', () => {
    const p = new PullProgress({ tty: false, columns: 80 });
    feed(p, nodeLines('n1'));
    expect(p.end).toBeNull();
  });
});

describe('PullProgress on a terminal', () => {
  it('redraws one line per node in place: up over the lines drawn, each line cleared', () => {
    const p = new PullProgress({ tty: true, columns: 80 });
    expect(p.apply({ status: 'pulling m on a, b' })).toBe('\x1b[2Kpulling m on a, b\n');
    expect(p.apply({ status: 'pulling manifest', node: 'a' })).toBe('\x1b[2Ka  pulling manifest\n');
    expect(p.apply({ status: 'pulling manifest', node: 'b' })).toBe('\x1b[1A\r\x1b[2Ka  pulling manifest\n\x1b[2Kb  pulling manifest\n');
    // A progress step of the same status still redraws: the percent moved.
    p.apply({ status: 'pulling aaaaaaaaaaaa', digest: W, total: 1000, completed: 0, node: 'a' });
    expect(p.apply({ status: 'pulling aaaaaaaaaaaa', digest: W, total: 1000, completed: 420, node: 'a' })).toBe(
      '\x1b[2A\r\x1b[2Ka  pulling aaaaaaaaaaaa   42%  420 B/1.0 KB\n\x1b[2Kb  pulling manifest\n',
    );
    expect(p.apply({ error: 'boom' })).toBe('\x1b[2A\r\x1b[2Ka  failed   42%  420 B/1.0 KB\n\x1b[2Kb  failed\n');
  });

  it('cuts a line to the terminal width so the redraw moves up the right number of lines', () => {
    const p = new PullProgress({ tty: true, columns: 20 });
    const out = p.apply({ status: 'pulling a-very-long-layer-name-here', node: 'node-1' });
    expect(out).toBe('\x1b[2Knode-1  pulling a-v\n');
  });
});
