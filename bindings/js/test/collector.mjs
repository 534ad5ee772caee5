// A real OpenTelemetry Collector for the end-to-end test, set up as the Rust
// tests do (host/tests/support/collector.rs): built once by
// scripts/install-collector.sh, configured from scripts/collector/config.yaml.tmpl
// on two free loopback ports, its debug exporter's output (stderr) parsed.
// A collector that cannot be built or started fails the test; it never skips.
import { spawn } from 'node:child_process';
import { openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import path from 'node:path';

import { repoDir, sh, tempDir, waitFor } from './helpers.mjs';

const READY_LOG = 'Everything is ready';

async function freePort() {
  const s = createServer();
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise((resolve) => s.close(resolve));
  return port;
}

function accepts(port) {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.on('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });
}

/** Runs the install script; its last stdout line is the binary's path. */
function install() {
  const script = path.join(repoDir, 'scripts', 'install-collector.sh');
  let out;
  try {
    out = sh('bash', [script], { timeout: 600_000 });
  } catch (e) {
    throw new Error(`${script} failed; the collector is required for this test.\n${e.stderr ?? e.message}`);
  }
  return out.trim().split('\n').at(-1).trim();
}

export async function startCollector() {
  const binary = install();
  const template = readFileSync(path.join(repoDir, 'scripts', 'collector', 'config.yaml.tmpl'), 'utf8');
  for (const placeholder of ['__HTTP_ENDPOINT__', '__GRPC_ENDPOINT__']) {
    if (!template.includes(placeholder)) throw new Error(`config.yaml.tmpl has no ${placeholder}`);
  }
  const failures = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    let grpcPort = await freePort();
    while (grpcPort === port) grpcPort = await freePort();
    const dir = tempDir('collector');
    const config = path.join(dir, 'otelcol.yaml');
    const stderrPath = path.join(dir, 'otelcol.stderr');
    writeFileSync(
      config,
      template.replaceAll('__HTTP_ENDPOINT__', `127.0.0.1:${port}`).replaceAll('__GRPC_ENDPOINT__', `127.0.0.1:${grpcPort}`),
    );
    const child = spawn(binary, [`--config=${config}`], { stdio: ['ignore', 'ignore', openSync(stderrPath, 'w')] });
    const output = () => readFileSync(stderrPath, 'utf8');
    try {
      await waitFor(
        'the collector to be ready',
        async () => {
          if (child.exitCode !== null) throw new Error(`the collector exited early with ${child.exitCode}`);
          return output().includes(READY_LOG) && (await accepts(port)) && (await accepts(grpcPort));
        },
        30_000,
      );
      return {
        endpoint: `http://127.0.0.1:${port}`,
        output,
        spans: () => parseSpans(output()),
        logs: () => parseLogs(output()),
        metrics: () => parseMetrics(output()),
        stop: () => child.kill(),
      };
    } catch (e) {
      child.kill();
      failures.push(`ports ${port}/${grpcPort}: ${e.message}\n--- collector stderr ---\n${output()}`);
      if (!output().includes('address already in use')) break;
    }
  }
  throw new Error(`the OpenTelemetry Collector did not start:\n${failures.join('\n')}`);
}

/** The lines of every complete dump whose first record is `header`, without its first line and end marker. */
function dumps(text, header) {
  const lines = text.split('\n');
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    const body = lines[i].split('\t').at(-1);
    if (!(body.startsWith(header) && lines[i].includes('\t'))) continue;
    const end = lines.findIndex((l, j) => j > i && l.startsWith('\t{'));
    if (end < 0) break;
    out.push(lines.slice(i + 1, end));
    i = end;
  }
  return out;
}

const TOP = /^     -> (.+?): ([A-Za-z]+\(.*)$/;
const NESTED = /^          -> (.+?): ([A-Za-z]+\(.*)$/;

/** Spans as printed: names, ids, kind, status, typed attributes ("Int(3)"), events, resource. */
export function parseSpans(text) {
  const spans = [];
  for (const lines of dumps(text, 'ResourceSpans #')) {
    let resource = {};
    let section = '';
    let span;
    let event;
    for (const line of lines) {
      let m;
      if (line.startsWith('ResourceSpans #')) resource = {};
      else if (line === 'Resource attributes:') section = 'resource';
      else if (line.startsWith('Span #')) {
        span = { resource, attributes: {}, events: [] };
        spans.push(span);
        section = 'span';
      } else if (span && (m = line.match(/^    (Trace ID|Parent ID|ID|Name|Kind|TraceState|Status code|Status message)\s*: ?(.*)$/))) {
        span[m[1]] = m[2];
      } else if (line === 'Attributes:') section = 'attributes';
      else if (line === 'Events:') section = 'events';
      else if (line === 'Links:') section = 'links';
      else if (line.startsWith('SpanEvent #')) {
        event = { attributes: {} };
        span.events.push(event);
      } else if (section === 'events' && (m = line.match(/^     -> Name: (.*)$/))) event.name = m[1];
      else if (section === 'events' && (m = line.match(NESTED))) event.attributes[m[1]] = m[2];
      else if ((m = line.match(TOP))) {
        if (section === 'resource') resource[m[1]] = m[2];
        else if (section === 'attributes') span.attributes[m[1]] = m[2];
      }
    }
  }
  return spans;
}

export function parseLogs(text) {
  const logs = [];
  for (const lines of dumps(text, 'ResourceLog #')) {
    let record;
    let section = '';
    for (const line of lines) {
      let m;
      if (line.startsWith('LogRecord #')) {
        record = { attributes: {} };
        logs.push(record);
        section = 'record';
      } else if (!record) continue;
      else if (line === 'Attributes:') section = 'attributes';
      else if ((m = line.match(/^(Body|SeverityText|SeverityNumber|Trace ID|Span ID|Flags|EventName): (.*)$/))) record[m[1]] = m[2];
      else if (section === 'attributes' && (m = line.match(TOP))) record.attributes[m[1]] = m[2];
    }
  }
  return logs;
}

export function parseMetrics(text) {
  const metrics = [];
  for (const lines of dumps(text, 'ResourceMetrics #')) {
    let metric;
    let point;
    for (const line of lines) {
      let m;
      if (line.startsWith('Metric #')) {
        metric = { points: [] };
        metrics.push(metric);
        point = undefined;
      } else if (!metric) continue;
      else if ((m = line.match(/^     -> (Name|Unit|DataType|IsMonotonic): (.*)$/)) && point === undefined) metric[m[1]] = m[2];
      else if (/^(Number|Histogram|ExponentialHistogram)DataPoints #/.test(line)) {
        point = { attributes: {} };
        metric.points.push(point);
      } else if (point && (m = line.match(/^(Value|Count|Sum): (.*)$/))) point[m[1]] = Number(m[2]);
      else if (point && (m = line.match(TOP))) point.attributes[m[1]] = m[2];
    }
  }
  return metrics;
}
