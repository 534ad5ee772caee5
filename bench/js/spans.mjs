// polytel against the official OpenTelemetry JS SDK (sdk-trace-base with
// BatchSpanProcessor and exporter-trace-otlp-proto; sdk-metrics with the
// OTLP/proto metric exporter), in the same run, to a local sink:
//
//   npm install && npm run bench            (in bench/js; bindings/js built)
//
// Two costs per item, medians of ROUNDS rounds of N items each:
//   app path    the loop that records (start + 3 attributes + end; counter.add
//               with 2 attributes): what the application's code waits for;
//   end to end  the loop plus forceFlush: recording, encoding and sending
//               everything, all of it on this one thread in JavaScript.
// Read the ratios, not the absolute numbers: the machine is noisy.
import { fork } from 'node:child_process';

import { trace, SpanKind, metrics as otelMetricsApi } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import * as polytel from 'polytel';

const N = Number(process.env.N ?? 20_000);
const ROUNDS = Number(process.env.ROUNDS ?? 9);
const WARMUP = 3;

const sink = fork(new URL('./sink.mjs', import.meta.url), { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
const port = await new Promise((resolve) => sink.stdout.once('data', (d) => resolve(Number(String(d).trim()))));
const endpoint = `http://127.0.0.1:${port}`;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Runs `record(i)` N times per round; returns median ns per item, app path and end to end. */
async function measure(record, flush) {
  const app = [];
  const total = [];
  for (let r = 0; r < WARMUP + ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) record(i);
    const t1 = process.hrtime.bigint();
    await flush();
    const t2 = process.hrtime.bigint();
    if (r >= WARMUP) {
      app.push(Number(t1 - t0) / N);
      total.push(Number(t2 - t0) / N);
    }
  }
  return { app: median(app), total: median(total) };
}

const attributes = { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'gpt-4o', 'gen_ai.usage.input_tokens': 412 };

// -- polytel ------------------------------------------------------------------
const t = polytel.create({
  backend: 'otlp',
  endpoint,
  serviceName: 'bench',
  maxQueueSize: 2 * N,
  logMaxQueueSize: 2 * N,
  env: {},
  exitHooks: false,
  // A fixed fact set keeps configuration cheap and comparable.
  hostFacts: {},
});
const polytelSpans = await measure(
  () => t.startSpan('chat gpt-4o', { kind: 'client', attributes }).end(),
  () => t.forceFlush({ timeoutMs: 60_000 }),
);
const polytelCounter = t.counter('agent.tool.calls');
const metricAttributes = { 'gen_ai.tool.name': 'search', outcome: 'ok' };
const polytelMetrics = await measure(
  () => polytelCounter.add(1, metricAttributes),
  () => t.forceFlush({ timeoutMs: 60_000 }),
);
const polytelStats = t.stats();
await t.shutdown();

// -- the OpenTelemetry SDK ----------------------------------------------------
const resource = resourceFromAttributes({ 'service.name': 'bench' });
const provider = new BasicTracerProvider({
  resource,
  spanProcessors: [
    new BatchSpanProcessor(new OTLPTraceExporter({ url: `${endpoint}/v1/traces`, concurrencyLimit: 1000 }), {
      maxQueueSize: 2 * N,
      maxExportBatchSize: 512,
    }),
  ],
});
const tracer = provider.getTracer('bench');
const otelSpans = await measure(
  () => tracer.startSpan('chat gpt-4o', { kind: SpanKind.CLIENT, attributes }).end(),
  () => provider.forceFlush(),
);
await provider.shutdown();

const reader = new PeriodicExportingMetricReader({
  exporter: new OTLPMetricExporter({ url: `${endpoint}/v1/metrics` }),
  exportIntervalMillis: 3_600_000,
});
const meterProvider = new MeterProvider({ resource, readers: [reader] });
const otelCounter = meterProvider.getMeter('bench').createCounter('agent.tool.calls');
const otelMetrics = await measure(
  () => otelCounter.add(1, metricAttributes),
  () => meterProvider.forceFlush(),
);
await meterProvider.shutdown();
void otelMetricsApi;
void trace;

const received = await new Promise((resolve) => {
  sink.once('message', resolve);
  sink.send('stats');
});
sink.kill();

const row = (what, p, o) =>
  `| ${what} | ${p.toFixed(0)} ns | ${o.toFixed(0)} ns | ${(p / o).toFixed(2)} |`;
console.log(`N=${N} items per round, median of ${ROUNDS} rounds (after ${WARMUP} warm-up), Node ${process.versions.node}\n`);
console.log('| per item | polytel | OpenTelemetry JS | polytel / OTel |');
console.log('|---|---|---|---|');
console.log(row('span, app path (start + 3 attributes + end)', polytelSpans.app, otelSpans.app));
console.log(row('span, end to end (incl. encode + send)', polytelSpans.total, otelSpans.total));
console.log(row('counter.add, app path', polytelMetrics.app, otelMetrics.app));
console.log(row('counter.add, end to end (incl. collect + send)', polytelMetrics.total, otelMetrics.total));
const dropped = polytelStats.spans.dropped;
console.log(`\nsink: ${received.requests} requests, ${(received.bytes / 1e6).toFixed(1)} MB; polytel spans exported ${polytelStats.spans.exported}, dropped ${JSON.stringify(dropped)}, buffer-dropped ${JSON.stringify(polytelStats.host.buffer_dropped)}`);
