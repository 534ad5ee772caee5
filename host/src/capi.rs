//! The C ABI (`host/include/polytel.h`): what a binding without a component
//! runtime of its own (Go, over cgo) calls. The binding keeps the public API,
//! the current span, the clock, ids and sampling, and writes records in the
//! batch JSON of `wit/polytel.wit`; this library buffers them, ships them to
//! the core and runs the export worker, exactly as for the Rust API.
//!
//! Every function catches panics (none may cross into the caller), checks its
//! pointers, and reports failures as one-sentence strings. The ownership rules
//! are in the header.

use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use polytel_core::pipeline::Signal;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::options::{Clock, Options};
use crate::span::SpanContext;
use crate::telemetry::Telemetry;

/// What a `polytel_t *` points to.
pub struct Handle {
    telemetry: Telemetry,
    /// The clock given to the pipeline, for `polytel_now`; None is the system clock.
    clock: Option<Clock>,
}

type Outcome<T> = std::result::Result<T, String>;

/// Runs `f`, turning an error or a panic into `*err` and `fallback`.
fn guard<T>(err: *mut *mut c_char, fallback: T, f: impl FnOnce() -> Outcome<T>) -> T {
    if !err.is_null() {
        // SAFETY: the caller passes NULL or a writable `char **` (see the header).
        unsafe { *err = std::ptr::null_mut() };
    }
    let message = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => return value,
        Ok(Err(message)) => message,
        Err(_) => "polytel: an internal error occurred in the telemetry library (a bug: please report it).".to_owned(),
    };
    if !err.is_null() {
        // SAFETY: as above.
        unsafe { *err = to_c_string(message) };
    }
    fallback
}

/// A string the caller frees with `polytel_free_string`.
fn to_c_string(s: String) -> *mut c_char {
    // JSON and our messages hold no NUL byte; if one did, it would end the string early.
    let bytes: Vec<u8> = s.into_bytes().into_iter().take_while(|b| *b != 0).collect();
    CString::new(bytes).map_or(std::ptr::null_mut(), CString::into_raw)
}

/// Borrows a (pointer, length) input string.
///
/// # Safety
/// `ptr` is NULL with `len` 0, or points to `len` readable bytes that stay
/// valid and unchanged during the call.
unsafe fn input<'a>(ptr: *const c_char, len: usize, what: &str) -> Outcome<&'a str> {
    if ptr.is_null() {
        return if len == 0 { Ok("") } else { Err(format!("polytel: {what} is NULL but its length is {len}.")) };
    }
    // SAFETY: guaranteed by the caller.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    std::str::from_utf8(bytes).map_err(|e| format!("polytel: {what} is not valid UTF-8 (at byte {}).", e.valid_up_to()))
}

/// Borrows the handle.
///
/// # Safety
/// `t` is NULL or a handle from `polytel_configure` not yet freed.
unsafe fn handle<'a>(t: *const Handle) -> Outcome<&'a Handle> {
    // SAFETY: guaranteed by the caller.
    unsafe { t.as_ref() }.ok_or_else(|| "polytel: the handle is NULL.".to_owned())
}

/// serde_json's messages may quote the value they could not read; a value can
/// be a credential, so quoted parts are left out.
fn without_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        if c == '"' || c == '`' {
            if !quoted {
                out.push_str("\"…\"");
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

/// A u64 given as a decimal string or a JSON number.
fn u64_member(v: &Value, name: &str) -> Outcome<u64> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        v => v.as_u64(),
    }
    .ok_or_else(|| {
        format!("polytel: the option {name} must be an unsigned 64-bit integer (a decimal string or number).")
    })
}

/// The clock of the "clock" option: `start`, `start + step`, … for every
/// reading but the export worker's, which see the latest value without
/// advancing it, so how often the worker wakes shifts no timestamp.
fn test_clock(start: u64, step: u64) -> Clock {
    let readings = Arc::new(AtomicU64::new(0));
    Arc::new(move || {
        let worker = std::thread::current().name() == Some("polytel-export");
        let n = if worker { readings.load(Ordering::SeqCst) } else { readings.fetch_add(1, Ordering::SeqCst) };
        start.wrapping_add(step.wrapping_mul(n))
    })
}

/// Options JSON to host options, with the members only the C ABI reads.
fn options_from_json(json: &str) -> Outcome<Options> {
    let value: Value = serde_json::from_str(json)
        .map_err(|e| format!("polytel: the options are not valid JSON ({}).", without_quoted(&e.to_string())))?;
    let Value::Object(mut members) = value else {
        return Err("polytel: the options must be a JSON object.".to_owned());
    };
    let env = members.remove("env");
    let host = members.remove("host");
    let detect_host = members.remove("detect_host");
    let seed = members.remove("seed");
    let clock = members.remove("clock");
    let memory = members.remove("core_memory_limit");
    let mut options: Options = serde_json::from_value(Value::Object(members))
        .map_err(|e| format!("polytel: an option has the wrong type ({}).", without_quoted(&e.to_string())))?;
    if let Some(env) = env {
        let env: BTreeMap<String, String> = serde_json::from_value(env)
            .map_err(|_| "polytel: the option env must be an object of strings.".to_owned())?;
        options.env = Some(env);
    }
    let detect = match detect_host {
        None => true,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err("polytel: the option detect_host must be true or false.".to_owned()),
    };
    let mut facts = if detect { crate::facts::gather() } else { Value::Object(Map::new()) };
    match host {
        None => {}
        Some(Value::Object(given)) => {
            if let Some(facts) = facts.as_object_mut() {
                facts.extend(given);
            }
        }
        Some(_) => return Err("polytel: the option host must be a JSON object of host facts.".to_owned()),
    }
    options.host_facts = Some(facts);
    if let Some(seed) = seed {
        options.seed = Some(u64_member(&seed, "seed")?);
    }
    if let Some(clock) = clock {
        let start = clock.get("start").map(|v| u64_member(v, "clock.start")).transpose()?;
        let step = clock.get("step").map(|v| u64_member(v, "clock.step")).transpose()?;
        let (Some(start), Some(step)) = (start, step) else {
            return Err("polytel: the option clock must be {\"start\": ns, \"step\": ns}.".to_owned());
        };
        options.clock = Some(test_clock(start, step));
    }
    if let Some(memory) = memory {
        let bytes = u64_member(&memory, "core_memory_limit")?;
        options.core_memory_limit = Some(usize::try_from(bytes).unwrap_or(usize::MAX));
    }
    Ok(options)
}

/// Configures a pipeline; see `polytel_configure` in the header.
///
/// # Safety
/// Follows the header's rules: `options_json` points to `len` bytes (or is
/// NULL with `len` 0); `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn polytel_configure(
    options_json: *const c_char,
    len: usize,
    err: *mut *mut c_char,
) -> *mut Handle {
    guard(err, std::ptr::null_mut(), || {
        // SAFETY: the caller's promise.
        let json = unsafe { input(options_json, len, "options_json") }?;
        let options = options_from_json(if json.trim().is_empty() { "{}" } else { json })?;
        let clock = options.clock.clone();
        let telemetry = Telemetry::configure(options).map_err(|e| format!("{e:#}"))?;
        Ok(Box::into_raw(Box::new(Handle { telemetry, clock })))
    })
}

/// The core's plan JSON.
///
/// # Safety
/// `t` is NULL or a live handle; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn polytel_plan(t: *const Handle, err: *mut *mut c_char) -> *mut c_char {
    guard(err, std::ptr::null_mut(), || {
        // SAFETY: the caller's promise.
        let h = unsafe { handle(t) }?;
        h.telemetry.plan_json().map(to_c_string).map_err(|e| format!("polytel: {e:#}"))
    })
}

/// Where each signal goes (secrets masked).
///
/// # Safety
/// `t` is NULL or a live handle; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn polytel_describe(t: *const Handle, err: *mut *mut c_char) -> *mut c_char {
    guard(err, std::ptr::null_mut(), || {
        // SAFETY: the caller's promise.
        let h = unsafe { handle(t) }?;
        h.telemetry.describe().map(to_c_string).map_err(|e| format!("polytel: {e:#}"))
    })
}

/// Splits a batch (a JSON array of records) into the records the buffer holds.
fn records(batch: &str) -> Outcome<Vec<String>> {
    let items: Vec<&RawValue> = serde_json::from_str(batch).map_err(|e| {
        format!("polytel: a batch of records is not a JSON array ({}); it was dropped.", without_quoted(&e.to_string()))
    })?;
    Ok(items.into_iter().map(|r| r.get().to_owned()).collect())
}

unsafe fn record(t: *const Handle, signal: Signal, batch: *const c_char, len: usize, err: *mut *mut c_char) -> c_int {
    guard(err, -1, || {
        // SAFETY: the caller's promise.
        let h = unsafe { handle(t) }?;
        // SAFETY: the caller's promise.
        let batch = unsafe { input(batch, len, "batch_json") }?;
        h.telemetry.enqueue_records(signal, records(batch)?);
        Ok(0)
    })
}

/// Adds a batch of span records.
///
/// # Safety
/// `t` is NULL or a live handle; `batch_json` points to `len` bytes (or is
/// NULL with `len` 0); `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn polytel_record_spans(
    t: *const Handle,
    batch_json: *const c_char,
    len: usize,
    err: *mut *mut c_char,
) -> c_int {
    // SAFETY: the same promises.
    unsafe { record(t, Signal::Traces, batch_json, len, err) }
}

/// Adds a batch of measurement records.
///
/// # Safety
/// As `polytel_record_spans`.
#[no_mangle]
pub unsafe extern "C" fn polytel_record_metrics(
    t: *const Handle,
    batch_json: *const c_char,
    len: usize,
    err: *mut *mut c_char,
) -> c_int {
    // SAFETY: the same promises.
    unsafe { record(t, Signal::Metrics, batch_json, len, err) }
}

/// Adds a batch of log records.
///
/// # Safety
/// As `polytel_record_spans`.
#[no_mangle]
pub unsafe extern "C" fn polytel_record_logs(
    t: *const Handle,
    batch_json: *const c_char,
    len: usize,
    err: *mut *mut c_char,
) -> c_int {
    // SAFETY: the same promises.
    unsafe { record(t, Signal::Logs, batch_json, len, err) }
}

/// Registers an instrument; writes its id to `*id`.
///
/// # Safety
/// `t` is NULL or a live handle; `instrument_json` points to `len` bytes (or
/// is NULL with `len` 0); `id` is NULL or writable; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn polytel_register_instrument(
    t: *const Handle,
    instrument_json: *const c_char,
    len: usize,
    id: *mut u32,
    err: *mut *mut c_char,
) -> c_int {
    guard(err, -1, || {
        // SAFETY: the caller's promise.
        let h = unsafe { handle(t) }?;
        // SAFETY: the caller's promise.
        let json = unsafe { input(instrument_json, len, "instrument_json") }?;
        if id.is_null() {
            return Err("polytel: the id pointer is NULL.".to_owned());
        }
        let registered =
            h.telemetry.register_instrument_json(json.to_owned()).map_err(|e| format!("polytel: {e:#}"))?;
        // SAFETY: checked non-NULL; writable by the caller's promise.
        unsafe { *id = registered };
        Ok(0)
    })
}

/// Reads trace context and baggage from headers (a JSON object).
///
/// # Safety
/// `t` is NULL or a live handle; `headers_json` points to `len` bytes (or is
/// NULL with `len` 0); `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn polytel_extract(
    t: *const Handle,
    headers_json: *const c_char,
    len: usize,
    err: *mut *mut c_char,
) -> *mut c_char {
    guard(err, std::ptr::null_mut(), || {
        // SAFETY: the caller's promise.
        let h = unsafe { handle(t) }?;
        // SAFETY: the caller's promise.
        let json = unsafe { input(headers_json, len, "headers_json") }?;
        let headers: BTreeMap<String, Value> = serde_json::from_str(json)
            .map_err(|_| "polytel: the headers must be a JSON object of header name to value.".to_owned())?;
        let pairs: Vec<(&str, &str)> = headers.iter().filter_map(|(k, v)| Some((k.as_str(), v.as_str()?))).collect();
        let extracted = h.telemetry.extract(pairs).map_err(|e| format!("polytel: {e:#}"))?;
        let context = match &extracted.parent {
            Some(p) => polytel_core::propagation::Context {
                trace_id: p.trace_id_hex(),
                span_id: p.span_id_hex(),
                flags: u8::from(p.sampled),
                trace_state: p.trace_state.clone(),
                baggage: extracted.baggage,
            },
            None => polytel_core::propagation::Context { baggage: extracted.baggage, ..Default::default() },
        };
        serde_json::to_string(&context).map(to_c_string).map_err(|e| format!("polytel: {e}"))
    })
}

/// The headers that carry a context downstream.
///
/// # Safety
/// `t` is NULL or a live handle; `context_json` points to `len` bytes (or is
/// NULL with `len` 0); `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn polytel_inject(
    t: *const Handle,
    context_json: *const c_char,
    len: usize,
    err: *mut *mut c_char,
) -> *mut c_char {
    guard(err, std::ptr::null_mut(), || {
        // SAFETY: the caller's promise.
        let h = unsafe { handle(t) }?;
        // SAFETY: the caller's promise.
        let json = unsafe { input(context_json, len, "context_json") }?;
        let wire: polytel_core::propagation::Context = serde_json::from_str(json).map_err(|e| {
            format!("polytel: the context JSON could not be read ({}).", without_quoted(&e.to_string()))
        })?;
        let ctx = SpanContext {
            trace_id: polytel_core::ids::parse_hex_id::<16>(&wire.trace_id).unwrap_or([0; 16]),
            span_id: polytel_core::ids::parse_hex_id::<8>(&wire.span_id).unwrap_or([0; 8]),
            sampled: wire.flags & 1 == 1,
            remote: false,
            trace_state: wire.trace_state,
        };
        let headers = h.telemetry.inject(&ctx, &wire.baggage).map_err(|e| format!("polytel: {e:#}"))?;
        let map: Map<String, Value> = headers.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        Ok(to_c_string(Value::Object(map).to_string()))
    })
}

/// Exports everything recorded so far: 1 in time, 0 not, -1 NULL handle.
///
/// # Safety
/// `t` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn polytel_force_flush(t: *const Handle, timeout_ms: u64) -> c_int {
    guard(std::ptr::null_mut(), -1, || {
        // SAFETY: the caller's promise.
        let h = unsafe { handle(t) }?;
        Ok(c_int::from(h.telemetry.force_flush(Duration::from_millis(timeout_ms))))
    })
}

/// Flushes, stops the worker; `{"flushed": bool, "abandoned": n}`.
///
/// # Safety
/// `t` is NULL or a live handle; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn polytel_shutdown(t: *const Handle, timeout_ms: u64, err: *mut *mut c_char) -> *mut c_char {
    guard(err, std::ptr::null_mut(), || {
        // SAFETY: the caller's promise.
        let h = unsafe { handle(t) }?;
        let report = h.telemetry.shutdown(Duration::from_millis(timeout_ms));
        let json = serde_json::json!({"flushed": report.flushed, "abandoned": report.abandoned});
        Ok(to_c_string(json.to_string()))
    })
}

/// The core's counters, with the library's under "host".
///
/// # Safety
/// `t` is NULL or a live handle; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn polytel_stats(t: *const Handle, err: *mut *mut c_char) -> *mut c_char {
    guard(err, std::ptr::null_mut(), || {
        // SAFETY: the caller's promise.
        let h = unsafe { handle(t) }?;
        h.telemetry.stats().map(|s| to_c_string(s.to_string())).map_err(|e| format!("polytel: {e:#}"))
    })
}

/// A reading of the pipeline's clock (unix nanoseconds); 0 for NULL.
///
/// # Safety
/// `t` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn polytel_now(t: *const Handle) -> u64 {
    guard(std::ptr::null_mut(), 0, || {
        // SAFETY: the caller's promise.
        let h = unsafe { handle(t) }?;
        Ok(match &h.clock {
            Some(clock) => clock(),
            None => SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64),
        })
    })
}

/// Releases a handle, shutting its pipeline down (without waiting) if needed.
///
/// # Safety
/// `t` is NULL or a live handle on which no other call is running or will be made.
#[no_mangle]
pub unsafe extern "C" fn polytel_free(t: *mut Handle) {
    if t.is_null() {
        return;
    }
    guard(std::ptr::null_mut(), (), || {
        // SAFETY: from Box::into_raw in polytel_configure, released once (the caller's promise).
        let h = unsafe { Box::from_raw(t) };
        // Already shut down, this returns at once.
        h.telemetry.shutdown(Duration::ZERO);
        Ok(())
    })
}

/// Releases a string this library returned.
///
/// # Safety
/// `s` is NULL or a string returned by this library, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn polytel_free_string(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: from CString::into_raw in to_c_string, released once (the caller's promise).
        drop(unsafe { CString::from_raw(s) });
    }
}

/// The library's version; a static string.
#[no_mangle]
pub extern "C" fn polytel_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_are_left_out_of_messages() {
        assert_eq!(
            without_quoted(r#"invalid type: string "hcaik_secret", expected u64 at line 1"#),
            r#"invalid type: string "…", expected u64 at line 1"#
        );
    }

    #[test]
    fn options_json_reads_the_c_abi_members() {
        let o = options_from_json(
            r#"{"backend": "otlp", "service_name": "s", "honeycomb_api_key": "k", "schedule_delay_ms": 5,
                "env": {"A": "b"}, "seed": "42", "detect_host": false, "host": {"sdk_language": "go"},
                "clock": {"start": "100", "step": 10}}"#,
        )
        .unwrap();
        assert_eq!(o.service_name.as_deref(), Some("s"));
        assert_eq!(o.settings.get("honeycomb_api_key").map(String::as_str), Some("k"));
        assert_eq!(o.schedule_delay_ms, Some(5));
        assert_eq!(o.seed, Some(42));
        assert_eq!(o.env.as_ref().unwrap()["A"], "b");
        assert_eq!(o.host_facts, Some(serde_json::json!({"sdk_language": "go"})));
        let clock = o.clock.unwrap();
        assert_eq!((clock(), clock(), clock()), (100, 110, 120));
        let e = options_from_json(r#"{"schedule_delay_ms": "secret-looking"}"#).err().unwrap();
        assert!(!e.contains("secret-looking"), "{e}");
        assert!(options_from_json("[]").is_err());
        assert!(options_from_json(r#"{"seed": "x"}"#).is_err());
    }

    #[test]
    fn batches_split_into_records() {
        assert_eq!(records(r#"[{"a":1}, {"b":[1,2]} ,"x"]"#).unwrap(), vec![r#"{"a":1}"#, r#"{"b":[1,2]}"#, r#""x""#]);
        assert!(records("{").is_err());
        assert!(records("[]").unwrap().is_empty());
    }
}
