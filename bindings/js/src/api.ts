// The module-level API: `polytel.configure(...)` sets up the process's
// pipeline and the functions below use it. Before configure (or after a
// configuration that failed) they do nothing, like the OpenTelemetry API
// without an SDK; instruments made at module scope before configure start
// recording once it has run.

import type { Platform, ContextManager } from './platform.js';
import { GenAIFields } from './genai.js';
import type { LlmCallOptions, OperationOptions } from './genai.js';
import {
  Operation,
  Span,
  Telemetry,
  contextOf,
} from './telemetry.js';
import type {
  Counter,
  FlushOptions,
  Gauge,
  HeaderCarrier,
  Histogram,
  HistogramOptions,
  HostSettings,
  InstrumentOptions,
  Level,
  LogOptions,
  ObservableInstrument,
  ObserveCallback,
  ShutdownReport,
  SpanContext,
  SpanOptions,
  UpDownCounter,
} from './telemetry.js';
import type { AttributeValue, Attributes } from './values.js';

/**
 * Options of `configure`. Settings are named as in the README and
 * `polytel check` (camelCase here: `honeycombApiKey` is `honeycomb_api_key`);
 * what is not given comes from the environment (OTEL_*, the backends' own
 * variables), then from the config file, then from defaults. The core
 * validates everything and fails with one sentence.
 */
export interface Options extends HostSettings {
  /** A preset ("honeycomb", "otlp", "console", …), several comma-separated, or one per signal. */
  backend?: string | { traces?: string; metrics?: string; logs?: string };
  /** A base URL, as OTEL_EXPORTER_OTLP_ENDPOINT: `/v1/<signal>` is appended. */
  endpoint?: string;
  /** Base URLs by backend name, when several backends are in use. */
  endpoints?: Record<string, string>;
  /** Headers for every OTLP request (credentials welcome: they are never shown). */
  headers?: Record<string, string>;
  /** "http/protobuf" or "http/json" (gRPC needs an HTTP/2 client, which this host has not). */
  protocol?: string;
  /** "gzip" or "none". */
  compression?: string;
  timeoutMs?: number;
  /** Let credentials travel over plain http to another machine. */
  allowInsecure?: boolean;
  /** A TOML file with the same settings (Node), ranking below the environment; default POLYTEL_CONFIG. */
  configFile?: string;
  serviceName?: string;
  serviceVersion?: string;
  serviceNamespace?: string;
  deploymentEnvironment?: string;
  /** Extra resource attributes. */
  resourceAttributes?: Attributes;
  /** "host", "process", "container", "k8s", "cloud", "all" or "none". */
  resourceDetectors?: string[];
  disabled?: boolean;
  tracesExporter?: string;
  metricsExporter?: string;
  logsExporter?: string;
  sampler?: string;
  samplerArg?: string;
  scheduleDelayMs?: number;
  maxQueueSize?: number;
  maxExportBatchSize?: number;
  exportTimeoutMs?: number;
  attributeCountLimit?: number;
  attributeValueLengthLimit?: number;
  eventCountLimit?: number;
  linkCountLimit?: number;
  propagators?: string[];
  metricExportIntervalMs?: number;
  metricExportTimeoutMs?: number;
  /** "cumulative", "delta" or "lowmemory". */
  temporality?: string;
  /** "explicit_bucket_histogram" or "base2_exponential_bucket_histogram". */
  histogramAggregation?: string;
  /** "trace_based", "always_on" or "always_off". */
  exemplarFilter?: string;
  cardinalityLimit?: number;
  /** Where GET /metrics is served in Node ("127.0.0.1:9464"), with the prometheus exporter. */
  prometheusListen?: string;
  logScheduleDelayMs?: number;
  logMaxQueueSize?: number;
  logMaxExportBatchSize?: number;
  logExportTimeoutMs?: number;
  /** Keep GenAI operations' content (prompts, responses, tool arguments and results); off by default. */
  genaiCaptureContent?: boolean;
  /**
   * Prices that replace or extend the core's table, in US dollars per million
   * tokens: `{ openai: { 'gpt-4o': { input: 2.5, output: 10, cache_read: 1.25, aliases: ['gpt-4o-2024-08-06'] } } }`.
   */
  genaiPrices?: Record<string, Record<string, GenAIPrice>>;
  /** Redact secrets in captured content, attribute values and log bodies (default true). */
  redact?: boolean;
  /** More patterns (regular expressions) to redact. */
  redactPatterns?: string[];
  /** Export the core's own counters (exported, dropped by reason, retried, queued, pending) as `polytel.*` metrics. */
  selfMetrics?: boolean;
  // Backend settings (see the README's table of backends).
  sentryDsn?: string;
  honeycombApiKey?: string;
  honeycombTracesApiKey?: string;
  honeycombMetricsApiKey?: string;
  honeycombDataset?: string;
  honeycombMetricsDataset?: string;
  honeycombRegion?: string;
  datadogApiKey?: string;
  datadogSite?: string;
  datadogOtlpSource?: string;
  datadogAgentHost?: string;
  grafanaCloudZone?: string;
  grafanaCloudInstanceId?: string;
  grafanaCloudToken?: string;
  axiomToken?: string;
  axiomDataset?: string;
  axiomMetricsDataset?: string;
  axiomRegion?: string;
  newrelicLicenseKey?: string;
  newrelicRegion?: string;
  azureMonitorConnectionString?: string;
  elasticSecretToken?: string;
  elasticApiKey?: string;
  dynatraceApiToken?: string;
  dynatraceEnvironmentId?: string;
  langfusePublicKey?: string;
  langfuseSecretKey?: string;
  langfuseRegion?: string;
  logfireToken?: string;
  signozIngestionKey?: string;
  signozRegion?: string;
  uptraceDsn?: string;
  tenantId?: string;
}

/** A model's prices, in US dollars per million tokens (members as the core names them). */
export interface GenAIPrice {
  input?: number;
  output?: number;
  cache_read?: number;
  cache_write?: number;
  /** Other model names priced the same. */
  aliases?: string[];
}

const HOST_SETTINGS = new Set(['env', 'seed', 'clock', 'hostFacts', 'memoryLimit', 'exitHooks']);

/** Option names as the core takes them: camelCase becomes snake_case; nested values are left alone. */
export function coreOptions(options: Options): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (HOST_SETTINGS.has(key) || value === undefined) continue;
    out[key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())] = value;
  }
  return out;
}

let platform: Platform | undefined;
/** The process's pipeline, once configured. */
let current: Telemetry | undefined;
/** Bumped by every configure, so module-level instruments know to bind afresh. */
let generation = 0;

/** @internal The entry point says which platform it runs on. */
export function setPlatform(p: Platform): void {
  platform = p;
}

function thePlatform(): Platform {
  if (platform === undefined) throw new Error('polytel: no platform was set; import polytel from its package entry point.');
  return platform;
}

/** Replaces how the current span is tracked (for example AsyncLocalStorage in an edge runtime). */
export function setContextManager(manager: ContextManager): void {
  thePlatform().contextManager = manager;
}

/**
 * Makes a pipeline that is not the process's: the module-level functions do
 * not use it. Throws ConfigurationError with the core's one sentence.
 */
export function create(options: Options = {}): Telemetry {
  const p = thePlatform();
  const host: HostSettings = {};
  for (const key of HOST_SETTINGS) {
    const v = (options as Record<string, unknown>)[key];
    if (v !== undefined) (host as Record<string, unknown>)[key] = v;
  }
  return new Telemetry(coreOptions(options), host, p);
}

/**
 * Configures the process's telemetry: `configure({ backend: 'honeycomb',
 * honeycombApiKey, serviceName })`, or `configure()` to take everything from
 * the environment. A pipeline configured before is shut down (flushed).
 */
export function configure(options: Options = {}): Telemetry {
  const t = create(options);
  const previous = current;
  current = t;
  generation++;
  for (const o of observables) o.bind(t);
  if (previous !== undefined) void previous.shutdown();
  return t;
}

/** The process's pipeline, if configured. */
export function telemetry(): Telemetry | undefined {
  return current;
}

// -- spans -------------------------------------------------------------------

const NOOP_CONTEXT: SpanContext = Object.freeze({
  traceId: '00000000000000000000000000000000',
  spanId: '0000000000000000',
  sampled: false,
  remote: false,
  traceState: '',
});

/** Starts a span (not made current); see `span` to run code inside one. */
export function startSpan(name: string, options?: SpanOptions): Span {
  if (current !== undefined) return current.startSpan(name, options);
  const parent = options?.parent ? contextOf(options.parent) : undefined;
  return new Span(null, parent ?? NOOP_CONTEXT, false);
}

/** Runs `fn` (sync or async) inside a span and ends it, recording a thrown error. */
export function span<T>(name: string, fn: (span: Span) => T): T;
export function span<T>(name: string, options: SpanOptions | undefined, fn: (span: Span) => T): T;
export function span<T>(name: string, a: SpanOptions | undefined | ((span: Span) => T), b?: (span: Span) => T): T {
  if (current !== undefined) return current.span(name, a as SpanOptions | undefined, (b ?? a) as (span: Span) => T);
  const fn = typeof a === 'function' ? a : b;
  if (typeof fn !== 'function') throw new TypeError('polytel.span(name, options?, fn) needs a function to run.');
  return fn(startSpan(name, typeof a === 'function' ? undefined : a));
}

/** The current span, if any. */
export function currentSpan(): Span | undefined {
  const v = platform?.contextManager.active();
  return v instanceof Span ? v : undefined;
}

/** Runs `fn` with `span` (or an extracted remote context) as the current span. */
export function withSpan<T>(span: Span | SpanContext | undefined, fn: () => T): T {
  return thePlatform().contextManager.with(span, fn);
}

// -- GenAI operations ----------------------------------------------------------

/** An operation that records nothing (before configure), carrying its parent's context. */
function noopOperation(options: OperationOptions | undefined): Operation {
  const parent = options?.parent ? contextOf(options.parent) : undefined;
  return new Operation(null, parent ?? NOOP_CONTEXT, false, new GenAIFields('', '', undefined));
}

/** Starts an LLM call (operation "chat" unless `options.operation` says otherwise); not made current. */
export function startLlmCall(provider: string, model: string, options?: LlmCallOptions): Operation {
  return current !== undefined ? current.startLlmCall(provider, model, options) : noopOperation(options);
}

/** Starts an agent run; not made current. */
export function startAgent(name: string, options?: OperationOptions): Operation {
  return current !== undefined ? current.startAgent(name, options) : noopOperation(options);
}

/** Starts a tool call; not made current. */
export function startTool(name: string, options?: OperationOptions): Operation {
  return current !== undefined ? current.startTool(name, options) : noopOperation(options);
}

/** Starts a workflow run; not made current. */
export function startWorkflow(name: string, options?: OperationOptions): Operation {
  return current !== undefined ? current.startWorkflow(name, options) : noopOperation(options);
}

/** Starts a memory operation ("search_memory", …) on a store; not made current. */
export function startMemory(operation: string, store: string, options?: OperationOptions): Operation {
  return current !== undefined ? current.startMemory(operation, store, options) : noopOperation(options);
}

/** Runs `fn` without a pipeline: with an operation that records nothing. */
function unconfigured<O extends OperationOptions, T>(
  usage: string,
  a: O | undefined | ((op: Operation) => T),
  b: ((op: Operation) => T) | undefined,
): T {
  const fn = typeof a === 'function' ? a : b;
  if (typeof fn !== 'function') throw new TypeError(`polytel.${usage} needs a function to run.`);
  return fn(noopOperation(typeof a === 'function' ? undefined : a));
}

/**
 * Runs `fn` (sync or async) inside an LLM call and ends it when `fn` returns
 * or its promise settles, recording a thrown error: `llmCall('openai',
 * 'gpt-4o', async (call) => { …; call.recordUsage({ inputTokens, outputTokens }) })`.
 */
export function llmCall<T>(provider: string, model: string, fn: (call: Operation) => T): T;
export function llmCall<T>(provider: string, model: string, options: LlmCallOptions | undefined, fn: (call: Operation) => T): T;
export function llmCall<T>(
  provider: string,
  model: string,
  a: LlmCallOptions | undefined | ((call: Operation) => T),
  b?: (call: Operation) => T,
): T {
  if (current !== undefined) return current.llmCall(provider, model, a as LlmCallOptions | undefined, (b ?? a) as (call: Operation) => T);
  return unconfigured('llmCall(provider, model, options?, fn)', a, b);
}

/** Runs `fn` inside an agent run: GenAI operations inside it carry the agent's name. */
export function agent<T>(name: string, fn: (agent: Operation) => T): T;
export function agent<T>(name: string, options: OperationOptions | undefined, fn: (agent: Operation) => T): T;
export function agent<T>(name: string, a: OperationOptions | undefined | ((agent: Operation) => T), b?: (agent: Operation) => T): T {
  if (current !== undefined) return current.agent(name, a as OperationOptions | undefined, (b ?? a) as (agent: Operation) => T);
  return unconfigured('agent(name, options?, fn)', a, b);
}

/** Runs `fn` inside a tool call. */
export function tool<T>(name: string, fn: (tool: Operation) => T): T;
export function tool<T>(name: string, options: OperationOptions | undefined, fn: (tool: Operation) => T): T;
export function tool<T>(name: string, a: OperationOptions | undefined | ((tool: Operation) => T), b?: (tool: Operation) => T): T {
  if (current !== undefined) return current.tool(name, a as OperationOptions | undefined, (b ?? a) as (tool: Operation) => T);
  return unconfigured('tool(name, options?, fn)', a, b);
}

/** Runs `fn` inside a workflow run. */
export function workflow<T>(name: string, fn: (workflow: Operation) => T): T;
export function workflow<T>(name: string, options: OperationOptions | undefined, fn: (workflow: Operation) => T): T;
export function workflow<T>(
  name: string,
  a: OperationOptions | undefined | ((workflow: Operation) => T),
  b?: (workflow: Operation) => T,
): T {
  if (current !== undefined) return current.workflow(name, a as OperationOptions | undefined, (b ?? a) as (workflow: Operation) => T);
  return unconfigured('workflow(name, options?, fn)', a, b);
}

/** Runs `fn` inside a memory operation on a store. */
export function memory<T>(operation: string, store: string, fn: (memory: Operation) => T): T;
export function memory<T>(operation: string, store: string, options: OperationOptions | undefined, fn: (memory: Operation) => T): T;
export function memory<T>(
  operation: string,
  store: string,
  a: OperationOptions | undefined | ((memory: Operation) => T),
  b?: (memory: Operation) => T,
): T {
  if (current !== undefined) {
    return current.memory(operation, store, a as OperationOptions | undefined, (b ?? a) as (memory: Operation) => T);
  }
  return unconfigured('memory(operation, store, options?, fn)', a, b);
}

// -- metrics -----------------------------------------------------------------

type Sync = Counter & UpDownCounter & Histogram & Gauge;
type SyncKind = 'counter' | 'upDownCounter' | 'histogram' | 'gauge';

/** An instrument made from the module-level API: it binds to the current pipeline when used. */
class GlobalInstrument implements Counter, UpDownCounter, Histogram, Gauge {
  private bound: Sync | undefined;
  private boundGeneration = -1;
  constructor(
    private readonly kind: SyncKind,
    private readonly name: string,
    private readonly options: HistogramOptions | undefined,
  ) {}

  private target(): Sync | undefined {
    if (this.boundGeneration !== generation) {
      this.boundGeneration = generation;
      this.bound = current === undefined ? undefined : (current[this.kind](this.name, this.options) as Sync);
    }
    return this.bound;
  }

  add(value: number, attributes?: Attributes): void {
    this.target()?.add(value, attributes);
  }

  record(value: number, attributes?: Attributes): void {
    this.target()?.record(value, attributes);
  }
}

export function counter(name: string, options?: InstrumentOptions): Counter {
  return new GlobalInstrument('counter', name, options);
}
export function upDownCounter(name: string, options?: InstrumentOptions): UpDownCounter {
  return new GlobalInstrument('upDownCounter', name, options);
}
export function histogram(name: string, options?: HistogramOptions): Histogram {
  return new GlobalInstrument('histogram', name, options);
}
export function gauge(name: string, options?: InstrumentOptions): Gauge {
  return new GlobalInstrument('gauge', name, options);
}

type ObservableKind = 'observableCounter' | 'observableUpDownCounter' | 'observableGauge';

/** An observable instrument of the module-level API: registered with every pipeline configure makes. */
class GlobalObservable implements ObservableInstrument {
  private handle: ObservableInstrument | undefined;
  constructor(
    private readonly kind: ObservableKind,
    private readonly name: string,
    private readonly options: InstrumentOptions | undefined,
    private readonly callback: ObserveCallback,
  ) {}

  bind(t: Telemetry): void {
    this.handle = t[this.kind](this.name, this.options, this.callback);
  }

  unregister(): void {
    observables.delete(this);
    this.handle?.unregister();
  }
}

const observables = new Set<GlobalObservable>();

function observable(
  kind: ObservableKind,
  name: string,
  a: InstrumentOptions | undefined | ObserveCallback,
  b: ObserveCallback | undefined,
): ObservableInstrument {
  const callback = typeof a === 'function' ? a : b;
  if (typeof callback !== 'function') throw new TypeError(`polytel: an observable instrument (${name}) needs a callback.`);
  const o = new GlobalObservable(kind, name, typeof a === 'function' ? undefined : a, callback);
  observables.add(o);
  if (current !== undefined) o.bind(current);
  return o;
}

export function observableCounter(name: string, callback: ObserveCallback): ObservableInstrument;
export function observableCounter(name: string, options: InstrumentOptions | undefined, callback: ObserveCallback): ObservableInstrument;
export function observableCounter(name: string, a: InstrumentOptions | undefined | ObserveCallback, b?: ObserveCallback): ObservableInstrument {
  return observable('observableCounter', name, a, b);
}
export function observableUpDownCounter(name: string, callback: ObserveCallback): ObservableInstrument;
export function observableUpDownCounter(
  name: string,
  options: InstrumentOptions | undefined,
  callback: ObserveCallback,
): ObservableInstrument;
export function observableUpDownCounter(
  name: string,
  a: InstrumentOptions | undefined | ObserveCallback,
  b?: ObserveCallback,
): ObservableInstrument {
  return observable('observableUpDownCounter', name, a, b);
}
export function observableGauge(name: string, callback: ObserveCallback): ObservableInstrument;
export function observableGauge(name: string, options: InstrumentOptions | undefined, callback: ObserveCallback): ObservableInstrument;
export function observableGauge(name: string, a: InstrumentOptions | undefined | ObserveCallback, b?: ObserveCallback): ObservableInstrument {
  return observable('observableGauge', name, a, b);
}

// -- logs, propagation, lifecycle ----------------------------------------------

/** Emits a log record; inside a span it carries the span's trace and span ids. */
export function log(level: Level, message: AttributeValue, attributes?: Attributes, options?: LogOptions): void {
  current?.log(level, message, attributes, options);
}

/** Writes the headers that carry the current span (or `context`) downstream into `headers`. */
export function inject(headers?: undefined, context?: Span | SpanContext): Record<string, string>;
export function inject<H extends HeaderCarrier>(headers: H, context?: Span | SpanContext): H;
export function inject<H extends HeaderCarrier>(headers?: H, context?: Span | SpanContext): H {
  if (current !== undefined) return current.inject(headers as H, context);
  return (headers ?? {}) as H;
}

/** Reads W3C trace context and baggage from incoming headers: the remote parent, if any. */
export function extract(headers: HeaderCarrier): SpanContext | undefined {
  return current?.extract(headers);
}

/** Exports everything recorded so far; resolves to whether that finished in time. */
export function forceFlush(options?: FlushOptions): Promise<boolean> {
  return current?.forceFlush(options) ?? Promise.resolve(true);
}

/** Flushes, then stops exporting; what could not be delivered by the deadline is dropped and counted. */
export function shutdown(options?: FlushOptions): Promise<ShutdownReport> {
  return current?.shutdown(options) ?? Promise.resolve({ abandoned: 0, flushed: true });
}

/**
 * The core's counters (sent, dropped by reason, retried, queue depth) and the
 * host's; under "operations", the summary of the GenAI operations ended so far.
 */
export function stats(): ReturnType<Telemetry['stats']> | undefined {
  return current?.stats();
}

/** Where each signal goes (credentials masked). */
export function describe(): Record<string, unknown> | undefined {
  return current?.describe();
}
