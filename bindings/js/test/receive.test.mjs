// End to end to `polytel receive --json` (the project's own OTLP/HTTP
// receiver, a child process): protobuf with gzip, as a default configuration
// sends it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { test } from 'node:test';

import * as polytel from '../dist/node.js';
import { polytelBin, waitFor } from './helpers.mjs';

async function freePort() {
  const s = createServer();
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise((resolve) => s.close(resolve));
  return port;
}

test('the agent workload arrives at `polytel receive`', async () => {
  const port = await freePort();
  const child = spawn(polytelBin(), ['receive', '--listen', `127.0.0.1:${port}`, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  try {
    await waitFor('polytel receive to listen', () => stderr.includes('receiving') || child.exitCode !== null);
    assert.equal(child.exitCode, null, `polytel receive exited: ${stderr}`);

    const t = polytel.create({
      backend: 'otlp',
      endpoint: `http://127.0.0.1:${port}`,
      compression: 'gzip',
      serviceName: 'js-e2e',
      env: {},
      exitHooks: false,
    });
    const tokens = t.histogram('gen_ai.client.token.usage', { unit: '{token}', boundaries: [1, 4, 16, 64, 256, 1024] });
    const agent = await t.span('invoke_agent planner', { attributes: { 'gen_ai.agent.name': 'planner' } }, async (a) => {
      await t.span('chat gpt-4o', { kind: 'client', attributes: { 'gen_ai.request.model': 'gpt-4o' } }, async (llm) => {
        await new Promise((r) => setTimeout(r, 2));
        llm.setAttribute('gen_ai.usage.input_tokens', 412);
        tokens.record(412, { 'gen_ai.token.type': 'input' });
      });
      await t.span('execute_tool fetch_page', async (tool) => {
        tool.recordException(new Error('timed out after 30s'));
        tool.setStatus('error', 'timed out after 30s');
        t.log('error', 'fetch_page timed out', { attempt: 3 });
      });
      return a.context;
    });
    const report = await t.shutdown();
    assert.deepEqual(report, { abandoned: 0, flushed: true });

    const lines = await waitFor('spans, metrics and logs in the receiver output', () => {
      const ls = stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
      const spans = ls.filter((l) => l.span_id !== undefined && l.name !== undefined);
      const logs = ls.filter((l) => l.level !== undefined);
      const metrics = ls.filter((l) => l.resourceMetrics !== undefined);
      return spans.length >= 3 && logs.length >= 1 && metrics.length >= 1 ? { spans, logs, metrics } : undefined;
    });
    const byName = Object.fromEntries(lines.spans.map((s) => [s.name, s]));
    assert.equal(byName['invoke_agent planner'].span_id, agent.spanId);
    assert.equal(byName['invoke_agent planner'].trace_id, agent.traceId);
    for (const child of ['chat gpt-4o', 'execute_tool fetch_page']) {
      assert.equal(byName[child].parent_span_id, agent.spanId);
      assert.equal(byName[child].trace_id, agent.traceId);
    }
    assert.equal(byName['chat gpt-4o'].kind, 3);
    assert.equal(byName['chat gpt-4o'].attributes['gen_ai.usage.input_tokens'], 412);
    assert.equal(byName['execute_tool fetch_page'].status.code, 2);
    assert.equal(byName['execute_tool fetch_page'].events[0].name, 'exception');
    assert.equal(byName['invoke_agent planner'].resource['service.name'], 'js-e2e');
    assert.equal(byName['invoke_agent planner'].resource['telemetry.sdk.language'], 'nodejs');

    const [log] = lines.logs;
    assert.equal(log.message, 'fetch_page timed out');
    assert.equal(log.level, 'ERROR');
    assert.equal(log.trace_id, agent.traceId);
    assert.equal(log.span_id, byName['execute_tool fetch_page'].span_id);

    const metric = lines.metrics
      .flatMap((m) => m.resourceMetrics)
      .flatMap((rm) => rm.scopeMetrics)
      .flatMap((sm) => sm.metrics)
      .find((m) => m.name === 'gen_ai.client.token.usage');
    assert.ok(metric, 'the histogram arrived');
    const point = metric.histogram.dataPoints[0];
    assert.equal(Number(point.count), 1);
    assert.equal(point.sum, 412);
    assert.deepEqual(point.explicitBounds, [1, 4, 16, 64, 256, 1024]);
  } finally {
    child.kill();
  }
});
