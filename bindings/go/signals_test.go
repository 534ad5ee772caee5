package polytel_test

import (
	"runtime"
	"testing"

	polytel "github.com/polytel/polytel/bindings/go"
)

// The library's engine installs signal handlers (for traps in the core) when
// it is first configured; Go's own faults must still become panics.
func TestGoPanicsStillWorkAfterConfigure(t *testing.T) {
	configure(t, polytel.Options{})
	for range 3 {
		func() {
			defer func() {
				r := recover()
				if _, ok := r.(runtime.Error); !ok {
					t.Fatalf("a nil dereference must panic with a runtime.Error, got %v", r)
				}
			}()
			var p *int
			_ = *p
		}()
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("a division by zero must panic")
				}
			}()
			zero := 0
			_ = 1 / zero
		}()
	}
}
