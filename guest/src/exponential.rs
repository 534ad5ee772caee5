//! The base-2 exponential bucket histogram aggregation of the OpenTelemetry
//! metrics SDK (`specification/metrics/sdk.md`, data model in
//! `specification/metrics/data-model.md`, ExponentialHistogram).
//!
//! Bucket `i` at scale `s` holds the values in `(2^(i/2^s), 2^((i+1)/2^s)]`.
//! The histogram starts at its maximum scale and lowers the scale, for both
//! signs at once, by the least amount that keeps each sign within `max_size`
//! buckets, so it always has the best resolution its size allows.
//!
//! The mapping from value to index is exact for every finite value, not only
//! at powers of two: the logarithm decides all but the values within about a
//! millionth of a bucket's width of a boundary, and those are settled against
//! the boundary computed to about 100 bits. So a value always lands in the
//! bucket whose bounds contain it, and the native build and the component
//! produce the same buckets whatever `log2` their maths library has.

use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::ExponentialHistogramDataPoint;

/// Values recorded into buckets whose boundaries are powers of `2^(2^-scale)`.
#[derive(Clone, Debug, PartialEq)]
pub struct ExponentialHistogram {
    max_size: u32,
    scale: i32,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    zero_count: u64,
    positive: Range,
    negative: Range,
}

impl ExponentialHistogram {
    pub const DEFAULT_MAX_SIZE: u32 = 160;
    pub const DEFAULT_MAX_SCALE: i32 = 20;

    /// max_size: buckets per sign (clamp to at least 2); max_scale clamped to [-10, 20].
    ///
    /// Two buckets are the least that can hold every finite value: at scale
    /// -11 the positive values fall in (2^-2048, 1] and (1, 2^2048]. So with
    /// `max_size` 2 and data spanning more than 2^1024 the scale goes to -11,
    /// below the usual floor of -10, rather than drop a value. Scale 20 is the
    /// most at which every index fits the protocol's 32 bits.
    pub fn new(max_size: u32, max_scale: i32) -> Self {
        ExponentialHistogram {
            max_size: max_size.max(2),
            scale: max_scale.clamp(-10, 20),
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            zero_count: 0,
            positive: Range::default(),
            negative: Range::default(),
        }
    }

    /// Records one finite value. Callers drop NaN and infinities before
    /// this; one that arrives anyway is ignored, since a panic would poison
    /// the component instance.
    pub fn record(&mut self, value: f64) {
        if !value.is_finite() {
            return;
        }
        self.count += 1;
        self.sum += value;
        if value < self.min {
            self.min = value;
        }
        if value > self.max {
            self.max = value;
        }
        if value == 0.0 {
            self.zero_count += 1;
            return;
        }
        let positive = value > 0.0;
        let mut index = index_of(value.abs(), self.scale);
        let range = if positive { &self.positive } else { &self.negative };
        let by = range.downscale_to_fit(index, self.max_size);
        if by > 0 {
            self.positive.downscale(by);
            self.negative.downscale(by);
            self.scale -= by as i32;
            // Exact because each bucket at the lower scale is the union of
            // 2^by whole buckets at the higher one.
            index >>= by;
        }
        let range = if positive { &mut self.positive } else { &mut self.negative };
        range.increment(index, self.max_size);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Writes scale, count, sum, zero_count, positive, negative, min and max
    /// into `p`, leaving attributes, times, exemplars and flags alone. An
    /// empty histogram gives count 0, the current scale and no min or max.
    ///
    /// Also sets zero_threshold to 0, the only threshold this histogram uses,
    /// so a reused point cannot carry a stale one. Bucket vectors already in
    /// `p` are reused.
    pub fn fill(&self, p: &mut ExponentialHistogramDataPoint) {
        p.scale = self.scale;
        p.count = self.count;
        p.sum = Some(self.sum);
        p.zero_count = self.zero_count;
        p.zero_threshold = 0.0;
        self.positive.fill(p.positive.get_or_insert_with(Buckets::default));
        self.negative.fill(p.negative.get_or_insert_with(Buckets::default));
        let any = self.count > 0;
        p.min = any.then_some(self.min);
        p.max = any.then_some(self.max);
    }
}

/// The buckets of one sign: `counts[j]` is the count of index `offset + j`.
/// Kept dense and anchored at the lowest index, rather than in a ring, so the
/// derived equality compares contents. Extending downwards shifts the counts,
/// but that happens at most `max_size` times per scale and the scale only
/// falls, so the cost over a histogram's life is bounded.
#[derive(Clone, Debug, Default, PartialEq)]
struct Range {
    offset: i32,
    counts: Vec<u64>,
}

impl Range {
    /// How many scales to drop so that this range with `index` added spans
    /// at most `max_size` buckets; 0 when it already does.
    fn downscale_to_fit(&self, index: i32, max_size: u32) -> u32 {
        if self.counts.is_empty() {
            return 0;
        }
        let first = i64::from(self.offset);
        let last = first + self.counts.len() as i64 - 1;
        let (low, high) = (first.min(i64::from(index)), last.max(i64::from(index)));
        let mut by = 0;
        // Ends by 31: every index fits in i32, so shifted by 31 both are -1
        // or 0, two buckets, and max_size is at least 2.
        while (high >> by) - (low >> by) >= i64::from(max_size) {
            by += 1;
        }
        by
    }

    fn downscale(&mut self, by: u32) {
        if self.counts.is_empty() {
            return;
        }
        let first = i64::from(self.offset);
        let new_first = first >> by;
        for j in 0..self.counts.len() {
            // Never past `j`, so every count moves down into a slot that has
            // already been read.
            let to = (((first + j as i64) >> by) - new_first) as usize;
            if to != j {
                let c = std::mem::take(&mut self.counts[j]);
                self.counts[to] += c;
            }
        }
        let last = first + self.counts.len() as i64 - 1;
        self.counts.truncate(((last >> by) - new_first + 1) as usize);
        self.offset = new_first as i32;
    }

    /// Counts one value at `index`, which `downscale_to_fit` has made fit.
    fn increment(&mut self, index: i32, max_size: u32) {
        if self.counts.is_empty() {
            self.offset = index;
        }
        let first = i64::from(self.offset);
        let index = i64::from(index);
        if index < first {
            let grow = (first - index) as usize;
            self.reserve(grow, max_size);
            self.counts.resize(self.counts.len() + grow, 0);
            self.counts.rotate_right(grow);
            self.offset = index as i32;
        } else if index - first >= self.counts.len() as i64 {
            let len = (index - first + 1) as usize;
            self.reserve(len - self.counts.len(), max_size);
            self.counts.resize(len, 0);
        }
        self.counts[(index - i64::from(self.offset)) as usize] += 1;
    }

    /// Doubles the capacity, as `Vec` would, but never past `max_size`, so a
    /// histogram's memory is bounded by its configuration.
    fn reserve(&mut self, additional: usize, max_size: u32) {
        let needed = self.counts.len() + additional;
        if needed > self.counts.capacity() {
            let doubled = (self.counts.capacity() * 2).max(4);
            self.counts.reserve_exact(doubled.min(max_size as usize).max(needed) - self.counts.len());
        }
    }

    fn fill(&self, out: &mut Buckets) {
        out.offset = if self.counts.is_empty() { 0 } else { self.offset };
        out.bucket_counts.clear();
        out.bucket_counts.extend_from_slice(&self.counts);
    }
}

const FRACTION_BITS: u32 = 52;
const FRACTION_MASK: u64 = (1 << FRACTION_BITS) - 1;
const EXPONENT_BIAS: i32 = 1023;

/// The index at `scale` of a positive finite `value`: the `i` with
/// `2^(i/2^scale) < value <= 2^((i+1)/2^scale)`.
fn index_of(value: f64, scale: i32) -> i32 {
    let (exponent, fraction) = decompose(value);
    if scale <= 0 {
        // A power of two is the upper bound of the bucket below its exponent.
        let index = exponent - i32::from(fraction == 0);
        // The arithmetic shift floors, which is also right for negative indexes.
        return index >> -scale;
    }
    if fraction == 0 {
        return (exponent << scale) - 1;
    }
    (exponent << scale) + index_in_octave(significand(fraction), scale)
}

/// `1.fraction`, in [1, 2).
fn significand(fraction: u64) -> f64 {
    f64::from_bits(((EXPONENT_BIAS as u64) << FRACTION_BITS) | fraction)
}

/// `value` as `1.fraction * 2^exponent`, subnormals included, so that they
/// map exactly instead of being rounded up to the least normal value.
fn decompose(value: f64) -> (i32, u64) {
    let bits = value.to_bits();
    let biased = ((bits >> FRACTION_BITS) & 0x7ff) as i32;
    let fraction = bits & FRACTION_MASK;
    if biased != 0 {
        return (biased - EXPONENT_BIAS, fraction);
    }
    // The leading one of a subnormal sits `zeros - 11` bits below the
    // implicit one of a normal number.
    let zeros = fraction.leading_zeros() as i32;
    let shift = zeros - 11;
    ((1 - EXPONENT_BIAS) - shift, (fraction << shift) & FRACTION_MASK)
}

/// How far `log2(m) * 2^scale` may be from an integer before the logarithm
/// alone cannot be trusted to pick the side of the boundary, per unit of
/// 2^scale. The libm `log2` of a value in [1, 2) is off by at most about
/// 2^-52; this leaves a margin of 2^12 and sends about one value in 2^(39 -
/// scale) to the slow path.
const TRUST: f64 = 1.0 / (1u64 << 40) as f64;

/// The index within its octave, in `0..2^scale`, of `m` in (1, 2), for scale > 0.
fn index_in_octave(m: f64, scale: i32) -> i32 {
    let buckets = f64::from(1u32 << scale);
    let x = m.log2() * buckets;
    let below = x as i32;
    let rest = x - f64::from(below);
    let margin = TRUST * buckets;
    if rest > margin && rest < 1.0 - margin {
        return below;
    }
    // Near boundary k the index is k when m is above it, k - 1 otherwise;
    // 2^(k/2^scale) is irrational for 0 < k < 2^scale, so m is never on it.
    let k = x.round() as i32;
    if k <= 0 {
        return 0;
    }
    if k >= 1 << scale {
        return (1 << scale) - 1;
    }
    let (high, low) = boundary((k as u32) << (MAX_SCALE_BITS - scale as u32));
    // m - high is exact (both in [1, 2]); see `boundaries_are_far_from_doubles`
    // for why this comparison cannot be fooled by the boundary's error.
    if m - high > low {
        k
    } else {
        k - 1
    }
}

const MAX_SCALE_BITS: u32 = 20;

/// `2^(2^-t)` for t = 1..=20 as double-double (high + low), the exact value
/// rounded to about 106 bits (computed with 80-digit decimal square roots of 2).
const ROOTS: [(f64, f64); MAX_SCALE_BITS as usize] = [
    (std::f64::consts::SQRT_2, -9.667293313452913e-17),
    (1.189207115002721, 3.982015231465646e-17),
    (1.0905077326652577, -3.046782079812471e-17),
    (1.0442737824274138, 8.551889705537965e-17),
    (1.0218971486541166, 5.109225028973444e-17),
    (1.0108892860517005, -1.5234778603368577e-17),
    (1.0054299011128027, 9.499186535455032e-17),
    (1.0027112750502025, -3.636615928692264e-17),
    (1.0013547198921082, -1.8973728416792993e-17),
    (1.0006771306930664, -5.1151232976856676e-17),
    (1.0003385080526823, -5.141333931318957e-18),
    (1.0001692397053021, 9.336185335478462e-17),
    (1.0000846162726944, -9.121259996276464e-17),
    (1.0000423072413958, 6.341578872441936e-17),
    (1.0000211533969647, 7.325570192377791e-17),
    (1.0000105766425498, -5.5293019776913155e-17),
    (1.0000052883072919, -8.77020184136073e-17),
    (1.0000026441501502, -4.9621552656751707e-17),
    (1.0000013220742012, -1.0836472500078521e-16),
    (1.0000006610368821, -4.717084746532034e-17),
];

/// `2^(k/2^20)` for k in 0..2^20 as double-double, with a relative error
/// below 2^-97: at most twenty products, each of factors good to 2^-105 and
/// itself good to 2^-104.
fn boundary(k: u32) -> (f64, f64) {
    let mut acc = (1.0, 0.0);
    for (t, root) in ROOTS.iter().enumerate() {
        if k & (1 << (MAX_SCALE_BITS as usize - 1 - t)) != 0 {
            acc = mul_dd(acc, *root);
        }
    }
    acc
}

/// Double-double product by Dekker's method rather than `mul_add`, which has
/// no wasm instruction and would go through a software fma.
fn mul_dd(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    let (p, e) = two_product(a.0, b.0);
    let e = e + (a.0 * b.1 + a.1 * b.0);
    let high = p + e;
    (high, e - (high - p))
}

fn two_product(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    let (ah, al) = split(a);
    let (bh, bl) = split(b);
    (p, ((ah * bh - p) + ah * bl + al * bh) + al * bl)
}

fn split(a: f64) -> (f64, f64) {
    let c = 134_217_729.0 * a;
    let high = c - (c - a);
    (high, a - high)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::splitmix64;
    use std::collections::BTreeMap;

    fn point(h: &ExponentialHistogram) -> ExponentialHistogramDataPoint {
        let mut p = ExponentialHistogramDataPoint::default();
        h.fill(&mut p);
        p
    }

    fn buckets(b: &Option<Buckets>) -> (i32, Vec<u64>) {
        let b = b.as_ref().expect("fill always sets both ranges");
        (b.offset, b.bucket_counts.clone())
    }

    /// 2^e exactly, where `powi` would underflow for subnormal results.
    fn pow2(e: i32) -> f64 {
        if e >= -1022 {
            f64::from_bits(((e + EXPONENT_BIAS) as u64) << FRACTION_BITS)
        } else {
            f64::from_bits(1 << (e + 1074))
        }
    }

    fn next_up(x: f64) -> f64 {
        f64::from_bits(x.to_bits() + 1)
    }

    fn next_down(x: f64) -> f64 {
        f64::from_bits(x.to_bits() - 1)
    }

    /// Whether positive `v` is above the lower bound of bucket `index` at
    /// `scale`, decided exactly: on exponents, then within the octave against
    /// the double-double boundary.
    fn above_lower(v: f64, index: i64, scale: i32) -> bool {
        let (e, fraction) = decompose(v);
        let m = significand(fraction);
        let (octave, k) = if scale > 0 {
            (index >> scale, ((index & ((1 << scale) - 1)) as u32) << (MAX_SCALE_BITS - scale as u32))
        } else {
            (index << -scale, 0)
        };
        let (high, low) = boundary(k);
        i64::from(e) > octave || (i64::from(e) == octave && m - high > low)
    }

    fn in_bucket(v: f64, index: i32, scale: i32) -> bool {
        above_lower(v, i64::from(index), scale) && !above_lower(v, i64::from(index) + 1, scale)
    }

    #[test]
    fn roots_square_to_each_other() {
        // Each constant squared must give the one before it, and the first 2,
        // to about 2^-104: a mistyped digit anywhere breaks the chain.
        let mut previous = (2.0, 0.0);
        for root in ROOTS {
            let (h, l) = mul_dd(root, root);
            let diff = (h - previous.0) + (l - previous.1);
            assert!(diff.abs() < 2f64.powi(-101), "{root:?}: {diff:e}");
            previous = root;
        }
    }

    #[test]
    fn boundaries_are_far_from_doubles() {
        // The slow path compares m with a boundary known to 2^-97 relative.
        // That decides correctly if no double is within that of the true
        // boundary; checking all 2^20 boundaries of scale 20 covers every
        // scale, since a boundary at a lower scale is one at scale 20.
        let ulp = 2f64.powi(-52);
        let mut closest = (f64::INFINITY, 0);
        for k in 1..1u32 << MAX_SCALE_BITS {
            let (h, l) = boundary(k);
            assert!((1.0..2.0).contains(&h));
            let distance = l.abs().min(ulp - l.abs());
            if distance < closest.0 {
                closest = (distance, k);
            }
        }
        // Found independently too, with 70-digit decimals: the closest is
        // 4.7373407e-24 (2^-77.5) at k = 308076.
        assert_eq!(closest.1, 308076);
        assert!((closest.0 / 4.7373407e-24 - 1.0).abs() < 1e-6, "{closest:?}");
    }

    #[test]
    fn spec_example_one_two_four() {
        // With 4 buckets, 1 and 2 force scale 1 (indexes -1 and 1) and 4
        // (index 3 there) forces scale 0: (0.5, 1], (1, 2], (2, 4].
        let mut h = ExponentialHistogram::new(4, 20);
        for v in [1.0, 2.0, 4.0] {
            h.record(v);
        }
        let p = point(&h);
        assert_eq!(p.scale, 0);
        assert_eq!(buckets(&p.positive), (-1, vec![1, 1, 1]));
        assert_eq!(buckets(&p.negative), (0, vec![]));
        assert_eq!((p.count, p.sum, p.zero_count, p.min, p.max), (3, Some(7.0), 0, Some(1.0), Some(4.0)));

        let mut h = ExponentialHistogram::new(4, 20);
        h.record(1.0);
        h.record(2.0);
        assert_eq!(point(&h).scale, 1);
        assert_eq!(buckets(&point(&h).positive), (-1, vec![1, 0, 1]));

        // Two buckets: scale -1, where (1/4, 1] holds 1 and (1, 4] holds 2 and 4.
        let mut h = ExponentialHistogram::new(2, 20);
        for v in [1.0, 2.0, 4.0] {
            h.record(v);
        }
        let p = point(&h);
        assert_eq!(p.scale, -1);
        assert_eq!(buckets(&p.positive), (-1, vec![1, 2]));
    }

    #[test]
    fn spec_ideal_scales_for_160_buckets() {
        // The table in the SDK specification: input range -> ideal scale.
        for (low, high, scale) in [(1e-3, 4e-3, 6), (1e-3, 20e-3, 5), (1e-3, 1.0, 4), (1e-3, 100.0, 3), (1e-6, 10.0, 2)]
        {
            let mut h = ExponentialHistogram::new(160, 20);
            h.record(low);
            h.record(high);
            assert_eq!(point(&h).scale, scale, "{low}..{high}");
        }
    }

    #[test]
    fn single_value_keeps_max_scale() {
        for v in [1.0, 1e-300, 1e300, -3.5, f64::MAX, 5e-324] {
            let mut h = ExponentialHistogram::new(160, 20);
            h.record(v);
            assert_eq!(point(&h).scale, 20, "{v}");
        }
    }

    #[test]
    fn powers_of_two_at_every_scale() {
        for scale in -10..=20 {
            for e in -1074..=1023 {
                let v = pow2(e);
                let expected = if scale >= 0 { (e << scale) - 1 } else { (e - 1) >> -scale };
                assert_eq!(index_of(v, scale), expected, "2^{e} at scale {scale}");
                assert!(in_bucket(v, expected, scale));
                if e % 97 == 0 {
                    let mut h = ExponentialHistogram::new(160, scale);
                    h.record(-v);
                    let p = point(&h);
                    assert_eq!((p.scale, buckets(&p.negative)), (scale, (expected, vec![1])));
                }
            }
        }
        // Boundaries by hand: scale 0 buckets are (2^i, 2^(i+1)].
        assert_eq!(index_of(1.0, 0), -1);
        assert_eq!(index_of(next_up(1.0), 0), 0);
        assert_eq!(index_of(2.0, 0), 0);
        assert_eq!(index_of(3.0, 0), 1);
        assert_eq!(index_of(4.0, 1), 3);
        assert_eq!(index_of(4.0, -1), 0);
        assert_eq!(index_of(next_up(4.0), -1), 1);
        assert_eq!(index_of(16.0, -2), 0);
        assert_eq!(index_of(17.0, -2), 1);
    }

    #[test]
    fn irrational_boundaries_are_exact() {
        // The double nearest sqrt(2) is above it; the one nearest 2^(1/4) and
        // 2^(5/8) below (checked with 60-digit decimals).
        assert_eq!(index_of(std::f64::consts::SQRT_2, 1), 1);
        assert_eq!(index_of(next_down(std::f64::consts::SQRT_2), 1), 0);
        assert_eq!(index_of(1.189207115002721, 2), 0);
        assert_eq!(index_of(next_up(1.189207115002721), 2), 1);
        assert_eq!(index_of(1.5422108254079407, 3), 4);
        assert_eq!(index_of(next_up(1.5422108254079407), 3), 5);
        assert_eq!(index_of(1.0000006610368821, 20), 1);
        assert_eq!(index_of(1.9999986779271097, 20), (1 << 20) - 2);
        assert_eq!(index_of(next_up(1.9999986779271097), 20), (1 << 20) - 1);
        assert_eq!(index_of(next_down(2.0), 20), (1 << 20) - 1);
        assert_eq!(index_of(next_up(1.0), 20), 0);

        // The doubles around boundaries, in octaves far apart, at every
        // positive scale: where a bare logarithm goes wrong.
        let mut state = 7;
        for scale in 1..=20 {
            for _ in 0..2000 {
                let r = splitmix64(&mut state);
                let k = (r as u32) & ((1 << scale) - 1);
                let (h, _) = boundary(k << (MAX_SCALE_BITS - scale as u32));
                let e = (r >> 40) as i32 % 2000 - 1000;
                for m in [next_down(h), h, next_up(h)] {
                    if m <= 1.0 || m >= 2.0 {
                        continue;
                    }
                    let v = m * 2f64.powi(e);
                    let index = index_of(v, scale);
                    assert!(in_bucket(v, index, scale), "{v:e} at scale {scale} got {index}");
                }
            }
        }
    }

    #[test]
    fn extremes_and_subnormals() {
        let extremes = [f64::MAX, f64::MIN_POSITIVE, 5e-324, next_down(f64::MIN_POSITIVE), 1.0, pow2(-1023)];
        for scale in -10..=20 {
            for v in extremes {
                let index = index_of(v, scale);
                assert!(in_bucket(v, index, scale), "{v:e} at scale {scale}");
            }
        }
        assert_eq!(index_of(f64::MAX, 20), (1 << 30) - 1);
        assert_eq!(index_of(5e-324, 20), (-1074 << 20) - 1);
        assert_eq!(index_of(pow2(-1023), 0), -1024);
        assert_eq!(index_of(3e-323, 0), -1072);

        // All of them together, both signs, even with the fewest buckets.
        for max_size in [2, 3, 4, 160] {
            let mut h = ExponentialHistogram::new(max_size, 20);
            for v in extremes.iter().chain(&[0.0, -0.0]) {
                h.record(*v);
                h.record(-v);
            }
            let p = point(&h);
            assert_eq!(p.count, 16);
            assert_eq!(p.zero_count, 4);
            assert_eq!(p.min, Some(-f64::MAX));
            assert_eq!(p.max, Some(f64::MAX));
            for b in [&p.positive, &p.negative] {
                let (_, counts) = buckets(b);
                assert!(counts.len() <= max_size as usize);
                assert_eq!(counts.iter().sum::<u64>(), 6);
            }
            assert!(p.scale >= -11, "{max_size}: {}", p.scale);
            if max_size == 2 {
                assert_eq!(p.scale, -11);
            }
        }
    }

    #[test]
    fn non_finite_values_are_ignored() {
        let mut h = ExponentialHistogram::new(160, 20);
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -f64::NAN] {
            h.record(v);
        }
        assert_eq!(h, ExponentialHistogram::new(160, 20));
        h.record(1.5);
        let before = h.clone();
        h.record(f64::NAN);
        assert_eq!(h, before);
        assert_eq!(h.count(), 1);
    }

    #[test]
    fn empty_histogram() {
        let h = ExponentialHistogram::new(0, 99);
        assert_eq!(h.max_size, 2);
        let p = point(&h);
        assert_eq!((p.count, p.scale, p.sum, p.zero_count, p.min, p.max), (0, 20, Some(0.0), 0, None, None));
        assert_eq!(buckets(&p.positive), (0, vec![]));
        assert_eq!(buckets(&p.negative), (0, vec![]));
        assert_eq!(point(&ExponentialHistogram::new(160, -50)).scale, -10);
    }

    #[test]
    fn fill_leaves_other_fields_and_overwrites_stale_ones() {
        let mut h = ExponentialHistogram::new(160, 20);
        h.record(3.0);
        let mut p = ExponentialHistogramDataPoint {
            start_time_unix_nano: 5,
            time_unix_nano: 6,
            flags: 1,
            zero_threshold: 0.5,
            min: Some(-9.0),
            positive: Some(Buckets { offset: 4, bucket_counts: vec![9; 40] }),
            negative: Some(Buckets { offset: 4, bucket_counts: vec![9; 40] }),
            ..Default::default()
        };
        h.fill(&mut p);
        assert_eq!((p.start_time_unix_nano, p.time_unix_nano, p.flags), (5, 6, 1));
        assert_eq!((p.zero_threshold, p.min, p.max), (0.0, Some(3.0), Some(3.0)));
        assert_eq!(buckets(&p.positive), (index_of(3.0, 20), vec![1]));
        assert_eq!(buckets(&p.negative), (0, vec![]));
    }

    #[test]
    fn negatives_and_zeros() {
        let mut h = ExponentialHistogram::new(4, 0);
        for v in [-1.0, -2.0, -2.0, 0.0, -0.0, 3.0, -3.0, 0.0] {
            h.record(v);
        }
        let p = point(&h);
        assert_eq!((p.scale, p.count, p.zero_count, p.sum), (0, 8, 3, Some(-5.0)));
        assert_eq!((p.min, p.max), (Some(-3.0), Some(3.0)));
        // |v| 1 in (1/2, 1], 2 in (1, 2], 3 in (2, 4].
        assert_eq!(buckets(&p.negative), (-1, vec![1, 2, 1]));
        assert_eq!(buckets(&p.positive), (1, vec![1]));

        // Negatives force the shared scale down for positives too.
        let mut h = ExponentialHistogram::new(2, 0);
        h.record(1.0);
        h.record(-1.0);
        h.record(-4.0);
        let p = point(&h);
        assert_eq!(p.scale, -1);
        assert_eq!(buckets(&p.positive), (-1, vec![1]));
        assert_eq!(buckets(&p.negative), (-1, vec![1, 1]));
    }

    #[test]
    fn downscaling_merges_into_the_right_buckets() {
        // Every value at the scale a histogram ends at, recorded directly,
        // gives the same buckets: downscaling moved each count to the bucket
        // its value belongs to, and lost none.
        let mut state = 11;
        for max_size in [2, 3, 5, 20, 160] {
            let mut h = ExponentialHistogram::new(max_size, 20);
            let mut values = Vec::new();
            for i in 0..3000 {
                let r = splitmix64(&mut state);
                // Widening spread so the scale falls in many steps.
                let v = (1.0 + (r >> 11) as f64 / (1u64 << 53) as f64) * 2f64.powi((i / 30) - 50);
                let v = if r & 1 == 0 { v } else { -v / 3.0 };
                h.record(v);
                values.push(v);
            }
            let p = point(&h);
            let mut direct = ExponentialHistogram::new(max_size, p.scale);
            values.iter().for_each(|v| direct.record(*v));
            let q = point(&direct);
            assert_eq!(q.scale, p.scale);
            assert_eq!((buckets(&p.positive), buckets(&p.negative)), (buckets(&q.positive), buckets(&q.negative)));
            assert_eq!(p.count, 3000);
        }

        // By hand: scale 2 indexes 0..=3 of (1, 2] merge into index 0 at
        // scale 0, and 4..=7 of (2, 4] into index 1.
        let mut h = ExponentialHistogram::new(8, 2);
        for v in [1.1, 1.3, 1.6, 1.9, 2.2, 3.0, 3.9] {
            h.record(v);
        }
        let p = point(&h);
        assert_eq!((p.scale, buckets(&p.positive)), (2, (0, vec![1, 1, 1, 1, 1, 0, 1, 1])));
        // 0.3 is index -7 at scale 2: fifteen buckets, so scale 1, where
        // pairs merge: (1, 2^(1/2)] holds 1.1 and 1.3, and so on.
        h.record(0.3);
        let p = point(&h);
        assert_eq!((p.scale, buckets(&p.positive)), (1, (-4, vec![1, 0, 0, 0, 2, 2, 1, 2])));
        // 0.2 is index -5 at scale 1: nine buckets, so scale 0, where 0.2 is
        // in (1/8, 1/4], 0.3 in (1/4, 1/2], 1.1 to 1.9 in (1, 2] and 2.2 to
        // 3.9 in (2, 4].
        h.record(0.2);
        let p = point(&h);
        assert_eq!((p.scale, buckets(&p.positive)), (0, (-3, vec![1, 1, 0, 4, 3])));
    }

    #[test]
    fn keeps_the_ideal_scale() {
        // After every value the scale is the highest the data allows: either
        // the maximum, or one more would need more than max_size buckets for
        // the magnitudes seen in one of the signs.
        let mut state = 5;
        for max_size in [2, 4, 160] {
            let mut h = ExponentialHistogram::new(max_size, 20);
            // (least, greatest) magnitude per sign.
            let mut seen = [(f64::INFINITY, 0.0f64); 2];
            for i in 0..5000 {
                let r = splitmix64(&mut state);
                let v = ((r >> 11) + 1) as f64 * 2f64.powi(-40 - (i % 23) * (i % 7));
                let v = if r & 2 == 0 { v } else { -v };
                h.record(v);
                let s = &mut seen[usize::from(v < 0.0)];
                *s = (s.0.min(v.abs()), s.1.max(v.abs()));
                let scale = point(&h).scale;
                let too_wide = seen.iter().any(|(least, greatest)| {
                    *greatest > 0.0 && index_of(*greatest, scale + 1) - index_of(*least, scale + 1) >= max_size as i32
                });
                assert!(scale == 20 || too_wide, "scale {scale} is not the ideal one after {i} values");
            }
        }
    }

    #[test]
    fn long_random_sequence_every_value_in_its_bucket() {
        let mut state = 42;
        for (max_size, max_scale) in [(160, 20), (4, 20), (2, 5), (40, 0), (7, -10), (160, 8)] {
            let mut h = ExponentialHistogram::new(max_size, max_scale);
            let mut values = Vec::new();
            for _ in 0..20_000 {
                let r = splitmix64(&mut state);
                let v = match r % 16 {
                    0 => 0.0,
                    // Any finite double, subnormals included.
                    1 => loop {
                        let v = f64::from_bits(splitmix64(&mut state));
                        if v.is_finite() {
                            break v;
                        }
                    },
                    // Latency-like: 1µs to 100s.
                    _ => {
                        let u = (r >> 11) as f64 / (1u64 << 53) as f64;
                        let v = 1e-6 * 1e8f64.powf(u);
                        if r & 16 == 0 {
                            v
                        } else {
                            -v
                        }
                    }
                };
                h.record(v);
                values.push(v);
            }
            let p = point(&h);
            assert_eq!(p.count, values.len() as u64);
            assert_eq!(p.sum, Some(values.iter().sum()));
            assert_eq!(p.min, values.iter().copied().reduce(f64::min));
            assert_eq!(p.max, values.iter().copied().reduce(f64::max));
            let mut expected = [BTreeMap::new(), BTreeMap::new()];
            let mut zeros = 0;
            for v in &values {
                if *v == 0.0 {
                    zeros += 1;
                    continue;
                }
                let index = index_of(v.abs(), p.scale);
                assert!(in_bucket(v.abs(), index, p.scale), "{v:e} at scale {}", p.scale);
                // And, independently of the double-double code, near where
                // the logarithm puts it.
                let x = v.abs().log2() * 2f64.powi(p.scale);
                assert!(x > f64::from(index) - 1e-6 && x < f64::from(index) + 1.0 + 1e-6, "{v:e}");
                *expected[usize::from(*v < 0.0)].entry(index).or_insert(0u64) += 1;
            }
            assert_eq!(p.zero_count, zeros);
            for (range, expected) in [&p.positive, &p.negative].into_iter().zip(expected) {
                let (offset, counts) = buckets(range);
                assert!(counts.len() <= max_size as usize);
                assert!(counts.first() != Some(&0) && counts.last() != Some(&0), "dense from lowest to highest");
                let got: BTreeMap<i32, u64> =
                    counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(j, c)| (offset + j as i32, *c)).collect();
                assert_eq!(got, expected, "{max_size} {max_scale}");
            }
        }
    }

    #[test]
    fn memory_stays_within_max_size() {
        let mut state = 3;
        for max_size in [2, 3, 10, 160] {
            let mut h = ExponentialHistogram::new(max_size, 20);
            for _ in 0..10_000 {
                let v = f64::from_bits(splitmix64(&mut state) >> 1);
                if v.is_finite() {
                    h.record(v);
                    h.record(-v * 0.5);
                }
                assert!(h.positive.counts.capacity() <= max_size as usize);
                assert!(h.negative.counts.capacity() <= max_size as usize);
            }
        }
    }
}
