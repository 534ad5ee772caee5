//! The summary `stats` gives of GenAI operations: per operation, name and
//! provider, counts, errors by type, latency quantiles, tokens and cost.

use std::collections::BTreeMap;

use serde::Serialize;

/// Values kept in log-linear buckets: the top 7 bits of the mantissa under
/// each binary exponent, so a bucket's midpoint is within 1/256 of any value
/// in it. Integer arithmetic on the bits keeps every host's answer identical.
#[derive(Default)]
struct Sketch {
    buckets: BTreeMap<u64, u64>,
    /// Zero and negative durations (an end before its start).
    zeros: u64,
    count: u64,
}

const MANTISSA_SHIFT: u32 = 52 - 7;

impl Sketch {
    fn add(&mut self, v: f64) {
        self.count += 1;
        if v > 0.0 && v.is_finite() {
            *self.buckets.entry(v.to_bits() >> MANTISSA_SHIFT).or_default() += 1;
        } else {
            self.zeros += 1;
        }
    }

    /// The value at quantile `q` (nearest rank), as its bucket's midpoint.
    fn quantile(&self, q: f64) -> f64 {
        let rank = ((q * self.count as f64).ceil() as u64).max(1);
        if rank <= self.zeros {
            return 0.0;
        }
        let mut seen = self.zeros;
        for (&index, &n) in &self.buckets {
            seen += n;
            if seen >= rank {
                let low = f64::from_bits(index << MANTISSA_SHIFT);
                let high = f64::from_bits((index + 1) << MANTISSA_SHIFT);
                return (low + high) / 2.0;
            }
        }
        0.0
    }
}

#[derive(Serialize)]
struct Quantiles {
    p50: f64,
    p95: f64,
    p99: f64,
}

#[derive(Default)]
struct Entry {
    count: u64,
    error_types: BTreeMap<String, u64>,
    durations: Sketch,
    input_tokens: u64,
    output_tokens: u64,
    cost_usd: f64,
    cost_unknown: u64,
}

/// One ended operation, as the summary counts it.
pub struct Observation<'a> {
    pub operation: &'a str,
    pub name: &'a str,
    pub provider: &'a str,
    pub seconds: f64,
    pub error_type: Option<&'a str>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// `Some(None)`: usage was recorded but the model has no price.
    pub cost: Option<Option<f64>>,
}

#[derive(Default)]
pub struct Summary {
    entries: BTreeMap<(String, String, String), Entry>,
}

impl Summary {
    pub fn observe(&mut self, o: Observation) {
        let key = (o.operation.to_owned(), o.name.to_owned(), o.provider.to_owned());
        let e = self.entries.entry(key).or_default();
        e.count += 1;
        e.durations.add(o.seconds);
        if let Some(t) = o.error_type {
            *e.error_types.entry(t.to_owned()).or_default() += 1;
        }
        e.input_tokens += o.input_tokens;
        e.output_tokens += o.output_tokens;
        match o.cost {
            Some(Some(usd)) => e.cost_usd += usd,
            Some(None) => e.cost_unknown += 1,
            None => {}
        }
    }

    /// The `operations` member of `stats` (see the WIT).
    pub fn to_json(&self) -> serde_json::Value {
        #[derive(Serialize)]
        struct Row<'a> {
            operation: &'a str,
            name: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            provider: &'a str,
            count: u64,
            errors: u64,
            error_types: &'a BTreeMap<String, u64>,
            duration_s: Quantiles,
            input_tokens: u64,
            output_tokens: u64,
            cost_usd: f64,
            cost_unknown: u64,
        }
        let rows: Vec<Row> = self
            .entries
            .iter()
            .map(|((operation, name, provider), e)| Row {
                operation,
                name,
                provider,
                count: e.count,
                errors: e.error_types.values().sum(),
                error_types: &e.error_types,
                duration_s: Quantiles {
                    p50: e.durations.quantile(0.5),
                    p95: e.durations.quantile(0.95),
                    p99: e.durations.quantile(0.99),
                },
                input_tokens: e.input_tokens,
                output_tokens: e.output_tokens,
                cost_usd: e.cost_usd,
                cost_unknown: e.cost_unknown,
            })
            .collect();
        serde_json::to_value(rows).expect("the summary serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_one_percent() {
        let mut s = Sketch::default();
        // 1 ms to 10 s, spread over four decades.
        let values: Vec<f64> = (1..=10_000).map(|i| 0.001 * 1.000_921_f64.powi(i)).collect();
        values.iter().for_each(|&v| s.add(v));
        for q in [0.5, 0.95, 0.99] {
            let exact = values[((q * values.len() as f64).ceil() as usize) - 1];
            let got = s.quantile(q);
            assert!((got - exact).abs() / exact < 0.01, "q{q}: {got} vs {exact}");
        }
        let mut empty = Sketch::default();
        assert_eq!(empty.quantile(0.5), 0.0);
        empty.add(0.0);
        empty.add(2.0);
        assert_eq!(empty.quantile(0.5), 0.0);
        assert!((empty.quantile(0.99) - 2.0).abs() < 0.01);
    }
}
