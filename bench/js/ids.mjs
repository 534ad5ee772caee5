// splitmix64 ids on two 32-bit halves (what bindings/js does) against the
// same generator in BigInt, in the same run: the cost of a root span's ids
// (a trace id and a span id, as hex) and that both give the same ids.
//
//   npm run bench:ids
// An internal module of the package, by path: it is not part of the API.
import { SplitMix64 } from '../../bindings/js/dist/ids.js';

const MASK = (1n << 64n) - 1n;

class BigIntSplitMix64 {
  constructor(seed) {
    this.state = BigInt(seed) & MASK;
  }
  next() {
    this.state = (this.state + 0x9e3779b97f4a7c15n) & MASK;
    let z = this.state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
    return z ^ (z >> 31n);
  }
  traceId() {
    return this.next().toString(16).padStart(16, '0') + this.next().toString(16).padStart(16, '0');
  }
  spanId() {
    return this.next().toString(16).padStart(16, '0');
  }
}

const N = 500_000;
function measure(g) {
  let last = '';
  for (let i = 0; i < 50_000; i++) last = g.traceId() + g.spanId();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) last = g.traceId() + g.spanId();
  return [Number(process.hrtime.bigint() - t0) / N, last];
}

const [halves, a] = measure(new SplitMix64('20261121'));
const [bigint, b] = measure(new BigIntSplitMix64('20261121'));
if (a !== b) throw new Error(`the generators disagree: ${a} vs ${b}`);
console.log(`trace id + span id, ${N} roots, Node ${process.versions.node}`);
console.log(`  32-bit halves: ${halves.toFixed(0)} ns`);
console.log(`  BigInt:        ${bigint.toFixed(0)} ns  (${(bigint / halves).toFixed(1)}x the halves)`);
