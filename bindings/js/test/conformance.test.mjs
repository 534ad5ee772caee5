// Replays tests/conformance/scenarios through the JS API with the fixed clock
// and seed, and compares the export bodies with the golden files byte for
// byte (see tests/conformance/README.md); GenAI operations summaries
// (`stats` steps) are compared with golden operations.json as parsed JSON.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import * as polytel from '../dist/node.js';
import { captureServer, repoDir } from './helpers.mjs';

const conformance = path.join(repoDir, 'tests', 'conformance');
const scenarios = readdirSync(path.join(conformance, 'scenarios'))
  .filter((f) => f.endsWith('.json'))
  .sort();

/** Scenario attribute JSON (the WIT batch form) as JS values, as a user writes them. */
function value(v) {
  if (Array.isArray(v)) return v.map(value);
  if (v !== null && typeof v === 'object') {
    if ('double' in v) return polytel.double(typeof v.double === 'string' ? Number(v.double) : v.double);
    if ('bytes' in v) return new Uint8Array(Buffer.from(v.bytes, 'base64'));
    if ('map' in v) return attributes(v.map);
    throw new Error(`unknown attribute value ${JSON.stringify(v)}`);
  }
  return v;
}

function attributes(obj) {
  if (obj === undefined) return undefined;
  const out = {};
  for (const [k, v] of Object.entries(obj)) out[k] = value(v);
  return out;
}

const camel = (s) => s.replace(/_([a-z])/g, (_, c) => c.toUpperCase());

async function replay(scenario) {
  const receiver = await captureServer();
  const start = BigInt(scenario.clock.start);
  const step = BigInt(scenario.clock.step);
  let readings = 0n;
  const options = {};
  for (const [k, v] of Object.entries(scenario.options)) options[camel(k)] = v;
  const t = polytel.create({
    ...options,
    endpoint: receiver.url,
    env: scenario.env,
    seed: scenario.seed,
    // The worker's readings (its poll times) do not advance the clock: how
    // often it polls depends on the machine, and the steps' timestamps must not.
    clock: (reading) => start + step * (reading === 'poll' ? readings : readings++),
    // No machine facts: the golden resource must not depend on the machine.
    hostFacts: {},
    exitHooks: false,
  });
  const spans = new Map();
  const contexts = new Map();
  const instruments = new Map();
  const injects = [];
  const operations = [];
  /** The parent of an operation: the operation (or span) object, so it carries its agent. */
  const opParent = (s) => (s.parent === undefined ? null : spans.get(s.parent));
  const opOptions = (s) => ({ parent: opParent(s), attributes: attributes(s.attributes) });
  const started = (key, op) => {
    spans.set(key, op);
    contexts.set(key, op.context);
  };
  for (const s of scenario.steps) {
    if ('start' in s) {
      let parent = null;
      if (s.parent !== undefined) parent = contexts.get(s.parent);
      if (s.remote_parent !== undefined) {
        parent = t.extract(s.remote_parent);
        assert.ok(parent, 'a valid remote parent');
      }
      const span = t.startSpan(s.name, {
        kind: s.kind,
        parent,
        attributes: attributes(s.attributes),
        links: s.links?.map((l) => ({ context: contexts.get(l.to), attributes: attributes(l.attributes) })),
      });
      spans.set(s.start, span);
      contexts.set(s.start, span.context);
    } else if ('set_attribute' in s) {
      spans.get(s.set_attribute).setAttribute(s.key, value(s.value));
    } else if ('add_event' in s) {
      spans.get(s.add_event).addEvent(s.name, attributes(s.attributes));
    } else if ('record_exception' in s) {
      const error = new Error(s.message ?? '');
      error.name = s.type;
      error.stack = s.stacktrace ?? '';
      spans.get(s.record_exception).recordException(error);
    } else if ('set_status' in s) {
      spans.get(s.set_status).setStatus(s.code, s.message);
    } else if ('end' in s) {
      spans.get(s.end).end();
    } else if ('inject' in s) {
      const headers = t.inject({}, contexts.get(s.inject));
      const sorted = Object.fromEntries(Object.entries(headers).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
      injects.push(JSON.stringify(sorted));
    } else if ('instrument' in s) {
      const o = { unit: s.unit, description: s.description };
      const make = {
        counter: () => t.counter(s.name, o),
        up_down_counter: () => t.upDownCounter(s.name, o),
        histogram: () => t.histogram(s.name, { ...o, boundaries: s.boundaries }),
        gauge: () => t.gauge(s.name, o),
      }[s.kind];
      assert.ok(make, `instrument kind ${s.kind}`);
      instruments.set(s.instrument, make());
    } else if ('add' in s || 'record' in s) {
      const instrument = instruments.get(s.add ?? s.record);
      const measure = () => ('add' in s ? instrument.add(s.value, attributes(s.attributes)) : instrument.record(s.value, attributes(s.attributes)));
      if (s.span !== undefined) t.withSpan(contexts.get(s.span), measure);
      else measure();
    } else if ('log' in s) {
      t.log(s.log, s.message ?? '', attributes(s.attributes), {
        eventName: s.event_name,
        span: s.span === undefined ? null : contexts.get(s.span),
      });
    } else if ('llm_call' in s) {
      started(s.llm_call, t.startLlmCall(s.provider, s.model, { ...opOptions(s), operation: s.operation }));
    } else if ('agent' in s) {
      started(s.agent, t.startAgent(s.name, opOptions(s)));
    } else if ('tool' in s) {
      started(s.tool, t.startTool(s.name, opOptions(s)));
    } else if ('workflow' in s) {
      started(s.workflow, t.startWorkflow(s.name, opOptions(s)));
    } else if ('memory' in s) {
      started(s.memory, t.startMemory(s.operation, s.store, opOptions(s)));
    } else if ('usage' in s) {
      spans.get(s.usage).recordUsage({
        inputTokens: s.input_tokens,
        outputTokens: s.output_tokens,
        cacheReadTokens: s.cache_read_tokens,
        cacheWriteTokens: s.cache_write_tokens,
        reasoningTokens: s.reasoning_tokens,
      });
    } else if ('response_model' in s) {
      spans.get(s.response_model).setResponseModel(s.model);
    } else if ('cost' in s) {
      spans.get(s.cost).recordCost(s.usd);
    } else if ('capture' in s) {
      const op = spans.get(s.capture);
      if ('input' in s) op.recordInput(value(s.input));
      if ('output' in s) op.recordOutput(value(s.output));
    } else if ('stats' in s) {
      operations.push(t.stats().operations);
    } else {
      throw new Error(`unknown step ${JSON.stringify(s)}`);
    }
  }
  const report = await t.shutdown({ timeoutMs: 10_000 });
  assert.deepEqual(report, { abandoned: 0, flushed: true });
  const stats = t.stats();
  for (const signal of ['spans', 'metrics', 'logs']) {
    assert.deepEqual(stats[signal].dropped, {}, `nothing may be dropped: ${JSON.stringify(stats)}`);
  }
  await receiver.close();
  const files = receiver.requests.map((r, i) => [
    `export-${i}.${r.headers['content-type'] === 'application/json' ? 'json' : 'pb'}`,
    r.body,
  ]);
  if (injects.length > 0) files.push(['inject.json', Buffer.from(injects.join('\n') + '\n')]);
  if (operations.length > 0) files.push(['operations.json', operations]);
  assert.ok(receiver.requests.length > 0, 'the scenario exported nothing');
  return files;
}

function check(name, files) {
  const golden = path.join(conformance, 'golden', name);
  const expected = readdirSync(golden).sort();
  assert.deepEqual(files.map(([f]) => f).sort(), expected, `${name}: the files produced differ from the golden ones`);
  for (const [file, bytes] of files) {
    const want = readFileSync(path.join(golden, file));
    if (file === 'operations.json') {
      const lines = want.toString('utf8').split('\n').filter((l) => l.trim() !== '');
      assert.deepEqual(bytes, lines.map((l) => JSON.parse(l)), `${name}/${file}: differs from the golden file`);
      continue;
    }
    assert.ok(bytes.equals(want), `${name}/${file}: differs from the golden file (${bytes.length} vs ${want.length} bytes)`);
  }
}

/** Whether the scenario names the SDK language itself (OTEL_RESOURCE_ATTRIBUTES). */
function pinsLanguage(scenario) {
  return /(^|,)telemetry\.sdk\.language=/.test(scenario.env?.OTEL_RESOURCE_ATTRIBUTES ?? '');
}

test('there are conformance scenarios', () => {
  assert.ok(scenarios.length >= 4, `scenarios missing from ${conformance}`);
});

for (const file of scenarios) {
  const name = file.replace(/\.json$/, '');
  test(`conformance: ${name}`, async () => {
    const scenario = JSON.parse(readFileSync(path.join(conformance, 'scenarios', file), 'utf8'));
    // Every scenario pins telemetry.sdk.language, so the goldens hold for every host.
    assert.ok(pinsLanguage(scenario), `${name} does not pin telemetry.sdk.language`);
    check(name, await replay(scenario));
  });
}
