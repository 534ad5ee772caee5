// Delivery under failure (issue 10), against `polytel fault-receiver` (a
// child process, scripted per request over HTTP): a transient outage loses
// nothing and sends nothing twice; Retry-After is honoured (seconds and
// HTTP-date); 400 and partial_success are not retried; 413 splits; shutdown
// with an unreachable receiver keeps its deadline and reports what was not
// delivered; a hanging receiver keeps every buffer within its bound and the
// counters add up. The core decides all of it; this host only sends and
// reports outcomes, so these tests read the receiver's counts and stats().
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { test } from 'node:test';

import * as polytel from '../dist/node.js';
import { polytelBin, waitFor } from './helpers.mjs';

/**
 * Starts `polytel fault-receiver` with `script`; its base URL is the first
 * line of its stdout. `stats()` and `script()` drive it over HTTP.
 */
async function faultReceiver(script = {}) {
  const child = spawn(polytelBin(), ['fault-receiver', '--listen', '127.0.0.1:0', '--script', JSON.stringify(script)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  try {
    await waitFor('polytel fault-receiver to print its URL', () => stdout.includes('\n') || child.exitCode !== null, 10_000);
  } catch (e) {
    child.kill();
    throw e;
  }
  assert.equal(child.exitCode, null, `polytel fault-receiver exited: ${stderr}`);
  const url = stdout.split('\n')[0].trim();
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  return {
    url,
    /** {requests, answered: {ok, 503, …}, spans (unique ids), duplicate_spans, data_points, log_records} */
    async stats() {
      const res = await fetch(`${url}/stats`);
      assert.equal(res.status, 200);
      return res.json();
    },
    async script(next) {
      const res = await fetch(`${url}/script`, { method: 'PUT', body: JSON.stringify(next) });
      assert.equal(res.status, 204, await res.text());
    },
    close() {
      child.kill();
    },
  };
}

/** A pipeline to `url` over OTLP/HTTP (protobuf), short schedule delays. */
function pipeline(url, options = {}) {
  return polytel.create({
    backend: 'otlp',
    endpoint: url,
    serviceName: 'js-failure-test',
    scheduleDelayMs: 100,
    logScheduleDelayMs: 100,
    env: {},
    hostFacts: {},
    exitHooks: false,
    ...options,
  });
}

function recordSpans(t, n, prefix = 'span') {
  for (let i = 0; i < n; i++) t.startSpan(`${prefix} ${i}`, { attributes: { 'work.item': i, 'work.kind': 'test' } }).end();
}

function recordLogs(t, n) {
  for (let i = 0; i < n; i++) t.log('info', `log ${i}`, { 'work.item': i });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Items dropped for any reason, from one signal's counters. */
const droppedTotal = (signal) => Object.values(signal.dropped).reduce((a, b) => a + b, 0);

/** A loopback port nothing listens on. */
async function closedPort() {
  const s = createServer();
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise((resolve) => s.close(resolve));
  return port;
}

test('a transient outage (3 s of 503 with Retry-After: 1) loses nothing and sends nothing twice', async () => {
  const receiver = await faultReceiver({ then: { status: 503, retry_after: '1' } });
  const t = pipeline(receiver.url);
  try {
    const N = 300;
    // Recorded in bursts during the outage, so several exports meet it.
    for (let burst = 0; burst < 6; burst++) {
      recordSpans(t, N / 6, `burst ${burst}`);
      recordLogs(t, N / 6);
      await sleep(250);
    }
    const outage = await waitFor('exports to meet the outage', async () => {
      const s = await receiver.stats();
      return (s.answered['503'] ?? 0) >= 2 ? s : undefined;
    });
    assert.equal(outage.spans + outage.log_records, 0, 'nothing is accepted during the outage');
    await sleep(3000 - 6 * 250);
    const during = t.stats();
    assert.ok(during.spans.retried > 0 && during.logs.retried > 0, `retried: ${JSON.stringify(during)}`);
    assert.equal(during.spans.exported, 0);
    assert.deepEqual(during.spans.dropped, {});
    await receiver.script({ then: { ok: true } });

    // Retries come back on the core's schedule, without a flush.
    const healed = await waitFor(
      'every span and log to arrive after the outage',
      async () => {
        const s = await receiver.stats();
        return s.spans >= N && s.log_records >= N ? s : undefined;
      },
      5000,
    );
    const stats = t.stats();
    for (const signal of [stats.spans, stats.logs]) {
      assert.equal(signal.received, N);
      assert.equal(signal.exported, N);
      assert.deepEqual(signal.dropped, {});
      assert.ok(signal.retried >= N, `every item was retried at least once: ${signal.retried}`);
      assert.equal(signal.queued, 0);
      assert.equal(signal.pending, 0);
    }
    assert.deepEqual(stats.host.buffer_dropped, { spans: 0, metrics: 0, logs: 0 });
    assert.deepEqual(await t.shutdown({ timeoutMs: 5000 }), { abandoned: 0, flushed: true });

    const after = await receiver.stats();
    assert.equal(after.spans, N, 'every span id arrived');
    assert.equal(after.duplicate_spans, 0, 'no span was accepted twice');
    assert.equal(after.log_records, N, 'every log record arrived once');
    assert.equal(after.requests, healed.requests, 'shutdown had nothing left to send');
  } finally {
    await t.shutdown({ timeoutMs: 100 });
    receiver.close();
  }
});

/**
 * Records N spans, lets their export meet `step`, and returns how long after
 * that answer the retry delivered them (watched at the receiver, no flush).
 */
async function timedRetry(step) {
  const receiver = await faultReceiver({ steps: [step], then: { ok: true } });
  const t = pipeline(receiver.url);
  try {
    const N = 50;
    recordSpans(t, N);
    const first = await waitFor('the first export', async () => {
      const s = await receiver.stats();
      return s.requests >= 1 ? s : undefined;
    }, 5000);
    const answered = performance.now();
    assert.equal(first.requests, 1, `the first export met the scripted answer: ${JSON.stringify(first)}`);
    assert.equal(first.spans, 0);
    await waitFor('the retried export to arrive', async () => ((await receiver.stats()).spans >= N ? true : undefined), 6000);
    const waitedMs = performance.now() - answered;
    const stats = t.stats();
    assert.deepEqual(await t.shutdown({ timeoutMs: 2000 }), { abandoned: 0, flushed: true });
    const after = await receiver.stats();
    assert.equal(after.requests, 2, `one retry, not before Retry-After: ${JSON.stringify(after)}`);
    assert.equal(after.answered.ok, 1);
    assert.equal(after.spans, N);
    assert.equal(after.duplicate_spans, 0);
    assert.equal(stats.spans.exported, N);
    assert.equal(stats.spans.retried, N);
    assert.deepEqual(stats.spans.dropped, {});
    return waitedMs;
  } finally {
    await t.shutdown({ timeoutMs: 100 });
    receiver.close();
  }
}

test('Retry-After in seconds is honoured: 429 with Retry-After: 2', async () => {
  const waitedMs = await timedRetry({ status: 429, retry_after: '2' });
  // Without Retry-After the first backoff is 0.5-1 s.
  assert.ok(waitedMs >= 1900, `the retry came ${waitedMs.toFixed(0)} ms after the 429`);
  assert.ok(waitedMs < 4000, `the retry came ${waitedMs.toFixed(0)} ms after the 429`);
});

test('Retry-After as an HTTP-date is honoured: 429 with a date 3 s ahead', async () => {
  // An HTTP-date has one-second resolution: 3 s ahead is 2 to 3 s away.
  const waitedMs = await timedRetry({ status: 429, retry_after_date: 3 });
  assert.ok(waitedMs >= 1900, `the retry came ${waitedMs.toFixed(0)} ms after the 429`);
  assert.ok(waitedMs < 4500, `the retry came ${waitedMs.toFixed(0)} ms after the 429`);
});

test('a retry goes when its Retry-After ends, not at the next schedule', async () => {
  const receiver = await faultReceiver({ steps: [{ status: 503, retry_after: '1' }], then: { ok: true } });
  // A full batch goes at once; the schedules would fire only after 4 s.
  const t = pipeline(receiver.url, { maxExportBatchSize: 10, scheduleDelayMs: 4000, logScheduleDelayMs: 4000 });
  try {
    const started = performance.now();
    recordSpans(t, 10);
    await waitFor('the retry', async () => (await receiver.stats()).spans === 10, 6000);
    const took = performance.now() - started;
    assert.ok(took >= 900 && took < 2500, `delivered after ${took.toFixed(0)} ms`);
    const s = await receiver.stats();
    assert.equal(s.requests, 2, JSON.stringify(s));
  } finally {
    await t.shutdown({ timeoutMs: 2000 });
    receiver.close();
  }
});

test('400 is not retried: the batch is dropped as rejected after one request', async () => {
  const receiver = await faultReceiver({ steps: [{ status: 400 }], then: { ok: true } });
  const t = pipeline(receiver.url);
  try {
    const N = 40;
    recordSpans(t, N);
    await t.forceFlush({ timeoutMs: 5000 });
    const stats = t.stats();
    assert.deepEqual(stats.spans.dropped, { rejected: N });
    assert.equal(stats.spans.retried, 0);
    assert.equal(stats.spans.exported, 0);
    assert.equal(stats.spans.pending, 0);
    // Longer than the first backoff, then a shutdown's flush: nothing is left to send.
    await sleep(1200);
    assert.deepEqual(await t.shutdown({ timeoutMs: 2000 }), { abandoned: 0, flushed: true });
    const after = await receiver.stats();
    assert.equal(after.requests, 1, JSON.stringify(after));
    assert.deepEqual(after.answered, { 400: 1 });
    assert.equal(after.spans, 0);
  } finally {
    await t.shutdown({ timeoutMs: 100 });
    receiver.close();
  }
});

test('partial_success is counted and not retried', async () => {
  const receiver = await faultReceiver({ steps: [{ partial_success: 3, message: '3 spans were too old' }], then: { ok: true } });
  const t = pipeline(receiver.url);
  try {
    const N = 40;
    recordSpans(t, N);
    await t.forceFlush({ timeoutMs: 5000 });
    const stats = t.stats();
    assert.deepEqual(stats.spans.dropped, { partial_success: 3 });
    assert.equal(stats.spans.exported, N - 3);
    assert.equal(stats.spans.retried, 0);
    assert.equal(stats.spans.pending, 0);
    await sleep(1200);
    assert.deepEqual(await t.shutdown({ timeoutMs: 2000 }), { abandoned: 0, flushed: true });
    const after = await receiver.stats();
    assert.equal(after.requests, 1, JSON.stringify(after));
    assert.deepEqual(after.answered, { partial_success: 1 });
    assert.equal(after.duplicate_spans, 0);
  } finally {
    await t.shutdown({ timeoutMs: 100 });
    receiver.close();
  }
});

test('413 splits the batch: every span arrives once, in two requests or more', async () => {
  const receiver = await faultReceiver({ steps: [{ status: 413 }], then: { ok: true } });
  const t = pipeline(receiver.url);
  try {
    const N = 200;
    recordSpans(t, N);
    await t.forceFlush({ timeoutMs: 5000 });
    await waitFor('the halves to arrive', async () => ((await receiver.stats()).spans >= N ? true : undefined), 5000);
    const stats = t.stats();
    assert.deepEqual(await t.shutdown({ timeoutMs: 2000 }), { abandoned: 0, flushed: true });
    const after = await receiver.stats();
    assert.equal(after.answered['413'], 1, JSON.stringify(after));
    assert.ok(after.answered.ok >= 2, `the batch went in parts: ${JSON.stringify(after)}`);
    assert.equal(after.spans, N);
    assert.equal(after.duplicate_spans, 0);
    assert.equal(stats.spans.exported, N);
    assert.deepEqual(stats.spans.dropped, {});
    assert.equal(stats.spans.retried, 0, 'a split is not a retry');
  } finally {
    await t.shutdown({ timeoutMs: 100 });
    receiver.close();
  }
});

/** Shuts down with a deadline; checks it was kept and that every item is reported undelivered. */
async function shutdownUndelivered(t, n, deadlineMs) {
  const started = performance.now();
  const report = await t.shutdown({ timeoutMs: deadlineMs });
  const tookMs = performance.now() - started;
  assert.ok(tookMs < deadlineMs + 500, `shutdown took ${tookMs.toFixed(0)} ms with a deadline of ${deadlineMs} ms`);
  assert.equal(report.abandoned, 2 * n, `every span and log is reported undelivered: ${JSON.stringify(report)}`);
  const stats = t.stats();
  for (const signal of [stats.spans, stats.logs]) {
    assert.equal(signal.exported, 0);
    assert.deepEqual(signal.dropped, { shutdown: n });
    assert.equal(signal.queued, 0);
    assert.equal(signal.pending, 0);
  }
  return report;
}

test('shutdown with a hanging receiver returns at its deadline and reports what was not delivered', async () => {
  const receiver = await faultReceiver({ then: { hang: true } });
  // The request timeout (10 s by default) is longer than the deadline: the deadline wins.
  const t = pipeline(receiver.url);
  try {
    const N = 200;
    recordSpans(t, N);
    recordLogs(t, N);
    const report = await shutdownUndelivered(t, N, 1500);
    assert.equal(report.flushed, false, 'the flush did not finish');
    const seen = await receiver.stats();
    assert.ok(seen.requests >= 1, 'the export was sent and hung');
    assert.equal(seen.spans + seen.log_records, 0);
  } finally {
    await t.shutdown({ timeoutMs: 100 });
    receiver.close();
  }
});

test('shutdown with a closed port returns within its deadline and reports what was not delivered', async () => {
  const port = await closedPort();
  const t = pipeline(`http://127.0.0.1:${port}`);
  try {
    const N = 200;
    recordSpans(t, N);
    recordLogs(t, N);
    await shutdownUndelivered(t, N, 1500);
    const stats = t.stats();
    assert.ok(stats.spans.retried >= N, `the refused export was retried: ${stats.spans.retried}`);
  } finally {
    await t.shutdown({ timeoutMs: 100 });
  }
});

test('a hanging receiver keeps every buffer within its bound, and the counters add up exactly', async () => {
  const receiver = await faultReceiver({ then: { hang: true } });
  const MAX_QUEUE = 512;
  const t = pipeline(receiver.url, {
    maxQueueSize: MAX_QUEUE,
    logMaxQueueSize: MAX_QUEUE,
    // Hung requests time out and are retried while the flood goes on.
    timeoutMs: 300,
  });
  try {
    const N = 20_000;
    const CHUNK = 1000;
    for (let done = 0; done < N; done += CHUNK) {
      recordSpans(t, CHUNK, `chunk ${done}`);
      recordLogs(t, CHUNK);
      // The worker runs between chunks, as it would between requests.
      await sleep(20);
      const s = t.stats();
      for (const [name, signal] of [['spans', s.spans], ['logs', s.logs]]) {
        assert.ok(signal.queued <= MAX_QUEUE, `${name} queued ${signal.queued} > ${MAX_QUEUE}`);
        assert.ok(signal.pending <= MAX_QUEUE, `${name} pending ${signal.pending} > ${MAX_QUEUE}`);
      }
    }
    const seen = await receiver.stats();
    const s = t.stats();
    assert.equal(seen.spans + seen.log_records, 0, 'the receiver accepted nothing');
    assert.ok((seen.answered.hang ?? 0) >= 2, `requests hung and were retried: ${JSON.stringify(seen)}`);
    for (const [name, signal, accepted] of [['spans', s.spans, seen.spans], ['logs', s.logs, seen.log_records]]) {
      const hostDropped = s.host.buffer_dropped[name];
      const detail = `${name}: ${JSON.stringify({ ...signal, limited: undefined })}, host buffer dropped ${hostDropped}`;
      assert.equal(signal.exported, accepted, detail);
      // Everything recorded is accounted for: accepted, dropped (by reason,
      // in the core or in the host's buffer), or still queued or pending.
      assert.equal(accepted + droppedTotal(signal) + hostDropped + signal.queued + signal.pending, N, detail);
      assert.equal(signal.received + hostDropped, N, detail);
      assert.ok(signal.queued <= MAX_QUEUE && signal.pending <= MAX_QUEUE, detail);
      // Nothing but a full queue is why anything was dropped.
      assert.deepEqual(Object.keys(signal.dropped), ['queue_full'], detail);
      assert.ok(signal.dropped.queue_full + hostDropped >= N - 2 * MAX_QUEUE - accepted, detail);
    }
    assert.equal(s.host.buffered, 0);
    const report = await t.shutdown({ timeoutMs: 500 });
    assert.equal(report.abandoned, s.spans.queued + s.spans.pending + s.logs.queued + s.logs.pending);
  } finally {
    await t.shutdown({ timeoutMs: 100 });
    receiver.close();
  }
});

test('stats() counts what is queued in the core right now', async () => {
  const receiver = await faultReceiver();
  // A long schedule delay: nothing is exported while the test looks.
  const t = pipeline(receiver.url, { scheduleDelayMs: 60_000, logScheduleDelayMs: 60_000 });
  try {
    await sleep(50);
    recordSpans(t, 10);
    recordLogs(t, 7);
    const s = t.stats();
    assert.equal(s.host.buffered, 0, 'stats() hands the host buffer to the core first');
    assert.equal(s.spans.received, 10);
    assert.equal(s.logs.received, 7);
    assert.equal(s.spans.queued, 10, `spans: ${JSON.stringify({ ...s.spans, limited: undefined })}`);
    assert.equal(s.logs.queued, 7, `logs: ${JSON.stringify({ ...s.logs, limited: undefined })}`);
    assert.equal(s.spans.pending + s.logs.pending, 0);
    assert.deepEqual(await t.shutdown({ timeoutMs: 5000 }), { abandoned: 0, flushed: true });
    const after = await receiver.stats();
    assert.equal(after.spans, 10);
    assert.equal(after.log_records, 7);
  } finally {
    await t.shutdown({ timeoutMs: 100 });
    receiver.close();
  }
});

test('measurements reach the core while a request hangs', async () => {
  const receiver = await faultReceiver({ then: { hang: true } });
  const t = pipeline(receiver.url, { maxQueueSize: 512, maxExportBatchSize: 128 });
  try {
    // A span export goes first and hangs, holding the export worker.
    recordSpans(t, 128);
    await waitFor('the hanging request', async () => (await receiver.stats()).requests >= 1, 5000);
    const counter = t.counter('calls');
    for (let burst = 0; burst < 40; burst++) {
      for (let i = 0; i < 500; i++) counter.add(1, { tool: 'search' });
      await sleep(5);
    }
    // The core aggregates them in one series; none was lost in the host's buffer.
    const stats = t.stats();
    assert.equal(stats.host.buffer_dropped.metrics, 0, JSON.stringify(stats));
    assert.equal(stats.metrics.received, 20_000, JSON.stringify(stats));
  } finally {
    await t.shutdown({ timeoutMs: 300 });
    receiver.close();
  }
});
