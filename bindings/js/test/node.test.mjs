// The Node entry point in real processes: flush on beforeExit and on
// SIGTERM/SIGINT, stdout exporters; and the core entry point stays free of
// anything Node-only.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';

import { captureServer, packageDir, runNode, spansOf, tempDir, waitFor } from './helpers.mjs';

const entry = pathToFileURL(path.join(packageDir, 'dist', 'node.js')).href;

function script(name, body) {
  const file = path.join(tempDir('node'), name);
  writeFileSync(file, `import * as polytel from ${JSON.stringify(entry)};\n${body}\n`);
  return file;
}

const app = `
polytel.configure({ backend: 'otlp', endpoint: process.env.RECEIVER, protocol: 'http/json', serviceName: 'exiting-app',
  exitHooks: process.env.EXIT_HOOKS !== 'false' });
await polytel.span('agent run', async () => {
  await new Promise((r) => setTimeout(r, 5));
  polytel.span('tool call', () => {});
});
`;

test('an app that just ends is flushed on beforeExit', async () => {
  const receiver = await captureServer();
  const r = await runNode([script('ends.mjs', app)], { env: { RECEIVER: receiver.url } });
  await receiver.close();
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(spansOf(receiver.json('traces')).map((s) => s.name).sort(), ['agent run', 'tool call']);
});

test('without exit hooks nothing is flushed at exit (what the hook does)', async () => {
  const receiver = await captureServer();
  const r = await runNode([script('nohooks.mjs', app)], { env: { RECEIVER: receiver.url, EXIT_HOOKS: 'false' } });
  await receiver.close();
  assert.equal(r.code, 0, r.stderr);
  assert.equal(spansOf(receiver.json('traces')).length, 0);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  test(`${signal} flushes, then ends the process with the signal`, async () => {
    const receiver = await captureServer();
    const file = script(
      `${signal}.mjs`,
      `${app}\nsetInterval(() => {}, 1000);\nprocess.stdout.write('ready\\n');`,
    );
    const r = await runNode([file], {
      env: { RECEIVER: receiver.url },
      onSpawn: (child, stdout) => {
        waitFor('the app to be ready', () => stdout().includes('ready')).then(() => child.kill(signal));
      },
    });
    await receiver.close();
    assert.equal(r.signal, signal, `exit ${r.code} ${r.signal}: ${r.stderr}`);
    assert.deepEqual(spansOf(receiver.json('traces')).map((s) => s.name).sort(), ['agent run', 'tool call']);
  });
}

test('an application handler for SIGTERM keeps the decision: polytel flushes and does not kill', async () => {
  const receiver = await captureServer();
  const file = script(
    'handler.mjs',
    `${app}
const keep = setInterval(() => {}, 1000);
process.on('SIGTERM', () => setTimeout(() => { console.log('app handled'); clearInterval(keep); }, 300));
process.stdout.write('ready\\n');`,
  );
  const r = await runNode([file], {
    env: { RECEIVER: receiver.url },
    onSpawn: (child, stdout) => {
      waitFor('the app to be ready', () => stdout().includes('ready')).then(() => child.kill('SIGTERM'));
    },
  });
  await receiver.close();
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /app handled/);
  assert.equal(spansOf(receiver.json('traces')).length, 2);
});

test('the console backend writes spans, metrics and logs to stdout', async () => {
  const file = script(
    'console.mjs',
    `polytel.configure({ backend: 'console', serviceName: 'console-app' });
polytel.span('console span', () => polytel.log('warn', 'console log line'));
polytel.counter('console.counter').add(3);
await polytel.shutdown();`,
  );
  const r = await runNode([file]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /console span/);
  assert.match(r.stdout, /console log line/);
  assert.match(r.stdout, /console\.counter/);
});

test('polytel/core runs where the core is loaded by hand (edge style), and lets the process end', async () => {
  const receiver = await captureServer();
  const core = pathToFileURL(path.join(packageDir, 'dist', 'core.js')).href;
  const gen = pathToFileURL(path.join(packageDir, 'gen') + '/').href;
  const file = path.join(tempDir('core'), 'edge.mjs');
  writeFileSync(
    file,
    `import { readFile } from 'node:fs/promises';
import * as polytel from ${JSON.stringify(core)};
await polytel.init((name) => readFile(new URL(name, ${JSON.stringify(gen)})));
polytel.configure({ endpoint: process.env.RECEIVER, protocol: 'http/json', serviceName: 'edge' });
polytel.span('edge request', () => {});
await polytel.forceFlush();
`,
  );
  // Without hooks the buffer is flushed by the app; the process must end by itself after it.
  const r = await runNode([file], { env: { RECEIVER: receiver.url }, timeoutMs: 10_000 });
  await receiver.close();
  assert.equal(r.code, 0, r.stderr);
  const [s] = spansOf(receiver.json('traces'));
  assert.equal(s.name, 'edge request');
  assert.equal(s.resource['telemetry.sdk.language'], 'webjs');
});

test('the browser and core entry points import nothing Node-only', () => {
  // Walk the static import graph of each entry; the Node entry may use node:*.
  for (const start of ['browser.js', 'core.js']) {
    const seen = new Set();
    const queue = [path.join(packageDir, 'dist', start)];
    while (queue.length > 0) {
      const file = queue.pop();
      if (seen.has(file)) continue;
      seen.add(file);
      const text = readFileSync(file, 'utf8');
      const specifiers = [...text.matchAll(/(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]/gm)].map(
        (m) => m[1] ?? m[2],
      );
      for (const s of specifiers) {
        assert.ok(s.startsWith('.'), `${path.basename(file)} (reached from ${start}) imports ${s}`);
        queue.push(path.resolve(path.dirname(file), s));
      }
      const code = text.replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, '');
      for (const nodeOnly of [/\bprocess\./, /\bBuffer\b/, /\brequire\(/, /\bsetImmediate\b/, /\bnode:/]) {
        assert.doesNotMatch(code, nodeOnly, `${path.basename(file)} (reached from ${start}) uses ${nodeOnly}`);
      }
    }
    assert.ok(seen.size >= 5, `${start} reaches ${seen.size} modules`);
    assert.ok([...seen].some((f) => f.endsWith(path.join('gen', 'polytel.js'))), 'the jco bindings are on the path');
  }
});
