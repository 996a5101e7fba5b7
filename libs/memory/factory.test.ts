// MEMORY_URL: which store it names, and a bad value refused naming the variable (its password masked).
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { memoryTarget } from './factory.js';

const target = (MEMORY_URL?: string) => memoryTarget(loadConfig({ HYDRA_DATA_DIR: '/var/hydra', ...(MEMORY_URL === undefined ? {} : { MEMORY_URL }) }));

describe('MEMORY_URL', () => {
  it.each([
    [undefined, { kind: 'sqlite', path: '/var/hydra/history.sqlite' }],
    ['', { kind: 'sqlite', path: '/var/hydra/history.sqlite' }],
    ['off', { kind: 'off' }],
    ['sqlite:./h.db', { kind: 'sqlite', path: './h.db' }],
    ['sqlite:///abs/h.db', { kind: 'sqlite', path: '/abs/h.db' }],
    ['postgres://u:p@db:5432/hydra', { kind: 'postgres', url: 'postgres://u:p@db:5432/hydra' }],
    ['postgresql://db/hydra', { kind: 'postgres', url: 'postgresql://db/hydra' }],
  ])('%s → %o', (v, want) => expect(target(v)).toEqual(want));

  it.each(['mysql://u:secret@db/x', 'sqlite:', 'yes', 'postgres://'])('refuses %s, naming the variable and masking a password', (v) => {
    let msg = '';
    try {
      target(v);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/MEMORY_URL=.*must be postgres:\/\/user:pass@host:port\/db, sqlite:<path>, or off/);
    expect(msg).not.toContain('secret');
  });
});
