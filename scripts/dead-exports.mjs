#!/usr/bin/env node
// Lists exported symbols no other file uses, through the TypeScript language service (uses via index.ts re-exports count).
//
// Two lists: exports nothing else uses (drop the `export`, or the code), and exports only tests use (test seams;
// fine where a table-driven test needs them). Exported types that name a parameter or result of another export stay.
// Known false positives: `run` in apps/cli/main.ts (bin/hydra.mjs, not TypeScript, imports it) and default exports
// that tools load (vitest's global setup). Usage: npm run dead-exports
import { relative } from 'node:path';
import ts from 'typescript';

const ROOT = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const cfg = ts.getParsedCommandLineOfConfigFile(`${ROOT}/tsconfig.json`, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
if (!cfg) throw new Error('cannot read tsconfig.json');
const ls = ts.createLanguageService({
  getScriptFileNames: () => cfg.fileNames,
  getScriptVersion: () => '1',
  getScriptSnapshot: (f) => (ts.sys.fileExists(f) ? ts.ScriptSnapshot.fromString(ts.sys.readFile(f) ?? '') : undefined),
  getCurrentDirectory: () => ROOT,
  getCompilationSettings: () => cfg.options,
  getDefaultLibFileName: ts.getDefaultLibFilePath,
  fileExists: ts.sys.fileExists,
  readFile: ts.sys.readFile,
  readDirectory: ts.sys.readDirectory,
  directoryExists: ts.sys.directoryExists,
  getDirectories: ts.sys.getDirectories,
});
const program = ls.getProgram();
const checker = program.getTypeChecker();
const isTest = (f) => f.endsWith('.test.ts');
const unused = [];
const testOnly = [];
for (const sf of program.getSourceFiles()) {
  const file = relative(ROOT, sf.fileName);
  if (file.startsWith('..') || file.includes('node_modules') || isTest(file)) continue;
  const mod = checker.getSymbolAtLocation(sf);
  for (const sym of mod ? checker.getExportsOfModule(mod) : []) {
    const decl = sym.declarations?.[0];
    // Re-exports are counted at the declaration they point to.
    if (!decl || decl.getSourceFile() !== sf || ts.isExportSpecifier(decl) || ts.isExportAssignment(decl)) continue;
    const name = ts.getNameOfDeclaration(decl) ?? decl;
    const users = new Set();
    for (const ref of ls.findReferences(sf.fileName, name.getStart()) ?? []) {
      for (const r of ref.references) {
        const user = relative(ROOT, r.fileName);
        if (user === file) continue;
        // `export { x } from` in a barrel passes the symbol on; it is not a use.
        const token = ts.getTokenAtPosition(program.getSourceFile(r.fileName), r.textSpan.start);
        if (token.parent && ts.isExportSpecifier(token.parent)) continue;
        users.add(user);
      }
    }
    const where = `${file}:${sf.getLineAndCharacterOfPosition(name.getStart()).line + 1} ${sym.name}`;
    if (users.size === 0) unused.push(where);
    else if ([...users].every(isTest)) testOnly.push(`${where} (${[...users].join(', ')})`);
  }
}
process.stdout.write(`exports no other file uses:\n${unused.map((l) => `  ${l}\n`).join('')}`);
process.stdout.write(`exports only tests use:\n${testOnly.map((l) => `  ${l}\n`).join('')}`);
