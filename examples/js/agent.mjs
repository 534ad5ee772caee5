// An agent-style Node app instrumented with polytel: a workflow runs an
// agent that plans with an LLM, calls tools (one of them flaky), keeps a
// memory, and serves an HTTP endpoint that continues the caller's trace.
// LLM calls, agent runs, tool calls and memory operations go through the
// GenAI operation kit (llmCall, agent, tool, memory, workflow): the core names
// the spans, writes the GenAI semantic conventions' attributes, and derives
// token usage, duration and cost metrics and stats(); logs carry the trace
// they belong to.
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

/** @type {Map<string, string>} */
const memory = new Map();
// Instruments can be made at module scope, before configure.
polytel.observableGauge('agent.memory.entries', { unit: '{entry}' }, (o) => o.observe(memory.size));

let seed = 7;
/** A small deterministic random source, so runs are comparable. */
function random() {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
}

const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** One LLM call: the model is simulated, the usage is what it reports. */
async function chat(/** @type {string} */ model, /** @type {string} */ prompt) {
  return polytel.llmCall('openai', model, { attributes: { 'server.address': 'api.openai.com' } }, async (call) => {
    call.recordInput(prompt); // kept only with genaiCaptureContent: true
    await sleep(5 + random() * 25);
    const answer = `plan for: ${prompt}`;
    call.setResponseModel(`${model}-2024-08-06`);
    call.recordUsage({ inputTokens: prompt.split(' ').length * 4, outputTokens: 20 + Math.floor(random() * 180) });
    call.recordOutput(answer);
    return answer;
  });
}

class ToolTimeout extends Error {
  name = 'ToolTimeout';
}

/** A tool call; fetch_page times out now and then, and is retried. */
async function callTool(/** @type {string} */ name, /** @type {string} */ input) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await polytel.tool(name, { attributes: { attempt } }, async (call) => {
        call.recordInput(input);
        await sleep(2 + random() * 10);
        // The error is recorded on the tool call (exception, error status, error.type).
        if (name === 'fetch_page' && attempt === 1) throw new ToolTimeout(`${name} timed out after 30s`);
        return `${name}(${input}) done`;
      });
    } catch (error) {
      polytel.log('warn', `${name} failed, retrying`, { attempt, 'error.type': error instanceof Error ? error.name : 'unknown' });
      if (attempt >= 2) throw error;
    }
  }
}

/** One agent run in a workflow: plan, use tools, remember, answer. */
async function run(/** @type {string} */ question) {
  return polytel.workflow('research', () =>
    polytel.agent('research-assistant', async () => {
      polytel.log('info', 'agent run started', { question });
      const plan = await chat('gpt-4o', question);
      const results = await Promise.all([callTool('web_search', question), callTool('fetch_page', 'https://example.org')]);
      polytel.memory('update_memory', 'notes', () => memory.set(question, results.join('; ')));
      const answer = await chat('gpt-4o-mini', `${plan} with ${results.length} results`);
      polytel.log('info', 'agent run finished', { 'answer.length': answer.length });
      return answer;
    }),
  );
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

// Per operation: count, errors by type, p50/p95/p99 durations, tokens and cost.
for (const op of polytel.stats()?.operations ?? []) {
  const { p50, p95, p99 } = op.duration_s;
  console.error(
    `polytel: ${op.operation} ${op.name}: ${op.count} (${op.errors} errors), p50/p95/p99 ${p50}/${p95}/${p99} s, ` +
      `${op.input_tokens}+${op.output_tokens} tokens, $${op.cost_usd}`,
  );
}

const report = await polytel.shutdown();
console.error(`polytel: shut down (flushed: ${report.flushed}, abandoned: ${report.abandoned})`);
