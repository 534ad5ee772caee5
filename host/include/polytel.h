/*
 * polytel.h: the C ABI of the polytel Rust host (host/src/capi.rs).
 *
 * The library (libpolytel.a, or libpolytel.so) embeds the polytel core
 * component and runs its export worker: it sends the exports over HTTP or
 * gRPC on a thread of its own. The caller (a language binding: Go's cgo
 * package in bindings/go) owns the public API in its language's idioms: it
 * keeps the current span, reads the clock, draws ids, applies the sampling
 * plan, and writes records in the batch JSON shapes of wit/polytel.wit. It
 * hands those records over in batches, one call per batch.
 *
 * Build (from the repository root):
 *
 *     cargo build --release --locked -p polytel
 *
 * which leaves $CARGO_TARGET_DIR/release/libpolytel.a (default target/); link
 * it with -ldl -lpthread -lm -lgcc_s -lc (`rustc --print native-static-libs`).
 *
 * Ownership rules, for every pointer:
 *
 *   - Input strings are (const char *ptr, size_t len) pairs: UTF-8, not
 *     necessarily NUL-terminated, borrowed for the duration of the call only.
 *     The library copies what it keeps. ptr may be NULL when len is 0.
 *   - Returned `char *` strings are NUL-terminated UTF-8 (JSON unless said
 *     otherwise), allocated by the library and owned by the caller, who
 *     releases each exactly once with polytel_free_string().
 *   - `char **err`: may be NULL (no message wanted). Otherwise the library
 *     sets *err to NULL on entry, and on failure to a message (one sentence,
 *     never containing a secret) that the caller releases with
 *     polytel_free_string().
 *   - A `polytel_t *` handle comes from polytel_configure() and is released
 *     with polytel_free(). Every other function may be called on it from any
 *     number of threads at once; polytel_free() must be the last call on it,
 *     made when no other call on it is running.
 *   - polytel_version() returns a static string: never free it.
 *
 * Failures: functions returning `char *` return NULL on failure, functions
 * returning int return -1 (and 0 on success); *err says what went wrong. No
 * function lets a Rust panic cross into the caller: a panic is caught and
 * reported as a failure.
 */
#ifndef POLYTEL_H
#define POLYTEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One configured telemetry pipeline and its export worker. Opaque. */
typedef struct polytel polytel_t;

/*
 * Configures a pipeline and starts its export worker.
 *
 * options_json is a JSON object of options named as every binding names them
 * ("backend", "endpoint", "headers", "service_name", "honeycomb_api_key", …;
 * see README.md), strings for backend settings. `{}` reads everything from
 * the environment. These members are read by the C ABI itself:
 *
 *   "env": {"NAME": "value", …}   the environment the core reads (OTEL_*,
 *                                 vendor variables) instead of the process's.
 *   "host": {…}                   facts the caller knows, merged over those
 *                                 the library gathers: "sdk_language" ("go"),
 *                                 "process_runtime_name", "process_runtime_version",
 *                                 "process_runtime_description".
 *   "detect_host": false          gather no facts about the machine (tests:
 *                                 a resource that does not depend on it).
 *   "seed": "<u64 decimal>"       seeds the core's retry jitter; a caller that
 *                                 draws ids (splitmix64, see the WIT) passes the
 *                                 seed it uses. Default: from the OS.
 *   "clock": {"start": "<ns>", "step": "<ns>"}
 *                                 FOR TESTS ONLY (conformance replays): a fake
 *                                 clock. polytel_now() returns start, then
 *                                 start + step, …; the export worker reads the
 *                                 latest value without advancing it.
 *   "core_memory_limit": n        bytes the core's memory may grow to.
 *
 * Returns a handle, or NULL with *err set (a bad configuration: the core's
 * one-sentence reason).
 */
polytel_t *polytel_configure(const char *options_json, size_t len, char **err);

/*
 * The core's plan JSON (see `plan` in wit/polytel.wit): whether telemetry is
 * disabled, which signals go anywhere, the sampler parameters, batch sizes.
 * The caller applies it on its hot path.
 */
char *polytel_plan(const polytel_t *t, char **err);

/* Where each signal goes, as human-readable JSON; secrets masked. */
char *polytel_describe(const polytel_t *t, char **err);

/*
 * Adds a batch of records: a JSON array in the shape of `record-spans`,
 * `record-metrics` or `record-logs` (wit/polytel.wit). The records join the
 * export worker's buffer (bounded by the plan's max_queue; records beyond it
 * are dropped and counted under "host" in polytel_stats()). Fails only when
 * the batch is not a JSON array; the core drops (and counts) bad records.
 */
int polytel_record_spans(const polytel_t *t, const char *batch_json, size_t len, char **err);
int polytel_record_metrics(const polytel_t *t, const char *batch_json, size_t len, char **err);
int polytel_record_logs(const polytel_t *t, const char *batch_json, size_t len, char **err);

/*
 * Registers an instrument (the JSON of `register-instrument`) and writes its
 * id for measurement records to *id. The same instrument registered again
 * gets the same id.
 */
int polytel_register_instrument(const polytel_t *t, const char *instrument_json, size_t len, uint32_t *id,
                                char **err);

/*
 * Reads W3C trace context and baggage from incoming headers, given as a JSON
 * object of header name to value. Returns
 *   {"trace_id": "32 hex", "span_id": "16 hex", "flags": n, "trace_state": "…",
 *    "baggage": [["k", "v"], …]}
 * with an empty trace_id when no valid traceparent was found.
 */
char *polytel_extract(const polytel_t *t, const char *headers_json, size_t len, char **err);

/*
 * The headers that carry a context (the JSON polytel_extract returns; ids may
 * be empty for baggage only) to a downstream service, as a JSON object of
 * header name to value.
 */
char *polytel_inject(const polytel_t *t, const char *context_json, size_t len, char **err);

/*
 * Exports everything recorded so far, waiting at most timeout_ms. Returns 1
 * when that finished in time, 0 when the deadline passed, -1 for a NULL handle.
 */
int polytel_force_flush(const polytel_t *t, uint64_t timeout_ms);

/*
 * Flushes within timeout_ms, then stops the export worker, dropping (and
 * counting) what could not be delivered. Safe to call more than once.
 * Returns {"flushed": bool, "abandoned": n}.
 */
char *polytel_shutdown(const polytel_t *t, uint64_t timeout_ms, char **err);

/*
 * The core's counters as JSON, per signal ("spans", "metrics", "logs"), with
 * the library's own under "host".
 */
char *polytel_stats(const polytel_t *t, char **err);

/*
 * A timestamp (unix nanoseconds) from the pipeline's clock: the system clock,
 * or the test clock of the "clock" option. A caller reads its own clock on
 * the hot path; this exists so tests share the fake clock with the worker.
 * 0 for a NULL handle.
 */
uint64_t polytel_now(const polytel_t *t);

/*
 * Releases the handle. A pipeline not shut down is shut down first with no
 * time to flush (what is queued is dropped, counted). NULL is ignored.
 */
void polytel_free(polytel_t *t);

/* Releases a string returned by this library. NULL is ignored. */
void polytel_free_string(char *s);

/* The library's version, such as "0.1.0". Static: never free it. */
const char *polytel_version(void);

#ifdef __cplusplus
}
#endif

#endif /* POLYTEL_H */
