// What differs between Node, browsers and edge runtimes. The core path uses
// only what all of them have (fetch, timers, crypto.getRandomValues); the Node
// entry point replaces the pieces Node does better or only Node can do.

import { base64Decode, base64Encode } from './values.js';

/** Where the current span lives: AsyncLocalStorage in Node, a stack elsewhere. */
export interface ContextManager {
  /** The current value (a span or a span context), if any. */
  active(): unknown;
  /** Runs `fn` with `value` current; for async work, as far as the manager can follow it. */
  with<T>(value: unknown, fn: () => T): T;
}

/**
 * Follows synchronous code only: inside `span(name, fn)` the span is current
 * until `fn` returns (for an async `fn`, until its first `await`). Browsers
 * have nothing that follows async work; pass `parent` explicitly there, or
 * install a manager of your own with `setContextManager`.
 */
export class StackContextManager implements ContextManager {
  private current: unknown = undefined;

  active(): unknown {
    return this.current;
  }

  with<T>(value: unknown, fn: () => T): T {
    const previous = this.current;
    this.current = value;
    try {
      return fn();
    } finally {
      this.current = previous;
    }
  }
}

export interface Platform {
  /** telemetry.sdk.language: "nodejs" or "webjs". */
  readonly sdkLanguage: string;
  /** The environment the core reads OTEL_* settings from. */
  env(): Record<string, string>;
  /** The facts resource detection reads (HostFacts in the core), without sdk_language and grpc. */
  facts(): Record<string, unknown>;
  /** The text of the config file at `path`; throws one sentence where it cannot be read. */
  readConfigFile(path: string): string;
  writeStdout(text: string): void;
  warn(text: string): void;
  /** Lets a timer not keep the process alive (Node). */
  unref(timer: unknown): void;
  /** Resolves on a later turn of the event loop, after pending I/O. */
  yieldToLoop(): Promise<void>;
  base64ToBytes(text: string): Uint8Array<ArrayBuffer>;
  bytesToBase64(bytes: Uint8Array): string;
  contextManager: ContextManager;
  /** Send small exports with `keepalive`, so they survive the page being closed (browsers). */
  keepalive?: boolean;
  /**
   * Hand every 3xx to the core as it came, with its Location (fetch's
   * `redirect: 'manual'`), so the core decides whether to follow it. Only
   * where fetch shows a manual redirect's status and headers (Node, Deno,
   * Bun, edge runtimes); a browser gives an opaque answer without either, so
   * there fetch follows by itself (`'follow'`).
   */
  manualRedirects?: boolean;
  /** Called when a pipeline starts and stops (exit hooks, the Prometheus endpoint). */
  started?(t: unknown): void;
  stopped?(t: unknown): void;
}

function yieldWithMessageChannel(): () => Promise<void> {
  if (typeof MessageChannel === 'function') {
    const channel = new MessageChannel();
    const waiting: Array<() => void> = [];
    channel.port1.onmessage = () => waiting.shift()?.();
    // Runtimes with a process (Deno, Bun, Node through polytel/core) would
    // otherwise stay alive for the port.
    for (const port of [channel.port1, channel.port2]) (port as { unref?: () => void }).unref?.();
    return () =>
      new Promise<void>((resolve) => {
        waiting.push(resolve);
        channel.port2.postMessage(0);
      });
  }
  return () => new Promise<void>((resolve) => setTimeout(resolve, 0));
}

type Fromb64 = { fromBase64?: (s: string) => Uint8Array<ArrayBuffer> };

/** Browsers and edge runtimes. */
export function webPlatform(): Platform {
  const fromBase64 = (Uint8Array as unknown as Fromb64).fromBase64;
  let yielder: (() => Promise<void>) | undefined;
  return {
    sdkLanguage: 'webjs',
    env: () => ({}),
    facts: () => ({}),
    readConfigFile(path: string): string {
      throw new Error(
        `The config file ${path} cannot be read here: config files are read in Node only; pass the settings as options to configure().`,
      );
    },
    writeStdout: (text) => console.log(text.endsWith('\n') ? text.slice(0, -1) : text),
    warn: (text) => console.warn(text),
    // Browsers' timers are numbers; runtimes with a process give objects that can be unref'd.
    unref: (timer) => (timer as { unref?: () => void } | null)?.unref?.(),
    yieldToLoop: () => (yielder ??= yieldWithMessageChannel())(),
    base64ToBytes: fromBase64 ? (s) => fromBase64.call(Uint8Array, s) : base64Decode,
    bytesToBase64: base64Encode,
    contextManager: new StackContextManager(),
    keepalive: true,
    // A browser's fetch answers `redirect: 'manual'` with an opaque response
    // (status 0, no Location), which the core could only drop; so fetch
    // follows: 307/308 with the same method and body, dropping Authorization
    // when the redirect leaves the origin (the Fetch standard), and 301-303
    // as a GET that the receiver refuses. Runtimes with a process (Bun, Deno,
    // Node through polytel/core) show manual redirects in full, and the
    // core's rules then apply.
    manualRedirects:
      typeof document === 'undefined' &&
      typeof (globalThis as { process?: { versions?: unknown } }).process?.versions === 'object',
  };
}
