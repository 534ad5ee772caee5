// GenAI operations (llmCall, agent, tool, workflow, memory): what the binding
// writes for the core (the "genai" member of a span record, read from the
// pipeline's buffer before the worker ships it), and what comes out once the
// core has them (exported spans, stats()["operations"]).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import * as polytel from '../dist/node.js';
import { captureServer, spansOf, waitFor } from './helpers.mjs';

/** A pipeline to `receiver` over OTLP/HTTP JSON, independent of the process's. */
function pipeline(receiver, options = {}) {
  return polytel.create({
    backend: 'otlp',
    endpoint: receiver.url,
    protocol: 'http/json',
    serviceName: 'js-genai-test',
    env: {},
    exitHooks: false,
    ...options,
  });
}

/**
 * The span records `t` hands on to its buffer from now on, parsed: what the
 * binding writes for the core (white-box: `_enqueue` is internal).
 */
function watch(t) {
  const records = [];
  const enqueue = t._enqueue.bind(t);
  t._enqueue = (signal, record) => {
    if (signal === 0) records.push(JSON.parse(record));
    enqueue(signal, record);
  };
  return records;
}

/** The one record of an operation on `name`. */
function recordOf(records, name) {
  const found = records.filter((r) => r.genai?.name === name);
  assert.equal(found.length, 1, `one record for ${name}: ${JSON.stringify(records)}`);
  return found[0];
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('GenAI operations', () => {
  let receiver;
  before(async () => {
    receiver = await captureServer();
  });
  after(() => receiver.close());

  test('an LLM call is a span record with name "", kind 0 and the genai member, usage added up', async () => {
    const t = pipeline(receiver);
    const records = watch(t);
    const answer = t.llmCall('openai', 'gpt-4o', (call) => {
      assert.ok(call instanceof polytel.Operation);
      assert.ok(call instanceof polytel.Span, 'an operation is a span');
      assert.equal(t.currentSpan(), call, 'the operation is current inside fn');
      call.setAttribute('server.address', 'api.openai.com');
      call.recordUsage({ inputTokens: 400, cacheReadTokens: 128 });
      call.recordUsage({ inputTokens: 12, outputTokens: 96 });
      call.setResponseModel('gpt-4o-2024-08-06');
      call.recordCost(0.00123);
      return 'answer';
    });
    assert.equal(answer, 'answer');
    t.llmCall('openai', 'text-embedding-3-small', { operation: 'embeddings', kind: 'client' }, () => {});
    t.agent('research-assistant', () => {});

    const chat = recordOf(records, 'gpt-4o');
    assert.equal(chat.name, '');
    assert.equal(chat.kind, 0, 'the core picks the kind');
    assert.equal('sampled' in chat, false, 'a sampled operation needs no "sampled"');
    assert.deepEqual(chat.attributes, { 'server.address': 'api.openai.com' });
    assert.deepEqual(chat.genai, {
      operation: 'chat',
      name: 'gpt-4o',
      provider: 'openai',
      response_model: 'gpt-4o-2024-08-06',
      usage: { input_tokens: 412, output_tokens: 96, cache_read_tokens: 128 },
      cost: 0.00123,
    });
    assert.deepEqual(Object.keys(chat.genai), ['operation', 'name', 'provider', 'response_model', 'usage', 'cost']);
    assert.deepEqual(Object.keys(chat.genai.usage), ['input_tokens', 'output_tokens', 'cache_read_tokens']);

    const embed = recordOf(records, 'text-embedding-3-small');
    assert.equal(embed.kind, 3, 'a kind the user chose is kept');
    assert.deepEqual(embed.genai, { operation: 'embeddings', name: 'text-embedding-3-small', provider: 'openai' });
    assert.deepEqual(recordOf(records, 'research-assistant').genai, { operation: 'invoke_agent', name: 'research-assistant' });
    await t.shutdown();
  });

  test('each operation kind: its operation, name and provider', async () => {
    const t = pipeline(receiver);
    const records = watch(t);
    t.workflow('research', () => {
      t.tool('web_search', () => {});
      t.memory('search_memory', 'user-preferences', () => {});
      t.llmCall('acme', 'house-model', { operation: 'text_completion' }, () => {});
    });
    const ops = records.map((r) => r.genai);
    assert.deepEqual(ops, [
      { operation: 'execute_tool', name: 'web_search' },
      { operation: 'search_memory', name: 'user-preferences' },
      { operation: 'text_completion', name: 'house-model', provider: 'acme' },
      { operation: 'invoke_workflow', name: 'research' },
    ]);
    await t.shutdown();
  });

  test('the functions: one operation per call, sync and async, with the value returned', async () => {
    const t = pipeline(receiver);
    const records = watch(t);
    const search = (q) => t.tool('web_search', () => `results for ${q}`);
    const ask = (q) =>
      t.llmCall('openai', 'gpt-4o', async (call) => {
        await sleep(2);
        call.recordUsage({ inputTokens: 10, outputTokens: 5 });
        return `answer to ${q}`;
      });
    assert.equal(search('a'), 'results for a');
    assert.equal(search('b'), 'results for b');
    assert.equal(search('c'), 'results for c');
    const promise = ask('x');
    assert.ok(promise instanceof Promise);
    assert.equal(records.filter((r) => r.genai.name === 'gpt-4o').length, 0, 'an async call ends when its promise settles');
    assert.deepEqual(await Promise.all([promise, ask('y')]), ['answer to x', 'answer to y']);

    const ops = t.stats().operations;
    const count = (operation, name) => ops.find((o) => o.operation === operation && o.name === name)?.count;
    assert.equal(count('execute_tool', 'web_search'), 3);
    assert.equal(count('chat', 'gpt-4o'), 2);
    await t.shutdown();
  });

  test('operations inside an agent carry its name, through the context and explicit parents', async () => {
    const t = pipeline(receiver);
    const records = watch(t);
    await t.agent('planner', async (agent) => {
      t.llmCall('openai', 'gpt-4o', () => {});
      await sleep(1);
      // Through a plain span and an await: AsyncLocalStorage keeps the agent.
      await t.span('step', async () => {
        await sleep(1);
        t.tool('web_search', () => {});
      });
      t.agent('sub-agent', () => t.memory('search_memory', 'notes', () => {}));
      // An explicit parent that is an operation decides, not the context.
      t.startTool('outside', { parent: null }).end();
      const other = t.startAgent('other', { parent: null });
      t.startTool('under-other', { parent: other }).end();
      other.end();
      t.startLlmCall('openai', 'explicit', { parent: agent }).end();
    });
    t.tool('after', () => {});

    const agentOf = Object.fromEntries(records.filter((r) => r.genai).map((r) => [r.genai.name, r.genai.agent]));
    assert.deepEqual(agentOf, {
      'gpt-4o': 'planner',
      web_search: 'planner',
      notes: 'sub-agent',
      'sub-agent': 'planner',
      outside: undefined,
      'under-other': 'other',
      other: undefined,
      explicit: 'planner',
      planner: undefined,
      after: undefined,
    });
    await t.shutdown();
  });

  test('content capture is off by default: nothing kept, the value not even read', async () => {
    let read = 0;
    const content = {
      get prompt() {
        read++;
        return 'secret prompt';
      },
    };
    const t = pipeline(receiver);
    const records = watch(t);
    t.llmCall('openai', 'gpt-4o', (call) => {
      call.recordInput(content);
      call.recordOutput(content);
    });
    const r = recordOf(records, 'gpt-4o');
    assert.equal('input' in r.genai, false);
    assert.equal('output' in r.genai, false);
    assert.equal(read, 0, 'recordInput/recordOutput did not convert the value');
    await t.shutdown();
  });

  test('with content capture on, input and output are attribute values', async () => {
    const t = pipeline(receiver, { genaiCaptureContent: true });
    const records = watch(t);
    t.tool('web_search', (call) => {
      call.recordInput({ q: 'wasm', limit: 3 });
      call.recordOutput(['one', 'two']);
    });
    t.llmCall('openai', 'gpt-4o', (call) => call.recordInput('a prompt'));
    assert.deepEqual(recordOf(records, 'web_search').genai, {
      operation: 'execute_tool',
      name: 'web_search',
      input: { map: { q: 'wasm', limit: 3 } },
      output: ['one', 'two'],
    });
    assert.equal(recordOf(records, 'gpt-4o').genai.input, 'a prompt');
    await t.shutdown();
  });

  test('an error leaving an operation is recorded: exception event and error status, and rethrown', async () => {
    const t = pipeline(receiver);
    const records = watch(t);
    class TimeoutError extends Error {
      name = 'TimeoutError';
    }
    assert.throws(
      () =>
        t.tool('fetch_page', () => {
          throw new TimeoutError('timed out after 30s');
        }),
      TimeoutError,
    );
    await assert.rejects(
      t.llmCall('openai', 'gpt-4o', async () => {
        await sleep(1);
        throw new TimeoutError('the model timed out');
      }),
      TimeoutError,
    );
    const tool = recordOf(records, 'fetch_page');
    assert.deepEqual(tool.status, { code: 2, message: 'timed out after 30s' });
    assert.equal(tool.events[0].exception.type, 'TimeoutError');
    const llm = recordOf(records, 'gpt-4o');
    assert.deepEqual(llm.status, { code: 2, message: 'the model timed out' });
    assert.equal(llm.events[0].exception.type, 'TimeoutError');

    const ops = t.stats().operations;
    const fetchPage = ops.find((o) => o.name === 'fetch_page');
    assert.equal(fetchPage.count, 1);
    assert.equal(fetchPage.errors, 1);
    assert.deepEqual(fetchPage.error_types, { TimeoutError: 1 });
    await t.shutdown();
  });

  test('an unsampled operation is still sent ("sampled": false) and counted, but not exported', async () => {
    const r = await captureServer();
    const t = pipeline(r, { sampler: 'always_off' });
    const records = watch(t);
    t.span('plain', () => {});
    t.llmCall('openai', 'gpt-4o', (call) => {
      assert.equal(call.context.sampled, false);
      call.recordUsage({ inputTokens: 7, outputTokens: 3 });
    });
    assert.equal(records.length, 1, 'the unsampled plain span records nothing; the operation does');
    assert.equal(records[0].sampled, false);
    assert.deepEqual(records[0].genai.usage, { input_tokens: 7, output_tokens: 3 });

    const op = t.stats().operations.find((o) => o.name === 'gpt-4o');
    assert.equal(op.count, 1);
    assert.equal(op.input_tokens, 7);
    assert.deepEqual(await t.shutdown(), { abandoned: 0, flushed: true });
    assert.deepEqual(spansOf(r.json('traces')), [], 'no span is exported');
    await r.close();
  });

  test('with traces going nowhere, operations are still sent with "sampled": false', async () => {
    const t = pipeline(receiver, { tracesExporter: 'none' });
    const records = watch(t);
    t.tool('web_search', () => {});
    const [r] = records;
    assert.equal(r.sampled, false);
    assert.equal(t.stats().operations.find((o) => o.name === 'web_search').count, 1);
    await t.shutdown();
  });

  test('stats()["operations"]: count, errors and duration quantiles once operations end', async () => {
    const step = 1_000_000n; // 1 ms per clock reading
    let now = 1_763_700_000_000_000_000n;
    const t = pipeline(receiver, { clock: (reading) => (reading === 'poll' ? now : (now += step)) });
    const records = watch(t);
    for (let i = 0; i < 4; i++) t.tool('web_search', () => {});
    assert.throws(() =>
      t.tool('web_search', () => {
        throw new RangeError('bad query');
      }),
    );
    // Asked at once: what is still buffered counts too.
    const ops = t.stats().operations;
    assert.ok(Array.isArray(ops), JSON.stringify(ops));
    const search = ops.find((o) => o.operation === 'execute_tool' && o.name === 'web_search');
    assert.equal(search.count, 5);
    assert.equal(search.errors, 1);
    assert.deepEqual(search.error_types, { RangeError: 1 });
    const { p50, p95, p99 } = search.duration_s;
    for (const q of [p50, p95, p99]) assert.ok(q > 0 && q < 0.01, `a duration of a few ms: ${JSON.stringify(search.duration_s)}`);
    assert.ok(p50 <= p95 && p95 <= p99);
    await t.shutdown();
  });

  test('exported operations are named and kinded by the core', async () => {
    const r = await captureServer();
    const t = pipeline(r);
    const records = watch(t);
    t.agent('research-assistant', () => t.llmCall('openai', 'gpt-4o', (call) => call.recordUsage({ inputTokens: 3 })));
    await t.shutdown();
    const spans = await waitFor('the spans', () => {
      const s = spansOf(r.json('traces'));
      return s.length === 2 && s;
    });
    const byName = Object.fromEntries(spans.map((s) => [s.name, s]));
    assert.deepEqual(Object.keys(byName).sort(), ['chat gpt-4o', 'invoke_agent research-assistant']);
    assert.equal(byName['chat gpt-4o'].kind, 3, 'client');
    assert.equal(byName['chat gpt-4o'].parentSpanId, byName['invoke_agent research-assistant'].spanId);
    await r.close();
  });

  test('disabled telemetry: the function runs with an operation that records nothing', async () => {
    const t = pipeline(receiver, { disabled: true });
    const records = watch(t);
    const v = t.llmCall('openai', 'gpt-4o', (call) => {
      assert.equal(call.isRecording(), false);
      call.recordUsage({ inputTokens: 1 }).setResponseModel('x').recordCost(1).recordInput('x');
      return 42;
    });
    assert.equal(v, 42);
    assert.deepEqual(records, []);
    await t.shutdown();
  });
});

describe('the module-level GenAI functions', () => {
  test('before configure they run the function with a no-op operation; then they use the pipeline', async () => {
    assert.equal(
      polytel.agent('a', (op) => {
        assert.equal(op.isRecording(), false);
        return polytel.llmCall('openai', 'gpt-4o', { operation: 'chat' }, (call) => call.recordUsage({ inputTokens: 1 }) && 7);
      }),
      7,
    );
    assert.equal(await polytel.tool('t', async () => 'async'), 'async');
    assert.equal(polytel.startWorkflow('w').isRecording(), false);
    assert.equal(polytel.memory('search_memory', 's', () => 1), 1);

    const r = await captureServer();
    polytel.configure({ backend: 'otlp', endpoint: r.url, protocol: 'http/json', env: {}, exitHooks: false });
    const records = watch(polytel.telemetry());
    await polytel.workflow('research', () =>
      polytel.agent('planner', async () => {
        await sleep(1);
        polytel.llmCall('openai', 'gpt-4o', (call) => call.recordUsage({ inputTokens: 5, outputTokens: 2 }));
        polytel.tool('search', () => {});
        polytel.memory('update_memory', 'notes', () => {});
      }),
    );
    const wf = polytel.startWorkflow('manual');
    wf.end();
    assert.deepEqual(
      records.map((x) => [x.genai.operation, x.genai.name, x.genai.agent]),
      [
        ['chat', 'gpt-4o', 'planner'],
        ['execute_tool', 'search', 'planner'],
        ['update_memory', 'notes', 'planner'],
        ['invoke_agent', 'planner', undefined],
        ['invoke_workflow', 'research', undefined],
        ['invoke_workflow', 'manual', undefined],
      ],
    );
    const ops = polytel.stats().operations;
    assert.equal(ops.find((o) => o.name === 'planner').count, 1);
    await polytel.shutdown();
    await r.close();
  });
});
