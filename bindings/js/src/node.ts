// polytel for Node: the core compiles from the package's files when this
// module is imported; the current span follows AsyncLocalStorage; the
// environment, the resource facts and the config file come from the process;
// pipelines flush on beforeExit and SIGTERM/SIGINT; with the prometheus
// exporter, GET /metrics is served.

import { AsyncLocalStorage } from 'node:async_hooks';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { setPlatform } from './api.js';
import { CORE_FILES, ConfigurationError, coreModulesLoaded, setCoreModules } from './component.js';
import type { ContextManager, Platform } from './platform.js';
import type { Telemetry } from './telemetry.js';

export * from './core.js';
export { default } from './core.js';

class AsyncLocalStorageContextManager implements ContextManager {
  private readonly storage = new AsyncLocalStorage<unknown>();
  active(): unknown {
    return this.storage.getStore();
  }
  with<T>(value: unknown, fn: () => T): T {
    return this.storage.run(value, fn);
  }
}

/** The container id is on the first lines of cgroup and mountinfo; a host with thousands of mounts must not slow configuration. */
const MAX_PROC_TEXT = 64 * 1024;

function readCapped(file: string): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const buf = Buffer.alloc(MAX_PROC_TEXT);
    let len = 0;
    while (len < buf.length) {
      const n = readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
    }
    let bytes = buf.subarray(0, len);
    // A line cut short could end in what looks like a whole id.
    if (len === MAX_PROC_TEXT) bytes = bytes.subarray(0, bytes.lastIndexOf(10) + 1);
    return bytes.toString('utf8');
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

let gathered: Record<string, unknown> | undefined;

/** The facts resource detection reads (HostFacts in the core), as Node reports them; read once per process. */
function gatherFacts(): Record<string, unknown> {
  if (gathered !== undefined) return gathered;
  const facts: Record<string, unknown> = {};
  const put = (key: string, value: string | undefined): void => {
    if (value) facts[key] = value;
  };
  try {
    put('host_name', os.hostname());
  } catch {
    // No host name to report.
  }
  put('host_arch', process.arch);
  put('os_type', process.platform);
  put('os_description', `${os.type()} ${os.release()}`.trim());
  facts['process_pid'] = process.pid;
  put('process_executable_name', path.basename(process.execPath));
  put('process_executable_path', process.execPath);
  put('process_runtime_name', 'nodejs');
  put('process_runtime_version', process.versions.node);
  put('process_runtime_description', 'Node.js');
  if (process.platform === 'linux') {
    put('cgroup', readCapped('/proc/self/cgroup'));
    put('mountinfo', readCapped('/proc/self/mountinfo'));
  }
  gathered = facts;
  return facts;
}

// -- exit and signal hooks -----------------------------------------------------

const live = new Set<Telemetry>();
let hooked = false;
const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

function shutdownAll(): Promise<unknown> {
  return Promise.all([...live].map((t) => t.shutdown({ timeoutMs: 5000 })));
}

function onBeforeExit(): void {
  // The event loop ran dry: flush. The flush keeps the process alive until
  // it is done; then it ends (beforeExit comes again, with nothing live).
  if (live.size > 0) void shutdownAll();
}

function onSignal(signal: NodeJS.Signals): void {
  unhook();
  void shutdownAll().finally(() => {
    // Without other listeners, the signal's default action (ending the
    // process) is what the application expects.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  });
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('beforeExit', onBeforeExit);
  for (const s of SIGNALS) process.on(s, onSignal);
}

function unhook(): void {
  if (!hooked) return;
  hooked = false;
  process.removeListener('beforeExit', onBeforeExit);
  for (const s of SIGNALS) process.removeListener(s, onSignal);
}

// -- the Prometheus endpoint ---------------------------------------------------

const servers = new Map<Telemetry, Server>();

function servePrometheus(t: Telemetry, listen: string, warn: (text: string) => void): void {
  const at = listen.lastIndexOf(':');
  const host = listen.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  const port = Number(listen.slice(at + 1));
  const server = createServer((req, res) => {
    const url = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || url !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found: metrics are at GET /metrics\n');
      return;
    }
    const openmetrics = (req.headers.accept ?? '').includes('application/openmetrics-text');
    t.renderMetrics(openmetrics ? 'openmetrics' : 'prometheus').then(
      (m) => res.writeHead(200, { 'content-type': m.contentType }).end(m.body),
      () => res.writeHead(500, { 'content-type': 'text/plain' }).end('polytel could not render metrics\n'),
    );
  });
  server.on('error', (e) => warn(`polytel: cannot serve Prometheus metrics at ${listen} (${e.message}); set prometheusListen or OTEL_EXPORTER_PROMETHEUS_PORT.`));
  server.listen(port, host);
  // Serving scrapes must not keep a finished application running.
  server.unref();
  servers.set(t, server);
  t._prometheusAddress = () => {
    const a = server.address();
    return a !== null && typeof a === 'object' ? `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : undefined;
  };
}

// -- the platform ----------------------------------------------------------------

const warn = (text: string): void => {
  process.stderr.write(text + '\n');
};

const nodePlatform: Platform = {
  sdkLanguage: 'nodejs',
  env(): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (typeof v === 'string') env[k] = v;
    return env;
  },
  facts: gatherFacts,
  readConfigFile(file: string): string {
    try {
      return readFileSync(file, 'utf8');
    } catch (e) {
      const code = (e as { code?: string }).code ?? 'unreadable';
      throw new ConfigurationError(
        `The config file ${file} could not be read (${code}); fix the path in the option configFile or in POLYTEL_CONFIG.`,
      );
    }
  },
  writeStdout: (text) => {
    process.stdout.write(text);
  },
  warn,
  unref: (timer) => {
    (timer as { unref?: () => void }).unref?.();
  },
  yieldToLoop: () => new Promise<void>((resolve) => setImmediate(resolve)),
  base64ToBytes: (text) => {
    const b = Buffer.from(text, 'base64');
    return new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, b.byteLength);
  },
  bytesToBase64: (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'),
  contextManager: new AsyncLocalStorageContextManager(),
  // The core follows a 307/308 itself, within its rules (the same origin
  // for OTLP, Application Insights' domains for Azure Monitor).
  manualRedirects: true,
  started(x: unknown): void {
    const t = x as Telemetry;
    live.add(t);
    if (t._exitHooks) hook();
    const listen = t.prometheusListen;
    if (listen) servePrometheus(t, listen, warn);
  },
  stopped(x: unknown): void {
    const t = x as Telemetry;
    live.delete(t);
    if (![...live].some((l) => l._exitHooks)) unhook();
    const server = servers.get(t);
    if (server !== undefined) {
      servers.delete(t);
      server.close();
      server.closeAllConnections?.();
    }
  },
};

setPlatform(nodePlatform);

if (!coreModulesLoaded()) {
  const modules: Record<string, WebAssembly.Module> = {};
  for (const file of CORE_FILES) {
    modules[file] = new WebAssembly.Module(readFileSync(new URL(`../gen/${file}`, import.meta.url)));
  }
  setCoreModules(modules);
}
