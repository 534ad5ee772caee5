// End to end against a real OpenTelemetry Collector: an agent workload goes
// through the JS package, and the Collector's own debug output must show every
// span, metric and log record with the right names, parents, typed attributes,
// events, statuses and trace context.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as polytel from '../dist/node.js';
import { startCollector } from './collector.mjs';
import { waitFor } from './helpers.mjs';

async function workload(t) {
  const calls = t.counter('agent.tool.calls', { unit: '{call}' });
  const duration = t.histogram('gen_ai.client.operation.duration', { unit: 's', boundaries: [0.1, 1, 10] });
  t.observableGauge('agent.memory.entries', (o) => o.observe(42, { store: 'notes' }));
  return t.span('invoke_agent planner', { attributes: { 'gen_ai.operation.name': 'invoke_agent' } }, async (agent) => {
    await t.span('chat gpt-4o', { kind: 'client' }, async (llm) => {
      await new Promise((r) => setTimeout(r, 2));
      llm.setAttributes({
        'gen_ai.request.model': 'gpt-4o',
        'gen_ai.request.temperature': 0.2,
        'gen_ai.usage.input_tokens': 412,
        'gen_ai.request.stream': false,
        'gen_ai.response.finish_reasons': ['stop'],
      });
      duration.record(0.73, { 'gen_ai.request.model': 'gpt-4o' });
    });
    await t.span('execute_tool fetch_page', async (tool) => {
      calls.add(1, { 'gen_ai.tool.name': 'fetch_page', outcome: 'error' });
      tool.recordException(Object.assign(new Error('timed out after 30s'), { name: 'TimeoutError' }));
      tool.setStatus('error', 'timed out after 30s');
      t.log('error', 'fetch_page timed out', { attempt: 3 });
    });
    calls.add(2, { 'gen_ai.tool.name': 'search', outcome: 'ok' });
    t.log('info', 'planning done', {}, { eventName: 'agent.done' });
    return agent.context;
  });
}

for (const [protocol, compression] of [
  ['http/protobuf', 'gzip'],
  ['http/json', 'none'],
]) {
  test(`the Collector receives the workload over ${protocol} (${compression})`, async () => {
    const collector = await startCollector();
    try {
      const t = polytel.create({
        backend: 'otlp',
        endpoint: collector.endpoint,
        protocol,
        compression,
        serviceName: `js-collector-${protocol.replace('/', '-')}`,
        env: {},
        exitHooks: false,
      });
      const agent = await workload(t);
      const report = await t.shutdown();
      const stats = t.stats();
      assert.deepEqual(report, { abandoned: 0, flushed: true }, JSON.stringify(stats));
      assert.equal(stats.spans.exported, 3, JSON.stringify(stats));
      assert.equal(stats.logs.exported, 2, JSON.stringify(stats));

      const spans = await waitFor('3 spans in the collector output', () => {
        const s = collector.spans();
        return s.length >= 3 ? s : undefined;
      }, 20_000);
      assert.equal(spans.length, 3, collector.output());
      const by = Object.fromEntries(spans.map((s) => [s.Name, s]));
      const root = by['invoke_agent planner'];
      assert.equal(root['Trace ID'], agent.traceId);
      assert.equal(root.ID, agent.spanId);
      assert.equal(root['Parent ID'], '');
      assert.equal(root.resource['service.name'], `Str(js-collector-${protocol.replace('/', '-')})`);
      assert.equal(root.resource['telemetry.sdk.language'], 'Str(nodejs)');
      assert.equal(root.resource['telemetry.sdk.name'], 'Str(polytel)');
      assert.equal(root.resource['process.runtime.name'], 'Str(nodejs)');
      assert.equal(root.attributes['gen_ai.operation.name'], 'Str(invoke_agent)');
      const llm = by['chat gpt-4o'];
      assert.equal(llm['Parent ID'], agent.spanId);
      assert.equal(llm['Trace ID'], agent.traceId);
      assert.equal(llm.Kind, 'Client');
      assert.deepEqual(llm.attributes, {
        'gen_ai.request.model': 'Str(gpt-4o)',
        'gen_ai.request.temperature': 'Double(0.2)',
        'gen_ai.usage.input_tokens': 'Int(412)',
        'gen_ai.request.stream': 'Bool(false)',
        'gen_ai.response.finish_reasons': 'Slice(["stop"])',
      });
      const tool = by['execute_tool fetch_page'];
      assert.equal(tool['Parent ID'], agent.spanId);
      assert.equal(tool['Status code'], 'Error');
      assert.equal(tool['Status message'], 'timed out after 30s');
      assert.equal(tool.events[0].name, 'exception');
      assert.equal(tool.events[0].attributes['exception.type'], 'Str(TimeoutError)');
      assert.equal(tool.events[0].attributes['exception.message'], 'Str(timed out after 30s)');

      const logs = await waitFor('2 log records', () => {
        const l = collector.logs();
        return l.length >= 2 ? l : undefined;
      }, 20_000);
      const failed = logs.find((l) => l.Body === 'Str(fetch_page timed out)');
      assert.ok(failed, collector.output());
      assert.equal(failed.SeverityNumber, 'Error(17)');
      assert.equal(failed['Trace ID'], agent.traceId);
      assert.equal(failed['Span ID'], tool.ID);
      assert.equal(failed.attributes.attempt, 'Int(3)');
      const done = logs.find((l) => l.Body === 'Str(planning done)');
      assert.equal(done.EventName, 'agent.done');
      assert.equal(done['Span ID'], agent.spanId);

      const metrics = await waitFor('the three metrics', () => {
        const m = collector.metrics();
        const names = new Set(m.map((x) => x.Name));
        return ['agent.tool.calls', 'gen_ai.client.operation.duration', 'agent.memory.entries'].every((n) => names.has(n)) ? m : undefined;
      }, 20_000);
      const calls = metrics.filter((m) => m.Name === 'agent.tool.calls').at(-1);
      assert.equal(calls.DataType, 'Sum');
      assert.equal(calls.IsMonotonic, 'true');
      assert.equal(calls.Unit, '{call}');
      const byTool = Object.fromEntries(calls.points.map((p) => [p.attributes['gen_ai.tool.name'], p.Value]));
      assert.deepEqual(byTool, { 'Str(fetch_page)': 1, 'Str(search)': 2 });
      const hist = metrics.filter((m) => m.Name === 'gen_ai.client.operation.duration').at(-1);
      assert.equal(hist.DataType, 'Histogram');
      assert.equal(hist.points[0].Count, 1);
      assert.equal(hist.points[0].Sum, 0.73);
      const gauge = metrics.filter((m) => m.Name === 'agent.memory.entries').at(-1);
      assert.equal(gauge.DataType, 'Gauge');
      assert.equal(gauge.points[0].Value, 42);
      assert.equal(gauge.points[0].attributes.store, 'Str(notes)');
    } finally {
      collector.stop();
    }
  });
}
