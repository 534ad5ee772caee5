package polytel

import (
	"encoding/json"
	"log/slog"
	"math"
	"testing"
	"time"
)

func TestSplitmix64MatchesTheReferenceSequence(t *testing.T) {
	s := uint64(1234567)
	if v := splitmix64(&s); v != 6457827717110365317 {
		t.Errorf("first value %d", v)
	}
	if v := splitmix64(&s); v != 3203168211198807973 {
		t.Errorf("second value %d", v)
	}
}

func TestStringsAreValidJSON(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                   "plain",
		"quote\" back\\slash":     "quote\" back\\slash",
		"ctl\x01\n\r\t\x7f":       "ctl\x01\n\r\t\x7f",
		"ünï ✓ 😀 \u2028":          "ünï ✓ 😀 \u2028",
		"bad \xff utf-8 \xe2\x82": "bad \ufffd utf-8 \ufffd\ufffd",
		"":                        "",
	} {
		b := appendString(nil, in)
		var got string
		if err := json.Unmarshal(b, &got); err != nil || got != want {
			t.Errorf("%q wrote %s, read back %q (%v), want %q", in, b, got, err, want)
		}
	}
}

func TestValuesFollowTheBatchJSON(t *testing.T) {
	v := MapValue(
		Float64("d", 1), Float64("n", math.NaN()), Float64("i", math.Inf(-1)), Bytes("b", []byte{1, 2}),
		Int64s("a", 1, 2), Bool("t", true), Any("u", uint64(math.MaxUint64)), Any("e", nil),
	)
	want := `{"map":{"d":{"double":1},"n":{"double":"NaN"},"i":{"double":"-Infinity"},"b":{"bytes":"AQI="},` +
		`"a":[1,2],"t":true,"u":{"double":1.8446744073709552e+19},"e":""}}`
	if got := string(v.appendJSON(nil)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestOptionsMembersUseTheCoreNames(t *testing.T) {
	o := Options{
		Backend:           "honeycomb",
		HoneycombAPIKey:   "k",
		ScheduleDelay:     1500 * time.Millisecond,
		MaxQueueSize:      10,
		AllowInsecure:     true,
		Headers:           map[string]string{},
		Settings:          map[string]string{"honeycomb_region": "eu", "honeycomb_api_key": "overridden"},
		ResourceDetectors: []string{"host"},
	}
	got, _ := json.Marshal(o.members())
	want := `{"allow_insecure":true,"backend":"honeycomb","honeycomb_api_key":"k","honeycomb_region":"eu",` +
		`"max_queue_size":10,"resource_detectors":["host"],"schedule_delay_ms":1500}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	o.Backends = map[string]string{"traces": "tempo"}
	if b := o.members()["backend"]; b == nil || b.(map[string]string)["traces"] != "tempo" {
		t.Errorf("Backends wins over Backend: %v", b)
	}
	if m := (Options{}).members(); len(m) != 0 {
		t.Errorf("zero Options set nothing: %v", m)
	}
}

func TestSeverities(t *testing.T) {
	for level, want := range map[slog.Level]struct {
		n    int
		text string
	}{
		LevelTrace: {1, "TRACE"}, slog.LevelDebug: {5, "DEBUG"}, slog.LevelInfo: {9, "INFO"},
		slog.LevelWarn: {13, "WARN"}, slog.LevelError: {17, "ERROR"}, LevelFatal: {21, "FATAL"},
		slog.LevelInfo + 2: {11, "INFO+2"}, slog.Level(-100): {1, "DEBUG-96"}, slog.Level(100): {24, "ERROR+92"},
	} {
		if n, text := severity(level); n != want.n || text != want.text {
			t.Errorf("%v: %d %q, want %d %q", level, n, text, want.n, want.text)
		}
	}
}
