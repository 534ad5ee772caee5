package polytel

// Every call into the Rust host's C ABI (host/include/polytel.h) is here.
//
// The library is the host crate built as a static library:
//
//	cargo build --release --locked -p polytel
//
// It lands in target/release/ (found through the -L below) or, with
// CARGO_TARGET_DIR set, in $CARGO_TARGET_DIR/release/, which needs
// CGO_LDFLAGS="-L$CARGO_TARGET_DIR/release" (flags from the environment come
// first, so they win). -l:libpolytel.a names the static library exactly: the
// same folder also holds libpolytel.so. The other libraries are what the Rust
// standard library needs (`rustc --print native-static-libs`).

/*
#cgo CFLAGS: -I${SRCDIR}/../../host/include
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -l:libpolytel.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
#include <stdlib.h>
#include "polytel.h"
*/
import "C"

import (
	"errors"
	"unsafe"
)

// cBytes borrows b for the duration of one C call: the library copies what it
// keeps, and b holds no Go pointers, as cgo requires.
func cBytes(b []byte) (*C.char, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.char)(unsafe.Pointer(&b[0])), C.size_t(len(b))
}

// takeString copies a string the library returned and frees it.
func takeString(s *C.char) string {
	if s == nil {
		return ""
	}
	out := C.GoString(s)
	C.polytel_free_string(s)
	return out
}

// takeError turns the library's error message into an error.
func takeError(s *C.char) error {
	msg := takeString(s)
	if msg == "" {
		msg = "polytel: the telemetry library failed without saying why"
	}
	return errors.New(msg)
}

type signal int

const (
	signalSpans signal = iota
	signalMetrics
	signalLogs
)

func (s signal) String() string {
	return [...]string{"spans", "metrics", "logs"}[s]
}

// cHandle is one configured pipeline of the library.
type cHandle struct{ h *C.polytel_t }

func cConfigure(optionsJSON []byte) (cHandle, error) {
	p, n := cBytes(optionsJSON)
	var cerr *C.char
	h := C.polytel_configure(p, n, &cerr)
	if h == nil {
		return cHandle{}, takeError(cerr)
	}
	return cHandle{h}, nil
}

func (c cHandle) plan() (string, error) {
	var cerr *C.char
	s := C.polytel_plan(c.h, &cerr)
	if s == nil {
		return "", takeError(cerr)
	}
	return takeString(s), nil
}

func (c cHandle) describe() (string, error) {
	var cerr *C.char
	s := C.polytel_describe(c.h, &cerr)
	if s == nil {
		return "", takeError(cerr)
	}
	return takeString(s), nil
}

func (c cHandle) stats() (string, error) {
	var cerr *C.char
	s := C.polytel_stats(c.h, &cerr)
	if s == nil {
		return "", takeError(cerr)
	}
	return takeString(s), nil
}

// record hands a batch (a JSON array of records) to the library.
func (c cHandle) record(sig signal, batch []byte) error {
	p, n := cBytes(batch)
	var cerr *C.char
	var rc C.int
	switch sig {
	case signalSpans:
		rc = C.polytel_record_spans(c.h, p, n, &cerr)
	case signalMetrics:
		rc = C.polytel_record_metrics(c.h, p, n, &cerr)
	default:
		rc = C.polytel_record_logs(c.h, p, n, &cerr)
	}
	if rc != 0 {
		return takeError(cerr)
	}
	return nil
}

func (c cHandle) registerInstrument(desc []byte) (uint32, error) {
	p, n := cBytes(desc)
	var id C.uint32_t
	var cerr *C.char
	if C.polytel_register_instrument(c.h, p, n, &id, &cerr) != 0 {
		return 0, takeError(cerr)
	}
	return uint32(id), nil
}

func (c cHandle) extract(headersJSON []byte) (string, error) {
	p, n := cBytes(headersJSON)
	var cerr *C.char
	s := C.polytel_extract(c.h, p, n, &cerr)
	if s == nil {
		return "", takeError(cerr)
	}
	return takeString(s), nil
}

func (c cHandle) inject(contextJSON []byte) (string, error) {
	p, n := cBytes(contextJSON)
	var cerr *C.char
	s := C.polytel_inject(c.h, p, n, &cerr)
	if s == nil {
		return "", takeError(cerr)
	}
	return takeString(s), nil
}

func (c cHandle) forceFlush(timeoutMS uint64) bool {
	return C.polytel_force_flush(c.h, C.uint64_t(timeoutMS)) == 1
}

func (c cHandle) shutdown(timeoutMS uint64) (string, error) {
	var cerr *C.char
	s := C.polytel_shutdown(c.h, C.uint64_t(timeoutMS), &cerr)
	if s == nil {
		return "", takeError(cerr)
	}
	return takeString(s), nil
}

func (c cHandle) now() uint64 {
	return uint64(C.polytel_now(c.h))
}

func (c cHandle) free() {
	C.polytel_free(c.h)
}

// libraryVersion is the version of the Rust library linked in.
func libraryVersion() string {
	return C.GoString(C.polytel_version())
}
