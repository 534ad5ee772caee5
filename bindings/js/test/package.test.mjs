// `npm pack` gives a tarball that installs into a fresh project and works:
// a tiny ESM script exports a span to a local receiver, and a TypeScript
// consumer type-checks against the installed types.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { captureServer, packageDir, runNode, sh, spansOf, tempDir } from './helpers.mjs';

test('the packed tarball installs into a fresh project and works', async () => {
  const dir = tempDir('pack');
  const packed = JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', dir], { cwd: packageDir }))[0];
  const files = packed.files.map((f) => f.path);
  for (const f of ['dist/node.js', 'dist/node.d.ts', 'dist/browser.js', 'dist/core.js', 'gen/polytel.js', 'gen/polytel.core.wasm', 'README.md', 'package.json']) {
    assert.ok(files.includes(f), `${f} is in the tarball`);
  }
  assert.ok(!files.some((f) => f.startsWith('src/') || f.startsWith('test/') || f.startsWith('node_modules/')), files.join(', '));
  console.log(`# tarball ${packed.filename}: ${packed.size} bytes packed, ${packed.unpackedSize} unpacked, ${files.length} files`);

  const app = path.join(dir, 'app');
  sh('mkdir', ['-p', app]);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'fresh-app', version: '1.0.0', type: 'module', private: true }));
  sh('npm', ['install', '--no-audit', '--no-fund', path.join(dir, packed.filename)], { cwd: app });

  const receiver = await captureServer();
  writeFileSync(
    path.join(app, 'index.js'),
    `import polytel from 'polytel';
import { span, configure } from 'polytel';
configure({ backend: 'otlp', endpoint: process.env.RECEIVER, protocol: 'http/json', serviceName: 'fresh-app' });
await span('hello from a fresh install', async (s) => { s.setAttribute('installed', true); });
polytel.log('info', 'installed and working');
console.log(JSON.stringify(await polytel.shutdown()));
`,
  );
  const r = await runNode(['index.js'], { cwd: app, env: { RECEIVER: receiver.url } });
  await receiver.close();
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { abandoned: 0, flushed: true });
  const [s] = spansOf(receiver.json('traces'));
  assert.equal(s.name, 'hello from a fresh install');
  assert.equal(s.resource['service.name'], 'fresh-app');

  // The types, as a strict TypeScript consumer sees them.
  writeFileSync(
    path.join(app, 'check.ts'),
    `import * as polytel from 'polytel';
import { type Span, type SpanContext, double } from 'polytel';
const t: polytel.Telemetry = polytel.configure({ backend: 'honeycomb', honeycombApiKey: 'k', serviceName: 's' });
const n: number = polytel.span('typed', { kind: 'client', attributes: { a: 1, b: double(2), c: ['x'] } }, (s: Span) => 1);
const p: Promise<string> = polytel.span('async', async () => 'x');
const ctx: SpanContext | undefined = polytel.extract({ traceparent: 'x' });
polytel.histogram('h', { unit: 's', boundaries: [1, 2] }).record(1, { k: 'v' });
polytel.observableGauge('g', (o) => o.observe(1));
polytel.log('warn', 'm', { k: true }, { eventName: 'e' });
const h: Record<string, string> = polytel.inject();
const answer: Promise<string> = polytel.llmCall('openai', 'gpt-4o', { operation: 'chat', kind: 'client' }, async (call: polytel.Operation) => {
  call.recordUsage({ inputTokens: 1, outputTokens: 2 }).setResponseModel('m').recordCost(0.1).recordInput({ q: 'x' }).recordOutput(['y']);
  return 'a';
});
const k: number = polytel.agent('a', () => polytel.tool('t', { attributes: { x: 1 } }, () => polytel.memory('search_memory', 's', () => 1)));
polytel.startWorkflow('w', { parent: null }).end();
const ops: readonly polytel.OperationStats[] = polytel.stats()?.operations ?? [];
void t; void n; void p; void ctx; void h; void answer; void k; void ops;
// @ts-expect-error: not a usage counter
polytel.startLlmCall('openai', 'gpt-4o').recordUsage({ tokens: 1 });
// @ts-expect-error: not a span kind
polytel.startSpan('x', { kind: 'sideways' });
// @ts-expect-error: not an option
polytel.configure({ honeycombKey: 'k' });
// @ts-expect-error: not a level
polytel.log('loud', 'm');
`,
  );
  writeFileSync(
    path.join(app, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { strict: true, noEmit: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', lib: ['ES2022', 'DOM'], types: [] }, files: ['check.ts'] }),
  );
  sh(path.join(packageDir, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], { cwd: app });
});
