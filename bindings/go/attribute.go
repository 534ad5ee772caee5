package polytel

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Attribute is a key and a value, on a span, an event, a link, a
// measurement or a log record.
type Attribute struct {
	Key   string
	Value Value
}

// Kind is the type of a Value.
type Kind uint8

const (
	KindEmpty Kind = iota
	KindString
	KindBool
	KindInt64
	KindFloat64
	KindBytes
	KindSlice
	KindMap
)

// Value is an attribute value of any OTLP type. The zero Value is empty and
// is sent as an empty string.
type Value struct {
	kind Kind
	num  uint64 // int64 and float64 bits, bool
	str  string
	any  any // []byte, []Value or []Attribute
}

func StringValue(v string) Value   { return Value{kind: KindString, str: v} }
func BoolValue(v bool) Value       { return Value{kind: KindBool, num: b2u(v)} }
func Int64Value(v int64) Value     { return Value{kind: KindInt64, num: uint64(v)} }
func IntValue(v int) Value         { return Int64Value(int64(v)) }
func Float64Value(v float64) Value { return Value{kind: KindFloat64, num: math.Float64bits(v)} }

// BytesValue holds v itself (not a copy): do not change v afterwards.
func BytesValue(v []byte) Value { return Value{kind: KindBytes, any: v} }

// SliceValue is an array of values (of any types).
func SliceValue(vs ...Value) Value { return Value{kind: KindSlice, any: vs} }

// MapValue is a nested map of attributes.
func MapValue(attrs ...Attribute) Value { return Value{kind: KindMap, any: attrs} }

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func (v Value) Kind() Kind { return v.kind }

func (v Value) AsString() string { return v.str }
func (v Value) AsBool() bool     { return v.num == 1 }
func (v Value) AsInt64() int64   { return int64(v.num) }
func (v Value) AsFloat64() float64 {
	return math.Float64frombits(v.num)
}

func (v Value) AsBytes() []byte {
	b, _ := v.any.([]byte)
	return b
}

func (v Value) AsSlice() []Value {
	s, _ := v.any.([]Value)
	return s
}

func (v Value) AsMap() []Attribute {
	m, _ := v.any.([]Attribute)
	return m
}

// String renders the value for people (not the wire).
func (v Value) String() string {
	switch v.kind {
	case KindString:
		return v.str
	case KindBool:
		return strconv.FormatBool(v.AsBool())
	case KindInt64:
		return strconv.FormatInt(v.AsInt64(), 10)
	case KindFloat64:
		return strconv.FormatFloat(v.AsFloat64(), 'g', -1, 64)
	case KindEmpty:
		return ""
	default:
		return string(v.appendJSON(nil))
	}
}

// String is a string attribute.
func String(key, value string) Attribute { return Attribute{key, StringValue(value)} }

// Bool is a boolean attribute.
func Bool(key string, value bool) Attribute { return Attribute{key, BoolValue(value)} }

// Int is an integer attribute.
func Int(key string, value int) Attribute { return Attribute{key, IntValue(value)} }

// Int64 is an integer attribute.
func Int64(key string, value int64) Attribute { return Attribute{key, Int64Value(value)} }

// Float64 is a double attribute.
func Float64(key string, value float64) Attribute { return Attribute{key, Float64Value(value)} }

// Bytes is a byte-string attribute; it holds value itself, not a copy.
func Bytes(key string, value []byte) Attribute { return Attribute{key, BytesValue(value)} }

// Strings is an array-of-strings attribute.
func Strings(key string, values ...string) Attribute {
	vs := make([]Value, len(values))
	for i, s := range values {
		vs[i] = StringValue(s)
	}
	return Attribute{key, SliceValue(vs...)}
}

// Int64s is an array-of-integers attribute.
func Int64s(key string, values ...int64) Attribute {
	vs := make([]Value, len(values))
	for i, n := range values {
		vs[i] = Int64Value(n)
	}
	return Attribute{key, SliceValue(vs...)}
}

// Float64s is an array-of-doubles attribute.
func Float64s(key string, values ...float64) Attribute {
	vs := make([]Value, len(values))
	for i, f := range values {
		vs[i] = Float64Value(f)
	}
	return Attribute{key, SliceValue(vs...)}
}

// Slice is an array attribute of values of any types.
func Slice(key string, values ...Value) Attribute { return Attribute{key, SliceValue(values...)} }

// Map is a nested-map attribute.
func Map(key string, attrs ...Attribute) Attribute { return Attribute{key, MapValue(attrs...)} }

// Any is an attribute from a Go value: strings, booleans, integers, floats,
// byte slices, slices of those, errors and fmt.Stringers; anything else
// becomes its fmt.Sprint text.
func Any(key string, value any) Attribute { return Attribute{key, AnyValue(value)} }

// AnyValue is the Value of a Go value, as Any describes.
func AnyValue(value any) Value {
	switch v := value.(type) {
	case nil:
		return Value{}
	case Value:
		return v
	case string:
		return StringValue(v)
	case bool:
		return BoolValue(v)
	case int:
		return IntValue(v)
	case int8:
		return Int64Value(int64(v))
	case int16:
		return Int64Value(int64(v))
	case int32:
		return Int64Value(int64(v))
	case int64:
		return Int64Value(v)
	case uint8:
		return Int64Value(int64(v))
	case uint16:
		return Int64Value(int64(v))
	case uint32:
		return Int64Value(int64(v))
	case uint:
		return uint64Value(uint64(v))
	case uint64:
		return uint64Value(v)
	case float32:
		return Float64Value(float64(v))
	case float64:
		return Float64Value(v)
	case []byte:
		return BytesValue(v)
	case []string:
		return Strings("", v...).Value
	case []int64:
		return Int64s("", v...).Value
	case []float64:
		return Float64s("", v...).Value
	case []int:
		vs := make([]Value, len(v))
		for i, n := range v {
			vs[i] = IntValue(n)
		}
		return SliceValue(vs...)
	case []bool:
		vs := make([]Value, len(v))
		for i, b := range v {
			vs[i] = BoolValue(b)
		}
		return SliceValue(vs...)
	case []any:
		vs := make([]Value, len(v))
		for i, x := range v {
			vs[i] = AnyValue(x)
		}
		return SliceValue(vs...)
	case time.Duration:
		return Int64Value(int64(v))
	case time.Time:
		return StringValue(v.Format(time.RFC3339Nano))
	case error:
		return StringValue(v.Error())
	case fmt.Stringer:
		return StringValue(v.String())
	default:
		return StringValue(fmt.Sprint(v))
	}
}

// uint64Value is an integer when it fits in an int64, else a double.
func uint64Value(v uint64) Value {
	if v <= math.MaxInt64 {
		return Int64Value(int64(v))
	}
	return Float64Value(float64(v))
}

// appendJSON writes the value as the batch JSON of wit/polytel.wit writes
// attribute values.
func (v Value) appendJSON(b []byte) []byte {
	switch v.kind {
	case KindString:
		return appendString(b, v.str)
	case KindBool:
		if v.num == 1 {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case KindInt64:
		return strconv.AppendInt(b, int64(v.num), 10)
	case KindFloat64:
		b = append(b, `{"double":`...)
		b = appendNumber(b, v.AsFloat64())
		return append(b, '}')
	case KindBytes:
		b = append(b, `{"bytes":"`...)
		b = base64.StdEncoding.AppendEncode(b, v.AsBytes())
		return append(b, `"}`...)
	case KindSlice:
		b = append(b, '[')
		for i, x := range v.AsSlice() {
			if i > 0 {
				b = append(b, ',')
			}
			b = x.appendJSON(b)
		}
		return append(b, ']')
	case KindMap:
		b = append(b, `{"map":{`...)
		b = appendMembers(b, v.AsMap())
		return append(b, "}}"...)
	default:
		return append(b, `""`...)
	}
}

// appendMembers writes attributes as JSON object members ("k":v,...),
// without braces, in order; a later value for a key replaces an earlier one
// in the core.
func appendMembers(b []byte, attrs []Attribute) []byte {
	for i, a := range attrs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, a.Key)
		b = append(b, ':')
		b = a.Value.appendJSON(b)
	}
	return b
}

// appendObject writes attributes as a JSON object.
func appendObject(b []byte, attrs []Attribute) []byte {
	b = append(b, '{')
	b = appendMembers(b, attrs)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string. Bytes that are not UTF-8 become
// U+FFFD: the core takes only valid UTF-8.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendNumber writes a float as a JSON number, or as "NaN", "Infinity" or
// "-Infinity", which JSON numbers cannot be.
func appendNumber(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

func appendHex(b []byte, id []byte) []byte {
	for _, c := range id {
		b = append(b, hexDigits[c>>4], hexDigits[c&15])
	}
	return b
}
