#!/usr/bin/env node
// Refuses to pack a package without its build output (gen/ from jco, dist/ from tsc).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const needed = ['dist/node.js', 'dist/browser.js', 'dist/core.js', 'gen/polytel.js', 'gen/polytel.core.wasm'];
const missing = needed.filter((f) => !existsSync(path.join(root, f)));
if (missing.length > 0) {
  console.error(`pack: ${missing.join(', ')} missing; run \`npm run build\` first.`);
  process.exit(1);
}
