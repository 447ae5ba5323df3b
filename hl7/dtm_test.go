package hl7

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// referenceDTM formats t with the time package, for comparison.
func referenceDTM(t time.Time) string {
	s := t.Format("20060102150405")
	if frac := t.Nanosecond() / 100_000; frac != 0 {
		f := strings.TrimRight(t.Format(".0000"), "0")
		s += f
	}
	return s + t.Format("-0700")
}

func TestAppendDTMMatchesTimePackage(t *testing.T) {
	zones := []*time.Location{
		time.UTC,
		time.FixedZone("", 14*3600),
		time.FixedZone("", -12*3600),
		time.FixedZone("", 5*3600+45*60),
		time.FixedZone("", -(9*3600 + 30*60)),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	lo, hi := int64(minDTMSeconds+14*3600), int64(endDTMSeconds-14*3600)
	check := func(tm time.Time) {
		t.Helper()
		if !dtmInRange(tm) {
			t.Fatalf("%v reported out of range", tm)
		}
		if got, want := string(appendDTM(nil, tm)), referenceDTM(tm); got != want {
			t.Fatalf("appendDTM(%v) = %q, want %q", tm, got, want)
		}
	}
	for i := 0; i < 20000; i++ {
		sec := lo + rng.Int64N(hi-lo)
		nsec := rng.Int64N(1e9)
		if i%3 == 0 {
			nsec = nsec / 1e6 * 1e6 // milliseconds only
		}
		check(time.Unix(sec, nsec).In(zones[i%len(zones)]))
	}
	for _, tm := range []time.Time{
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2000, 2, 29, 12, 0, 0, 0, time.UTC),
		time.Date(1900, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1600, 2, 29, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 12, 31, 23, 0, 0, 0, time.UTC).In(time.FixedZone("", 3600)), // local year 0
	} {
		check(tm)
	}
}

func TestDTMRange(t *testing.T) {
	plus1 := time.FixedZone("", 3600)
	tests := []struct {
		t  time.Time
		ok bool
	}{
		{time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Date(-1, 12, 31, 23, 59, 59, 0, time.UTC), false},
		{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), true},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Date(10000, 1, 1, 0, 30, 0, 0, time.UTC).In(time.FixedZone("", -3600)), true}, // local 9999-12-31
		{time.Date(9999, 12, 31, 23, 30, 0, 0, time.UTC).In(plus1), false},                  // local 10000-01-01
	}
	for _, tc := range tests {
		if got := dtmInRange(tc.t); got != tc.ok {
			t.Errorf("dtmInRange(%v) = %v, want %v", tc.t, got, tc.ok)
		}
	}
}
