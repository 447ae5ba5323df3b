package fhirjson_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/fhir/fhirjson"
	"github.com/fhir-bridge/fhir-bridge/fhir/fhirjson/fhirjsontest"
	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
	"google.golang.org/protobuf/proto"
)

// zones are DateTime.timezone values: google/fhir's own "Z", fixed offsets
// (what the mappers write), IANA names, "UTC", "" and "Local" (which
// google/fhir resolves with time.LoadLocation, so they print as offsets),
// zones with historical offsets in seconds (LMT), and offsets google/fhir
// parses leniently.
var zones = []string{"Z", "+01:00", "-05:30", "+05:45", "+14:00", "-14:00", "+00:00", "-00:00", "UTC", "", "Local",
	"Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "America/St_Johns", "Europe/Amsterdam",
	"Africa/Monrovia", "Pacific/Kiritimati", "Etc/GMT+12", "+1:5", "-0:30", "+01:00:00", "Nowhere/Special", "+0100"}

// checkTimestamp encodes us in tz at precision p as effectiveDateTime (or
// effectiveInstant when instant) and compares with the referee.
func checkTimestamp(t *testing.T, ref *fhirjsontest.Referee, us int64, tz string, p int, instant bool) {
	t.Helper()
	o := baseObs()
	if instant {
		o.Effective = &observationpb.Observation_EffectiveX{Choice: &observationpb.Observation_EffectiveX_Instant{
			Instant: &dtpb.Instant{ValueUs: us, Timezone: tz, Precision: dtpb.Instant_Precision(p)}}}
	} else {
		o.Effective = &observationpb.Observation_EffectiveX{Choice: &observationpb.Observation_EffectiveX_DateTime{
			DateTime: &dtpb.DateTime{ValueUs: us, Timezone: tz, Precision: dtpb.DateTime_Precision(p)}}}
	}
	got, err := fhirjson.EncodeObservation(o)
	if v := ref.Compare(o, got, err); v.Mismatch != "" {
		t.Errorf("us=%d tz=%q precision=%d instant=%v: %s", us, tz, p, instant, v.Mismatch)
	}
}

// TestTimestamps compares dateTime and instant text with google/fhir's over
// random instants between years 1 and 9999, in every zone of zones and at
// every precision, plus the edges.
func TestTimestamps(t *testing.T) {
	ref := newReferee(t)
	lo := time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC).UnixMicro()
	hi := time.Date(9999, 12, 30, 0, 0, 0, 0, time.UTC).UnixMicro()
	edges := []int64{0, -1, 1, 999, 1000, -999999, -1000000, 1e6 - 1, lo, hi, time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC).UnixMicro()}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 600; i++ {
		var us int64
		if i < len(edges) {
			us = edges[i]
		} else if i%3 == 0 {
			us = t0.UnixMicro() + rng.Int64N(1e15) - 5e14 // around now
		} else {
			us = lo + rng.Int64N(hi-lo)
		}
		tz := zones[i%len(zones)]
		checkTimestamp(t, ref, us, tz, 1+i%6, false)
		checkTimestamp(t, ref, us, tz, 1+i%3, true)
	}
	for _, tz := range zones {
		for p := 0; p <= 7; p++ {
			checkTimestamp(t, ref, t0.UnixMicro()+123456, tz, p, false)
			checkTimestamp(t, ref, t0.UnixMicro()+123456, tz, p, true)
		}
	}
}

func FuzzTimestamp(f *testing.F) {
	for i, tz := range zones {
		f.Add(t0.UnixMicro()+int64(i)*86399123457, tz, uint8(i), i%2 == 0)
	}
	f.Add(int64(-62135596800000000), "Z", uint8(4), false)
	f.Add(int64(253402300799999999), "-14:00", uint8(6), false)
	ref := newReferee(f)
	f.Fuzz(func(t *testing.T, us int64, tz string, p uint8, instant bool) {
		checkTimestamp(t, ref, us, tz, int(p%8), instant)
	})
}

// TestNamedZoneIsCached: a named zone costs no allocation after its first
// use (google/fhir loads it from tzdata on every call).
func TestNamedZoneIsCached(t *testing.T) {
	o := proto.Clone(baseObs()).(*observationpb.Observation)
	o.Issued = &dtpb.Instant{ValueUs: t0.UnixMicro(), Timezone: "Europe/Paris", Precision: dtpb.Instant_SECOND}
	buf, err := fhirjson.AppendObservation(nil, o)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { buf, _ = fhirjson.AppendObservation(buf[:0], o) }); n != 0 {
		t.Errorf("%v allocations per encode with a named zone, want 0", n)
	}
}
