// The API as a new user would use it: configure, spans (sync, async, nested
// through AsyncLocalStorage, manual), metrics, logs, propagation, flush and
// shutdown, configuration errors, secrets, delivery outcomes, trap recovery.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { inspect } from 'node:util';

import * as polytel from '../dist/node.js';
import { attrs, captureServer, logsOf, metricsOf, spansOf, tempDir, waitFor } from './helpers.mjs';

/** A pipeline to `receiver` over OTLP/HTTP JSON, independent of the process's. */
function pipeline(receiver, options = {}) {
  return polytel.create({
    backend: 'otlp',
    endpoint: receiver.url,
    protocol: 'http/json',
    serviceName: 'js-api-test',
    env: {},
    exitHooks: false,
    ...options,
  });
}

describe('the module-level API', () => {
  let receiver;
  before(async () => {
    receiver = await captureServer();
  });
  after(() => receiver.close());

  test('before configure everything is a no-op, and module-scope instruments bind once it runs', async () => {
    const calls = polytel.counter('agent.tool.calls', { unit: '{call}' });
    calls.add(5); // before configure: goes nowhere
    assert.equal(polytel.span('unconfigured', () => 42), 42);
    assert.equal(polytel.startSpan('unconfigured').isRecording(), false);
    assert.deepEqual(polytel.inject({}), {});
    assert.equal(await polytel.forceFlush(), true);

    const t = polytel.configure({
      backend: 'otlp',
      endpoint: receiver.url,
      protocol: 'http/json',
      serviceName: 'research-agent',
      deploymentEnvironment: 'test',
      env: {},
      exitHooks: false,
    });
    assert.equal(polytel.telemetry(), t);
    calls.add(2, { tool: 'search' });
    const result = await polytel.span('invoke_agent planner', { kind: 'server' }, async (agent) => {
      agent.setAttribute('gen_ai.agent.name', 'planner');
      const [a, b] = await Promise.all([
        polytel.span('chat gpt-4o', { kind: 'client' }, async () => {
          await new Promise((r) => setTimeout(r, 5));
          // Still inside "chat gpt-4o" after the await: AsyncLocalStorage follows it.
          polytel.log('info', 'model answered', { tokens: 96 });
          calls.add(1, { tool: 'fetch_page' });
          return polytel.currentSpan().context.spanId;
        }),
        polytel.span('execute_tool search', async () => {
          await new Promise((r) => setTimeout(r, 1));
          return new Promise((resolve) => setTimeout(() => resolve(polytel.span('nested in a timer', (s) => s.context.spanId)), 1));
        }),
      ]);
      return { a, b, agent: agent.context };
    });
    assert.equal(polytel.currentSpan(), undefined, 'no span is current outside');
    const report = await polytel.shutdown();
    assert.deepEqual(report, { abandoned: 0, flushed: true });

    const spans = spansOf(receiver.json('traces'));
    const byName = Object.fromEntries(spans.map((s) => [s.name, s]));
    assert.deepEqual(Object.keys(byName).sort(), ['chat gpt-4o', 'execute_tool search', 'invoke_agent planner', 'nested in a timer']);
    const root = byName['invoke_agent planner'];
    assert.equal(root.parentSpanId ?? '', '');
    assert.equal(root.kind, 2);
    assert.equal(root.traceId, result.agent.traceId);
    assert.equal(root.spanId, result.agent.spanId);
    assert.equal(root.resource['service.name'], 'research-agent');
    assert.equal(root.resource['deployment.environment.name'], 'test');
    assert.equal(root.resource['telemetry.sdk.language'], 'nodejs');
    assert.equal(root.resource['process.runtime.name'], 'nodejs', 'Node facts reach the core');
    assert.equal(root.resource['process.pid'], process.pid);
    assert.equal(attrs(root.attributes)['gen_ai.agent.name'], 'planner');
    for (const child of ['chat gpt-4o', 'execute_tool search']) {
      assert.equal(byName[child].parentSpanId, root.spanId, `${child} is a child of the agent span`);
      assert.equal(byName[child].traceId, root.traceId);
    }
    assert.equal(byName['chat gpt-4o'].spanId, result.a);
    assert.equal(byName['nested in a timer'].parentSpanId, byName['execute_tool search'].spanId);
    assert.equal(byName['nested in a timer'].spanId, result.b);

    const [logRecord] = logsOf(receiver.json('logs'));
    assert.equal(logRecord.body.stringValue, 'model answered');
    assert.equal(logRecord.severityNumber, 9);
    assert.equal(logRecord.traceId, root.traceId);
    assert.equal(logRecord.spanId, result.a);

    const sums = metricsOf(receiver.json('metrics')).filter((m) => m.name === 'agent.tool.calls');
    const points = sums.at(-1).sum.dataPoints;
    const byTool = Object.fromEntries(points.map((p) => [attrs(p.attributes).tool, p.asDouble ?? Number(p.asInt)]));
    assert.deepEqual(byTool, { search: 2, fetch_page: 1 }, 'the add made before configure went nowhere');
    const exemplar = points.find((p) => attrs(p.attributes).tool === 'fetch_page').exemplars?.[0];
    assert.equal(exemplar?.traceId, root.traceId, 'a counter add inside a span carries it as an exemplar');
  });
});

describe('a pipeline', () => {
  test('spans: every attribute type, events, exceptions, status, links, manual control', async () => {
    const receiver = await captureServer();
    const t = pipeline(receiver);
    const linked = t.startSpan('linked');
    linked.end();
    const manual = t.startSpan('manual', {
      kind: 'client',
      attributes: { str: 's', int: 7, big: 2n ** 62n, dbl: 0.25, one: polytel.double(1), bool: false },
      links: [{ context: linked, attributes: { reason: 'retry' } }],
    });
    assert.equal(t.currentSpan(), undefined, 'startSpan does not make the span current');
    manual
      .setAttribute('arr', ['a', 'b'])
      .setAttribute('map', { inner: { flag: true }, n: -3 })
      .setAttribute('bytes', new Uint8Array([0, 1, 2, 255]))
      .setAttribute('nan', NaN)
      .setAttribute('int', 8)
      .setAttributes({ unicode: 'héllo → ✓', lone: 'a\ud800b' })
      .addEvent('chunk', { index: 0 });
    manual.recordException(new RangeError('out of range'));
    manual.setStatus('error', 'it failed');
    manual.setStatus('unset');
    manual.end();
    manual.end();
    manual.setAttribute('after', 'end');
    assert.equal(manual.isRecording(), false);

    assert.equal(t.span('sync', () => 'value'), 'value');
    assert.throws(() => t.span('throws', () => { throw new TypeError('bad input'); }), /bad input/);
    await assert.rejects(t.span('rejects', async () => { throw new Error('async failure'); }), /async failure/);
    t.span('ok', (s) => s.setStatus('ok').setStatus('error', 'ignored: ok is final'));
    t.span('explicit root', { parent: null }, () => {});
    await t.shutdown();
    await receiver.close();

    const spans = Object.fromEntries(spansOf(receiver.json('traces')).map((s) => [s.name, s]));
    const m = spans.manual;
    const a = attrs(m.attributes);
    assert.equal(m.kind, 3);
    assert.deepEqual(
      { str: a.str, int: a.int, dbl: a.dbl, one: a.one, bool: a.bool, arr: a.arr, map: a.map, nan: a.nan },
      { str: 's', int: 8, dbl: 0.25, one: 1, bool: false, arr: ['a', 'b'], map: { inner: { flag: true }, n: -3 }, nan: NaN },
    );
    const typed = Object.fromEntries(m.attributes.map((kv) => [kv.key, Object.keys(kv.value)[0]]));
    assert.equal(typed.one, 'doubleValue', 'double(1) travels as a double');
    assert.equal(typed.int, 'intValue');
    assert.equal(typed.big, 'intValue');
    assert.equal(m.attributes.find((kv) => kv.key === 'big').value.intValue, String(2n ** 62n));
    assert.deepEqual([...a.bytes], [0, 1, 2, 255]);
    assert.equal(a.unicode, 'héllo → ✓');
    assert.equal(a.lone, 'a\ufffdb', 'a lone surrogate does not cost the span');
    assert.equal(a.after, undefined);
    assert.deepEqual(m.events.map((e) => e.name), ['chunk', 'exception']);
    const exc = attrs(m.events[1].attributes);
    assert.equal(exc['exception.type'], 'RangeError');
    assert.equal(exc['exception.message'], 'out of range');
    assert.match(exc['exception.stacktrace'], /RangeError: out of range\n\s+at /);
    assert.deepEqual(m.status, { code: 2, message: 'it failed' });
    assert.equal(m.links[0].spanId, spans.linked.spanId);
    assert.equal(attrs(m.links[0].attributes).reason, 'retry');
    assert.equal(spans.throws.status.code, 2);
    assert.equal(attrs(spans.throws.events[0].attributes)['exception.type'], 'TypeError');
    assert.equal(spans.rejects.status.message, 'async failure');
    assert.equal(spans.ok.status.code, 1);
    assert.equal(spans.sync.status, undefined);
  });

  test('metrics: every instrument, observable callbacks, histogram boundaries', async () => {
    const receiver = await captureServer();
    const t = pipeline(receiver);
    const calls = t.counter('calls', { unit: '{call}', description: 'Tool calls.' });
    const active = t.upDownCounter('active');
    const duration = t.histogram('duration', { unit: 's', boundaries: [0.1, 1, 10] });
    const queue = t.gauge('queue');
    let observed = 0;
    const memory = t.observableGauge('memory', { unit: 'By' }, (o) => {
      observed++;
      o.observe(4096, { pool: 'main' });
    });
    t.observableCounter('async.total', async (o) => {
      await new Promise((r) => setTimeout(r, 1));
      o.observe(12);
    });
    const gone = t.observableUpDownCounter('unregistered', (o) => o.observe(1));
    gone.unregister();
    calls.add(1, { ok: true });
    calls.add(2, { ok: true });
    active.add(3);
    active.add(-1);
    for (const v of [0.05, 0.5, 5, 50]) duration.record(v);
    queue.record(4);
    queue.record(2.5);
    await t.shutdown();
    await receiver.close();
    assert.ok(observed >= 1, 'the observable callback ran');
    memory.unregister();

    const metrics = Object.fromEntries(metricsOf(receiver.json('metrics')).map((m) => [m.name, m]));
    const value = (p) => p.asDouble ?? Number(p.asInt);
    assert.equal(metrics.calls.unit, '{call}');
    assert.equal(metrics.calls.description, 'Tool calls.');
    assert.equal(metrics.calls.sum.isMonotonic, true);
    assert.equal(value(metrics.calls.sum.dataPoints[0]), 3);
    assert.equal(value(metrics.active.sum.dataPoints[0]), 2);
    assert.equal(metrics.active.sum.isMonotonic ?? false, false);
    const h = metrics.duration.histogram.dataPoints[0];
    assert.deepEqual(h.explicitBounds, [0.1, 1, 10]);
    assert.deepEqual(h.bucketCounts.map(Number), [1, 1, 1, 1]);
    assert.equal(Number(h.count), 4);
    assert.equal(h.sum, 55.55);
    assert.equal(value(metrics.queue.gauge.dataPoints[0]), 2.5);
    assert.equal(value(metrics.memory.gauge.dataPoints[0]), 4096);
    assert.equal(attrs(metrics.memory.gauge.dataPoints[0].attributes).pool, 'main');
    assert.equal(value(metrics['async.total'].sum.dataPoints[0]), 12);
    assert.equal(metrics.unregistered, undefined);
  });

  test('logs: levels, bodies, attributes, event names, span context', async () => {
    const receiver = await captureServer();
    const t = pipeline(receiver);
    t.log('debug', 'cache warm', { entries: polytel.double(12.5) }, { eventName: 'agent.cache' });
    let ids;
    t.span('agent', (s) => {
      ids = s.context;
      t.log('warn', 'tool retried', { attempt: 2 });
      t.log('error', 'outside on purpose', {}, { span: null });
    });
    // One member: the core keeps only the first member of a map body
    // (guest/src/logs.rs parses the body with an attribute count limit of 1).
    t.log('fatal', { structured: true });
    t.log('trace', 'fine-grained');
    await t.shutdown();
    await receiver.close();
    const logs = logsOf(receiver.json('logs'));
    assert.deepEqual(logs.map((l) => [l.severityNumber, l.severityText]), [
      [5, 'DEBUG'],
      [13, 'WARN'],
      [17, 'ERROR'],
      [21, 'FATAL'],
      [1, 'TRACE'],
    ]);
    assert.equal(logs[0].eventName, 'agent.cache');
    assert.equal(attrs(logs[0].attributes).entries, 12.5);
    assert.equal(logs[1].traceId, ids.traceId);
    assert.equal(logs[1].spanId, ids.spanId);
    assert.equal(logs[1].flags, 1);
    assert.equal(logs[2].traceId ?? '', '', 'span: null leaves the record without a trace');
    assert.deepEqual(attrs([{ key: 'b', value: logs[3].body }]).b, { structured: true });
    assert.ok(BigInt(logs[0].timeUnixNano) > 1_700_000_000_000_000_000n, 'timestamps are unix nanoseconds');
  });

  test('propagation: extract a remote parent, continue its trace, inject downstream', async () => {
    const receiver = await captureServer();
    const t = pipeline(receiver);
    const incoming = {
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      tracestate: ['vendor=abc', 'other=1'],
      baggage: 'user=al%20ice',
    };
    const remote = t.extract(incoming);
    assert.deepEqual(remote, {
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      sampled: true,
      remote: true,
      traceState: 'vendor=abc,other=1',
      baggage: [['user', 'al ice']],
    });
    assert.equal(t.extract({ traceparent: 'garbage' }), undefined);
    assert.deepEqual(t.extract(new Headers({ TraceParent: incoming.traceparent })).spanId, '00f067aa0ba902b7');

    const outgoing = await t.span('POST /agent', { kind: 'server', parent: remote }, async (server) => {
      await null;
      const viaHeaders = t.inject(new Headers());
      return { plain: t.inject(), viaHeaders, server: server.context };
    });
    assert.equal(outgoing.plain.traceparent, `00-4bf92f3577b34da6a3ce929d0e0e4736-${outgoing.server.spanId}-01`);
    assert.equal(outgoing.plain.tracestate, 'vendor=abc,other=1');
    assert.equal(outgoing.plain.baggage, 'user=al%20ice');
    assert.equal(outgoing.viaHeaders.get('traceparent'), outgoing.plain.traceparent);
    t.withSpan(remote, () => t.span('in the remote context', () => {}));
    await t.shutdown();
    await receiver.close();
    const spans = spansOf(receiver.json('traces'));
    assert.equal(spans.length, 2);
    for (const s of spans) {
      assert.equal(s.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
      assert.equal(s.parentSpanId, '00f067aa0ba902b7');
      assert.equal(s.traceState, 'vendor=abc,other=1');
    }
  });

  test('a bad configuration fails in one sentence naming the option and the variable', () => {
    assert.throws(() => polytel.create({ backend: 'zipkin', env: {} }), (e) => {
      assert.ok(e instanceof polytel.ConfigurationError);
      assert.match(e.message, /zipkin/);
      return true;
    });
    assert.throws(() => polytel.create({ backend: 'honeycomb', env: {} }), (e) => {
      assert.ok(e instanceof polytel.ConfigurationError);
      assert.match(e.message, /honeycomb_api_key/);
      assert.match(e.message, /HONEYCOMB_API_KEY/);
      assert.equal(e.message.trim().split(/(?<=\.)\s+(?=[A-Z])/).length, 1, `one sentence: ${e.message}`);
      return true;
    });
    assert.throws(() => polytel.create({ endpoint: 'localhost:4318', env: {} }), polytel.ConfigurationError);
    assert.throws(() => polytel.create({ bogusOption: 1, env: {} }), /bogus_option/);
    assert.throws(() => polytel.create({ configFile: '/nonexistent/polytel.toml', env: {} }), /could not be read/);
  });

  test('camelCase options reach the core as its snake_case names; secrets never show', async () => {
    const key = 'hcaik_01jabcdefghijklmnopqrstuvwxyz0123456789abcdefghijkl';
    const token = 'Bearer s3cr3t-token-value';
    const receiver = await captureServer();
    let error;
    try {
      polytel.create({ backend: 'honeycomb', honeycombApiKey: key, honeycombRegion: 'mars', env: {} });
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof polytel.ConfigurationError, 'honeycombRegion reached the core');
    assert.ok(!error.message.includes(key) && !inspect(error).includes(key));

    const t = polytel.create({
      backend: 'honeycomb',
      honeycombApiKey: key,
      honeycombDataset: 'agents',
      endpoint: receiver.url,
      headers: { authorization: token },
      scheduleDelayMs: 5,
      env: {},
      exitHooks: false,
    });
    const described = JSON.stringify(t.describe());
    assert.match(described, /honeycomb/);
    assert.match(described, new RegExp(receiver.url.replace(/[.:/]/g, '\\$&')));
    for (const text of [described, inspect(t, { depth: 10, showHidden: true }), JSON.stringify(t.stats())]) {
      assert.ok(!text.includes(key) && !text.includes('s3cr3t'), 'no secret in describe, inspect or stats');
    }
    assert.match(described, /hcai/, 'a key shows as its first four characters');
    t.span('with credentials', () => {});
    await t.shutdown();
    await receiver.close();
    const sent = receiver.requests.find((r) => r.path === '/v1/traces');
    assert.equal(sent.headers['x-honeycomb-team'], key, 'the credential is sent, only never shown');
    assert.equal(sent.headers.authorization, token);
  });

  test('configure() alone reads process.env', async () => {
    const receiver = await captureServer();
    const saved = { ...process.env };
    Object.assign(process.env, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'from-the-environment',
      OTEL_RESOURCE_ATTRIBUTES: 'team=agents',
    });
    let t;
    try {
      t = polytel.create({ exitHooks: false });
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
    t.span('from env', () => {});
    await t.shutdown();
    await receiver.close();
    const [s] = spansOf(receiver.json('traces'));
    assert.equal(s.resource['service.name'], 'from-the-environment');
    assert.equal(s.resource.team, 'agents');
  });

  test('a TOML config file named by configFile or POLYTEL_CONFIG is read by Node', async () => {
    const receiver = await captureServer();
    const dir = tempDir('config');
    const file = path.join(dir, 'polytel.toml');
    writeFileSync(file, `backend = "otlp"\nendpoint = "${receiver.url}"\nprotocol = "http/json"\nservice_name = "from-file"\n`);
    for (const how of [{ configFile: file, env: {} }, { env: { POLYTEL_CONFIG: file } }]) {
      const t = polytel.create({ ...how, exitHooks: false });
      t.span('configured by file', () => {});
      await t.shutdown();
    }
    await receiver.close();
    const spans = spansOf(receiver.json('traces'));
    assert.equal(spans.length, 2);
    for (const s of spans) assert.equal(s.resource['service.name'], 'from-file');
  });

  test('disabled telemetry records nothing, runs the code, and still propagates', async () => {
    const receiver = await captureServer();
    const t = pipeline(receiver, { env: { OTEL_SDK_DISABLED: 'true' } });
    assert.equal(t.disabled, true);
    const remote = t.extract({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
    const headers = t.span('noop', { parent: remote }, (s) => {
      assert.equal(s.isRecording(), false);
      t.log('info', 'dropped');
      t.counter('c').add(1);
      return t.inject();
    });
    assert.equal(headers.traceparent, '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    assert.deepEqual(await t.shutdown(), { abandoned: 0, flushed: true });
    await receiver.close();
    assert.equal(receiver.requests.length, 0);
  });

  test('a 503 with Retry-After is retried by the core, then delivered', async () => {
    let n = 0;
    const receiver = await captureServer(() => (++n === 1 ? { status: 503, headers: { 'retry-after': '0' } } : {}));
    const t = pipeline(receiver);
    t.span('retried', () => {});
    // The flush waits for the retry (Retry-After: 0, so at once) and its answer.
    assert.equal(await t.forceFlush(), true);
    assert.equal(receiver.requests.length, 2);
    const stats = t.stats();
    assert.equal(stats.spans.retried, 1, JSON.stringify(stats));
    assert.equal(stats.spans.exported, 1);
    assert.ok(receiver.requests[0].body.equals(receiver.requests[1].body), 'the same body is sent again');
    await t.shutdown();
    await receiver.close();
  });

  test('selfMetrics exports the core\'s own counters as polytel.* metrics', async () => {
    let n = 0;
    const receiver = await captureServer(() => (++n === 1 ? { status: 400 } : {}));
    const t = pipeline(receiver, { selfMetrics: true });
    t.span('rejected', () => {});
    assert.equal(await t.forceFlush(), true);
    // The second collection carries the first export's outcome.
    assert.equal(await t.forceFlush(), true);
    const metrics = metricsOf(receiver.json('metrics'));
    for (const name of ['polytel.exported', 'polytel.dropped', 'polytel.retried', 'polytel.queued', 'polytel.pending']) {
      assert.ok(metrics.some((m) => m.name === name), `${name} in ${metrics.map((m) => m.name)}`);
    }
    const dropped = metrics.filter((m) => m.name === 'polytel.dropped').flatMap((m) => m.sum.dataPoints);
    assert.ok(dropped.some((p) => attrs(p.attributes).reason === 'rejected' && attrs(p.attributes).signal === 'spans'), JSON.stringify(dropped));
    await t.shutdown();
    await receiver.close();
  });

  test('a 307 reaches the core with its Location and is followed on the same origin', async () => {
    let n = 0;
    const receiver = await captureServer(() =>
      ++n === 1 ? { status: 307, headers: { location: '/moved/v1/traces' } } : {},
    );
    const t = pipeline(receiver);
    t.span('redirected', () => {});
    assert.equal(await t.forceFlush(), true);
    await waitFor('the redirected export', () => t.stats().spans.exported === 1);
    const [first, second] = receiver.requests;
    assert.deepEqual(
      receiver.requests.map((r) => [r.method, r.path]),
      [
        ['POST', '/v1/traces'],
        ['POST', '/moved/v1/traces'],
      ],
    );
    assert.ok(first.body.equals(second.body), 'the same body goes again');
    assert.deepEqual(t.stats().spans.dropped, {});
    await t.shutdown();
    await receiver.close();
  });

  test('a redirect to another host is not followed: credentials stay with the backend', async () => {
    const elsewhere = await captureServer();
    const receiver = await captureServer(() => ({ status: 308, headers: { location: `${elsewhere.url}/v1/traces` } }));
    const t = pipeline(receiver, { headers: { authorization: 'Bearer s3cr3t' }, allowInsecure: true });
    t.span('not followed', () => {});
    assert.equal(await t.forceFlush(), true);
    await t.forceFlush();
    assert.equal(receiver.requests.length, 1);
    assert.equal(elsewhere.requests.length, 0);
    assert.deepEqual(t.stats().spans.dropped, { rejected: 1 });
    await t.shutdown();
    await receiver.close();
    await elsewhere.close();
  });

  test('a 400 is dropped and counted, not retried', async () => {
    const receiver = await captureServer(() => ({ status: 400, body: '{}' }));
    const t = pipeline(receiver);
    t.span('rejected', () => {});
    await t.forceFlush();
    await t.forceFlush();
    const stats = t.stats();
    assert.equal(receiver.requests.length, 1);
    assert.equal(stats.spans.exported, 0);
    assert.ok(Object.values(stats.spans.dropped).reduce((a, b) => a + b, 0) === 1, JSON.stringify(stats.spans));
    await t.shutdown();
    await receiver.close();
  });

  test('an unreachable backend does not hold up shutdown; what is lost is counted', async () => {
    const t = polytel.create({ backend: 'otlp', endpoint: 'http://127.0.0.1:9', env: {}, exitHooks: false });
    for (let i = 0; i < 10; i++) t.span(`s${i}`, () => {});
    const started = Date.now();
    const report = await t.shutdown({ timeoutMs: 1500 });
    assert.ok(Date.now() - started < 4000, `shutdown took ${Date.now() - started} ms`);
    assert.equal(report.abandoned, 10, JSON.stringify(report));
    assert.equal(t.stats().spans.dropped.shutdown, 10);
  });

  test('the buffer is bounded: past max_queue records are dropped and counted', async () => {
    const receiver = await captureServer();
    const t = pipeline(receiver, { maxQueueSize: 10 });
    for (let i = 0; i < 100; i++) t.span(`s${i}`, () => {});
    const stats = t.stats();
    assert.equal(stats.host.buffer_dropped.spans, 90);
    await t.shutdown();
    await receiver.close();
    assert.equal(spansOf(receiver.json('traces')).length, 10);
  });

  test('the event loop gets turns between batches while a large flush is shipped', async () => {
    const receiver = await captureServer();
    const t = pipeline(receiver, { maxExportBatchSize: 100, maxQueueSize: 4000 });
    for (let i = 0; i < 2000; i++) t.span('bulk', { attributes: { i } }, () => {});
    let turns = 0;
    let flushing = true;
    const tick = () => {
      turns++;
      if (flushing) setImmediate(tick);
    };
    setImmediate(tick);
    assert.equal(await t.forceFlush({ timeoutMs: 20_000 }), true);
    flushing = false;
    assert.ok(turns >= 20, `only ${turns} turns of the event loop during the flush of 20 batches`);
    await t.shutdown();
    await receiver.close();
    assert.equal(spansOf(receiver.json('traces')).length, 2000);
    assert.ok(receiver.requests.filter((r) => r.path === '/v1/traces').length >= 20, 'one export per batch');
  });

  test('a trap (or memory past the limit) is recovered from and counted', async () => {
    const receiver = await captureServer();
    const warnings = [];
    const t = pipeline(receiver, { memoryLimit: 32 << 20 });
    t._platform.warn = (w) => warnings.push(w);
    const huge = t.startSpan('too big for the core\'s memory');
    huge.setAttribute('payload', 'x'.repeat(48 << 20));
    huge.end();
    assert.equal(await t.forceFlush(), true);
    assert.equal(t.stats().host.lost_to_traps, 1);
    assert.match(warnings.join('\n'), /starting it afresh/);
    const calls = t.counter('after.trap');
    t.span('after the trap', () => calls.add(1));
    await t.shutdown();
    await receiver.close();
    assert.deepEqual(spansOf(receiver.json('traces')).map((s) => s.name), ['after the trap'], 'a fresh core instance carries on');
    assert.ok(metricsOf(receiver.json('metrics')).some((m) => m.name === 'after.trap'));
  });

  test('a call that throws inside the core gets a fresh instance; lost items are counted', async () => {
    const receiver = await captureServer();
    const t = pipeline(receiver);
    const warnings = [];
    t._platform.warn = (w) => warnings.push(w);
    // Fault injection: the next batch of spans makes the core trap, as a
    // panic in the core would (wasm \`unreachable\`).
    const trapped = t.core.instance;
    trapped.pipeline.recordSpans = () => {
      throw new WebAssembly.RuntimeError('unreachable');
    };
    t.span('lost in the trap', () => {});
    t.span('lost with it', () => {});
    await t.forceFlush();
    assert.notEqual(t.core.instance, trapped, 'a fresh instance replaced the trapped one');
    assert.equal(t.stats().host.lost_to_traps, 2);
    assert.match(warnings.join('\n'), /RuntimeError: unreachable.*starting it afresh/);
    t.span('after the trap', () => {});
    await t.shutdown();
    await receiver.close();
    assert.deepEqual(spansOf(receiver.json('traces')).map((s) => s.name), ['after the trap']);
  });

  test('the Prometheus endpoint serves GET /metrics from the core', async () => {
    const t = polytel.create({ metricsExporter: 'prometheus', prometheusListen: '127.0.0.1:0', backend: 'none', env: {}, exitHooks: false, scheduleDelayMs: 60_000 });
    t.counter('agent.runs', { unit: '{run}' }).add(3, { agent: 'planner' });
    t.observableGauge('agent.memory.entries', (o) => o.observe(42));
    const address = await waitFor('the Prometheus listener', () => t.prometheusAddress());
    // The worker sleeps for a minute after this flush, so only the scrape can ship.
    await t.forceFlush();
    t.tool('web_search', () => {});
    const text = await (await fetch(`http://${address}/metrics`)).text();
    // The operation that just ended is in this scrape: its span went to the core first.
    assert.match(text, /\ngen_ai_client_operation_duration_seconds_count\{[^}]*gen_ai_tool_name="web_search"[^}]*\} 1\n/);
    assert.match(text, /\nagent_runs_total\{agent="planner"[^}]*\} 3\n/);
    assert.match(text, /\nagent_memory_entries(\{[^}]*\})? 42\n/);
    const om = await fetch(`http://${address}/metrics`, { headers: { accept: 'application/openmetrics-text; version=1.0.0' } });
    assert.match(om.headers.get('content-type'), /openmetrics/);
    assert.match(await om.text(), /# EOF/);
    assert.equal((await fetch(`http://${address}/other`)).status, 404);
    await t.shutdown();
    await assert.rejects(fetch(`http://${address}/metrics`), 'the endpoint closes at shutdown');
  });
});
