// polytel for browsers and web workers: the core loads (fetched next to this
// module) when it is imported, so `configure()` can be called right away.
// Spans are current in synchronous code only (see StackContextManager).

import { init } from './core.js';
import { forceFlush } from './api.js';

export * from './core.js';
export { default } from './core.js';

await init();

// A page being hidden may never come back: send what is buffered.
if (typeof addEventListener === 'function' && typeof document !== 'undefined') {
  addEventListener('pagehide', () => void forceFlush({ timeoutMs: 1000 }));
}
