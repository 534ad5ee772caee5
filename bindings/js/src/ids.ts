// Trace and span ids from splitmix64, exactly as wit/polytel.wit specifies
// (state += 0x9E3779B97F4A7C15, then the standard mix), so every host makes
// the same ids from the same seed. The 64-bit arithmetic is done on two
// 32-bit halves: BigInt costs an allocation per operation on the hot path
// (bench: `npm run bench:ids` in bench/js compares the two).

const GAMMA_HI = 0x9e3779b9;
const GAMMA_LO = 0x7f4a7c15;
const M1_HI = 0xbf58476d;
const M1_LO = 0x1ce4e5b9;
const M2_HI = 0x94d049bb;
const M2_LO = 0x133111eb;

const HEX: string[] = [];
for (let i = 0; i < 256; i++) HEX.push((i < 16 ? '0' : '') + i.toString(16));

/** Lower-case hex of a 32-bit unsigned value, 8 digits. */
export function hex32(x: number): string {
  return HEX[x >>> 24]! + HEX[(x >>> 16) & 255]! + HEX[(x >>> 8) & 255]! + HEX[x & 255]!;
}

// The high half of the last 64-bit product (see mul64).
let mulHi = 0;

/** Low 32 bits of a*b (unsigned 32-bit inputs); the high 32 bits go to `mulHi`. */
function mul32(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  mulHi = (a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) >>> 0;
  return ((mid << 16) | (p00 & 0xffff)) >>> 0;
}

/** splitmix64 over a 64-bit state held as two 32-bit halves. */
export class SplitMix64 {
  private hi: number;
  private lo: number;
  /** The last value drawn, high and low halves. */
  outHi = 0;
  outLo = 0;

  /** `seed`: a u64 as a decimal string, a bigint or a safe integer. */
  constructor(seed: string | bigint | number) {
    const s = BigInt.asUintN(64, BigInt(seed));
    this.hi = Number(s >> 32n);
    this.lo = Number(s & 0xffffffffn);
  }

  /** Draws the next value into outHi/outLo. */
  next(): void {
    const lo = this.lo + GAMMA_LO;
    this.lo = lo >>> 0;
    this.hi = (this.hi + GAMMA_HI + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    let zh = this.hi;
    let zl = this.lo;
    // z = (z ^ (z >> 30)) * M1
    zl = (zl ^ ((zl >>> 30) | (zh << 2))) >>> 0;
    zh = (zh ^ (zh >>> 30)) >>> 0;
    let l = mul32(zl, M1_LO);
    let h = (Math.imul(zh, M1_LO) + Math.imul(zl, M1_HI) + mulHi) >>> 0;
    // z = (z ^ (z >> 27)) * M2
    zl = (l ^ ((l >>> 27) | (h << 5))) >>> 0;
    zh = (h ^ (h >>> 27)) >>> 0;
    l = mul32(zl, M2_LO);
    h = (Math.imul(zh, M2_LO) + Math.imul(zl, M2_HI) + mulHi) >>> 0;
    // z ^ (z >> 31)
    this.outLo = (l ^ ((l >>> 31) | (h << 1))) >>> 0;
    this.outHi = (h ^ (h >>> 31)) >>> 0;
  }

  /** The next value as a bigint (tests and tools; the hot path uses halves). */
  nextBigInt(): bigint {
    this.next();
    return (BigInt(this.outHi) << 32n) | BigInt(this.outLo);
  }

  /** A span id: the next non-zero value, 16 hex digits. */
  spanId(): string {
    do this.next();
    while (this.outHi === 0 && this.outLo === 0);
    return hex32(this.outHi) + hex32(this.outLo);
  }

  /**
   * A trace id: two values, high then low, not both zero; 32 hex digits. The
   * low value's halves stay in outHi/outLo for the sampling decision.
   */
  traceId(): string {
    for (;;) {
      this.next();
      const h1 = this.outHi;
      const l1 = this.outLo;
      this.next();
      if ((h1 | l1 | this.outHi | this.outLo) !== 0) {
        return hex32(h1) + hex32(l1) + hex32(this.outHi) + hex32(this.outLo);
      }
    }
  }
}

/**
 * The root sampling rule of `plan`: sampled when the trace id's low 64 bits,
 * shifted right by one, are below `root_bound`.
 */
export class RootSampler {
  private readonly boundHi: number;
  private readonly boundLo: number;

  constructor(rootBound: string) {
    const b = BigInt(rootBound);
    // A bound above 2^63 samples everything, as 2^63 does.
    const clamped = b > 1n << 63n ? 1n << 63n : b;
    this.boundHi = Number(clamped >> 32n);
    this.boundLo = Number(clamped & 0xffffffffn);
  }

  /** `hi`/`lo`: the trace id's low 64 bits as two 32-bit halves. */
  samples(hi: number, lo: number): boolean {
    const sh = hi >>> 1;
    const sl = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
    return sh < this.boundHi || (sh === this.boundHi && sl < this.boundLo);
  }

  /** The same rule for a trace id in hex (a parent's, when sampling is not parent-based). */
  samplesHex(traceId: string): boolean {
    return this.samples(parseInt(traceId.slice(16, 24), 16) >>> 0, parseInt(traceId.slice(24, 32), 16) >>> 0);
  }
}

/** Whether `s` is `n` lower-case hex digits, not all zero (a valid W3C id). */
export function isValidId(s: string, n: number): boolean {
  if (s.length !== n) return false;
  let nonZero = false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
    if (c !== 48) nonZero = true;
  }
  return nonZero;
}
