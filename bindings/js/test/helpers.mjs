// Shared by the tests: a capture receiver on loopback, paths, the polytel
// command, and waiting helpers.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

export const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const repoDir = path.resolve(packageDir, '../..');
export const cacheDir = process.env.POLYTEL_CACHE || path.join(homedir(), '.cache', 'polytel');

/** The polytel command (built by scripts/test.sh); a test that needs it fails without it. */
export function polytelBin() {
  const candidates = [
    process.env.POLYTEL_BIN,
    path.join(process.env.CARGO_TARGET_DIR || path.join(cacheDir, 'target'), 'release', 'polytel'),
  ];
  const found = candidates.find((c) => c && existsSync(c));
  if (!found) {
    throw new Error(
      `the polytel command is needed and was not found (looked at ${candidates.filter(Boolean).join(', ')}); ` +
        'build it with `cargo build --release --locked --bin polytel` or set POLYTEL_BIN.',
    );
  }
  return found;
}

export function tempDir(prefix) {
  return mkdtempSync(path.join(tmpdir(), `polytel-js-${prefix}-`));
}

/**
 * An HTTP server on 127.0.0.1 that records every request (body un-gzipped)
 * and answers with `respond(request)` → {status, headers, body} (default 200).
 */
export async function captureServer(respond) {
  const requests = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      const gzip = req.headers['content-encoding'] === 'gzip';
      if (gzip) body = gunzipSync(body);
      const r = { method: req.method, path: req.url, headers: req.headers, body, gzip };
      requests.push(r);
      const answer = respond?.(r) ?? {};
      res.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...(answer.headers ?? {}) });
      res.end(answer.body ?? '{}');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  // A test that fails before closing it must not keep the test process alive.
  server.unref();
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    /** Parsed OTLP/JSON bodies of requests to `/v1/<signal>`. */
    json(signal) {
      return requests.filter((r) => r.path === `/v1/${signal}`).map((r) => JSON.parse(r.body.toString('utf8')));
    },
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    }),
  };
}

/** Every span of OTLP/JSON trace requests, with its resource attributes. */
export function spansOf(requests) {
  const out = [];
  for (const req of requests) {
    for (const rs of req.resourceSpans ?? []) {
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) out.push({ ...s, resource: attrs(rs.resource?.attributes), scope: ss.scope });
      }
    }
  }
  return out;
}

export function logsOf(requests) {
  const out = [];
  for (const req of requests) {
    for (const rl of req.resourceLogs ?? []) {
      for (const sl of rl.scopeLogs ?? []) for (const l of sl.logRecords ?? []) out.push(l);
    }
  }
  return out;
}

export function metricsOf(requests) {
  const out = [];
  for (const req of requests) {
    for (const rm of req.resourceMetrics ?? []) {
      for (const sm of rm.scopeMetrics ?? []) for (const m of sm.metrics ?? []) out.push(m);
    }
  }
  return out;
}

/** OTLP/JSON attributes as a plain object of plain values. */
export function attrs(list) {
  const out = {};
  for (const kv of list ?? []) out[kv.key] = plain(kv.value);
  return out;
}

function plain(v) {
  if (v === undefined) return undefined;
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return typeof v.doubleValue === 'string' ? Number(v.doubleValue) : v.doubleValue;
  if ('bytesValue' in v) return Buffer.from(v.bytesValue, 'base64');
  if ('arrayValue' in v) return (v.arrayValue.values ?? []).map(plain);
  if ('kvlistValue' in v) return attrs(v.kvlistValue.values);
  return null;
}

/** Polls `check` until it returns something truthy or the time is up. */
export async function waitFor(what, check, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Runs `node` on a script file with the given env; resolves to {code, signal, stdout, stderr}. */
export function runNode(args, { env = {}, cwd = packageDir, timeoutMs = 30_000, onSpawn } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node ${args.join(' ')} did not finish in ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    onSpawn?.(child, () => stdout);
  });
}

export function sh(cmd, args, options = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options });
}
