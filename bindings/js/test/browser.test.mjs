// One test in a real headless browser: Debian's chromium, driven by
// playwright-core, loads the browser example (examples/js/browser), whose
// page imports the package's browser entry point, and exports to the local
// server that serves it.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';

import { attrs, logsOf, metricsOf, repoDir, spansOf, waitFor } from './helpers.mjs';

const CHROMIUM = '/usr/bin/chromium';
const missing = existsSync(CHROMIUM)
  ? false
  : `Debian's chromium is not installed at ${CHROMIUM} (scripts/test.sh installs it with apt-get)`;
if (missing && process.env.POLYTEL_REQUIRE_BROWSER === '1') throw new Error(missing);

test('the package runs in a headless browser and exports with fetch', { skip: missing }, async () => {
  const { chromium } = await import('playwright-core');
  const { serve } = await import(pathToFileURL(path.join(repoDir, 'examples', 'js', 'browser', 'serve.mjs')).href);
  /** @type {Record<string, any[]>} */
  const received = { traces: [], metrics: [], logs: [] };
  const server = await serve({ onExport: (signal, body) => received[signal]?.push(body) });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(`${server.url}/`);
    await page.waitForFunction(() => 'polytelExample' in globalThis, null, { timeout: 20_000 });
    const result = await page.evaluate(async () => {
      const ex = /** @type {any} */ (globalThis).polytelExample;
      const r = await ex.ask('from the test');
      const flushed = await ex.flush();
      return { ...r, flushed, userAgent: navigator.userAgent };
    });
    assert.equal(result.flushed, true);
    assert.match(result.userAgent, /HeadlessChrome|Chrome/);
    assert.deepEqual(errors, []);

    await waitFor('spans, logs and metrics from the page', () =>
      spansOf(received.traces).length >= 2 && logsOf(received.logs).length >= 1 && metricsOf(received.metrics).length >= 1,
    );
    const spans = Object.fromEntries(spansOf(received.traces).map((s) => [s.name, s]));
    const agent = spans['ask agent'];
    assert.equal(agent.traceId, result.traceId);
    assert.equal(agent.resource['telemetry.sdk.language'], 'webjs', 'the browser entry point was used');
    assert.equal(agent.resource['service.name'], 'browser-example');
    assert.equal(attrs(agent.attributes)['ui.question'], 'from the test');
    assert.equal(spans['chat gpt-4o'].parentSpanId, agent.spanId);
    assert.equal(attrs(spans['chat gpt-4o'].attributes)['gen_ai.usage.output_tokens'], 42);
    const [log] = logsOf(received.logs);
    assert.equal(log.body.stringValue, 'answer shown');
    assert.equal(log.spanId, agent.spanId);
    const clicks = metricsOf(received.metrics).find((m) => m.name === 'ui.clicks');
    assert.equal(clicks.sum.dataPoints[0].asDouble ?? Number(clicks.sum.dataPoints[0].asInt), 1);
  } finally {
    await browser.close();
    await server.close();
  }
});
