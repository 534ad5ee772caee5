// The browser side: configure once, then spans, a counter and a log per click.
// In browsers the current span follows synchronous code only, so async work
// names its parent explicitly (`parent: agent`).
import * as polytel from 'polytel';

polytel.configure({
  backend: 'otlp',
  // The page's own origin: serve.mjs receives OTLP/HTTP there (a collector on
  // another origin must allow the page's origin with CORS).
  endpoint: location.origin,
  protocol: 'http/json',
  serviceName: 'browser-example',
  scheduleDelayMs: 500,
});

const clicks = polytel.counter('ui.clicks', { unit: '{click}' });
const out = /** @type {HTMLElement} */ (document.getElementById('out'));

/** One agent run as the page sees it. */
export async function ask(question = 'what is polytel?') {
  return polytel.span('ask agent', { kind: 'client', attributes: { 'ui.question': question } }, async (agent) => {
    clicks.add(1, { button: 'ask' });
    const answer = await polytel.span('chat gpt-4o', { kind: 'client', parent: agent }, async (llm) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      llm.setAttribute('gen_ai.usage.output_tokens', 42);
      return `an answer to "${question}"`;
    });
    polytel.log('info', 'answer shown', { 'answer.length': answer.length }, { span: agent });
    return { answer, traceId: agent.context.traceId };
  });
}

document.getElementById('ask')?.addEventListener('click', async () => {
  const { answer, traceId } = await ask();
  out.textContent += `${answer}  (trace ${traceId})\n`;
});

// For scripted runs (the headless browser test): ask once, flush, report.
Object.assign(globalThis, {
  polytelExample: { ask, flush: () => polytel.forceFlush(), stats: () => polytel.stats() },
});
