//! OTLP request bodies: protobuf (prost) or JSON, optionally gzip-compressed.

use std::collections::HashMap;
use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

use crate::config::{Encoding, OtlpRoute};
use crate::spans::Scope;

/// Groups spans under one resource, by scope in order of first appearance.
pub fn trace_request(resource: &[KeyValue], spans: Vec<(Scope, Span)>) -> ExportTraceServiceRequest {
    let mut scope_spans: Vec<ScopeSpans> = Vec::new();
    let mut scopes: HashMap<Scope, usize> = HashMap::new();
    for (scope, span) in spans {
        let i = match scopes.get(&scope) {
            Some(&i) => i,
            None => {
                scope_spans.push(ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: scope.name.clone(),
                        version: scope.version.clone(),
                        ..Default::default()
                    }),
                    spans: Vec::new(),
                    schema_url: String::new(),
                });
                scopes.insert(scope, scope_spans.len() - 1);
                scope_spans.len() - 1
            }
        };
        scope_spans[i].spans.push(span);
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: resource.to_vec(), ..Default::default() }),
            scope_spans,
            schema_url: String::new(),
        }],
    }
}

pub fn content_type(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Protobuf => "application/x-protobuf",
        Encoding::Json => "application/json",
    }
}

/// The request body for `route`, compressed if it asks for gzip.
pub fn body(route: &OtlpRoute, request: &ExportTraceServiceRequest) -> Vec<u8> {
    let raw = match route.encoding {
        Encoding::Protobuf => request.encode_to_vec(),
        Encoding::Json => crate::otlp_json::trace_request(request).into_bytes(),
    };
    if route.gzip {
        gzip(&raw)
    } else {
        raw
    }
}

/// The spans of a body `body` built for `route`, with their scopes: the
/// inverse of `body`, for splitting a batch the receiver found too large.
pub fn spans_of_body(route: &OtlpRoute, body: &[u8]) -> Option<Vec<(Scope, Span)>> {
    let raw = if route.gzip {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut out).ok()?;
        out
    } else {
        body.to_vec()
    };
    let request = match route.encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(&raw[..]).ok()?,
        Encoding::Json => crate::otlp_json::decode_trace_request(&raw).ok()?,
    };
    Some(
        request
            .resource_spans
            .into_iter()
            .flat_map(|rs| rs.scope_spans)
            .flat_map(|ss| {
                let scope = ss.scope.map(|s| Scope { name: s.name, version: s.version }).unwrap_or_default();
                ss.spans.into_iter().map(move |span| (scope.clone(), span))
            })
            .collect(),
    )
}

/// Deterministic gzip: no file name, modification time zero.
pub fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(raw.len() / 4 + 64), Compression::default());
    enc.write_all(raw).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}
