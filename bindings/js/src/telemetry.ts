// One configured pipeline. The application's code only appends finished
// spans, measurements and log records (batch JSON, see wit/polytel.wit) to a
// buffer; a timer-driven worker ships the buffer to the core in one call per
// batch, asks the core which exports are due, sends them with fetch, and
// reports each outcome back. The core decides everything else.

import { Core, CoreTrapped, DEFAULT_MEMORY_LIMIT, INSPECT } from './component.js';
import type { Export, Outcome, PollResult } from './component.js';
import { GenAIFields } from './genai.js';
import type { LlmCallOptions, OperationOptions, OperationStats, Usage } from './genai.js';
import { RootSampler, SplitMix64, isValidId } from './ids.js';
import type { Platform } from './platform.js';
import { attributeMembers, keyJson, number, str, valueJson } from './values.js';
import type { AttributeValue, Attributes } from './values.js';

// ---------------------------------------------------------------------------
// Public types

/** OTLP span kinds by name. */
export type SpanKind = 'internal' | 'server' | 'client' | 'producer' | 'consumer';

const KINDS: Record<SpanKind, number> = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 };

/** The identity of a span, local or received from upstream. */
export interface SpanContext {
  /** 32 lower-case hex digits. */
  readonly traceId: string;
  /** 16 lower-case hex digits. */
  readonly spanId: string;
  readonly sampled: boolean;
  /** Received from another process (extract). */
  readonly remote: boolean;
  /** W3C tracestate, "" for none. */
  readonly traceState: string;
  /** W3C baggage members, carried to children and injected downstream. */
  readonly baggage?: ReadonlyArray<readonly [string, string]>;
}

/** An instrumentation scope: the library that records. */
export interface Scope {
  readonly name: string;
  readonly version?: string;
}

export interface Link {
  readonly context: SpanContext | Span;
  readonly attributes?: Attributes;
}

export interface SpanOptions {
  /** Default "internal". */
  readonly kind?: SpanKind;
  readonly attributes?: Attributes;
  readonly links?: readonly Link[];
  /** The parent; default the current span. `null` starts a new trace. */
  readonly parent?: Span | SpanContext | null;
  readonly scope?: Scope;
}

export type StatusCode = 'unset' | 'ok' | 'error';

export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

export interface LogOptions {
  /** Makes the record an event with this name. */
  readonly eventName?: string;
  /** The span the record belongs to; default the current span. `null`: none. */
  readonly span?: Span | SpanContext | null;
  readonly scope?: Scope;
}

export interface InstrumentOptions {
  /** A UCUM unit: "s", "By", "{token}". */
  readonly unit?: string;
  readonly description?: string;
  readonly scope?: Scope;
}

export interface HistogramOptions extends InstrumentOptions {
  /** Explicit bucket upper bounds, strictly increasing; default the specification's. */
  readonly boundaries?: readonly number[];
  /** Base-2 exponential buckets instead of explicit ones. */
  readonly exponential?: boolean;
}

/** What an observable instrument's callback reports into. */
export interface Observer {
  observe(value: number, attributes?: Attributes): void;
}

export type ObserveCallback = (observer: Observer) => void | Promise<void>;

export interface Counter {
  /** Adds a non-negative increment; inside a span the measurement may become an exemplar. */
  add(increment: number, attributes?: Attributes): void;
}
export interface UpDownCounter {
  add(delta: number, attributes?: Attributes): void;
}
export interface Histogram {
  /** Records a value; inside a span it may become an exemplar. */
  record(value: number, attributes?: Attributes): void;
}
export interface Gauge {
  record(value: number, attributes?: Attributes): void;
}
export interface ObservableInstrument {
  /** Stops calling the callback; the instrument's series end with the next collection. */
  unregister(): void;
}

export interface FlushOptions {
  /** Default 10 000. */
  readonly timeoutMs?: number;
}

export interface ShutdownReport {
  /** Items still queued or pending at the deadline, now dropped. */
  readonly abandoned: number;
  /** Whether the final flush finished before the deadline. */
  readonly flushed: boolean;
}

/** Carries headers: a plain object (as Node's request.headers) or a fetch `Headers`. */
export type HeaderCarrier =
  | { [name: string]: string | readonly string[] | undefined }
  | { get(name: string): string | null; set(name: string, value: string): void; forEach(cb: (value: string, key: string) => void): void };

/** What the core told the host to apply on its hot path (`plan` in the WIT). */
interface Plan {
  disabled: boolean;
  sampler: { parent_based: boolean; root_bound: string };
  max_batch: number;
  max_queue: number;
  traces: boolean;
  metrics: boolean;
  logs: boolean;
  prometheus: string | null;
  /** Whether GenAI content (an operation's input and output) is kept. */
  genai_capture?: boolean;
}

/** Host-side settings, not sent to the core. */
export interface HostSettings {
  /** The environment the core reads instead of the process's (Node) or none (browsers). */
  env?: Record<string, string | undefined>;
  /** Seeds ids and retry jitter (a u64); default random. */
  seed?: string | bigint | number;
  /**
   * The timestamp source, unix nanoseconds. `reading` is "event" for a
   * span, event, log or measurement time, "poll" for the times the export
   * worker polls the core with. Default: the system clock.
   */
  clock?: (reading: 'event' | 'poll') => bigint | string;
  /** The facts resource detection reads, instead of this machine's (tests pass fixed ones). */
  hostFacts?: Record<string, unknown>;
  /** Bytes the core's memory may grow to before it is restarted (lost items counted); default 512 MiB. */
  memoryLimit?: number;
  /** Node: flush and shut down on beforeExit and SIGTERM/SIGINT (default true). */
  exitHooks?: boolean;
}

// ---------------------------------------------------------------------------
// Internals

const TRACES = 0;
const METRICS = 1;
const LOGS = 2;

const SEVERITIES: Record<Level, [number, string]> = {
  trace: [1, 'TRACE'],
  debug: [5, 'DEBUG'],
  info: [9, 'INFO'],
  warn: [13, 'WARN'],
  error: [17, 'ERROR'],
  fatal: [21, 'FATAL'],
};

const U32_MAX = 0xffffffff;
/** The core may be told a response body up to this long. */
const MAX_RESPONSE_BODY = 64 * 1024;

const INVALID: SpanContext = Object.freeze({
  traceId: '00000000000000000000000000000000',
  spanId: '0000000000000000',
  sampled: false,
  remote: false,
  traceState: '',
});

function isValid(ctx: SpanContext): boolean {
  return isValidId(ctx.traceId, 32) && isValidId(ctx.spanId, 16);
}

/** The span context of a span or context value, if it is one. */
export function contextOf(value: unknown): SpanContext | undefined {
  if (value instanceof Span) return value.context;
  if (value !== null && typeof value === 'object' && typeof (value as SpanContext).traceId === 'string') {
    return value as SpanContext;
  }
  return undefined;
}

function scopeJson(scope: Scope): string {
  return ',"scope":{"name":' + str(String(scope.name)) + ',"version":' + str(String(scope.version ?? '')) + '}';
}

const originUs = Math.round(performance.timeOrigin * 1000);
const ORIGIN_HIGH = Math.floor(originUs / 1e9);
const ORIGIN_LOW = originUs % 1e9;

/**
 * Unix nanoseconds as decimal digits, from the monotonic clock: microseconds
 * (exact in a double), written as two small integers, which V8 turns into
 * text faster than one large one, and "000".
 */
function systemClock(): string {
  let low = ORIGIN_LOW + Math.round(performance.now() * 1000);
  let high = ORIGIN_HIGH;
  if (low >= 1e9) {
    high += Math.floor(low / 1e9);
    low %= 1e9;
  }
  return high + String(1e9 + low).slice(1) + '000';
}

function errorFields(error: unknown): [string, string, string] {
  if (error !== null && typeof error === 'object') {
    const e = error as { name?: unknown; message?: unknown; stack?: unknown; constructor?: { name?: unknown } };
    let type = typeof e.name === 'string' && e.name ? e.name : '';
    const ctor = typeof e.constructor?.name === 'string' ? e.constructor.name : '';
    if ((type === '' || type === 'Error') && ctor && ctor !== 'Object') type = ctor;
    return [type || 'Error', typeof e.message === 'string' ? e.message : String(error), typeof e.stack === 'string' ? e.stack : ''];
  }
  return [typeof error === 'string' ? 'Error' : typeof error, String(error), ''];
}

/**
 * A record built by concatenation is a tree of string pieces until V8
 * flattens it; reading a character flattens it now, so the buffer holds one
 * string per record instead of a tree the garbage collector must walk (three
 * times cheaper per span, measured in bench/js).
 */
function flat(s: string): string {
  s.charCodeAt(0);
  return s;
}

/** The options and function of `llmCall(…, options?, fn)` and the like. */
function operationArgs<O extends OperationOptions, T>(
  usage: string,
  a: O | undefined | ((op: Operation) => T),
  b: ((op: Operation) => T) | undefined,
): [O | undefined, (op: Operation) => T] {
  const fn = typeof a === 'function' ? a : b;
  if (typeof fn !== 'function') throw new TypeError(`polytel.${usage} needs a function to run.`);
  return [typeof a === 'function' ? undefined : a, fn];
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as PromiseLike<unknown>).then === 'function';
}

// ---------------------------------------------------------------------------
// Spans

/** A started span. It ends with `end()`; `span(name, fn)` ends it for you. */
export class Span {
  /** @internal */ readonly _t: Telemetry | null;
  readonly context: SpanContext;
  /** @internal */ _recording: boolean;
  /** @internal */ _name = '';
  /** @internal */ _kind = 1;
  /** @internal */ _parent: SpanContext | undefined = undefined;
  /** @internal */ _start = '';
  /** Members of the attributes object, without braces. @internal */ _attrs = '';
  /** Elements of the events array, without brackets. @internal */ _events = '';
  /** Elements of the links array, without brackets. @internal */ _links = '';
  /** @internal */ _status = 0;
  /** @internal */ _statusMessage = '';
  /** @internal */ _scope: Scope | undefined = undefined;
  /** The name of the agent operation this span runs in, for the GenAI operations inside it. @internal */
  _agent: string | undefined = undefined;

  /** @internal */
  constructor(t: Telemetry | null, context: SpanContext, recording: boolean) {
    this._t = t;
    this.context = context;
    this._recording = recording;
  }

  /** Whether the span records (sampled, telemetry enabled, not ended). */
  isRecording(): boolean {
    return this._recording;
  }

  /** Sets an attribute; a later value for the same key replaces an earlier one. */
  setAttribute(key: string, value: AttributeValue): this {
    if (this._recording) {
      this._attrs += (this._attrs.length > 0 ? ',' : '') + keyJson(key) + ':' + valueJson(value);
    }
    return this;
  }

  setAttributes(attributes: Attributes): this {
    if (this._recording) {
      const members = attributeMembers(attributes);
      if (members.length > 0) this._attrs += (this._attrs.length > 0 ? ',' : '') + members;
    }
    return this;
  }

  addEvent(name: string, attributes?: Attributes): this {
    if (this._recording) {
      let e = '{"time":' + this._t!._now() + ',"name":' + str(name);
      const members = attributeMembers(attributes);
      if (members.length > 0) e += ',"attributes":{' + members + '}';
      this._events += (this._events.length > 0 ? ',' : '') + e + '}';
    }
    return this;
  }

  /** Records an exception event (type, message and stack trace of an Error). */
  recordException(error: unknown): this {
    if (this._recording) {
      const [type, message, stack] = errorFields(error);
      let e = '{"time":' + this._t!._now() + ',"exception":{"type":' + str(type) + ',"message":' + str(message);
      if (stack.length > 0) e += ',"stacktrace":' + str(stack);
      this._events += (this._events.length > 0 ? ',' : '') + e + '}}';
    }
    return this;
  }

  /** "ok" is final; "unset" never replaces anything. */
  setStatus(code: StatusCode, message?: string): this {
    if (this._recording && this._status !== 1) {
      if (code === 'ok') {
        this._status = 1;
        this._statusMessage = '';
      } else if (code === 'error') {
        this._status = 2;
        this._statusMessage = message ?? '';
      }
    }
    return this;
  }

  /** Ends the span; later calls do nothing. */
  end(): void {
    if (!this._recording) return;
    this._recording = false;
    const t = this._t!;
    const c = this.context;
    let r = '{"trace_id":"' + c.traceId + '","span_id":"' + c.spanId + '"';
    const p = this._parent;
    if (p !== undefined) {
      r += ',"parent_span_id":"' + p.spanId + '"';
      if (p.remote) r += ',"parent_remote":true';
    }
    if (c.traceState.length > 0) r += ',"trace_state":' + str(c.traceState);
    r += ',"name":' + str(this._name) + ',"kind":' + this._kind + ',"start":' + this._start + ',"end":' + t._now();
    if (this._attrs.length > 0) r += ',"attributes":{' + this._attrs + '}';
    if (this._events.length > 0) r += ',"events":[' + this._events + ']';
    if (this._links.length > 0) r += ',"links":[' + this._links + ']';
    if (this._status === 1) r += ',"status":{"code":1}';
    else if (this._status === 2) r += ',"status":{"code":2,"message":' + str(this._statusMessage) + '}';
    if (this._scope !== undefined) r += scopeJson(this._scope);
    t._enqueue(TRACES, flat(r + this._more() + '}'));
  }

  /** Members an operation adds to the record. @internal */
  _more(): string {
    return '';
  }
}

/**
 * A GenAI operation (an LLM call, agent run, tool call, workflow run or
 * memory operation): a span that also keeps token usage, the response model,
 * a cost and, with content capture on, its input and output. The core names
 * it and writes the semantic conventions' attributes, metrics and stats.
 * Unlike other spans it is recorded even when not sampled (the core counts
 * every operation and exports only sampled ones).
 */
export class Operation extends Span {
  /** @internal */ readonly _genai: GenAIFields;

  /** @internal */
  constructor(t: Telemetry | null, context: SpanContext, recording: boolean, genai: GenAIFields) {
    super(t, context, recording);
    this._genai = genai;
  }

  /** Adds token counts to the operation's totals (counters never given are not sent). */
  recordUsage(usage: Usage): this {
    if (this._recording) this._genai.addUsage(usage);
    return this;
  }

  /** The model that answered (it may differ from the one requested). */
  setResponseModel(model: string): this {
    if (this._recording) this._genai.responseModel = String(model);
    return this;
  }

  /** A cost in US dollars the app knows, instead of the core's price table. */
  recordCost(usd: number): this {
    if (this._recording) this._genai.setCost(usd);
    return this;
  }

  /** The prompt, a tool's arguments, a memory query: kept only when content capture is on. */
  recordInput(value: AttributeValue): this {
    if (this._recording && this._t!._plan.genai_capture === true) this._genai.capture('input', value);
    return this;
  }

  /** The response, a tool's result, memory records: kept only when content capture is on. */
  recordOutput(value: AttributeValue): this {
    if (this._recording && this._t!._plan.genai_capture === true) this._genai.capture('output', value);
    return this;
  }

  /** @internal */
  override _more(): string {
    const sampled = this.context.sampled && this._t!._plan.traces;
    return (sampled ? '' : ',"sampled":false') + this._genai.json();
  }
}

// ---------------------------------------------------------------------------
// Metrics

class Instrument implements Counter, UpDownCounter, Histogram, Gauge {
  private readonly t: Telemetry;
  private readonly id: number;
  /** Counters and histograms take the current span for exemplars. */
  private readonly exemplars: boolean;

  constructor(t: Telemetry, id: number, exemplars: boolean) {
    this.t = t;
    this.id = id;
    this.exemplars = exemplars;
  }

  add(value: number, attributes?: Attributes): void {
    this.measure(value, attributes);
  }

  record(value: number, attributes?: Attributes): void {
    this.measure(value, attributes);
  }

  private measure(value: number, attributes: Attributes | undefined): void {
    const t = this.t;
    if (!t._plan.metrics) return;
    let r = '{"instrument":' + this.id + ',"value":' + number(+value);
    if (attributes !== undefined) {
      const members = attributeMembers(attributes);
      if (members.length > 0) r += ',"attributes":{' + members + '}';
    }
    if (this.exemplars) {
      const ctx = contextOf(t._context.active());
      // The time is only worth a clock reading when the measurement can become an exemplar.
      if (ctx !== undefined && isValid(ctx)) {
        r += ',"time":' + t._now() + ',"trace_id":"' + ctx.traceId + '","span_id":"' + ctx.spanId + '","sampled":' + ctx.sampled;
      }
    }
    t._enqueue(METRICS, flat(r + '}'));
  }
}

class ObservableHandle implements ObservableInstrument {
  private readonly t: Telemetry;
  private readonly id: number;
  constructor(t: Telemetry, id: number) {
    this.t = t;
    this.id = id;
  }
  unregister(): void {
    this.t._observers.delete(this.id);
  }
}

function instrumentJson(name: string, kind: string, o: HistogramOptions | undefined): string {
  let j = '{"name":' + str(String(name)) + ',"kind":"' + kind + '","unit":' + str(String(o?.unit ?? ''));
  j += ',"description":' + str(String(o?.description ?? ''));
  if (o?.boundaries !== undefined) j += ',"boundaries":[' + Array.from(o.boundaries, (b) => number(+b)).join(',') + ']';
  if (o?.exponential) j += ',"aggregation":"exponential"';
  if (o?.scope !== undefined) j += scopeJson(o.scope);
  return j + '}';
}

// ---------------------------------------------------------------------------
// The pipeline

/** One configured telemetry pipeline: `configure()` makes the process's, `create()` more. */
export class Telemetry {
  /** @internal */ readonly _plan: Plan;
  /** @internal */ readonly _observers = new Map<number, ObserveCallback>();
  /** @internal */ readonly _platform: Platform;
  /** @internal */ readonly _exitHooks: boolean;
  /** @internal Set by the platform while it serves Prometheus scrapes. */ _prometheusAddress: (() => string | undefined) | undefined;
  private readonly core: Core;
  private readonly ids: SplitMix64;
  private readonly sampler: RootSampler;
  private readonly eventClock: () => string;
  private readonly pollClock: () => string;
  private readonly maxBatch: number;
  private readonly maxQueue: number;
  private readonly buffers: [string[], string[], string[]] = [[], [], []];
  private readonly bufferDropped: [number, number, number] = [0, 0, 0];
  // The export worker.
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private wakeQueued = false;
  private flushAsked = 0;
  private flushDone = 0;
  private flushWaiters: Array<{ ticket: number; resolve: () => void }> = [];
  /** The flush being worked on: done once the core holds nothing more to send. */
  private flushing: number | undefined;
  private stopped = false;
  private shutdownPromise: Promise<ShutdownReport> | undefined;
  private readonly inflight = new Set<AbortController>();
  private nextPollAt = 0;

  /** @internal Use `configure()` or `create()`. */
  constructor(coreOptions: Record<string, unknown>, host: HostSettings, platform: Platform) {
    this._platform = platform;
    this._exitHooks = host.exitHooks !== false;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(host.env ?? platform.env())) if (typeof v === 'string') env[k] = v;
    const seed = host.seed !== undefined ? BigInt.asUintN(64, BigInt(host.seed)).toString() : randomSeed();
    const configFile = [coreOptions['config_file'], env['POLYTEL_CONFIG']].find(
      (p): p is string => typeof p === 'string' && p.trim() !== '',
    );
    const file = configFile === undefined ? undefined : { path: configFile, text: platform.readConfigFile(configFile) };
    // The host's language and abilities; the facts may be replaced (tests pass fixed ones).
    const facts = { sdk_language: platform.sdkLanguage, ...(host.hostFacts ?? platform.facts()), grpc: false };
    const configJson = JSON.stringify({ options: coreOptions, env, seed, host: facts, ...(file ? { file } : {}) });
    this.core = new Core(configJson, host.memoryLimit ?? DEFAULT_MEMORY_LIMIT, (text) => platform.warn(text));
    this._plan = JSON.parse(this.core.call(0, (p) => p.plan())) as Plan;
    this.ids = new SplitMix64(seed);
    this.sampler = new RootSampler(this._plan.sampler.root_bound);
    this.maxBatch = Math.max(1, this._plan.max_batch);
    this.maxQueue = Math.max(1, this._plan.max_queue);
    const clock = host.clock;
    this.eventClock = clock ? () => String(clock('event')) : systemClock;
    this.pollClock = clock ? () => String(clock('poll')) : systemClock;
    if (!this._plan.disabled) {
      // The first poll is due at once.
      this.schedule(0);
      platform.started?.(this);
    }
  }

  /** @internal Where the current span lives (setContextManager may replace it at any time). */
  get _context(): Platform['contextManager'] {
    return this._platform.contextManager;
  }

  /** @internal Unix nanoseconds, as decimal digits. */
  _now(): string {
    return this.eventClock();
  }

  // -- spans ---------------------------------------------------------------

  /** Starts a span; it is not made current (see `span` and `withSpan`). */
  startSpan(name: string, options?: SpanOptions): Span {
    return this.start(name, options, undefined);
  }

  /** A span, or with `genai` a GenAI operation. */
  private start(name: string, options: SpanOptions | undefined, genai: GenAIFields | undefined): Span {
    const plan = this._plan;
    const given = options?.parent !== undefined ? options.parent : this._context.active();
    let parent = given === null ? undefined : contextOf(given);
    if (plan.disabled) {
      // A no-op, like the OpenTelemetry API without an SDK: no ids drawn, no
      // clock read; it carries its parent's context, so propagation still works.
      return genai === undefined ? new Span(null, parent ?? INVALID, false) : new Operation(null, parent ?? INVALID, false, genai);
    }
    if (parent !== undefined && !isValid(parent)) parent = undefined;
    const ids = this.ids;
    let traceId: string;
    let sampled: boolean;
    let spanId: string;
    if (parent === undefined) {
      traceId = ids.traceId();
      const hi = ids.outHi;
      const lo = ids.outLo;
      spanId = ids.spanId();
      sampled = this.sampler.samples(hi, lo);
    } else {
      traceId = parent.traceId;
      spanId = ids.spanId();
      sampled = plan.sampler.parent_based ? parent.sampled : this.sampler.samplesHex(traceId);
    }
    const context: SpanContext =
      parent === undefined
        ? { traceId, spanId, sampled, remote: false, traceState: '' }
        : parent.baggage === undefined
          ? { traceId, spanId, sampled, remote: false, traceState: parent.traceState }
          : { traceId, spanId, sampled, remote: false, traceState: parent.traceState, baggage: parent.baggage };
    // With traces going nowhere, spans still carry context but record
    // nothing; GenAI operations are recorded regardless (the core derives
    // metrics and stats from all of them).
    const recording = genai !== undefined || (sampled && plan.traces);
    const span = genai === undefined ? new Span(this, context, recording) : new Operation(this, context, recording, genai);
    // The agent a parent span runs in reaches its children; an agent
    // operation is the agent its children run in.
    const agent = given instanceof Span ? given._agent : undefined;
    if (genai === undefined) span._agent = agent;
    else {
      genai.agent = agent;
      span._agent = genai.operation === 'invoke_agent' ? genai.name : agent;
      // The core names and kinds operations the application did not.
      span._kind = 0;
    }
    if (recording) {
      if (genai === undefined) span._name = String(name);
      span._parent = parent;
      span._start = this.eventClock();
      if (options !== undefined) {
        if (options.kind !== undefined) span._kind = KINDS[options.kind] ?? 1;
        if (options.attributes !== undefined) span._attrs = attributeMembers(options.attributes);
        if (options.links !== undefined) {
          let links = '';
          for (const l of options.links) {
            const to = contextOf(l.context);
            if (to === undefined) continue;
            let j = '{"trace_id":' + str(to.traceId) + ',"span_id":' + str(to.spanId);
            const members = attributeMembers(l.attributes);
            if (members.length > 0) j += ',"attributes":{' + members + '}';
            links += (links.length > 0 ? ',' : '') + j + '}';
          }
          span._links = links;
        }
        if (options.scope !== undefined) span._scope = options.scope;
      }
    }
    return span;
  }

  /**
   * Runs `fn` inside a new span and ends it when `fn` returns or its promise
   * settles; a thrown error is recorded as an exception and an error status.
   */
  span<T>(name: string, fn: (span: Span) => T): T;
  span<T>(name: string, options: SpanOptions | undefined, fn: (span: Span) => T): T;
  span<T>(name: string, a: SpanOptions | undefined | ((span: Span) => T), b?: (span: Span) => T): T {
    const fn = typeof a === 'function' ? a : b;
    if (typeof fn !== 'function') throw new TypeError('polytel.span(name, options?, fn) needs a function to run.');
    return this.run(this.startSpan(name, typeof a === 'function' ? undefined : a), fn);
  }

  /** Runs `fn` with `s` current and ends `s` when it returns or its promise settles, recording an error. */
  private run<S extends Span, T>(s: S, fn: (span: S) => T): T {
    const failed = (e: unknown): void => {
      s.recordException(e);
      s.setStatus('error', errorFields(e)[1]);
      s.end();
    };
    let result: T;
    try {
      result = this._context.with(s, () => fn(s));
    } catch (e) {
      failed(e);
      throw e;
    }
    if (isThenable(result)) {
      return result.then(
        (v) => {
          s.end();
          return v;
        },
        (e: unknown) => {
          failed(e);
          throw e;
        },
      ) as T;
    }
    s.end();
    return result;
  }

  // -- GenAI operations ----------------------------------------------------

  /** Starts an LLM call (operation "chat" unless `options.operation` says otherwise); not made current. */
  startLlmCall(provider: string, model: string, options?: LlmCallOptions): Operation {
    return this.start('', options, new GenAIFields(options?.operation ?? 'chat', model, provider)) as Operation;
  }

  /** Starts an agent run (invoke_agent); not made current. */
  startAgent(name: string, options?: OperationOptions): Operation {
    return this.start('', options, new GenAIFields('invoke_agent', name, undefined)) as Operation;
  }

  /** Starts a tool call (execute_tool); not made current. */
  startTool(name: string, options?: OperationOptions): Operation {
    return this.start('', options, new GenAIFields('execute_tool', name, undefined)) as Operation;
  }

  /** Starts a workflow run (invoke_workflow); not made current. */
  startWorkflow(name: string, options?: OperationOptions): Operation {
    return this.start('', options, new GenAIFields('invoke_workflow', name, undefined)) as Operation;
  }

  /** Starts a memory operation ("search_memory", "update_memory", …) on a store; not made current. */
  startMemory(operation: string, store: string, options?: OperationOptions): Operation {
    return this.start('', options, new GenAIFields(operation, store, undefined)) as Operation;
  }

  /**
   * Runs `fn` (sync or async) inside an LLM call and ends it when `fn`
   * returns or its promise settles; a thrown error or rejection is recorded
   * as an exception and an error status.
   */
  llmCall<T>(provider: string, model: string, fn: (call: Operation) => T): T;
  llmCall<T>(provider: string, model: string, options: LlmCallOptions | undefined, fn: (call: Operation) => T): T;
  llmCall<T>(provider: string, model: string, a: LlmCallOptions | undefined | ((call: Operation) => T), b?: (call: Operation) => T): T {
    const [options, fn] = operationArgs<LlmCallOptions, T>('llmCall(provider, model, options?, fn)', a, b);
    return this.run(this.startLlmCall(provider, model, options), fn);
  }

  /** Runs `fn` inside an agent run: GenAI operations inside it carry the agent's name. */
  agent<T>(name: string, fn: (agent: Operation) => T): T;
  agent<T>(name: string, options: OperationOptions | undefined, fn: (agent: Operation) => T): T;
  agent<T>(name: string, a: OperationOptions | undefined | ((agent: Operation) => T), b?: (agent: Operation) => T): T {
    const [options, fn] = operationArgs<OperationOptions, T>('agent(name, options?, fn)', a, b);
    return this.run(this.startAgent(name, options), fn);
  }

  /** Runs `fn` inside a tool call. */
  tool<T>(name: string, fn: (tool: Operation) => T): T;
  tool<T>(name: string, options: OperationOptions | undefined, fn: (tool: Operation) => T): T;
  tool<T>(name: string, a: OperationOptions | undefined | ((tool: Operation) => T), b?: (tool: Operation) => T): T {
    const [options, fn] = operationArgs<OperationOptions, T>('tool(name, options?, fn)', a, b);
    return this.run(this.startTool(name, options), fn);
  }

  /** Runs `fn` inside a workflow run. */
  workflow<T>(name: string, fn: (workflow: Operation) => T): T;
  workflow<T>(name: string, options: OperationOptions | undefined, fn: (workflow: Operation) => T): T;
  workflow<T>(name: string, a: OperationOptions | undefined | ((workflow: Operation) => T), b?: (workflow: Operation) => T): T {
    const [options, fn] = operationArgs<OperationOptions, T>('workflow(name, options?, fn)', a, b);
    return this.run(this.startWorkflow(name, options), fn);
  }

  /** Runs `fn` inside a memory operation on a store. */
  memory<T>(operation: string, store: string, fn: (memory: Operation) => T): T;
  memory<T>(operation: string, store: string, options: OperationOptions | undefined, fn: (memory: Operation) => T): T;
  memory<T>(
    operation: string,
    store: string,
    a: OperationOptions | undefined | ((memory: Operation) => T),
    b?: (memory: Operation) => T,
  ): T {
    const [options, fn] = operationArgs<OperationOptions, T>('memory(operation, store, options?, fn)', a, b);
    return this.run(this.startMemory(operation, store, options), fn);
  }

  /** The current span, if any (a remote context made current with `withSpan` is not a span). */
  currentSpan(): Span | undefined {
    const v = this._context.active();
    return v instanceof Span ? v : undefined;
  }

  /** Runs `fn` with `span` (or an extracted context) as the current span. */
  withSpan<T>(span: Span | SpanContext | undefined, fn: () => T): T {
    return this._context.with(span, fn);
  }

  // -- metrics -------------------------------------------------------------

  private register(name: string, kind: string, options: HistogramOptions | undefined): number {
    try {
      return this.core.registerInstrument(instrumentJson(name, kind, options));
    } catch (e) {
      // A core that cannot register (it trapped) leaves an instrument whose
      // measurements the core drops as unknown, counted.
      if (e instanceof CoreTrapped) return U32_MAX;
      throw e;
    }
  }

  /** A monotonic counter: tool calls, tokens. */
  counter(name: string, options?: InstrumentOptions): Counter {
    return new Instrument(this, this.register(name, 'counter', options), true);
  }

  /** A counter that goes up and down: active sessions, queue depth. */
  upDownCounter(name: string, options?: InstrumentOptions): UpDownCounter {
    return new Instrument(this, this.register(name, 'up_down_counter', options), false);
  }

  /** A distribution: durations, token counts per call. */
  histogram(name: string, options?: HistogramOptions): Histogram {
    return new Instrument(this, this.register(name, 'histogram', options), true);
  }

  /** The last value recorded wins. */
  gauge(name: string, options?: InstrumentOptions): Gauge {
    return new Instrument(this, this.register(name, 'gauge', options), false);
  }

  private observable(
    kind: string,
    name: string,
    a: InstrumentOptions | undefined | ObserveCallback,
    b: ObserveCallback | undefined,
  ): ObservableInstrument {
    const callback = typeof a === 'function' ? a : b;
    if (typeof callback !== 'function') throw new TypeError(`polytel: an observable instrument (${name}) needs a callback.`);
    const id = this.register(name, kind, typeof a === 'function' ? undefined : a);
    this._observers.set(id, callback);
    return new ObservableHandle(this, id);
  }

  /** A counter whose running total `callback` reports at each collection. */
  observableCounter(name: string, callback: ObserveCallback): ObservableInstrument;
  observableCounter(name: string, options: InstrumentOptions | undefined, callback: ObserveCallback): ObservableInstrument;
  observableCounter(name: string, a: InstrumentOptions | undefined | ObserveCallback, b?: ObserveCallback): ObservableInstrument {
    return this.observable('observable_counter', name, a, b);
  }

  /** An up-down counter whose current value `callback` reports at each collection. */
  observableUpDownCounter(name: string, callback: ObserveCallback): ObservableInstrument;
  observableUpDownCounter(name: string, options: InstrumentOptions | undefined, callback: ObserveCallback): ObservableInstrument;
  observableUpDownCounter(
    name: string,
    a: InstrumentOptions | undefined | ObserveCallback,
    b?: ObserveCallback,
  ): ObservableInstrument {
    return this.observable('observable_up_down_counter', name, a, b);
  }

  /** A gauge whose value `callback` reports at each collection. */
  observableGauge(name: string, callback: ObserveCallback): ObservableInstrument;
  observableGauge(name: string, options: InstrumentOptions | undefined, callback: ObserveCallback): ObservableInstrument;
  observableGauge(name: string, a: InstrumentOptions | undefined | ObserveCallback, b?: ObserveCallback): ObservableInstrument {
    return this.observable('observable_gauge', name, a, b);
  }

  /** Runs every observable callback; what they observed, as measurement records. */
  private async observe(): Promise<string[]> {
    const records: string[] = [];
    for (const [id, callback] of [...this._observers]) {
      const mine: string[] = [];
      const observer: Observer = {
        observe(value: number, attributes?: Attributes): void {
          let r = '{"instrument":' + id + ',"value":' + number(+value);
          const members = attributeMembers(attributes);
          if (members.length > 0) r += ',"attributes":{' + members + '}';
          mine.push(r + '}');
        },
      };
      try {
        const done = callback(observer);
        if (isThenable(done)) await done;
        records.push(...mine);
      } catch (e) {
        this._platform.warn(
          `polytel: an observable instrument's callback failed (${errorFields(e)[1]}); its observations were skipped.`,
        );
      }
    }
    return records;
  }

  /** Ships buffered measurements and what the observable instruments observe now to the core. */
  private async shipMeasurements(): Promise<void> {
    const observed = await this.observe();
    const buffered = this.buffers[METRICS].splice(0);
    if (buffered.length > 0) this.core.call(buffered.length, (p) => p.recordMetrics('[' + buffered.join(',') + ']'));
    if (observed.length > 0) this.core.call(observed.length, (p) => p.recordMetrics('[' + observed.join(',') + ']'));
  }

  /**
   * Current metrics (cumulative) as a Prometheus scrape reads them, after
   * running the observable callbacks: serve it at your own /metrics.
   */
  async renderMetrics(format: 'prometheus' | 'openmetrics' = 'prometheus'): Promise<{ contentType: string; body: string }> {
    // GenAI operations' metrics come from their spans: everything buffered goes first.
    this.shipAll();
    await this.shipMeasurements();
    const now = BigInt(this.pollClock());
    const r = this.core.call(0, (p) => p.renderMetrics(format, now));
    return { contentType: r.contentType, body: r.body };
  }

  // -- logs ----------------------------------------------------------------

  /** Emits a log record; inside a span it carries the span's trace and span ids. */
  log(level: Level, message: AttributeValue, attributes?: Attributes, options?: LogOptions): void {
    if (!this._plan.logs) return;
    const now = this.eventClock();
    const severity = SEVERITIES[level];
    let r = '{"time":' + now + ',"observed":' + now;
    if (severity !== undefined) r += ',"severity":' + severity[0] + ',"severity_text":"' + severity[1] + '"';
    else r += ',"severity_text":' + str(String(level));
    r += ',"body":' + (typeof message === 'string' ? str(message) : valueJson(message));
    if (attributes !== undefined) {
      const members = attributeMembers(attributes);
      if (members.length > 0) r += ',"attributes":{' + members + '}';
    }
    if (options?.eventName) r += ',"event_name":' + str(options.eventName);
    const ctx =
      options?.span !== undefined
        ? options.span === null
          ? undefined
          : contextOf(options.span)
        : contextOf(this._context.active());
    if (ctx !== undefined && isValid(ctx)) {
      r += ',"trace_id":"' + ctx.traceId + '","span_id":"' + ctx.spanId + '","flags":' + (ctx.sampled ? 1 : 0);
    }
    if (options?.scope !== undefined) r += scopeJson(options.scope);
    this._enqueue(LOGS, flat(r + '}'));
  }

  // -- propagation ---------------------------------------------------------

  /**
   * Writes the headers that carry `context` (default: the current span) to a
   * downstream service into `headers` (a plain object or a fetch `Headers`),
   * and returns it.
   */
  inject(headers?: undefined, context?: Span | SpanContext): Record<string, string>;
  inject<H extends HeaderCarrier>(headers: H, context?: Span | SpanContext): H;
  inject<H extends HeaderCarrier>(headers?: H, context?: Span | SpanContext): H {
    const carrier = (headers ?? {}) as H;
    const ctx = context !== undefined ? contextOf(context) : contextOf(this._context.active());
    if (ctx === undefined) return carrier;
    const wire = JSON.stringify({
      trace_id: ctx.traceId,
      span_id: ctx.spanId,
      flags: ctx.sampled ? 1 : 0,
      trace_state: ctx.traceState,
      baggage: ctx.baggage ?? [],
    });
    const out = JSON.parse(this.core.call(0, (p) => p.inject(wire))) as Record<string, string>;
    const c = carrier as { set?: unknown };
    for (const [k, v] of Object.entries(out)) {
      if (typeof c.set === 'function') (carrier as { set(k: string, v: string): void }).set(k, v);
      else (carrier as Record<string, string>)[k] = v;
    }
    return carrier;
  }

  /**
   * Reads W3C trace context and baggage from incoming headers; the remote
   * parent to give `startSpan`/`span` as `parent` (or `withSpan`), or
   * undefined when there is no valid traceparent.
   */
  extract(headers: HeaderCarrier): SpanContext | undefined {
    const map: Record<string, string> = {};
    const h = headers as { forEach?: unknown; get?: unknown };
    if (typeof h.forEach === 'function' && typeof h.get === 'function') {
      (headers as { forEach(cb: (v: string, k: string) => void): void }).forEach((v, k) => {
        map[k.toLowerCase()] = v;
      });
    } else {
      for (const [k, v] of Object.entries(headers as Record<string, unknown>)) {
        if (typeof v === 'string') map[k.toLowerCase()] = v;
        else if (Array.isArray(v)) map[k.toLowerCase()] = v.join(',');
      }
    }
    const ctx = JSON.parse(this.core.call(0, (p) => p.extract(JSON.stringify(map)))) as {
      trace_id: string;
      span_id: string;
      flags: number;
      trace_state: string;
      baggage: Array<[string, string]>;
    };
    if (!ctx.trace_id) return undefined;
    const out: SpanContext = {
      traceId: ctx.trace_id,
      spanId: ctx.span_id,
      sampled: (ctx.flags & 1) === 1,
      remote: true,
      traceState: ctx.trace_state,
      ...(ctx.baggage.length > 0 ? { baggage: ctx.baggage } : {}),
    };
    return out;
  }

  // -- what the core knows -------------------------------------------------

  /** Where each signal goes, as the core describes it (credentials masked). */
  describe(): Record<string, unknown> {
    return JSON.parse(this.core.call(0, (p) => p.describe())) as Record<string, unknown>;
  }

  /**
   * The core's counters per signal, with the host's own under "host", and
   * under "operations" the summary of every GenAI operation ended so far
   * (count, errors by type, duration quantiles, tokens, cost).
   */
  stats(): Record<string, unknown> & {
    host: { buffered: number; buffer_dropped: Record<string, number>; lost_to_traps: number };
    operations: OperationStats[];
  } {
    // What is buffered counts too: the core sees it first.
    if (!this.stopped && !this._plan.disabled) this.shipAll();
    const stats = JSON.parse(this.core.call(0, (p) => p.stats())) as Record<string, unknown> & { operations: OperationStats[] };
    const [spans, metrics, logs] = this.bufferDropped;
    const host = {
      buffered: this.buffers[0].length + this.buffers[1].length + this.buffers[2].length,
      buffer_dropped: { spans, metrics, logs },
      lost_to_traps: this.core.lostToTraps,
    };
    return { ...stats, host };
  }

  /** A summary: the pipeline's configuration may hold credentials, so it is never shown. */
  [INSPECT](): string {
    const p = this._plan;
    return `Telemetry { disabled: ${p.disabled}, traces: ${p.traces}, metrics: ${p.metrics}, logs: ${p.logs}, stopped: ${this.stopped} }`;
  }

  /** Whether telemetry is off (OTEL_SDK_DISABLED or the option disabled). */
  get disabled(): boolean {
    return this._plan.disabled;
  }

  /** Where Prometheus scrapes are served ("host:port"), if the prometheus exporter is on. */
  get prometheusListen(): string | null {
    return this._plan.disabled ? null : this._plan.prometheus;
  }

  /** The address GET /metrics is served at in Node ("127.0.0.1:9464"), once listening. */
  prometheusAddress(): string | undefined {
    return this._prometheusAddress?.();
  }

  // -- the buffer and the export worker ------------------------------------

  /** @internal */
  _enqueue(signal: number, record: string): void {
    const b = this.buffers[signal]!;
    if (b.length >= this.maxQueue || this.stopped) {
      this.bufferDropped[signal]!++;
      return;
    }
    b.push(record);
    // Once per batch: the worker checks the buffers itself whenever it runs.
    if (b.length === this.maxBatch) this.wake();
  }

  /** Hands every buffered record to the core now, a batch per call. */
  private shipAll(): void {
    for (const signal of [TRACES, METRICS, LOGS]) {
      const b = this.buffers[signal]!;
      while (b.length > 0) {
        const batch = b.splice(0, this.maxBatch);
        const json = '[' + batch.join(',') + ']';
        try {
          this.core.call(batch.length, (p) =>
            signal === TRACES ? p.recordSpans(json) : signal === METRICS ? p.recordMetrics(json) : p.recordLogs(json),
          );
        } catch (e) {
          // The batch is lost and counted; the rest goes to the fresh core.
          if (!(e instanceof CoreTrapped)) throw e;
        }
      }
    }
  }

  private wake(): void {
    if (this.wakeQueued || this.stopped) return;
    this.wakeQueued = true;
    const t = setTimeout(() => {
      this.wakeQueued = false;
      this.pump();
    }, 0);
    this._platform.unref(t);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, Math.min(Math.max(0, delayMs), 0x7fffffff));
    this._platform.unref(this.timer);
  }

  /** Runs worker cycles until nothing is left to do now. */
  private pump(): void {
    if (this.running !== undefined) {
      this.again = true;
      // The worker is busy (say, on a request that hangs): what is buffered
      // goes into the core's bounded queues, which aggregate measurements in
      // constant memory, rather than overflow the buffer.
      this.shipAll();
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        // Only a flush's first poll asks for one: it sends every queued item
        // and collects metrics; later polls settle the retries.
        const newFlush = this.flushAsked > (this.flushing ?? this.flushDone);
        const ticket = newFlush ? this.flushAsked : this.flushing;
        let cycled = { delivered: 0, outstanding: 1n };
        try {
          cycled = await this.cycle(newFlush);
        } catch (e) {
          if (!(e instanceof CoreTrapped)) {
            this._platform.warn(`polytel: the export worker failed (${errorFields(e)[1]}); it carries on.`);
          }
          // Try again in a second, as after a failed poll.
          this.nextPollAt = performance.now() + 1000;
        }
        if (ticket !== undefined) {
          if (this.stopped || (cycled.delivered === 0 && cycled.outstanding === 0n)) {
            this.flushing = undefined;
            this.flushDone = ticket;
            const done = this.flushWaiters.filter((w) => w.ticket <= ticket);
            this.flushWaiters = this.flushWaiters.filter((w) => w.ticket > ticket);
            for (const w of done) w.resolve();
          } else {
            this.flushing = ticket;
          }
        }
        // After delivering, poll again at once: the outcomes may have made
        // something due now (a split's halves, a Retry-After: 0), and the next
        // poll time was computed before them.
        if (cycled.delivered > 0) this.again = true;
      } while (
        !this.stopped &&
        (this.again ||
          this.flushAsked > (this.flushing ?? this.flushDone) ||
          this.buffers.some((b) => b.length >= this.maxBatch))
      );
    })().finally(() => {
      this.running = undefined;
      this.schedule(this.nextPollAt - performance.now());
    });
  }

  /**
   * One round: ship at most one batch of each signal (a core call each, with
   * a turn of the event loop after it), poll, send what is due. With `flush`,
   * repeats until the buffers are empty and then polls with flush, so the
   * event loop is never held for more than one batch's encoding.
   */
  private async cycle(flush: boolean): Promise<{ delivered: number; outstanding: bigint }> {
    let delivered = 0;
    for (;;) {
      let more = false;
      for (const signal of [TRACES, METRICS, LOGS]) {
        const b = this.buffers[signal]!;
        if (b.length === 0) continue;
        const batch = b.length <= this.maxBatch ? b.splice(0) : b.splice(0, this.maxBatch);
        const json = '[' + batch.join(',') + ']';
        this.core.call(batch.length, (p) =>
          signal === TRACES ? p.recordSpans(json) : signal === METRICS ? p.recordMetrics(json) : p.recordLogs(json),
        );
        if (b.length > 0) more = true;
        await this._platform.yieldToLoop();
        if (this.stopped) return { delivered, outstanding: 1n };
      }
      const final = flush && !more;
      const now = this.pollClock();
      let result: PollResult = this.core.call(0, (p) => p.poll(BigInt(now), final));
      // A collection is due: observe, then the next poll collects. Once at
      // most, so a core that keeps asking cannot hold the worker.
      for (let round = 0; round < 2; round++) {
        for (const w of result.warnings) this._platform.warn(`polytel: ${w}`);
        for (const e of result.exports) {
          if (this.stopped) return { delivered, outstanding: 1n };
          await this.deliver(e);
          delivered += 1;
        }
        if (!result.observe || round === 1 || this.stopped) break;
        await this.shipMeasurements();
        const again = this.pollClock();
        result = this.core.call(0, (p) => p.poll(BigInt(again), final));
      }
      // The core's times are the configured clock's, so the wait is measured on it too.
      const waitMs = Number(result.nextPoll - BigInt(this.pollClock())) / 1e6;
      this.nextPollAt = performance.now() + Math.max(0, waitMs);
      if (!more || this.stopped) return { delivered, outstanding: result.outstanding };
    }
  }

  private async deliver(e: Export): Promise<void> {
    const d = e.destination;
    if (d.tag === 'stdout') {
      this._platform.writeStdout(e.body);
      return;
    }
    let outcome: Outcome;
    if (d.tag === 'http') outcome = await this.post(d.val.url, d.val.headers, d.val.timeoutMs, e.body);
    else outcome = { tag: 'failed', val: 'this host makes no gRPC calls' };
    const now = BigInt(this.pollClock());
    this.core.call(e.items, (p) => p.report(e.id, outcome, now));
  }

  /** Sends one export; the outcome as the core needs it. Header values never leave this function. */
  private async post(url: string, headers: Array<[string, string]>, timeoutMs: number, body: string): Promise<Outcome> {
    const abort = new AbortController();
    this.inflight.add(abort);
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (timeoutMs < U32_MAX) {
      timer = setTimeout(() => abort.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    }
    try {
      const bytes = this._platform.base64ToBytes(body);
      // Browsers cap keepalive requests at 64 KiB in flight.
      const keepalive = this._platform.keepalive === true && bytes.byteLength < 48 * 1024;
      const redirect = this._platform.manualRedirects === true ? 'manual' : 'follow';
      const res = await fetch(url, { method: 'POST', headers, body: bytes, signal: abort.signal, keepalive, redirect });
      const answer = await readCapped(res, MAX_RESPONSE_BODY);
      const retryAfter = res.headers.get('retry-after');
      return {
        tag: 'response',
        val: {
          status: res.status,
          ...(retryAfter !== null ? { retryAfter } : {}),
          body: this._platform.bytesToBase64(answer),
          headers: coreHeaders(res.headers),
        },
      };
    } catch (err) {
      return { tag: 'failed', val: failure(err, abort.signal) };
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      this.inflight.delete(abort);
    }
  }

  /** Exports everything recorded so far; resolves to whether that finished in time. */
  forceFlush(options?: FlushOptions): Promise<boolean> {
    if (this.stopped || this._plan.disabled) return Promise.resolve(true);
    const ticket = ++this.flushAsked;
    const done = new Promise<void>((resolve) => this.flushWaiters.push({ ticket, resolve }));
    this.pump();
    const timeoutMs = options?.timeoutMs ?? 10_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    return Promise.race([done.then(() => true), late]).finally(() => clearTimeout(timer));
  }

  /**
   * Flushes within the deadline, then stops the worker and drops (counting)
   * whatever could not be delivered. Safe to call more than once.
   */
  shutdown(options?: FlushOptions): Promise<ShutdownReport> {
    this.shutdownPromise ??= (async () => {
      const flushed = await this.forceFlush(options);
      this.stopped = true;
      if (this.timer !== undefined) clearTimeout(this.timer);
      for (const a of this.inflight) a.abort(new Error('polytel was shut down'));
      this._platform.stopped?.(this);
      let abandoned = 0;
      try {
        abandoned = Number(this.core.call(0, (p) => p.abandon()));
      } catch {
        // A core that trapped has nothing left to abandon.
      }
      const left = this.buffers.reduce((n, b) => n + b.splice(0).length, 0);
      return { abandoned: abandoned + left, flushed };
    })();
    return this.shutdownPromise;
  }
}

/** A response body, at most `limit` bytes of it. */
/** The response headers the core reads (location, x-ms-qps-*); fetch gives names lower-case. */
function coreHeaders(headers: Headers): Array<[string, string]> {
  const wanted: Array<[string, string]> = [];
  headers.forEach((value, name) => {
    if (name === 'location' || name.startsWith('x-ms-qps-')) wanted.push([name, value]);
  });
  return wanted;
}

async function readCapped(res: Response, limit: number): Promise<Uint8Array> {
  if (res.body === null) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    if (size >= limit) void reader.cancel().catch(() => {});
    else reader.releaseLock();
  }
  const out = new Uint8Array(Math.min(size, limit));
  let at = 0;
  for (const c of chunks) {
    const take = Math.min(c.byteLength, out.length - at);
    out.set(c.subarray(0, take), at);
    at += take;
    if (at >= out.length) break;
  }
  return out;
}

/** Why a request got no response, in words (refused, reset, DNS, TLS, timeout). */
function failure(err: unknown, signal: AbortSignal): string {
  if (signal.aborted) {
    const reason = signal.reason as unknown;
    return reason instanceof Error ? reason.message : 'aborted';
  }
  const e = err as { message?: unknown; cause?: { code?: unknown; message?: unknown } };
  const cause = e?.cause;
  const code = typeof cause?.code === 'string' ? cause.code : '';
  const detail = typeof cause?.message === 'string' ? cause.message : typeof e?.message === 'string' ? e.message : String(err);
  return code && !detail.includes(code) ? `${code}: ${detail}` : detail;
}

function randomSeed(): string {
  const words = new Uint32Array(2);
  crypto.getRandomValues(words);
  return ((BigInt(words[0]!) << 32n) | BigInt(words[1]!)).toString();
}
