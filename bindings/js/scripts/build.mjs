#!/usr/bin/env node
// Builds the package: the core component (from the `polytel` command, which
// embeds it) → jco transpile into gen/ → tsc into dist/.
//
// The component comes from, in order: $POLYTEL_COMPONENT (a .wasm file),
// $POLYTEL_BIN (the polytel command), $POLYTEL_CACHE/target/release/polytel
// (where scripts/test.sh builds it), or `polytel` on PATH.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });

function component() {
  if (process.env.POLYTEL_COMPONENT) return process.env.POLYTEL_COMPONENT;
  const cache = process.env.POLYTEL_CACHE || path.join(homedir(), '.cache', 'polytel');
  const candidates = [process.env.POLYTEL_BIN, path.join(process.env.CARGO_TARGET_DIR || path.join(cache, 'target'), 'release', 'polytel')];
  let polytel = candidates.find((c) => c && existsSync(c));
  if (!polytel) polytel = 'polytel';
  mkdirSync(path.join(root, 'build'), { recursive: true });
  const out = path.join(root, 'build', 'polytel.wasm');
  try {
    run(polytel, ['component', '--out', out]);
  } catch (e) {
    console.error(
      `build: could not get the core component from ${polytel} (${e.message}); build it first with ` +
        '`cargo build --release --locked --bin polytel`, or set POLYTEL_COMPONENT to a component file.',
    );
    process.exit(1);
  }
  return out;
}

const wasm = component();
rmSync(path.join(root, 'gen'), { recursive: true, force: true });
rmSync(path.join(root, 'dist'), { recursive: true, force: true });
// --instantiation sync: each pipeline instantiates the core itself (a fresh
// instance after a trap); --no-nodejs-compat: the generated code is the same
// for Node and browsers; no WASI shim, as the component imports nothing.
run(bin('jco'), ['transpile', wasm, '-o', 'gen', '--name', 'polytel', '--instantiation', 'sync', '--no-nodejs-compat', '--quiet']);
run(bin('tsc'), ['-p', 'tsconfig.json']);
console.error('build: gen/ (jco) and dist/ (tsc) are ready');
