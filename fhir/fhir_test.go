package fhir

import (
	"testing"
	"time"

	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
)

func TestDateTime(t *testing.T) {
	base := time.Date(2026, 11, 25, 10, 15, 30, 0, time.UTC)
	tests := []struct {
		name string
		in   time.Time
		want *dtpb.DateTime
	}{
		{
			name: "UTC at second precision",
			in:   base,
			want: &dtpb.DateTime{ValueUs: base.UnixMicro(), Timezone: "Z", Precision: dtpb.DateTime_SECOND},
		},
		{
			name: "+05:30 keeps the offset",
			in:   base.In(time.FixedZone("IST", 5*3600+30*60)),
			want: &dtpb.DateTime{ValueUs: base.UnixMicro(), Timezone: "+05:30", Precision: dtpb.DateTime_SECOND},
		},
		{
			name: "-08:00 keeps the offset",
			in:   base.In(time.FixedZone("PST", -8*3600)),
			want: &dtpb.DateTime{ValueUs: base.UnixMicro(), Timezone: "-08:00", Precision: dtpb.DateTime_SECOND},
		},
		{
			name: "millisecond precision",
			in:   base.Add(123 * time.Millisecond),
			want: &dtpb.DateTime{ValueUs: base.UnixMicro() + 123000, Timezone: "Z", Precision: dtpb.DateTime_MILLISECOND},
		},
		{
			name: "microsecond precision",
			in:   base.Add(123456 * time.Microsecond),
			want: &dtpb.DateTime{ValueUs: base.UnixMicro() + 123456, Timezone: "Z", Precision: dtpb.DateTime_MICROSECOND},
		},
		{
			name: "nanoseconds are truncated to microseconds",
			in:   base.Add(123456789 * time.Nanosecond),
			want: &dtpb.DateTime{ValueUs: base.UnixMicro() + 123456, Timezone: "Z", Precision: dtpb.DateTime_MICROSECOND},
		},
		{
			name: "sub-microsecond only still says microsecond",
			in:   base.Add(5 * time.Nanosecond),
			want: &dtpb.DateTime{ValueUs: base.UnixMicro(), Timezone: "Z", Precision: dtpb.DateTime_MICROSECOND},
		},
		{
			name: "a named zone uses its offset at that instant",
			in:   base.In(mustLoadLocation(t, "Europe/Berlin")),
			want: &dtpb.DateTime{ValueUs: base.UnixMicro(), Timezone: "+01:00", Precision: dtpb.DateTime_SECOND},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, DateTime(tt.in), protocmp.Transform()); diff != "" {
				t.Errorf("DateTime(%v) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func mustLoadLocation(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone database lacks %s: %v", name, err)
	}
	return loc
}

func TestOffset(t *testing.T) {
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		offset int // seconds east of UTC
		want   string
	}{
		{"UTC", 0, "Z"},
		{"India", 5*3600 + 30*60, "+05:30"},
		{"Nepal", 5*3600 + 45*60, "+05:45"},
		{"Pacific", -8 * 3600, "-08:00"},
		{"Newfoundland", -(3*3600 + 30*60), "-03:30"},
		{"negative under an hour", -30 * 60, "-00:30"},
		{"Kiribati", 14 * 3600, "+14:00"},
		{"Baker Island", -12 * 3600, "-12:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Offset(at.In(time.FixedZone("", tt.offset))); got != tt.want {
				t.Errorf("Offset(%+ds) = %q, want %q", tt.offset, got, tt.want)
			}
		})
	}
}

func TestBuilders(t *testing.T) {
	tests := []struct {
		name string
		got  any
		want any
	}{
		{
			name: "Coding without display",
			got:  Coding(SystemLOINC, "8867-4", ""),
			want: &dtpb.Coding{System: &dtpb.Uri{Value: SystemLOINC}, Code: &dtpb.Code{Value: "8867-4"}},
		},
		{
			name: "Coding with display",
			got:  Coding(SystemLOINC, "8867-4", "Heart rate"),
			want: &dtpb.Coding{System: &dtpb.Uri{Value: SystemLOINC}, Code: &dtpb.Code{Value: "8867-4"}, Display: &dtpb.String{Value: "Heart rate"}},
		},
		{
			name: "Quantity keeps the decimal literal",
			got:  Quantity("72.50", "/min"),
			want: &dtpb.Quantity{
				Value: &dtpb.Decimal{Value: "72.50"}, Unit: &dtpb.String{Value: "/min"},
				System: &dtpb.Uri{Value: SystemUCUM}, Code: &dtpb.Code{Value: "/min"},
			},
		},
		{
			name: "PatientRef is a typed Patient reference",
			got:  PatientRef("p-1"),
			want: &dtpb.Reference{Reference: &dtpb.Reference_PatientId{PatientId: &dtpb.ReferenceId{Value: "p-1"}}},
		},
		{
			name: "DeviceRef is a typed Device reference",
			got:  DeviceRef("d-1"),
			want: &dtpb.Reference{Reference: &dtpb.Reference_DeviceId{DeviceId: &dtpb.ReferenceId{Value: "d-1"}}},
		},
		{
			name: "Identifier",
			got:  Identifier("https://example.org/sid", "v"),
			want: &dtpb.Identifier{System: &dtpb.Uri{Value: "https://example.org/sid"}, Value: &dtpb.String{Value: "v"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.got, protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
