// polytel/core: the API without loading the core component and without
// anything Node-only, for browsers, workers and edge runtimes. Call
// `await init()` (or import 'polytel', which does) before `configure()`.

import { setPlatform } from './api.js';
import { CORE_FILES, coreModulesLoaded, setCoreModules } from './component.js';
import type { CoreModules } from './component.js';
import { webPlatform } from './platform.js';

setPlatform(webPlatform());

export * from './api.js';
export { Operation, Span, Telemetry } from './telemetry.js';
export type { LlmCallOptions, OperationOptions, OperationStats, Usage } from './genai.js';
export type {
  Counter,
  FlushOptions,
  Gauge,
  HeaderCarrier,
  Histogram,
  HistogramOptions,
  HostSettings,
  InstrumentOptions,
  Level,
  Link,
  LogOptions,
  ObservableInstrument,
  ObserveCallback,
  Observer,
  Scope,
  ShutdownReport,
  SpanContext,
  SpanKind,
  SpanOptions,
  StatusCode,
  UpDownCounter,
} from './telemetry.js';
export { Double, double } from './values.js';
export type { AttributeValue, Attributes } from './values.js';
export { ConfigurationError, CoreTrapped } from './component.js';
export { StackContextManager } from './platform.js';
export type { ContextManager } from './platform.js';

/** A core module's bytes or compiled module, or a response that carries it. */
export type ModuleSource = WebAssembly.Module | BufferSource | Response | PromiseLike<WebAssembly.Module | BufferSource | Response>;

/**
 * Where the core's wasm files come from: a base URL (default: polytel's gen/
 * folder next to this module), or a function that returns each file
 * (polytel.core.wasm, polytel.core2.wasm, polytel.core3.wasm) by name.
 */
export type CoreSource = string | URL | ((file: string) => ModuleSource);

async function compile(source: ModuleSource): Promise<WebAssembly.Module> {
  const s = await source;
  if (s instanceof WebAssembly.Module) return s;
  if (typeof Response === 'function' && s instanceof Response) {
    if (!s.ok) throw new Error(`polytel: fetching the core failed with HTTP ${s.status} (${s.url}).`);
    if (typeof WebAssembly.compileStreaming === 'function' && s.headers.get('content-type')?.startsWith('application/wasm')) {
      return WebAssembly.compileStreaming(s);
    }
    return WebAssembly.compile(await s.arrayBuffer());
  }
  return WebAssembly.compile(s as BufferSource);
}

/** Loads and compiles the core once; later calls do nothing. */
export async function init(source?: CoreSource): Promise<void> {
  if (coreModulesLoaded()) return;
  const fetchFrom = (base: string | URL) => (file: string) => fetch(new URL(file, base));
  const get =
    typeof source === 'function' ? source : fetchFrom(source ?? new URL('../gen/', import.meta.url));
  const compiled = await Promise.all(CORE_FILES.map((f) => compile(get(f))));
  const modules: Record<string, WebAssembly.Module> = {};
  CORE_FILES.forEach((f, i) => (modules[f] = compiled[i]!));
  setCoreModules(modules as CoreModules);
}

export { coreModulesLoaded as initialized };

import * as api from './api.js';
import { Operation, Span, Telemetry } from './telemetry.js';
import { Double, double } from './values.js';
import { ConfigurationError, CoreTrapped } from './component.js';
import { StackContextManager } from './platform.js';

/** Everything above as one object: `import polytel from 'polytel'`. */
const polytel = {
  ...api,
  init,
  initialized: coreModulesLoaded,
  Operation,
  Span,
  Telemetry,
  Double,
  double,
  ConfigurationError,
  CoreTrapped,
  StackContextManager,
};
export default polytel;
