// The core component, transpiled by jco (`--instantiation sync`): its core
// wasm modules are compiled once per process (asynchronously where the
// platform wants it), and each pipeline gets an instance of its own, so a trap
// is recovered from by instantiating afresh.

import { instantiate } from '../gen/polytel.js';
import type {
  Pipeline,
  PollResult,
  Outcome,
  MetricsFormat,
  RenderedMetrics,
} from '../gen/interfaces/polytel-telemetry-core.js';

export type { Pipeline, PollResult, Outcome, MetricsFormat, RenderedMetrics };
export type { Export } from '../gen/interfaces/polytel-telemetry-core.js';

/** What util.inspect shows of objects that reach the configuration (no credentials). */
export const INSPECT = Symbol.for('nodejs.util.inspect.custom');

/** The core wasm modules jco split the component into, by file name (in gen/). */
export const CORE_FILES = ['polytel.core.wasm', 'polytel.core2.wasm', 'polytel.core3.wasm'] as const;

export type CoreModules = { readonly [file: string]: WebAssembly.Module };

let modules: CoreModules | undefined;

/** Installs the compiled core modules (see `init` in the entry points). */
export function setCoreModules(m: CoreModules): void {
  for (const file of CORE_FILES) {
    if (!(m[file] instanceof WebAssembly.Module)) {
      throw new TypeError(`polytel: the core module ${file} is missing; pass every file of polytel's gen/ folder.`);
    }
  }
  modules = m;
}

export function coreModulesLoaded(): boolean {
  return modules !== undefined;
}

/** The core refused the configuration: the message says what is wrong and how to fix it. */
export class ConfigurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigurationError';
  }
}

/** The core trapped; a fresh instance has replaced it (or could not be made). */
export class CoreTrapped extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CoreTrapped';
  }
}

/** The core's linear memory may not grow past this unless told otherwise. */
export const DEFAULT_MEMORY_LIMIT = 512 * 1024 * 1024;

/** One instance of the core holding one pipeline. */
class CoreInstance {
  readonly pipeline: Pipeline;
  readonly memory: WebAssembly.Memory | undefined;

  private constructor(pipeline: Pipeline, memory: WebAssembly.Memory | undefined) {
    this.pipeline = pipeline;
    this.memory = memory;
  }

  /** Instantiates the core and creates a pipeline; ConfigurationError if the core refuses it. */
  static create(configJson: string): CoreInstance {
    const m = modules;
    if (m === undefined) {
      throw new Error(
        "polytel: the core is not loaded yet; in a browser or edge runtime import 'polytel' (which loads it) or call `await init()` from 'polytel/core' first.",
      );
    }
    let memory: WebAssembly.Memory | undefined;
    const root = instantiate(
      (file) => {
        const mod = m[file];
        if (mod === undefined) throw new Error(`polytel: no core module named ${file}`);
        return mod;
      },
      {},
      (module, imports) => {
        const instance = new WebAssembly.Instance(module, imports);
        const mem = instance.exports['memory'];
        if (mem instanceof WebAssembly.Memory) memory = mem;
        return instance;
      },
    );
    let pipeline: Pipeline;
    try {
      pipeline = root.core.Pipeline.create(configJson);
    } catch (e) {
      if (e !== null && typeof e === 'object' && 'payload' in e) {
        throw new ConfigurationError(String((e as { payload: unknown }).payload));
      }
      throw e;
    }
    return new CoreInstance(pipeline, memory);
  }
}

/**
 * The core and what is needed to rebuild it after a trap: its configuration
 * and every instrument registration, in order, so instrument ids stay valid.
 */
export class Core {
  private instance: CoreInstance;
  /** A fresh instance; the configuration (which may hold credentials) stays in this closure. */
  private readonly fresh: () => CoreInstance;
  private readonly memoryLimit: number;
  private readonly warn: (text: string) => void;
  /** Items lost because the core trapped while holding them. */
  lostToTraps = 0;
  private readonly registrations: string[] = [];

  constructor(configJson: string, memoryLimit: number, warn: (text: string) => void) {
    this.instance = CoreInstance.create(configJson);
    this.fresh = () => CoreInstance.create(configJson);
    this.memoryLimit = memoryLimit;
    this.warn = warn;
  }

  /**
   * Runs `f` on the pipeline. If the core traps, or its memory grew past the
   * limit, instantiates it afresh, counts `lostIfTrap` items as lost and
   * throws CoreTrapped.
   */
  call<T>(lostIfTrap: number, f: (p: Pipeline) => T): T {
    let result: T;
    try {
      result = f(this.instance.pipeline);
    } catch (e) {
      this.recover(lostIfTrap, describe(e));
    }
    const memory = this.instance.memory;
    if (memory !== undefined && memory.buffer.byteLength > this.memoryLimit) {
      this.recover(
        lostIfTrap,
        `its memory grew to ${memory.buffer.byteLength} bytes, past the limit of ${this.memoryLimit} (option memoryLimit)`,
      );
    }
    return result!;
  }

  [INSPECT](): string {
    return `Core { lostToTraps: ${this.lostToTraps}, instruments: ${this.registrations.length} }`;
  }

  registerInstrument(json: string): number {
    const id = this.call(0, (p) => p.registerInstrument(json));
    this.registrations.push(json);
    return id;
  }

  private recover(lost: number, why: string): never {
    // What the old instance had queued cannot be read any more.
    this.lostToTraps += lost;
    this.warn(`polytel: the telemetry core failed (${why}); starting it afresh. Queued telemetry was lost.`);
    const fresh = this.fresh();
    for (const r of this.registrations) fresh.pipeline.registerInstrument(r);
    this.instance = fresh;
    throw new CoreTrapped(`the telemetry core failed (${why}) and was started afresh`);
  }
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}
