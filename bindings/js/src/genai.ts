// GenAI operations (LLM calls, agent runs, tool calls, workflow runs, memory
// operations): spans that carry a "genai" member (see `record-spans` in
// wit/polytel.wit). The core names them, writes their semantic-convention
// attributes, prices them and derives metrics and stats from them; this
// module only keeps what the application tells an operation and writes it.

import { number, str, valueJson } from './values.js';
import type { Attributes } from './values.js';
import type { Link, Scope, Span, SpanContext, SpanKind } from './telemetry.js';

/** Token counts of an LLM call; `recordUsage` adds them to the operation's totals. */
export interface Usage {
  /** Input tokens, cache reads and writes included. */
  readonly inputTokens?: number;
  readonly outputTokens?: number;
  readonly cacheReadTokens?: number;
  readonly cacheWriteTokens?: number;
  readonly reasoningTokens?: number;
}

/** Options of `agent`, `tool`, `workflow` and `memory` (and their `start…` forms). */
export interface OperationOptions {
  /** Default: the core picks (client for model calls, internal otherwise). */
  readonly kind?: SpanKind;
  readonly attributes?: Attributes;
  readonly links?: readonly Link[];
  /**
   * The parent; default the current span. An operation under an agent
   * operation (current, or given here) carries that agent's name. `null`
   * starts a new trace.
   */
  readonly parent?: Span | SpanContext | null;
  readonly scope?: Scope;
}

/** Options of `llmCall`. */
export interface LlmCallOptions extends OperationOptions {
  /** The inference operation: "chat" (the default), "text_completion", "embeddings", "generate_content". */
  readonly operation?: string;
}

/** One entry of `stats().operations`: an operation, name and provider, as the core summarises it. */
export interface OperationStats {
  readonly operation: string;
  readonly name: string;
  readonly provider?: string;
  readonly count: number;
  readonly errors: number;
  /** Errors by `error.type`. */
  readonly error_types: Readonly<Record<string, number>>;
  /** Duration quantiles in seconds (within 1%). */
  readonly duration_s: { readonly p50: number; readonly p95: number; readonly p99: number };
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly cost_usd: number;
  /** Operations with usage whose model has no price. */
  readonly cost_unknown: number;
}

const USAGE_KEYS = [
  ['inputTokens', '"input_tokens":'],
  ['outputTokens', '"output_tokens":'],
  ['cacheReadTokens', '"cache_read_tokens":'],
  ['cacheWriteTokens', '"cache_write_tokens":'],
  ['reasoningTokens', '"reasoning_tokens":'],
] as const;

/** @internal What an operation keeps until it ends. */
export class GenAIFields {
  readonly operation: string;
  readonly name: string;
  readonly provider: string | undefined;
  /** The nearest enclosing agent operation's name. */
  agent: string | undefined = undefined;
  responseModel: string | undefined = undefined;
  /** Running totals, in USAGE_KEYS order; undefined for a counter never given. */
  readonly usage: Array<number | undefined> = [undefined, undefined, undefined, undefined, undefined];
  cost: number | undefined = undefined;
  /** Batch JSON of the captured content. */
  input: string | undefined = undefined;
  output: string | undefined = undefined;

  constructor(operation: string, name: string, provider: string | undefined) {
    this.operation = String(operation);
    this.name = String(name);
    this.provider = provider === undefined ? undefined : String(provider);
  }

  addUsage(usage: Usage): void {
    for (let i = 0; i < USAGE_KEYS.length; i++) {
      const n = usage[USAGE_KEYS[i]![0]];
      if (typeof n !== 'number' || !Number.isFinite(n)) continue;
      this.usage[i] = (this.usage[i] ?? 0) + Math.trunc(n);
    }
  }

  setCost(usd: number): void {
    if (typeof usd === 'number' && Number.isFinite(usd)) this.cost = usd;
  }

  capture(which: 'input' | 'output', value: unknown): void {
    this[which] = valueJson(value);
  }

  /** The record's "genai" member, with its leading comma. */
  json(): string {
    let j = ',"genai":{"operation":' + str(this.operation) + ',"name":' + str(this.name);
    if (this.provider !== undefined) j += ',"provider":' + str(this.provider);
    if (this.agent !== undefined) j += ',"agent":' + str(this.agent);
    if (this.responseModel !== undefined) j += ',"response_model":' + str(this.responseModel);
    let usage = '';
    for (let i = 0; i < USAGE_KEYS.length; i++) {
      const n = this.usage[i];
      if (n !== undefined) usage += (usage.length > 0 ? ',' : '') + USAGE_KEYS[i]![1] + String(n);
    }
    if (usage.length > 0) j += ',"usage":{' + usage + '}';
    if (this.cost !== undefined) j += ',"cost":' + number(this.cost);
    if (this.input !== undefined) j += ',"input":' + this.input;
    if (this.output !== undefined) j += ',"output":' + this.output;
    return j + '}';
  }
}
