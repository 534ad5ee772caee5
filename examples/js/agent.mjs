// An agent-style Node app instrumented with polytel: an agent plans with an
// LLM, calls tools (one of them flaky), keeps a memory, and serves an HTTP
// endpoint that continues the caller's trace. Every LLM call and tool call is
// a span; token usage, durations and tool outcomes are metrics; logs carry
// the trace they belong to.
//
//   node agent.mjs                                      # to the console
//   node agent.mjs --endpoint http://127.0.0.1:4318     # to a collector (OTLP/HTTP)
//   OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 node agent.mjs
//   HONEYCOMB_API_KEY=… node agent.mjs --backend honeycomb
//
// The LLM and the tools are simulated, so it runs anywhere without keys.
// Install first: `npm install` here (it links ../../bindings/js, which must be built).
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import polytel from 'polytel';

// Instruments can be made at module scope, before configure.
const toolCalls = polytel.counter('agent.tool.calls', { unit: '{call}', description: 'Tool calls by tool and outcome.' });
const tokens = polytel.histogram('gen_ai.client.token.usage', {
  unit: '{token}',
  description: 'Tokens used per LLM call.',
  boundaries: [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536],
});
const duration = polytel.histogram('gen_ai.client.operation.duration', {
  unit: 's',
  description: 'GenAI operation duration.',
  boundaries: [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92],
});
/** @type {Map<string, string>} */
const memory = new Map();
polytel.observableGauge('agent.memory.entries', { unit: '{entry}' }, (o) => o.observe(memory.size));

let seed = 7;
/** A small deterministic random source, so runs are comparable. */
function random() {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
}

const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** One LLM call, as the GenAI semantic conventions describe it. */
async function chat(/** @type {string} */ model, /** @type {string} */ prompt) {
  const attributes = { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': model, 'gen_ai.system': 'openai' };
  return polytel.span(`chat ${model}`, { kind: 'client', attributes }, async (span) => {
    const started = performance.now();
    await sleep(5 + random() * 25);
    const input = prompt.split(' ').length * 4;
    const output = 20 + Math.floor(random() * 180);
    span.setAttributes({
      'gen_ai.usage.input_tokens': input,
      'gen_ai.usage.output_tokens': output,
      'gen_ai.response.finish_reasons': ['stop'],
    });
    tokens.record(input, { ...attributes, 'gen_ai.token.type': 'input' });
    tokens.record(output, { ...attributes, 'gen_ai.token.type': 'output' });
    duration.record((performance.now() - started) / 1000, attributes);
    return `plan for: ${prompt}`;
  });
}

class ToolTimeout extends Error {
  name = 'ToolTimeout';
}

/** A tool call; fetch_page times out now and then, and is retried. */
async function tool(/** @type {string} */ name, /** @type {string} */ input) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await polytel.span(
        `execute_tool ${name}`,
        { attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': name, attempt } },
        async () => {
          await sleep(2 + random() * 10);
          if (name === 'fetch_page' && attempt === 1) throw new ToolTimeout(`${name} timed out after 30s`);
          toolCalls.add(1, { 'gen_ai.tool.name': name, outcome: 'ok' });
          return `${name}(${input}) done`;
        },
      );
    } catch (error) {
      toolCalls.add(1, { 'gen_ai.tool.name': name, outcome: 'error' });
      polytel.log('warn', `${name} failed, retrying`, { attempt, 'error.type': error instanceof Error ? error.name : 'unknown' });
      if (attempt >= 2) throw error;
    }
  }
}

/** One agent run: plan, use tools, remember, answer. */
async function run(/** @type {string} */ question) {
  return polytel.span('invoke_agent research-assistant', { attributes: { 'gen_ai.agent.name': 'research-assistant' } }, async () => {
    polytel.log('info', 'agent run started', { question });
    const plan = await chat('gpt-4o', question);
    const results = await Promise.all([tool('web_search', question), tool('fetch_page', 'https://example.org')]);
    await polytel.span('search_memory notes', () => memory.set(question, results.join('; ')));
    const answer = await chat('gpt-4o-mini', `${plan} with ${results.length} results`);
    polytel.log('info', 'agent run finished', { 'answer.length': answer.length });
    return answer;
  });
}

/** An HTTP endpoint that continues the caller's trace (W3C traceparent). */
function serve() {
  const server = createServer((req, res) => {
    const parent = polytel.extract(req.headers);
    void polytel.span(`${req.method} /ask`, { kind: 'server', parent }, async (span) => {
      const answer = await run(new URL(req.url ?? '/', 'http://x').searchParams.get('q') ?? 'nothing');
      span.setAttribute('http.response.status_code', 200);
      res.writeHead(200, { 'content-type': 'text/plain' }).end(answer + '\n');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const { values } = parseArgs({
  options: { endpoint: { type: 'string' }, backend: { type: 'string' }, runs: { type: 'string', default: '2' } },
});
const toConsole = !values.endpoint && !values.backend && !process.env.OTEL_EXPORTER_OTLP_ENDPOINT && !process.env.POLYTEL_BACKEND;
polytel.configure({
  serviceName: 'js-agent-example',
  ...(toConsole ? { backend: 'console' } : {}),
  ...(values.backend ? { backend: values.backend } : {}),
  ...(values.endpoint ? { endpoint: values.endpoint } : {}),
});

for (let i = 0; i < Number(values.runs); i++) await run(`question ${i + 1}`);

// A client calls the server: the client's span and the server's are one trace.
const server = /** @type {import('node:http').Server} */ (await serve());
const address = /** @type {import('node:net').AddressInfo} */ (server.address());
await polytel.span('GET /ask', { kind: 'client' }, async () => {
  const res = await fetch(`http://127.0.0.1:${address.port}/ask?q=over+http`, { headers: polytel.inject() });
  await res.text();
});
server.close();

const report = await polytel.shutdown();
console.error(`polytel: shut down (flushed: ${report.flushed}, abandoned: ${report.abandoned})`);
