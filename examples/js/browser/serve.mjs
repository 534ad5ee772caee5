// Serves the browser example and receives what it exports:
//   node examples/js/browser/serve.mjs [--port 8080]
// then open http://127.0.0.1:8080/. The page is served at /, the polytel
// package (bindings/js, built) at /polytel/, and OTLP/HTTP JSON posted to
// /v1/traces, /v1/metrics and /v1/logs is printed, one line per request.
// Imported by the headless browser test, which passes its own onExport.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const packageDir = path.resolve(here, '..', '..', '..', 'bindings', 'js');
const TYPES = { '.html': 'text/html', '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };

/**
 * Starts the server; resolves to its base URL and a close function.
 * @param {{ port?: number, onExport?: (signal: string, body: any) => void }} [options]
 */
export async function serve({ port = 0, onExport = print } = {}) {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'POST' && url.pathname.startsWith('/v1/')) {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      onExport(url.pathname.slice(4), JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    const [root, rel] = url.pathname.startsWith('/polytel/')
      ? [packageDir, url.pathname.slice('/polytel/'.length)]
      : [here, url.pathname === '/' ? 'index.html' : url.pathname.slice(1)];
    const file = path.resolve(root, rel);
    if (!file.startsWith(root + path.sep)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[/** @type {keyof typeof TYPES} */ (path.extname(file))] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(undefined)));
  const address = /** @type {import('node:net').AddressInfo} */ (server.address());
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve(undefined));
    }),
  };
}

/** @param {string} signal @param {any} body */
function print(signal, body) {
  const count = JSON.stringify(body).match(/"(spanId|timeUnixNano|asDouble|asInt|count)"/g)?.length ?? 0;
  const names = signal === 'traces'
    ? body.resourceSpans.flatMap((/** @type {any} */ rs) => rs.scopeSpans.flatMap((/** @type {any} */ ss) => ss.spans.map((/** @type {any} */ s) => s.name)))
    : [];
  console.log(`${signal}: ${names.length ? names.join(', ') : `${count} items`}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '8080' } } });
  const { url } = await serve({ port: Number(values.port) });
  console.log(`polytel browser example at ${url}/ (Ctrl-C to stop)`);
}
