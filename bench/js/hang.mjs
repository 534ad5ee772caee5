// "The app's calls never wait on the network": per-call latency of span end,
// metric record and log emit with the receiver healthy vs hanging, in the
// same run (issue 10).
//
//   node hang.mjs                (in bench/js; bindings/js built, the polytel command built)
//
// Two `polytel fault-receiver` processes: one answers every request 200, the
// other reads each request and never answers ({"then":{"hang":true}}). One
// pipeline to each, default settings (OTLP/HTTP protobuf, queues of 2048,
// 10 s request timeout). Rounds alternate between the two; each round times
// CALLS single calls of each kind with process.hrtime.bigint() around the
// call, pausing 1 ms every PACE calls so the export worker runs (and, for
// the hanging pipeline, its request hangs) as it would in an application: a
// steady 40 000-odd calls a second, which the healthy pipeline keeps up with
// (nothing dropped). Reports median and p99 per call, the ratio hanging /
// healthy, and how late the 1 ms pauses ended in each mode (how long the
// export worker held the event loop).
//
// The calls:
//   span    startSpan(name, { attributes: 2 attributes }).end()
//   metric  histogram.record(value, 2 attributes)
//   log     log('info', message, 2 attributes)
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

import * as polytel from 'polytel';

const ROUNDS = Number(process.env.ROUNDS ?? 20);
const WARMUP = 3;
const CALLS = Number(process.env.CALLS ?? 2000);
const PACE = Number(process.env.PACE ?? 50);

function polytelBin() {
  const cache = process.env.POLYTEL_CACHE || path.join(homedir(), '.cache', 'polytel');
  const candidates = [process.env.POLYTEL_BIN, path.join(process.env.CARGO_TARGET_DIR || path.join(cache, 'target'), 'release', 'polytel')];
  const found = candidates.find((c) => c && existsSync(c));
  if (!found) throw new Error(`the polytel command was not found (looked at ${candidates.filter(Boolean).join(', ')}); set POLYTEL_BIN`);
  return found;
}

/** A fault receiver with `script`: its URL and a way to read its counts. */
async function faultReceiver(script) {
  const child = spawn(polytelBin(), ['fault-receiver', '--listen', '127.0.0.1:0', '--script', JSON.stringify(script)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.split('\n')[0].trim());
    });
    child.once('exit', (code) => reject(new Error(`polytel fault-receiver exited (${code})`)));
  });
  return {
    url,
    stats: async () => (await fetch(`${url}/stats`)).json(),
    close: () => child.kill(),
  };
}

const healthyReceiver = await faultReceiver({ then: { ok: true } });
const hangingReceiver = await faultReceiver({ then: { hang: true } });

function pipeline(url) {
  const t = polytel.create({ backend: 'otlp', endpoint: url, serviceName: 'bench-hang', env: {}, exitHooks: false, hostFacts: {} });
  const histogram = t.histogram('agent.step.duration', { unit: 's' });
  return { t, histogram };
}

const modes = {
  healthy: pipeline(healthyReceiver.url),
  hanging: pipeline(hangingReceiver.url),
};

const spanAttributes = { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'gpt-4o' };
const metricAttributes = { 'gen_ai.tool.name': 'search', outcome: 'ok' };
const logAttributes = { 'gen_ai.tool.name': 'search', attempt: 2 };

/** @type {Record<string, (p: ReturnType<typeof pipeline>, i: number) => void>} */
const calls = {
  span: (p) => p.t.startSpan('chat gpt-4o', { attributes: spanAttributes }).end(),
  metric: (p, i) => p.histogram.record(i % 1000, metricAttributes),
  log: (p) => p.t.log('info', 'tool call finished', logAttributes),
};

const samples = {};
/** How much longer than 1 ms each measured pause took, ns, by mode. */
const late = {};
for (const mode of Object.keys(modes)) {
  late[mode] = [];
  for (const call of Object.keys(calls)) samples[`${mode} ${call}`] = new Float64Array(ROUNDS * CALLS);
}

/** Pauses 1 ms; returns how much later than that it resumed, ns. */
async function pause() {
  const t0 = process.hrtime.bigint();
  await new Promise((resolve) => setTimeout(resolve, 1));
  return Math.max(0, Number(process.hrtime.bigint() - t0) - 1e6);
}

for (let round = 0; round < WARMUP + ROUNDS; round++) {
  // Alternate which mode goes first, so drift in the machine hits both alike.
  const order = round % 2 === 0 ? ['healthy', 'hanging'] : ['hanging', 'healthy'];
  for (const mode of order) {
    const p = modes[mode];
    for (const [call, fn] of Object.entries(calls)) {
      const out = samples[`${mode} ${call}`];
      const base = (round - WARMUP) * CALLS;
      for (let i = 0; i < CALLS; i++) {
        const t0 = process.hrtime.bigint();
        fn(p, i);
        const t1 = process.hrtime.bigint();
        if (round >= WARMUP) out[base + i] = Number(t1 - t0);
        if (i % PACE === PACE - 1) {
          const lateNs = await pause();
          if (round >= WARMUP) late[mode].push(lateNs);
        }
      }
    }
  }
}

function quantiles(xs) {
  const sorted = Float64Array.from(xs).sort();
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { median: at(0.5), p99: at(0.99) };
}

const healthySeen = await healthyReceiver.stats();
const hangingSeen = await hangingReceiver.stats();
const stats = { healthy: modes.healthy.t.stats(), hanging: modes.hanging.t.stats() };

console.log(
  `${ROUNDS} rounds of ${CALLS} calls per kind and mode (after ${WARMUP} warm-up), a 1 ms pause every ${PACE} calls, ` +
    `healthy and hanging alternating; Node ${process.versions.node}\n`,
);
console.log('| call | healthy median | hanging median | ratio | healthy p99 | hanging p99 | ratio |');
console.log('|---|---|---|---|---|---|---|');
for (const call of Object.keys(calls)) {
  const h = quantiles(samples[`healthy ${call}`]);
  const x = quantiles(samples[`hanging ${call}`]);
  const ns = (v) => `${v.toFixed(0)} ns`;
  console.log(`| ${call} | ${ns(h.median)} | ${ns(x.median)} | ${(x.median / h.median).toFixed(2)} | ${ns(h.p99)} | ${ns(x.p99)} | ${(x.p99 / h.p99).toFixed(2)} |`);
}
const ms = (v) => `${(v / 1e6).toFixed(2)} ms`;
console.log('\nlateness of the 1 ms pauses between calls (median / p99 / max):');
for (const [mode, xs] of Object.entries(late)) {
  const q = quantiles(xs);
  console.log(`  ${mode}: ${ms(q.median)} / ${ms(q.p99)} / ${ms(Math.max(...xs))}`);
}
const summary = (s) =>
  ['spans', 'metrics', 'logs']
    .map((k) => `${k} exported ${s[k].exported} dropped ${JSON.stringify(s[k].dropped)}`)
    .join('; ') + `; host buffer dropped ${JSON.stringify(s.host.buffer_dropped)}`;
console.log(`\nhealthy: receiver answered ${JSON.stringify(healthySeen.answered)}; ${summary(stats.healthy)}`);
console.log(`hanging: receiver answered ${JSON.stringify(hangingSeen.answered)}; ${summary(stats.hanging)}`);

await Promise.all([modes.healthy.t.shutdown({ timeoutMs: 5000 }), modes.hanging.t.shutdown({ timeoutMs: 500 })]);
healthyReceiver.close();
hangingReceiver.close();
