#!/usr/bin/env node
// Adds package-lock.json records for optional platform packages that npm left out.
//
// npm (10/11) omits optional dependencies for other platforms from the lock when the registry it uses does not
// carry them (the mirror these machines use lacks e.g. @node-llama-cpp/win-x64@3.22.1), and `npm ci` then refuses
// the lock ("Missing: ... from lock file"). The records added here name the version and the os/cpu each package is
// for, so `npm ci` on Linux skips them without fetching anything. Run after every `npm install` that rewrites the lock:
//   npm run lock:fix
import { readFileSync, writeFileSync } from 'node:fs';

const PLATFORMS = {
  'darwin-arm64': [['darwin'], ['arm64']],
  'darwin-x64': [['darwin'], ['x64']],
  'linux-arm': [['linux'], ['arm']],
  'linux-arm64': [['linux'], ['arm64']],
  'linux-x64': [['linux'], ['x64']],
  'win32-x64': [['win32'], ['x64']],
  'linux-riscv64': [['linux'], ['riscv64']],
  'linux-armv7l': [['linux'], ['arm']],
  'mac-arm64-metal': [['darwin'], ['arm64']],
  'mac-x64': [['darwin'], ['x64']],
  'win-arm64': [['win32'], ['arm64']],
  'win-x64': [['win32'], ['x64']],
  'win-x64-cuda': [['win32'], ['x64']],
  'win-x64-cuda-ext': [['win32'], ['x64']],
  'win-x64-vulkan': [['win32'], ['x64']],
};
const PARENTS = ['node_modules/msgpackr-extract', 'node_modules/node-llama-cpp'];

const path = process.argv[2] ?? 'package-lock.json';
const lock = JSON.parse(readFileSync(path, 'utf8'));
const added = [];
for (const parent of PARENTS) {
  for (const [name, version] of Object.entries(lock.packages[parent]?.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    if (lock.packages[key]) continue;
    const platform = PLATFORMS[name.split('/').pop().replace('msgpackr-extract-', '')];
    if (!platform) throw new Error(`no os/cpu known for ${name}: add it to PLATFORMS in ${process.argv[1]}`);
    lock.packages[key] = { version, optional: true, os: platform[0], cpu: platform[1] };
    added.push(`${name}@${version}`);
  }
}
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
process.stdout.write(added.length ? `added ${added.length} lock records: ${added.join(', ')}\n` : 'the lock already has every platform record\n');
