//! Metric data points as envelopes (shared/reference/azure-monitor.md §4(b)
//! "Metrics", `export/metrics/_exporter.py`): one Metric envelope per data
//! point, with a single entry in `metrics`. The pipeline exports counters and
//! histograms as deltas for this backend (the preset prefers Delta), so each
//! value covers one export interval.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, Metric};

use super::envelopes::{BaseData, DataPoint, Item, MetricData, DOMAIN_VERSION, METRIC};
use super::format::{properties, time, truncate, MAX_NAME};
use super::tags::Tags;

pub fn items(m: &Metric, part_a: &Tags) -> Vec<Item> {
    let name = truncate(&m.name, MAX_NAME);
    // (time, attributes, value, count, min, max) of each point.
    type Point<'a> = (u64, &'a [KeyValue], f64, u64, Option<f64>, Option<f64>);
    let number = |v: &Option<number_data_point::Value>| match v {
        Some(number_data_point::Value::AsDouble(d)) => *d,
        Some(number_data_point::Value::AsInt(i)) => *i as f64,
        None => 0.0,
    };
    let points: Vec<Point> = match &m.data {
        Some(metric::Data::Sum(s)) => s
            .data_points
            .iter()
            .map(|p| (p.time_unix_nano, &p.attributes[..], number(&p.value), 1, None, None))
            .collect(),
        Some(metric::Data::Gauge(g)) => g
            .data_points
            .iter()
            .map(|p| (p.time_unix_nano, &p.attributes[..], number(&p.value), 1, None, None))
            .collect(),
        // Aggregations: the value is the sum (§4(b)).
        Some(metric::Data::Histogram(h)) => h
            .data_points
            .iter()
            .map(|p| (p.time_unix_nano, &p.attributes[..], p.sum.unwrap_or(0.0), p.count, p.min, p.max))
            .collect(),
        Some(metric::Data::ExponentialHistogram(h)) => h
            .data_points
            .iter()
            .map(|p| (p.time_unix_nano, &p.attributes[..], p.sum.unwrap_or(0.0), p.count, p.min, p.max))
            .collect(),
        Some(metric::Data::Summary(s)) => {
            s.data_points.iter().map(|p| (p.time_unix_nano, &p.attributes[..], p.sum, p.count, None, None)).collect()
        }
        None => Vec::new(),
    };
    points
        .into_iter()
        // JSON has no NaN or infinity; such a point cannot be sent.
        .filter(|(_, _, value, ..)| value.is_finite())
        .map(|(at, attributes, value, count, min, max)| Item {
            name: METRIC,
            time: time(at),
            sample_rate: 100.0,
            tags: part_a.clone(),
            data: BaseData::Metric(MetricData {
                ver: DOMAIN_VERSION,
                metrics: vec![DataPoint {
                    name: name.clone(),
                    value,
                    count,
                    min: min.filter(|v| v.is_finite()),
                    max: max.filter(|v| v.is_finite()),
                }],
                properties: properties(attributes, |_| false),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::metrics::v1::{
        ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, NumberDataPoint,
        Sum, Summary, SummaryDataPoint,
    };
    use serde_json::{json, Value as Json};

    use super::*;
    use crate::attributes::{key_value, string_value};

    const T: u64 = 1_767_268_800_000_000_000;

    fn metric(data: metric::Data) -> Metric {
        Metric { name: "agent.runs".into(), data: Some(data), ..Default::default() }
    }

    fn number(v: number_data_point::Value) -> NumberDataPoint {
        NumberDataPoint {
            time_unix_nano: T,
            attributes: vec![key_value("agent", string_value("planner"))],
            value: Some(v),
            ..Default::default()
        }
    }

    fn envelopes(m: &Metric) -> Vec<Json> {
        items(m, &Tags::new())
            .iter()
            .map(|i| serde_json::from_str(&super::super::envelopes::to_json(i, "K")).unwrap())
            .collect()
    }

    #[test]
    fn point_rows() {
        let histogram = HistogramDataPoint {
            time_unix_nano: T,
            count: 4,
            sum: Some(10.5),
            min: Some(0.5),
            max: Some(6.0),
            ..Default::default()
        };
        let rows: Vec<(metric::Data, Json)> = vec![
            (
                metric::Data::Sum(Sum {
                    data_points: vec![number(number_data_point::Value::AsInt(3))],
                    ..Default::default()
                }),
                json!({"name": "agent.runs", "value": 3.0, "count": 1}),
            ),
            (
                metric::Data::Gauge(Gauge { data_points: vec![number(number_data_point::Value::AsDouble(0.25))] }),
                json!({"name": "agent.runs", "value": 0.25, "count": 1}),
            ),
            (
                metric::Data::Histogram(Histogram { data_points: vec![histogram], aggregation_temporality: 1 }),
                json!({"name": "agent.runs", "value": 10.5, "count": 4, "min": 0.5, "max": 6.0}),
            ),
            (
                metric::Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: vec![ExponentialHistogramDataPoint {
                        time_unix_nano: T,
                        count: 2,
                        sum: Some(3.0),
                        min: Some(1.0),
                        max: Some(2.0),
                        ..Default::default()
                    }],
                    aggregation_temporality: 1,
                }),
                json!({"name": "agent.runs", "value": 3.0, "count": 2, "min": 1.0, "max": 2.0}),
            ),
            (
                metric::Data::Summary(Summary {
                    data_points: vec![SummaryDataPoint { time_unix_nano: T, count: 5, sum: 9.0, ..Default::default() }],
                }),
                json!({"name": "agent.runs", "value": 9.0, "count": 5}),
            ),
        ];
        for (i, (data, point)) in rows.into_iter().enumerate() {
            let e = envelopes(&metric(data));
            assert_eq!(e.len(), 1, "row {i}");
            assert_eq!(e[0]["name"], METRIC, "row {i}");
            assert_eq!(e[0]["time"], "2026-01-01T12:00:00.000000Z", "row {i}");
            assert_eq!(e[0]["data"]["baseType"], "MetricData", "row {i}");
            assert_eq!(e[0]["data"]["baseData"]["metrics"], json!([point]), "row {i}");
            assert_eq!(e[0]["data"]["baseData"]["ver"], 2, "row {i}");
        }
    }

    #[test]
    fn one_envelope_per_point_with_its_attributes() {
        let m = metric(metric::Data::Sum(Sum {
            data_points: vec![
                number(number_data_point::Value::AsInt(1)),
                NumberDataPoint { value: Some(number_data_point::Value::AsDouble(f64::NAN)), ..Default::default() },
                NumberDataPoint {
                    attributes: vec![key_value("agent", string_value("critic"))],
                    value: Some(number_data_point::Value::AsInt(2)),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }));
        let e = envelopes(&m);
        assert_eq!(e.len(), 2, "the NaN point cannot be sent");
        assert_eq!(e[0]["data"]["baseData"]["properties"], json!({"agent": "planner"}));
        assert_eq!(e[1]["data"]["baseData"]["properties"], json!({"agent": "critic"}));
        assert_eq!(e[1]["data"]["baseData"]["metrics"][0]["value"], 2.0);
    }
}
