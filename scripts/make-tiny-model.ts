// CLI: write the toy GGUF (tiny-toy-llama) for demos and local runs of the llamacpp backend.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeTinyModel } from '../libs/tiny-model/index.js';

const DEFAULT_TINY_MODEL_PATH = './models/tiny-toy-llama.gguf';

/** `make-tiny-model [--out <path>]`: writes the model and prints where and how big. Returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  let out = DEFAULT_TINY_MODEL_PATH;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--out') {
      const next = argv[++i];
      if (next === undefined || next.startsWith('--')) return usage('--out needs a path');
      out = next;
    } else if (arg.startsWith('--out=')) {
      out = arg.slice('--out='.length);
    } else if (arg === '--help' || arg === '-h') {
      return usage();
    } else {
      return usage(`unknown argument ${arg}`);
    }
  }
  const written = await writeTinyModel(resolve(out));
  process.stdout.write(`wrote ${written.name} to ${written.path} (${written.bytes} bytes)\n`);
  process.stdout.write(`serve it with BACKEND=llamacpp and the models folder containing it; it is a toy, not a language model\n`);
  return 0;
}

function usage(problem?: string): number {
  if (problem) process.stderr.write(`make-tiny-model: ${problem}\n`);
  process.stderr.write(`usage: make-tiny-model [--out <path>]   (default ${DEFAULT_TINY_MODEL_PATH})\n`);
  return problem ? 2 : 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`make-tiny-model: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
