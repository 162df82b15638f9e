package flags

import (
	"fmt"
	"strconv"
	"strings"
)

// A Value is a flag's setting: [Off], [On] or a [Percent] of the machines.
// The zero Value is Off. Values are comparable.
type Value struct {
	kind uint8 // kindOff, kindOn, kindPercent
	pct  uint8 // for kindPercent, 0–100
}

const (
	kindOff uint8 = iota
	kindOn
	kindPercent
)

// The values that are the same for every machine.
var (
	Off = Value{}
	On  = Value{kind: kindOn}
)

// Percent returns the value that is on for p percent of the machines,
// chosen by [Bucket]. Percent(0) is on for none, Percent(100) for all. It
// panics if p is not in 0–100; use [ParseValue] for input.
func Percent(p int) Value {
	if p < 0 || p > 100 {
		panic(fmt.Sprintf("flags: Percent(%d): want 0–100", p))
	}
	return Value{kind: kindPercent, pct: uint8(p)}
}

// ParseValue parses the text form of a Value: "on", "off" or "N%" with N
// an integer in 0–100. Its error wraps [ErrBadValue] and quotes s.
func ParseValue(s string) (Value, error) {
	switch s {
	case "on":
		return On, nil
	case "off":
		return Off, nil
	}
	if n, ok := strings.CutSuffix(s, "%"); ok && n != "" && n[0] != '+' && n[0] != '-' {
		if p, err := strconv.Atoi(n); err == nil && p >= 0 && p <= 100 {
			return Percent(p), nil
		}
	}
	return Off, fmt.Errorf("%w %q: want on, off or N%% with N in 0–100", ErrBadValue, s)
}

// String returns the text form: "on", "off" or "25%".
func (v Value) String() string {
	switch v.kind {
	case kindOn:
		return "on"
	case kindPercent:
		return strconv.Itoa(int(v.pct)) + "%"
	}
	return "off"
}

// Percent returns the share of machines v is on for: 0 for Off, 100 for On.
func (v Value) Percent() int {
	switch v.kind {
	case kindOn:
		return 100
	case kindPercent:
		return int(v.pct)
	}
	return 0
}

// MarshalText returns v's text form.
func (v Value) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText parses v's text form, as [ParseValue] does.
func (v *Value) UnmarshalText(b []byte) error {
	x, err := ParseValue(string(b))
	if err != nil {
		return err
	}
	*v = x
	return nil
}

// enabled reports whether v is on for a machine whose bucket for the flag
// is b (see Bucket).
func (v Value) enabled(b uint64) bool {
	switch v.kind {
	case kindOn:
		return true
	case kindPercent:
		return b < uint64(v.pct)
	}
	return false
}

// Bucket returns the bucket, 0–99, of the machine with ID id for the flag
// called name: a Percent(p) flag is on for it iff Bucket < p. It is
// fmix64(fnv1a64(name + "\x00" + id)) mod 100 (FNV-1a 64, then murmur3's
// 64-bit finaliser), fixed so that every process agrees.
func Bucket(name, id string) int {
	return int(bucket(name, id))
}

func bucket(name, id string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= prime
	}
	h *= prime // the zero byte: h ^= 0 changes nothing
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= prime
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h % 100
}
