// Ids from splitmix64 on 32-bit halves must equal the 64-bit reference (the
// WIT's rule and the Rust host's), the sampling rule must match `plan`'s,
// and attribute values must be written as the WIT's batch JSON.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { RootSampler, SplitMix64, isValidId } from '../dist/ids.js';
import { base64Decode, base64Encode, double, valueJson } from '../dist/values.js';

const MASK = (1n << 64n) - 1n;

/** splitmix64 with BigInt, straight from the definition. */
function reference(seed) {
  let state = BigInt(seed) & MASK;
  return () => {
    state = (state + 0x9e3779b97f4a7c15n) & MASK;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
    return z ^ (z >> 31n);
  };
}

const hex = (v, digits) => v.toString(16).padStart(digits, '0');

test('splitmix64 matches the reference sequence', () => {
  const g = new SplitMix64('1234567');
  // The values guest/src/ids.rs checks.
  assert.equal(g.nextBigInt(), 6457827717110365317n);
  assert.equal(g.nextBigInt(), 3203168211198807973n);
  for (const seed of ['0', '1', '18446744073709551615', '9223372036854775808', '20261121', '4294967295', '4294967296']) {
    const ours = new SplitMix64(seed);
    const ref = reference(seed);
    for (let i = 0; i < 20_000; i++) assert.equal(ours.nextBigInt(), ref(), `seed ${seed}, draw ${i}`);
  }
});

test('trace and span ids are drawn as the WIT says: trace high, trace low, then span', () => {
  const g = new SplitMix64(42n);
  const ref = reference(42n);
  for (let i = 0; i < 1000; i++) {
    const trace = g.traceId();
    const span = g.spanId();
    assert.equal(trace, hex(ref(), 16) + hex(ref(), 16));
    assert.equal(span, hex(ref(), 16));
    assert.ok(isValidId(trace, 32) && isValidId(span, 16));
  }
});

test('the root sampling rule: low 64 bits of the trace id, shifted right by one, below root_bound', () => {
  const all = new RootSampler('9223372036854775808');
  const none = new RootSampler('0');
  const half = new RootSampler(String(1n << 62n));
  const g = new SplitMix64(7);
  const ref = reference(7);
  let sampled = 0;
  for (let i = 0; i < 20_000; i++) {
    const id = g.traceId();
    ref();
    const low = ref();
    const expected = low >> 1n < 1n << 62n;
    assert.equal(half.samplesHex(id), expected, id);
    assert.equal(half.samples(g.outHi, g.outLo), expected);
    assert.equal(all.samplesHex(id), true);
    assert.equal(none.samplesHex(id), false);
    if (expected) sampled++;
  }
  assert.ok(sampled > 9000 && sampled < 11000, `${sampled}`);
  assert.equal(new RootSampler('1').samplesHex('0'.repeat(32)), true);
  assert.equal(new RootSampler('1').samplesHex('0'.repeat(31) + '2'), false);
});

test('attribute values are written as the batch JSON of the WIT', () => {
  assert.equal(valueJson('a"b\n'), '"a\\"b\\n"');
  assert.equal(valueJson(7), '7');
  assert.equal(valueJson(-0.5), '{"double":-0.5}');
  assert.equal(valueJson(2 ** 60), '{"double":1152921504606847000}', 'an integer past 2^53 is a double');
  assert.equal(valueJson(double(3)), '{"double":3}');
  assert.equal(valueJson(NaN), '{"double":"NaN"}');
  assert.equal(valueJson(-Infinity), '{"double":"-Infinity"}');
  assert.equal(valueJson(123456789012345678901234567890n), '123456789012345678901234567890');
  assert.equal(valueJson(true), 'true');
  assert.equal(valueJson(null), 'null');
  assert.equal(valueJson(undefined), 'null');
  assert.equal(valueJson(new Uint8Array([0, 1, 2, 255])), '{"bytes":"AAEC/w=="}');
  assert.equal(valueJson(['x', 1, [true]]), '["x",1,[true]]');
  assert.equal(valueJson({ k: { n: 1 } }), '{"map":{"k":{"map":{"n":1}}}}');
  assert.equal(valueJson(new Date(0)), '"1970-01-01T00:00:00.000Z"');
  const cyclic = {};
  cyclic.self = cyclic;
  assert.match(valueJson(cyclic), /nested too deep/);
  for (let n = 0; n < 40; n++) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 255);
    assert.equal(base64Encode(bytes), Buffer.from(bytes).toString('base64'));
    assert.deepEqual([...base64Decode(base64Encode(bytes))], [...bytes]);
  }
});
